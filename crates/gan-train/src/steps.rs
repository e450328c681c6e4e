//! One training step of each model (SPEC §3), every player from a fresh forward pass, losses on
//! numerically stable BCE-with-logits. A loss with terms on different forward passes (D(x̂) and
//! D(G(z)), say) is backpropagated one term at a time, so only one term's graph is in memory.
//! Each player's optimiser only holds that player's variables, so a loss's gradients reaching
//! other players change nothing there; a network that only passes gradients through to the
//! player being trained runs [`frozen`], so its own weight gradients are not computed.

use std::cell::Cell;

use candle::backprop::GradStore;
use candle::{DType, Device, Result, Tensor};
use gan_models::blocks::frozen;
use gan_models::loss::{bce_with_logits_to, l1};
use gan_models::{AlphaGan, BiGan, FAnogan, GanModel, Ganomaly};
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
    let x_hat = frozen(|| m.generator.forward_t(&z_hat, true))?;
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
        let realism = frozen(|| m.discriminator.forward_t(&noisy(&x_hat, 1)?, true))?.logit;
        (l1(x, &x_hat)? * lambda)? + bce_with_logits_to(&realism, 1.0)?
    };
    let generation_term = || -> Result<Tensor> {
        let x_gen = m.generator.forward_t(&noise.z, true)?;
        let realism = frozen(|| m.discriminator.forward_t(&noisy(&x_gen, 2)?, true))?.logit;
        bce_with_logits_to(&realism, 1.0)
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
        frozen(|| joint(&x_gen, 3, &noise.z, 1.0))
    };
    let encoding_term = || -> Result<Tensor> {
        let code = m.encoder.forward_t(x, true)?.mean;
        frozen(|| joint(x, 4, &code, 0.0))
    };
    let (loss_ge, grads) = backward_in_terms(&[opt_e, opt_g], &[&generation_term, &encoding_term])?;
    opt_e.step(&grads)?;
    opt_g.step(&grads)?;

    Ok(vec![
        ("discriminator", loss_d),
        ("encoder_generator", loss_ge),
    ])
}

/// GANomaly's loss weights (the paper's): adversarial feature matching and latent L2; the
/// contextual L1 weight is the run's reconstruction weight (50 by default for GANomaly).
const GANOMALY_ADVERSARIAL: f64 = 1.0;
const GANOMALY_LATENT: f64 = 1.0;

fn mean_squared(a: &Tensor, b: &Tensor) -> Result<Tensor> {
    a.sub(b)?.sqr()?.mean_all()
}

/// GANomaly: the generator chain (E, G, E′ together) on
/// w_adv·‖f(x) − f(x̂)‖² + w_con·L1(x, x̂) + w_enc·‖E(x) − E′(x̂)‖², f the discriminator's trunk
/// features; then D on BCE(D(x), 1) + BCE(D(x̂), 0).
pub fn ganomaly_step(
    m: &Ganomaly,
    optimisers: &mut [Adam],
    x: &Tensor,
    noise: &StepNoise,
    contextual_weight: f64,
) -> Result<StepLosses> {
    let [opt_e, opt_g, opt_e2, opt_d] = optimisers else {
        candle::bail!("GANomaly needs 4 optimisers, got {}", optimisers.len())
    };
    let noisy =
        |t: &Tensor, k: u64| with_noise(t, noise.noise_sd, noise.noise_seed.wrapping_add(k));

    let real_features = m
        .discriminator
        .forward_t(&noisy(x, 1)?, true)?
        .features
        .x4
        .detach();
    let pass = m.pass(x, true)?;
    let fake_features = frozen(|| {
        m.discriminator
            .forward_t(&noisy(&pass.reconstruction, 2)?, true)
    })?
    .features
    .x4;
    let loss_g = ((mean_squared(&real_features, &fake_features)? * GANOMALY_ADVERSARIAL)?
        + (l1(x, &pass.reconstruction)? * contextual_weight)?
        + (mean_squared(&pass.code, &pass.second_code)? * GANOMALY_LATENT)?)?;
    let grads = loss_g.backward()?;
    opt_e.step(&grads)?;
    opt_g.step(&grads)?;
    opt_e2.step(&grads)?;
    drop(grads);

    let x_hat = pass.reconstruction.detach();
    let d_term = |input: &Tensor, k: u64, target: f64| -> Result<Tensor> {
        let logit = m.discriminator.forward_t(&noisy(input, k)?, true)?.logit;
        bce_with_logits_to(&logit, target)
    };
    let (loss_d, grads) = backward_in_terms(
        &[opt_d],
        &[&|| d_term(x, 3, 1.0), &|| d_term(&x_hat, 4, 0.0)],
    )?;
    opt_d.step(&grads)?;
    Ok(vec![
        ("generator", scalar(&loss_g)?),
        ("discriminator", loss_d),
    ])
}

