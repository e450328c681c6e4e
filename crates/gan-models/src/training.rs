//! What the detectors' training steps share. A loss with terms on different forward passes (D(x̂)
//! and D(G(z)), say) is backpropagated one term at a time ([`backward_in_terms`]), so only one
//! term's graph is in memory. Each player's optimiser only holds that player's variables, so a
//! loss's gradients reaching other players change nothing there; a network that only passes
//! gradients through to the player being trained runs [`crate::blocks::frozen`], so its own
//! weight gradients are not computed.

use candle::backprop::GradStore;
use candle::{Result, Tensor};

use crate::detector::normal_tensor;
use crate::optim::Adam;

/// Adds N(0, sd²) noise to discriminator inputs (instance noise); identity when sd is 0.
pub fn with_noise(x: &Tensor, sd: f64, seed: u64) -> Result<Tensor> {
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
pub fn backward_in_terms(
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

/// The value of a one-element tensor.
pub fn scalar(t: &Tensor) -> Result<f32> {
    t.to_dtype(candle::DType::F32)?.to_scalar::<f32>()
}

/// Mean squared difference over every element.
pub fn mean_squared(a: &Tensor, b: &Tensor) -> Result<Tensor> {
    a.sub(b)?.sqr()?.mean_all()
}
