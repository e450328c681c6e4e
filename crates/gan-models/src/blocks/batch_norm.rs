//! BatchNorm + ReLU, the generator's normalisation, as a layer with candle_nn's variables; in
//! both modes it runs the fused CPU kernel ([`crate::kernels::activation`]) or, elsewhere, the
//! composition of candle ops.

use candle::{Result, Tensor, Var};
use candle_nn::{Init, VarBuilder};

use crate::kernels::activation::{batch_norm_relu, batch_norm_relu_eval, planes};

/// A BatchNorm followed by ReLU, with candle_nn's variables, initialisation and running-average
/// rule (momentum 0.1, running variance unbiased), so checkpoints are unchanged. Training mode
/// runs [`batch_norm_relu`]; evaluation mode normalises with the running statistics
/// ([`batch_norm_relu_eval`]).
#[derive(Debug, Clone)]
pub struct BatchNormRelu {
    running_mean: Var,
    running_var: Var,
    weight: Tensor,
    bias: Tensor,
}

impl BatchNormRelu {
    const EPS: f64 = 1e-5;
    const MOMENTUM: f64 = 0.1;

    pub fn new(channels: usize, vb: VarBuilder) -> Result<Self> {
        let running_mean = vb.get_with_hints(channels, "running_mean", Init::Const(0.))?;
        let running_var = vb.get_with_hints(channels, "running_var", Init::Const(1.))?;
        Ok(BatchNormRelu {
            running_mean: Var::from_tensor(&running_mean)?,
            running_var: Var::from_tensor(&running_var)?,
            weight: vb.get_with_hints(channels, "weight", Init::Const(1.))?,
            bias: vb.get_with_hints(channels, "bias", Init::Const(0.))?,
        })
    }

    /// `x` is `(B, C, …)`.
    pub fn forward_t(&self, x: &Tensor, train: bool) -> Result<Tensor> {
        let (b, c, n) = planes(x.shape())?;
        if train {
            let (y, stats) = batch_norm_relu(x, &self.weight, &self.bias, Self::EPS)?;
            let m = Self::MOMENTUM;
            let count = (b * n) as f64;
            let unbiased = m * count / (count - 1.0).max(1.0);
            self.running_mean.set(
                &((self.running_mean.as_tensor() * (1.0 - m))? + (stats.mean * m)?)?.detach(),
            )?;
            self.running_var.set(
                &((self.running_var.as_tensor() * (1.0 - m))? + (stats.variance * unbiased)?)?
                    .detach(),
            )?;
            return Ok(y);
        }
        if let Some(y) = batch_norm_relu_eval(
            x,
            &self.weight,
            &self.bias,
            self.running_mean.as_tensor(),
            self.running_var.as_tensor(),
            Self::EPS,
        )? {
            return Ok(y);
        }
        let shape: Vec<usize> = (0..x.rank()).map(|d| if d == 1 { c } else { 1 }).collect();
        let per_channel = |t: &Tensor| t.reshape(shape.clone());
        let inv_std = (self.running_var.as_tensor() + Self::EPS)?
            .sqrt()?
            .recip()?;
        x.broadcast_sub(&per_channel(self.running_mean.as_tensor())?)?
            .broadcast_mul(&per_channel(&(inv_std * &self.weight)?)?)?
            .broadcast_add(&per_channel(&self.bias)?)?
            .relu()
    }
}