/// f-AnoGAN's settings (the paper's): critic steps per generator step, gradient-penalty weight,
/// weight κ of the critic-feature residual in the encoder's loss.
pub const CRITIC_STEPS: u64 = 5;
const GRADIENT_PENALTY: f64 = 10.0;
const KAPPA: f64 = 1.0;
/// Step of the central difference that differentiates the gradient penalty (images in [−1, 1]).
const PENALTY_STEP: f64 = 1e-2;

/// Which phase of f-AnoGAN a step belongs to.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum FAnoganPhase {
    /// WGAN-GP: a critic step every step, a generator step every [`CRITIC_STEPS`]th.
    Gan,
    /// izi_f: the encoder alone, G and the critic frozen (eval mode).
    Encoder,
}

/// Per-image uniform draws in [0, 1), `(B, 1, 1, 1)`.
fn uniform_per_image(b: usize, seed: u64, device: &Device) -> Result<Tensor> {
    use rand::Rng;
    let mut rng = StdRng::seed_from_u64(seed);
    let values: Vec<f32> = (0..b).map(|_| rng.random::<f32>()).collect();
    Tensor::from_vec(values, (b, 1, 1, 1), device)
}

/// Gradient penalty 10·E[(‖∇D(x̃)‖ − 1)²] at x̃ between real and generated images, as a term
/// whose parameter gradient is the penalty's. candle cannot differentiate a gradient (our fused
/// CPU kernels have no second derivative either), so with g = ∇ₓD(x̃) and u = g/‖g‖ the
/// penalty's gradient 2(‖g‖ − 1)·∂‖g‖/∂θ is taken through ‖g‖ = ∂D(x̃ + t·u)/∂t, a central
/// difference of step h: the term is Σᵢ cᵢ·(D(x̃ᵢ + h·uᵢ) − D(x̃ᵢ − h·uᵢ))/2h with
/// cᵢ = 10·2(‖gᵢ‖ − 1)/B held constant. The critic is piecewise linear apart from attention, so
/// the difference is exact unless a step crosses a kink. Returns (the penalty's value, the term).
pub fn gradient_penalty(
    critic: &gan_models::Discriminator,
    x_tilde: &Tensor,
) -> Result<(f32, Tensor)> {
    let b = x_tilde.dim(0)?;
    let input = candle::Var::from_tensor(&x_tilde.detach())?;
    // only the input gradient is wanted here: the critic's weights are frozen for this pass
    let grads = frozen(|| critic.forward_t(input.as_tensor(), true))?
        .logit
        .sum_all()?
        .backward()?;
    let Some(g) = grads.get(input.as_tensor()) else {
        candle::bail!("the critic's output does not depend on its input")
    };
    let g = g.flatten_from(1)?;
    let norms = g.sqr()?.sum_keepdim(1)?.sqrt()?; // (B, 1)
    let penalty = (norms.affine(1.0, -1.0)?.sqr()?.mean_all()? * GRADIENT_PENALTY)?;
    let u = g
        .broadcast_div(&norms.affine(1.0, 1e-12)?)?
        .reshape(x_tilde.shape())?
        .detach();
    let coefficient = (norms.affine(1.0, -1.0)? * (2.0 * GRADIENT_PENALTY / b as f64))?
        .flatten_all()?
        .detach();
    let x_tilde = x_tilde.detach();
    let ahead = critic
        .forward_t(&(&x_tilde + (&u * PENALTY_STEP)?)?, true)?
        .logit;
    let behind = critic
        .forward_t(&(&x_tilde - (&u * PENALTY_STEP)?)?, true)?
        .logit;
    let slope = ((ahead - behind)? / (2.0 * PENALTY_STEP))?;
    Ok((scalar(&penalty)?, slope.mul(&coefficient)?.sum_all()?))
}

