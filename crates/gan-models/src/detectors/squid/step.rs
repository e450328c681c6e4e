//! SQUID's training step (`main.py`'s `gan_train`, with one generator pass per step where the
//! paper runs one for each player): every step the discriminator learns
//! BCE(D(x), 1) + BCE(D(x̂), 0) on the student's train-mode reconstruction (detached); every
//! `critic_every`-th step the generator side (encoder, in-painting block, student, teacher) learns
//! w_rec·MSE(x̂, x) + w_t·MSE(x̂_T, x) + w_dist·Σ MSE(student level, teacher level) + w_adv·BCE(D(x̂), 1)
//! with D frozen; then the batch's memory queries go into the queue.

use candle::{Result, Tensor};

use super::Squid;
use crate::blocks::frozen;
use crate::detector::{Passes, StepContext, StepLosses, passes};
use crate::loss::bce_with_logits_to;
use crate::optim::Adam;
use crate::training::{mean_squared, scalar};

/// The passes of one generator step (the longer phase): each generator-side network trained
/// once, the teacher too, D trained on two batches and frozen on one.
pub const PASSES: [Passes; 5] = [
    passes("encoder", 1.0, 0.0, 0.0),
    passes("inpaint", 1.0, 0.0, 0.0),
    passes("student", 1.0, 0.0, 0.0),
    passes("teacher", 1.0, 0.0, 0.0),
    passes("discriminator", 2.0, 1.0, 0.0),
];

pub(super) fn train_step(
    m: &Squid,
    optimisers: &mut [Adam],
    x: &Tensor,
    context: &StepContext,
) -> Result<StepLosses> {
    let [opt_e, opt_i, opt_s, opt_t, opt_d] = optimisers else {
        candle::bail!("SQUID needs 5 optimisers, got {}", optimisers.len())
    };
    let w = &m.settings;
    let pass = m.pass(x, Some(context))?;

    let x_hat = pass.student.reconstruction.detach();
    let real = m.discriminator.forward_t(x, true)?.logit;
    let fake = m.discriminator.forward_t(&x_hat, true)?.logit;
    let loss_d = ((bce_with_logits_to(&real, 1.0)? + bce_with_logits_to(&fake, 0.0)?)?
        * w.discriminator_weight)?;
    opt_d.step(&loss_d.backward()?)?;
    let mut losses = vec![("discriminator", scalar(&loss_d)?)];

    // the generator's loss is reported every step; it learns from it every critic_every-th
    let x_hat = &pass.student.reconstruction;
    let adversarial = frozen(|| m.discriminator.forward_t(x_hat, true))?.logit;
    let mut distillation = Tensor::zeros((), candle::DType::F32, x.device())?;
    for (s, t) in pass.student.features.iter().zip(&pass.teacher.features) {
        distillation = (distillation + mean_squared(s, t)?)?;
    }
    let loss_g = ((mean_squared(x_hat, x)? * w.reconstruction_weight)?
        + (mean_squared(&pass.teacher.reconstruction, x)? * w.teacher_weight)?
        + (distillation * w.distillation_weight)?
        + (bce_with_logits_to(&adversarial, 1.0)? * w.adversarial_weight)?)?;
    if context.step.is_multiple_of(w.critic_every.max(1)) {
        let grads = loss_g.backward()?;
        for opt in [opt_e, opt_i, opt_s, opt_t] {
            opt.step(&grads)?;
        }
    }
    losses.push(("generator", scalar(&loss_g)?));
    // first in, first out: slot of this step's first query
    let b = x.dim(0)? as u64;
    let slots = w.memory_slots as u64;
    m.inpaint.enqueue(
        &pass.inpainted.queries,
        ((context.step * b) % slots) as usize,
    )?;
    Ok(losses)
}
