//! f-AnoGAN's training step. GAN phase: the critic on mean D(G(z)) − mean D(x) + gradient
//! penalty, and every `critic_steps`th step the generator on −mean D(G(z)). Encoder phase: E on
//! MSE(x, G(E(x))) + κ·MSE(f(x), f(G(E(x)))), G and the critic frozen. A player idle in a phase
//! reports loss 0.

use std::cell::Cell;

use candle::{Device, Result, Tensor};
use rand::SeedableRng;
use rand::rngs::StdRng;

use super::FAnogan;
use crate::blocks::frozen;
use crate::detector::{DRAW_Z, Passes, StepContext, StepLosses, passes};
use crate::networks::Discriminator;
use crate::optim::Adam;
use crate::training::{backward_in_terms, mean_squared, scalar};

/// Step of the central difference that differentiates the gradient penalty (images in [−1, 1]).
const PENALTY_STEP: f64 = 1e-2;

/// Which phase of f-AnoGAN a step belongs to.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum FAnoganPhase {
    /// WGAN-GP: a critic step every step, a generator step every `critic_steps`th.
    Gan,
    /// izi_f: the encoder alone, G and the critic frozen (eval mode).
    Encoder,
}

/// The passes of one step of the GAN phase (the longer one): the critic trained on x, G(z) and
/// x̃ ± h·u, frozen for the penalty's input gradient at x̃ and, one step in `critic_steps`, under
/// the generator's own step.
pub fn passes_of_gan_phase(critic_steps: u64) -> [Passes; 3] {
    let every = 1.0 / critic_steps as f64;
    [
        passes("encoder", 0.0, 0.0, 0.0),
        passes("generator", every, 0.0, 1.0),
        passes("critic", 4.0, 1.0 + every, 0.0),
    ]
}

/// Per-image uniform draws in [0, 1), `(B, 1, 1, 1)`.
fn uniform_per_image(b: usize, seed: u64, device: &Device) -> Result<Tensor> {
    use rand::Rng;
    let mut rng = StdRng::seed_from_u64(seed);
    let values: Vec<f32> = (0..b).map(|_| rng.random::<f32>()).collect();
    Tensor::from_vec(values, (b, 1, 1, 1), device)
}

/// Gradient penalty `weight`·E[(‖∇D(x̃)‖ − 1)²] at x̃ between real and generated images, as a
/// term whose parameter gradient is the penalty's. candle cannot differentiate a gradient (our
/// fused CPU kernels have no second derivative either), so with g = ∇ₓD(x̃) and u = g/‖g‖ the
/// penalty's gradient 2(‖g‖ − 1)·∂‖g‖/∂θ is taken through ‖g‖ = ∂D(x̃ + t·u)/∂t, a central
/// difference of step h: the term is Σᵢ cᵢ·(D(x̃ᵢ + h·uᵢ) − D(x̃ᵢ − h·uᵢ))/2h with
/// cᵢ = weight·2(‖gᵢ‖ − 1)/B held constant. The critic is piecewise linear apart from attention,
/// so the difference is exact unless a step crosses a kink. Returns (the penalty's value, the
/// term).
pub fn gradient_penalty(
    critic: &Discriminator,
    x_tilde: &Tensor,
    weight: f64,
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
    let penalty = (norms.affine(1.0, -1.0)?.sqr()?.mean_all()? * weight)?;
    let u = g
        .broadcast_div(&norms.affine(1.0, 1e-12)?)?
        .reshape(x_tilde.shape())?
        .detach();
    let coefficient = (norms.affine(1.0, -1.0)? * (2.0 * weight / b as f64))?
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

pub(super) fn train_step(
    m: &FAnogan,
    optimisers: &mut [Adam],
    x: &Tensor,
    context: &StepContext,
) -> Result<StepLosses> {
    let [opt_e, opt_g, opt_d] = optimisers else {
        candle::bail!("f-AnoGAN needs 3 optimisers, got {}", optimisers.len())
    };
    let settings = &m.settings;
    if settings.phase(context.epoch, context.epochs) == FAnoganPhase::Encoder {
        let code = m.encoder.forward_t(x, true)?.mean;
        let x_hat = frozen(|| m.generator.forward_t(&code, false))?;
        let real = m.critic.forward_t(x, false)?.features.x4.detach();
        let fake = frozen(|| m.critic.forward_t(&x_hat, false))?.features.x4;
        let loss = (mean_squared(x, &x_hat)? + (mean_squared(&real, &fake)? * settings.kappa)?)?;
        opt_e.step(&loss.backward()?)?;
        return Ok(vec![
            ("encoder", scalar(&loss)?),
            ("generator", 0.0),
            ("critic", 0.0),
        ]);
    }
    let z = context.normal((x.dim(0)?, m.config.latent), DRAW_Z)?;
    // the critic, one term at a time; each term's value is kept for the loss report (the
    // penalty's term carries its gradient, not its value)
    // the generator's images as it makes them in training (BatchNorm on batch statistics, as
    // WGAN-GP feeds its critic), detached
    let x_gen = frozen(|| m.generator.forward_t(&z, true))?.detach();
    let epsilon = uniform_per_image(x.dim(0)?, context.noise_seed() ^ 0x9e37_79b9, x.device())?;
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
        let (value, term) = gradient_penalty(&m.critic, &x_tilde, settings.gradient_penalty)?;
        penalty.set(value);
        Ok(term)
    };
    let (_, grads) = backward_in_terms(&[opt_d], &[&real_term, &fake_term, &penalty_term])?;
    opt_d.step(&grads)?;
    drop(grads);
    let loss_d = fake.get() - real.get() + penalty.get();
    // between generator steps, the generator's loss is the critic's verdict on its images
    let mut generated_critique = -fake.get();
    let every = settings.critic_steps;
    if context.step % every == every - 1 {
        let x_gen = m.generator.forward_t(&z, true)?;
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