/// f-AnoGAN. GAN phase: the critic on mean D(G(z)) − mean D(x) + gradient penalty, and every
/// [`CRITIC_STEPS`]th step the generator on −mean D(G(z)). Encoder phase: E on
/// MSE(x, G(E(x))) + κ·MSE(f(x), f(G(E(x)))), G and the critic frozen. A player idle in a phase
/// reports loss 0.
pub fn f_anogan_step(
    m: &FAnogan,
    optimisers: &mut [Adam],
    x: &Tensor,
    noise: &StepNoise,
    phase: FAnoganPhase,
    step: u64,
) -> Result<StepLosses> {
    let [opt_e, opt_g, opt_d] = optimisers else {
        candle::bail!("f-AnoGAN needs 3 optimisers, got {}", optimisers.len())
    };
    if phase == FAnoganPhase::Encoder {
        let code = m.encoder.forward_t(x, true)?.mean;
        let x_hat = frozen(|| m.generator.forward_t(&code, false))?;
        let real = m.critic.forward_t(x, false)?.features.x4.detach();
        let fake = frozen(|| m.critic.forward_t(&x_hat, false))?.features.x4;
        let loss = (mean_squared(x, &x_hat)? + (mean_squared(&real, &fake)? * KAPPA)?)?;
        opt_e.step(&loss.backward()?)?;
        return Ok(vec![
            ("encoder", scalar(&loss)?),
            ("generator", 0.0),
            ("critic", 0.0),
        ]);
    }
    // the critic, one term at a time; each term's value is kept for the loss report (the
    // penalty's term carries its gradient, not its value)
    let x_gen = m.generator.forward_t(&noise.z, false)?.detach();
    let epsilon = uniform_per_image(x.dim(0)?, noise.noise_seed ^ 0x9e37_79b9, x.device())?;
    let x_tilde =
        (x.broadcast_mul(&epsilon)? + x_gen.broadcast_mul(&epsilon.affine(-1.0, 1.0)?)?)?;
    let (real, fake, penalty) = (Cell::new(0f32), Cell::new(0f32), Cell::new(0f32));
    let real_term = || -> Result<Tensor> {
        let mean = m.critic.forward_t(x, true)?.logit.mean_all()?;
        real.set(scalar(&mean)?);
        mean.neg()
    };
    let fake_term = || -> Result<Tensor> {
        let mean = m.critic.forward_t(&x_gen, true)?.logit.mean_all()?;
        fake.set(scalar(&mean)?);
        Ok(mean)
    };
    let penalty_term = || -> Result<Tensor> {
        let (value, term) = gradient_penalty(&m.critic, &x_tilde)?;
        penalty.set(value);
        Ok(term)
    };
    let (_, grads) = backward_in_terms(&[opt_d], &[&real_term, &fake_term, &penalty_term])?;
    opt_d.step(&grads)?;
    drop(grads);
    let loss_d = fake.get() - real.get() + penalty.get();
    // between generator steps, the generator's loss is the critic's verdict on its images
    let mut generated_critique = -fake.get();
    if step % CRITIC_STEPS == CRITIC_STEPS - 1 {
        let x_gen = m.generator.forward_t(&noise.z, true)?;
        let loss_g = frozen(|| m.critic.forward_t(&x_gen, true))?
            .logit
            .mean_all()?
            .neg()?;
        opt_g.step(&loss_g.backward()?)?;
        generated_critique = scalar(&loss_g)?;
    }
    Ok(vec![
        ("encoder", 0.0),
        ("generator", generated_critique),
        ("critic", loss_d),
    ])
}

/// How often one training step runs a network: `trained` passes are differentiated for its own
/// weights (backward: an input and a weight gradient, about three forward costs in all),
/// `frozen` passes only carry gradients through it to another player (input gradient only, two
/// forward costs), `forward` passes take no gradient (one).
#[derive(Debug, Clone, Copy)]
pub struct Passes {
    pub player: &'static str,
    pub trained: f64,
    pub frozen: f64,
    pub forward: f64,
}

const fn passes(player: &'static str, trained: f64, frozen: f64, forward: f64) -> Passes {
    Passes {
        player,
        trained,
        frozen,
        forward,
    }
}

