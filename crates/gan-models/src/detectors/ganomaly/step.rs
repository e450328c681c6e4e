//! GANomaly's training step: the generator chain (E, G, E′ together) on
//! w_adv·‖f(x) − f(x̂)‖² + w_con·L1(x, x̂) + w_enc·‖E(x) − E′(x̂)‖², f the discriminator's trunk
//! features; then D on BCE(D(x), 1) + BCE(D(x̂), 0) with the chain's train-mode x̂ detached.

use candle::{Result, Tensor};

use super::Ganomaly;
use crate::blocks::frozen;
use crate::detector::{Passes, StepContext, StepLosses, passes};
use crate::loss::{bce_with_logits_to, l1};
use crate::optim::Adam;
use crate::training::{backward_in_terms, mean_squared, scalar, with_noise};

/// The passes of one step: D's features of x (forward), of x̂ (frozen), then D's step.
pub const PASSES: [Passes; 4] = [
    passes("encoder", 1.0, 0.0, 0.0),
    passes("generator", 1.0, 0.0, 0.0),
    passes("second_encoder", 1.0, 0.0, 0.0),
    passes("discriminator", 2.0, 1.0, 1.0),
];

pub(super) fn train_step(
    m: &Ganomaly,
    optimisers: &mut [Adam],
    x: &Tensor,
    context: &StepContext,
) -> Result<StepLosses> {
    let [opt_e, opt_g, opt_e2, opt_d] = optimisers else {
        candle::bail!("GANomaly needs 4 optimisers, got {}", optimisers.len())
    };
    let weights = &m.settings;
    let noise_seed = context.noise_seed();
    let noisy = |t: &Tensor, k: u64| with_noise(t, context.noise_sd, noise_seed.wrapping_add(k));

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
    let loss_g = ((mean_squared(&real_features, &fake_features)? * weights.adversarial_weight)?
        + (l1(x, &pass.reconstruction)? * weights.contextual_weight)?
        + (mean_squared(&pass.code, &pass.second_code)? * weights.latent_weight)?)?;
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
