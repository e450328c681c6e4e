//! BiGAN's training step: D on −log D(x, E(x)) − log(1 − D(G(z), z)), then one joint G+E step
//! on −log D(G(z), z) − log(1 − D(x, E(x))).

use candle::{Result, Tensor};

use super::BiGan;
use crate::blocks::frozen;
use crate::detector::{DRAW_Z, Passes, StepContext, StepLosses, passes};
use crate::loss::bce_with_logits_to;
use crate::optim::Adam;
use crate::training::{backward_in_terms, with_noise};

/// The passes of one step: D trained on two pairs, then frozen under the joint G+E step.
pub const PASSES: [Passes; 3] = [
    passes("encoder", 1.0, 0.0, 1.0),
    passes("generator", 1.0, 0.0, 1.0),
    passes("discriminator", 2.0, 2.0, 0.0),
];

pub(super) fn train_step(
    m: &BiGan,
    optimisers: &mut [Adam],
    x: &Tensor,
    context: &StepContext,
) -> Result<StepLosses> {
    let [opt_e, opt_g, opt_d] = optimisers else {
        candle::bail!("BiGAN needs 3 optimisers, got {}", optimisers.len())
    };
    let z = context.normal((x.dim(0)?, m.config.latent), DRAW_Z)?;
    let noise_seed = context.noise_seed();
    let noisy = |t: &Tensor, k: u64| with_noise(t, context.noise_sd, noise_seed.wrapping_add(k));

    // D, one term at a time, on the pairs E and G make in training (BatchNorm on batch
    // statistics, as the references feed D), detached
    let code = frozen(|| m.encoder.forward_t(x, true))?.mean.detach();
    let x_gen = frozen(|| m.generator.forward_t(&z, true))?.detach();
    let joint = |image: &Tensor, k: u64, z: &Tensor, target: f64| -> Result<Tensor> {
        let logit = m.discriminator.forward_t(&noisy(image, k)?, z, true)?.logit;
        bce_with_logits_to(&logit, target)
    };
    let (loss_d, grads) = backward_in_terms(
        &[opt_d],
        &[&|| joint(x, 1, &code, 1.0), &|| joint(&x_gen, 2, &z, 0.0)],
    )?;
    opt_d.step(&grads)?;
    drop(grads);

    // G and E together, one term at a time: the generator's term, then the encoder's
    let generation_term = || -> Result<Tensor> {
        let x_gen = m.generator.forward_t(&z, true)?;
        frozen(|| joint(&x_gen, 3, &z, 1.0))
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