/// The passes of one [`alpha_gan_step`]. E: its own step, then the code for G's step. G: frozen
/// in E's step, trained on x̂ and G(z), forward for D's inputs. D: frozen under G's two terms,
/// trained on its three. The throughput report multiplies these by each network's forward
/// FLOPs; keep them in step with the functions above.
pub const ALPHA_GAN_PASSES: [Passes; 4] = [
    passes("encoder", 1.0, 0.0, 1.0),
    passes("generator", 2.0, 1.0, 2.0),
    passes("discriminator", 3.0, 2.0, 0.0),
    passes("code_discriminator", 3.0, 0.0, 0.0),
];

/// The passes of one [`bigan_step`]: D trained on two pairs, then frozen under the joint G+E step.
pub const BIGAN_PASSES: [Passes; 3] = [
    passes("encoder", 1.0, 0.0, 1.0),
    passes("generator", 1.0, 0.0, 1.0),
    passes("discriminator", 2.0, 2.0, 0.0),
];

/// The passes of one [`ganomaly_step`]: D's features of x (forward), of x̂ (frozen), then D's step.
pub const GANOMALY_PASSES: [Passes; 4] = [
    passes("encoder", 1.0, 0.0, 0.0),
    passes("generator", 1.0, 0.0, 0.0),
    passes("second_encoder", 1.0, 0.0, 0.0),
    passes("discriminator", 2.0, 1.0, 1.0),
];

/// The passes of one [`f_anogan_step`] of the GAN phase (the longer one): the critic trained on
/// x, G(z) and x̃ ± h·u, frozen for the penalty's input gradient at x̃ and, one step in
/// [`CRITIC_STEPS`], under the generator's own step.
pub const F_ANOGAN_PASSES: [Passes; 3] = [
    passes("encoder", 0.0, 0.0, 0.0),
    passes("generator", 1.0 / CRITIC_STEPS as f64, 0.0, 1.0),
    passes("critic", 4.0, 1.0 + 1.0 / CRITIC_STEPS as f64, 0.0),
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
    let encoder = |e: &gan_models::Encoder| counted(&|| Ok(e.forward_t(&x, false)?.mean));
    let image_critic =
        |d: &gan_models::Discriminator| counted(&|| Ok(d.forward_t(&x, false)?.logit));
    let generator = counted(&|| model.generator().forward_t(&z, false))?;
    Ok(match model {
        GanModel::AlphaGan(m) => vec![
            ("encoder", encoder(&m.encoder)?),
            ("generator", generator),
            ("discriminator", image_critic(&m.discriminator)?),
            (
                "code_discriminator",
                counted(&|| m.code_discriminator.forward(&z))?,
            ),
        ],
        GanModel::BiGan(m) => vec![
            ("encoder", encoder(&m.encoder)?),
            ("generator", generator),
            (
                "discriminator",
                counted(&|| Ok(m.discriminator.forward_t(&x, &z, false)?.logit))?,
            ),
        ],
        GanModel::Ganomaly(m) => vec![
            ("encoder", encoder(&m.encoder)?),
            ("generator", generator),
            ("second_encoder", encoder(&m.second_encoder)?),
            ("discriminator", image_critic(&m.discriminator)?),
        ],
        GanModel::FAnogan(m) => vec![
            ("encoder", encoder(&m.encoder)?),
            ("generator", generator),
            ("critic", image_critic(&m.critic)?),
        ],
    })
}

/// FLOPs of one training step per image: each network's forward FLOPs times its [`Passes`], a
/// trained pass counting three forward costs and a frozen one two.
pub fn step_flops_per_image(model: &GanModel, device: &Device) -> Result<u64> {
    let passes: &[Passes] = match model {
        GanModel::AlphaGan(_) => &ALPHA_GAN_PASSES,
        GanModel::BiGan(_) => &BIGAN_PASSES,
        GanModel::Ganomaly(_) => &GANOMALY_PASSES,
        GanModel::FAnogan(_) => &F_ANOGAN_PASSES,
    };
    let forward = forward_flops_per_image(model, device)?;
    let mut total = 0f64;
    for p in passes {
        let Some((_, f)) = forward.iter().find(|(name, _)| *name == p.player) else {
            candle::bail!("no forward count for player {}", p.player);
        };
        total += *f as f64 * (3.0 * p.trained + 2.0 * p.frozen + p.forward);
    }
    Ok(total.round() as u64)
}
