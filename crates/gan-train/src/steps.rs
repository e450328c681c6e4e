//! One training step of each model (SPEC §3), every player from a fresh forward pass, losses on
//! numerically stable BCE-with-logits. A loss with terms on different forward passes (D(x̂) and
//! D(G(z)), say) is backpropagated one term at a time, so only one term's graph is in memory.
//! Each player's optimiser only holds that player's variables, so a loss's gradients reaching
//! other players change nothing there.

use candle::backprop::GradStore;
use candle::{DType, Device, Result, Tensor};
use gan_models::loss::{bce_with_logits_to, l1};
use gan_models::{AlphaGan, BiGan, GanModel};
use rand::SeedableRng;
use rand::rngs::StdRng;
use rand_distr::{Distribution, StandardNormal};

use crate::adam::Adam;

/// Loss of each player (BiGAN: of the discriminator and of the joint encoder+generator step).
pub type StepLosses = Vec<(&'static str, f32)>;

/// A `(rows, cols)` tensor of N(0, 1) draws from a generator seeded by `seed` (candle's own CPU
/// generator cannot be seeded).
pub fn normal_tensor(shape: (usize, usize), seed: u64, device: &Device) -> Result<Tensor> {
    let mut rng = StdRng::seed_from_u64(seed);
    let values: Vec<f32> = (0..shape.0 * shape.1)
        .map(|_| StandardNormal.sample(&mut rng))
        .collect();
    Tensor::from_vec(values, shape, device)
}

/// Adds N(0, sd²) noise to discriminator inputs (instance noise); identity when sd is 0.
fn with_noise(x: &Tensor, sd: f64, seed: u64) -> Result<Tensor> {
    if sd <= 0.0 {
        return Ok(x.clone());
    }
    let n = x.elem_count();
    let noise = normal_tensor((1, n), seed, x.device())?.reshape(x.shape())?;
    x.add(&(noise * sd)?)
}

/// Backpropagates the terms of a loss one after another and adds up the gradients of the
/// variables `optimisers` update. Each term's graph is built by its closure only after the
/// previous term's graph is gone, so the peak memory is one term's forward passes instead of all
/// of them; the summed gradient equals the gradient of the summed loss. Returns the loss (the sum
/// of the terms' values) and the gradients.
fn backward_in_terms(
    optimisers: &[&Adam],
    terms: &[&dyn Fn() -> Result<Tensor>],
) -> Result<(f32, GradStore)> {
    let mut total: Option<GradStore> = None;
    let mut loss = 0f32;
    for term in terms {
        let value = term()?;
        loss += scalar(&value)?;
        let grads = value.backward()?;
        drop(value);
        total = Some(match total {
            None => grads,
            Some(mut sum) => {
                for var in optimisers.iter().flat_map(|o| o.vars()) {
                    let v = var.as_tensor();
                    if let Some(g) = grads.get(v) {
                        let added = match sum.get(v) {
                            Some(previous) => previous.add(g)?,
                            None => g.clone(),
                        };
                        sum.insert(v, added);
                    }
                }
                sum
            }
        });
    }
    match total {
        Some(grads) => Ok((loss, grads)),
        None => candle::bail!("a loss needs at least one term"),
    }
}

fn scalar(t: &Tensor) -> Result<f32> {
    t.to_dtype(candle::DType::F32)?.to_scalar::<f32>()
}

/// Randomness of one step, all derived from the run seed and the step number.
pub struct StepNoise {
    /// Prior draws z, `(B, latent)`.
    pub z: Tensor,
    /// ε of the encoder's reparameterisation, `(B, latent)`.
    pub epsilon: Tensor,
    pub noise_sd: f64,
    pub noise_seed: u64,
}

/// Alpha-GAN: E, then G, then D, then C.
pub fn alpha_gan_step(
    m: &AlphaGan,
    optimisers: &mut [Adam],
    x: &Tensor,
    noise: &StepNoise,
    lambda: f64,
) -> Result<StepLosses> {
    let [opt_e, opt_g, opt_d, opt_c] = optimisers else {
        candle::bail!("Alpha-GAN needs 4 optimisers, got {}", optimisers.len())
    };
    let noisy =
        |t: &Tensor, k: u64| with_noise(t, noise.noise_sd, noise.noise_seed.wrapping_add(k));

    // E: λ·L1(x, x̂) + BCE(C(ẑ), 1)
    let code = m.encoder.forward_t(x, true)?;
    let z_hat = code.sample(&noise.epsilon)?;
    let x_hat = m.generator.forward_t(&z_hat, true)?;
    let loss_e = ((l1(x, &x_hat)? * lambda)?
        + bce_with_logits_to(&m.code_discriminator.forward(&z_hat)?, 1.0)?)?;
    opt_e.step(&loss_e.backward()?)?;

    // G: λ·L1(x, x̂) + BCE(D(x̂), 1) + BCE(D(G(z)), 1), with the updated encoder's code; the
    // x̂ and G(z) terms are backpropagated one after the other
    let z_hat = m
        .encoder
        .forward_t(x, false)?
        .sample(&noise.epsilon)?
        .detach();
    let reconstruction_term = || -> Result<Tensor> {
        let x_hat = m.generator.forward_t(&z_hat, true)?;
        let realism = m.discriminator.forward_t(&noisy(&x_hat, 1)?, true)?.logit;
        (l1(x, &x_hat)? * lambda)? + bce_with_logits_to(&realism, 1.0)?
    };
    let generation_term = || -> Result<Tensor> {
        let x_gen = m.generator.forward_t(&noise.z, true)?;
        bce_with_logits_to(
            &m.discriminator.forward_t(&noisy(&x_gen, 2)?, true)?.logit,
            1.0,
        )
    };
    let (loss_g, grads) = backward_in_terms(&[opt_g], &[&reconstruction_term, &generation_term])?;
    opt_g.step(&grads)?;
    drop(grads);

    // D: BCE(D(x), 1) + BCE(D(x̂), 0) + BCE(D(G(z)), 0), with the updated generator's images,
    // one term at a time
    let x_hat = m.generator.forward_t(&z_hat, false)?.detach();
    let x_gen = m.generator.forward_t(&noise.z, false)?.detach();
    let d_term = |input: &Tensor, k: u64, target: f64| -> Result<Tensor> {
        let logit = m.discriminator.forward_t(&noisy(input, k)?, true)?.logit;
        bce_with_logits_to(&logit, target)
    };
    let (loss_d, grads) = backward_in_terms(
        &[opt_d],
        &[&|| d_term(x, 3, 1.0), &|| d_term(&x_hat, 4, 0.0), &|| {
            d_term(&x_gen, 5, 0.0)
        }],
    )?;
    opt_d.step(&grads)?;
    drop(grads);

    // C: BCE(C(ẑ), 0) + BCE(C(z), 1)
    let loss_c = (bce_with_logits_to(&m.code_discriminator.forward(&z_hat)?, 0.0)?
        + bce_with_logits_to(&m.code_discriminator.forward(&noise.z)?, 1.0)?)?;
    opt_c.step(&loss_c.backward()?)?;

    Ok(vec![
        ("encoder", scalar(&loss_e)?),
        ("generator", loss_g),
        ("discriminator", loss_d),
        ("code_discriminator", scalar(&loss_c)?),
    ])
}

/// BiGAN: D on −log D(x, E(x)) − log(1 − D(G(z), z)), then one joint G+E step on
/// −log D(G(z), z) − log(1 − D(x, E(x))).
pub fn bigan_step(
    m: &BiGan,
    optimisers: &mut [Adam],
    x: &Tensor,
    noise: &StepNoise,
) -> Result<StepLosses> {
    let [opt_e, opt_g, opt_d] = optimisers else {
        candle::bail!("BiGAN needs 3 optimisers, got {}", optimisers.len())
    };
    let noisy =
        |t: &Tensor, k: u64| with_noise(t, noise.noise_sd, noise.noise_seed.wrapping_add(k));

    // D, one term at a time
    let code = m.encoder.forward_t(x, false)?.mean.detach();
    let x_gen = m.generator.forward_t(&noise.z, false)?.detach();
    let joint = |image: &Tensor, k: u64, z: &Tensor, target: f64| -> Result<Tensor> {
        let logit = m.discriminator.forward_t(&noisy(image, k)?, z, true)?.logit;
        bce_with_logits_to(&logit, target)
    };
    let (loss_d, grads) = backward_in_terms(
        &[opt_d],
        &[&|| joint(x, 1, &code, 1.0), &|| {
            joint(&x_gen, 2, &noise.z, 0.0)
        }],
    )?;
    opt_d.step(&grads)?;
    drop(grads);

    // G and E together, one term at a time: the generator's term, then the encoder's
    let generation_term = || -> Result<Tensor> {
        let x_gen = m.generator.forward_t(&noise.z, true)?;
        joint(&x_gen, 3, &noise.z, 1.0)
    };
    let encoding_term = || -> Result<Tensor> {
        let code = m.encoder.forward_t(x, true)?.mean;
        joint(x, 4, &code, 0.0)
    };
    let (loss_ge, grads) = backward_in_terms(&[opt_e, opt_g], &[&generation_term, &encoding_term])?;
    opt_e.step(&grads)?;
    opt_g.step(&grads)?;

    Ok(vec![
        ("discriminator", loss_d),
        ("encoder_generator", loss_ge),
    ])
}

/// Forward passes of each network in one [`alpha_gan_step`], as `(player, passes whose gradient
/// is taken, passes without gradient)`. The throughput report multiplies these by each network's
/// forward FLOPs; keep them in step with the function above.
pub const ALPHA_GAN_PASSES: [(&str, u64, u64); 4] = [
    ("encoder", 1, 1),
    ("generator", 3, 2),
    ("discriminator", 5, 0),
    ("code_discriminator", 3, 0),
];

/// Forward passes of each network in one [`bigan_step`], as for [`ALPHA_GAN_PASSES`].
pub const BIGAN_PASSES: [(&str, u64, u64); 3] = [
    ("encoder", 1, 1),
    ("generator", 1, 1),
    ("discriminator", 4, 0),
];

/// FLOPs of one image's forward pass through each network (eval mode, counted as it runs).
pub fn forward_flops_per_image(
    model: &GanModel,
    device: &Device,
) -> Result<Vec<(&'static str, u64)>> {
    let c = model.config();
    let x = Tensor::zeros(
        (1, c.channels, c.image_size, c.image_size),
        DType::F32,
        device,
    )?;
    let z = Tensor::zeros((1, c.latent), DType::F32, device)?;
    let counted = |f: &dyn Fn() -> Result<Tensor>| -> Result<u64> {
        let (out, flops) = gan_models::flops::count(f);
        out.map(|_| flops)
    };
    Ok(match model {
        GanModel::AlphaGan(m) => vec![
            (
                "encoder",
                counted(&|| Ok(m.encoder.forward_t(&x, false)?.mean))?,
            ),
            ("generator", counted(&|| m.generator.forward_t(&z, false))?),
            (
                "discriminator",
                counted(&|| Ok(m.discriminator.forward_t(&x, false)?.logit))?,
            ),
            (
                "code_discriminator",
                counted(&|| m.code_discriminator.forward(&z))?,
            ),
        ],
        GanModel::BiGan(m) => vec![
            (
                "encoder",
                counted(&|| Ok(m.encoder.forward_t(&x, false)?.mean))?,
            ),
            ("generator", counted(&|| m.generator.forward_t(&z, false))?),
            (
                "discriminator",
                counted(&|| Ok(m.discriminator.forward_t(&x, &z, false)?.logit))?,
            ),
        ],
    })
}

/// FLOPs of one training step per image: each network's forward FLOPs times its passes, a pass
/// whose gradient is taken counting three times (the backward pass computes an input and a weight
/// gradient, each about as costly as the forward).
pub fn step_flops_per_image(model: &GanModel, device: &Device) -> Result<u64> {
    let passes: &[(&str, u64, u64)] = match model {
        GanModel::AlphaGan(_) => &ALPHA_GAN_PASSES,
        GanModel::BiGan(_) => &BIGAN_PASSES,
    };
    let forward = forward_flops_per_image(model, device)?;
    let mut total = 0u64;
    for (player, with_grad, without_grad) in passes {
        let Some((_, f)) = forward.iter().find(|(p, _)| p == player) else {
            candle::bail!("no forward count for player {player}");
        };
        total += f * (3 * with_grad + without_grad);
    }
    Ok(total)
}
