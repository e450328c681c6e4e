//! Alpha-GAN's training step (SPEC §3): E, then G, then D, then C, each from a fresh forward
//! pass, on numerically stable BCE-with-logits.

use candle::{Result, Tensor};

use super::AlphaGan;
use crate::blocks::frozen;
use crate::detector::{DRAW_EPSILON, DRAW_Z, Passes, StepContext, StepLosses, passes};
use crate::loss::{bce_with_logits_to, l1};
use crate::optim::Adam;
use crate::training::{backward_in_terms, scalar, with_noise};

/// The passes of one step. E: its own step, then the code for G's step. G: frozen in E's step,
/// trained on x̂ and G(z), forward for D's inputs. D: frozen under G's two terms, trained on its
/// three. The throughput report multiplies these by each network's forward FLOPs; keep them in
/// step with [`train_step`].
pub const PASSES: [Passes; 4] = [
    passes("encoder", 1.0, 0.0, 1.0),
    passes("generator", 2.0, 1.0, 2.0),
    passes("discriminator", 3.0, 2.0, 0.0),
    passes("code_discriminator", 3.0, 0.0, 0.0),
];

pub(super) fn train_step(
    m: &AlphaGan,
    optimisers: &mut [Adam],
    x: &Tensor,
    context: &StepContext,
) -> Result<StepLosses> {
    let [opt_e, opt_g, opt_d, opt_c] = optimisers else {
        candle::bail!("Alpha-GAN needs 4 optimisers, got {}", optimisers.len())
    };
    let b = x.dim(0)?;
    let z = context.normal((b, m.config.latent), DRAW_Z)?;
    let epsilon = context.normal((b, m.config.latent), DRAW_EPSILON)?;
    let lambda = m.settings.reconstruction_weight;
    let noise_seed = context.noise_seed();
    let noisy = |t: &Tensor, k: u64| with_noise(t, context.noise_sd, noise_seed.wrapping_add(k));

    // E: λ·L1(x, x̂) + BCE(C(ẑ), 1)
    let code = m.encoder.forward_t(x, true)?;
    let z_hat = code.sample(&epsilon)?;
    let x_hat = frozen(|| m.generator.forward_t(&z_hat, true))?;
    let loss_e = ((l1(x, &x_hat)? * lambda)?
        + bce_with_logits_to(&m.code_discriminator.forward(&z_hat)?, 1.0)?)?;
    opt_e.step(&loss_e.backward()?)?;

    // G: λ·L1(x, x̂) + BCE(D(x̂), 1) + BCE(D(G(z)), 1), with the updated encoder's code; the
    // x̂ and G(z) terms are backpropagated one after the other
    let z_hat = m.encoder.forward_t(x, false)?.sample(&epsilon)?.detach();
    let reconstruction_term = || -> Result<Tensor> {
        let x_hat = m.generator.forward_t(&z_hat, true)?;
        let realism = frozen(|| m.discriminator.forward_t(&noisy(&x_hat, 1)?, true))?.logit;
        (l1(x, &x_hat)? * lambda)? + bce_with_logits_to(&realism, 1.0)?
    };
    let generation_term = || -> Result<Tensor> {
        let x_gen = m.generator.forward_t(&z, true)?;
        let realism = frozen(|| m.discriminator.forward_t(&noisy(&x_gen, 2)?, true))?.logit;
        bce_with_logits_to(&realism, 1.0)
    };
    let (loss_g, grads) = backward_in_terms(&[opt_g], &[&reconstruction_term, &generation_term])?;
    opt_g.step(&grads)?;
    drop(grads);

    // D: BCE(D(x), 1) + BCE(D(x̂), 0) + BCE(D(G(z)), 0), one term at a time, on the updated
    // generator's images as it makes them in training (BatchNorm on batch statistics, as the
    // seed and the references feed D), detached
    let x_hat = frozen(|| m.generator.forward_t(&z_hat, true))?.detach();
    let x_gen = frozen(|| m.generator.forward_t(&z, true))?.detach();
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
        + bce_with_logits_to(&m.code_discriminator.forward(&z)?, 1.0)?)?;
    opt_c.step(&loss_c.backward()?)?;

    Ok(vec![
        ("encoder", scalar(&loss_e)?),
        ("generator", loss_g),
        ("discriminator", loss_d),
        ("code_discriminator", scalar(&loss_c)?),
    ])
}
