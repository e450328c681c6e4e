//! Convolutions with optional spectral normalisation (Miyato et al. 2018), as PyTorch's
//! `torch.nn.utils.spectral_norm` does it: the weight is viewed as a matrix of (output channels) ×
//! (everything else); a left and right singular-vector estimate `u`, `v` are kept as state; every
//! training forward runs one power-iteration step; the weight used is W / (uᵀ W v). Evaluation
//! uses the stored estimate without updating it. `u` and `v` live in the VarMap (names ending in
//! `sn_u`, `sn_v`) so checkpoints carry them, and get no gradient.

use candle::{D, Result, Tensor, Var};
use candle_nn::{Init, VarBuilder};

use super::frozen;
use crate::kernels::activation::bias_leaky_relu;
use crate::kernels::gemm_conv;

/// Spectral-norm state of one weight.
#[derive(Debug, Clone)]
pub struct SpectralNorm {
    u: Var,
    v: Var,
    /// Put the output-channel dimension first (ConvTranspose2d weights are (in, out, k, k)).
    transpose: bool,
}

const SN_EPS: f64 = 1e-12;

fn normalise(x: &Tensor) -> Result<Tensor> {
    let norm = x.sqr()?.sum_all()?.sqrt()?;
    x.broadcast_div(&(norm + SN_EPS)?)
}

impl SpectralNorm {
    pub fn new(weight_shape: &[usize], transpose: bool, vb: &VarBuilder) -> Result<Self> {
        let (rows, cols) = matrix_shape(weight_shape, transpose);
        let init = Init::Randn {
            mean: 0.0,
            stdev: 1.0,
        };
        let u = Var::from_tensor(&vb.get_with_hints(rows, "sn_u", init)?)?;
        let v = Var::from_tensor(&vb.get_with_hints(cols, "sn_v", init)?)?;
        Ok(SpectralNorm { u, v, transpose })
    }

    fn matrix(&self, weight: &Tensor) -> Result<Tensor> {
        let w = if self.transpose {
            weight.transpose(0, 1)?
        } else {
            weight.clone()
        };
        let rows = w.dim(0)?;
        w.reshape((rows, ()))
    }

    /// W / σ(W); in training one power-iteration step updates `u` and `v` first.
    pub fn normalise(&self, weight: &Tensor, train: bool) -> Result<Tensor> {
        let w = self.matrix(weight)?;
        if train {
            let wd = w.detach();
            let u = self.u.as_tensor().unsqueeze(1)?;
            let v = normalise(&wd.t()?.matmul(&u)?)?;
            let u = normalise(&wd.matmul(&v)?)?;
            self.v.set(&v.squeeze(1)?)?;
            self.u.set(&u.squeeze(1)?)?;
        }
        let sigma = self.sigma(&w)?;
        weight.broadcast_div(&sigma)
    }

    /// uᵀ W v with the stored (detached) vectors; gradients flow into W only.
    fn sigma(&self, w: &Tensor) -> Result<Tensor> {
        let u = self.u.as_detached_tensor().unsqueeze(0)?;
        let v = self.v.as_detached_tensor().unsqueeze(1)?;
        u.matmul(&w.matmul(&v)?)?.reshape(())
    }

    /// The current estimate of the largest singular value of `weight`.
    pub fn sigma_of(&self, weight: &Tensor) -> Result<f32> {
        self.sigma(&self.matrix(weight)?)?.to_scalar::<f32>()
    }
}

fn matrix_shape(shape: &[usize], transpose: bool) -> (usize, usize) {
    let total: usize = shape.iter().product();
    let rows = if transpose { shape[1] } else { shape[0] };
    (rows, total / rows)
}

/// Geometry of a convolution.
#[derive(Debug, Clone, Copy)]
pub struct ConvSpec {
    pub kernel: usize,
    pub stride: usize,
    pub padding: usize,
}

impl ConvSpec {
    /// k4 s2 p1: halves (conv) or doubles (transposed) the spatial size.
    pub const DOWN_UP: ConvSpec = ConvSpec {
        kernel: 4,
        stride: 2,
        padding: 1,
    };
    /// k4 s1 p0: 4×4 ↔ 1×1.
    pub const K4: ConvSpec = ConvSpec {
        kernel: 4,
        stride: 1,
        padding: 0,
    };
    /// 1×1.
    pub const POINTWISE: ConvSpec = ConvSpec {
        kernel: 1,
        stride: 1,
        padding: 0,
    };
}

/// A Conv2d or ConvTranspose2d with bias and optional spectral normalisation.
#[derive(Debug, Clone)]
pub struct Conv {
    weight: Tensor,
    bias: Tensor,
    spec: ConvSpec,
    transposed: bool,
    spectral: Option<SpectralNorm>,
}

/// Weights drawn N(0, 0.02) as in DCGAN; biases zero.
pub const WEIGHT_INIT: Init = Init::Randn {
    mean: 0.0,
    stdev: 0.02,
};

impl Conv {
    fn build(
        in_c: usize,
        out_c: usize,
        spec: ConvSpec,
        transposed: bool,
        spectral: bool,
        vb: VarBuilder,
    ) -> Result<Self> {
        let shape = if transposed {
            [in_c, out_c, spec.kernel, spec.kernel]
        } else {
            [out_c, in_c, spec.kernel, spec.kernel]
        };
        let weight = vb.get_with_hints(&shape[..], "weight", WEIGHT_INIT)?;
        let bias = vb.get_with_hints(out_c, "bias", Init::Const(0.0))?;
        let spectral = if spectral {
            Some(SpectralNorm::new(&shape, transposed, &vb)?)
        } else {
            None
        };
        Ok(Conv {
            weight,
            bias,
            spec,
            transposed,
            spectral,
        })
    }

    /// Conv2d (weight `(out, in, k, k)`).
    pub fn conv2d(
        in_c: usize,
        out_c: usize,
        spec: ConvSpec,
        spectral: bool,
        vb: VarBuilder,
    ) -> Result<Self> {
        Self::build(in_c, out_c, spec, false, spectral, vb)
    }

    /// ConvTranspose2d (weight `(in, out, k, k)`).
    pub fn conv_transpose2d(
        in_c: usize,
        out_c: usize,
        spec: ConvSpec,
        spectral: bool,
        vb: VarBuilder,
    ) -> Result<Self> {
        Self::build(in_c, out_c, spec, true, spectral, vb)
    }

    pub fn weight(&self) -> &Tensor {
        &self.weight
    }

    pub fn spectral_norm(&self) -> Option<&SpectralNorm> {
        self.spectral.as_ref()
    }

    pub fn forward_t(&self, x: &Tensor, train: bool) -> Result<Tensor> {
        self.forward_without_bias(x, train)?
            .broadcast_add(&frozen::weight(&self.bias).reshape((1, (), 1, 1))?)
    }

    /// LeakyReLU(conv(x) + bias), fused on the CPU.
    pub fn forward_leaky_t(&self, x: &Tensor, train: bool, slope: f64) -> Result<Tensor> {
        bias_leaky_relu(
            &self.forward_without_bias(x, train)?,
            &frozen::weight(&self.bias),
            slope,
        )
    }

    fn forward_without_bias(&self, x: &Tensor, train: bool) -> Result<Tensor> {
        let w = match &self.spectral {
            Some(sn) => sn.normalise(&self.weight, train)?,
            None => self.weight.clone(),
        };
        let w = frozen::weight(&w);
        let s = self.spec;
        let y = match (self.transposed, gemm_conv::gemm_applies(x, &w)) {
            (true, true) => gemm_conv::conv_transpose2d(x, &w, s.padding, s.stride)?,
            (false, true) => gemm_conv::conv2d(x, &w, s.padding, s.stride)?,
            (true, false) => x.conv_transpose2d(&w, s.padding, 0, s.stride, 1)?,
            (false, false) => x.conv2d(&w, s.padding, s.stride, 1, 1)?,
        };
        // multiply-adds: one per weight element and (input position, transposed; output
        // position, direct) of every image
        let (b, _, h, w_) = if self.transposed {
            x.dims4()?
        } else {
            y.dims4()?
        };
        crate::flops::add_multiply_adds(b * h * w_ * w.elem_count());
        Ok(y)
    }
}

/// Linear layer (`candle_nn::Linear` with DCGAN initialisation).
pub fn linear(in_f: usize, out_f: usize, vb: VarBuilder) -> Result<candle_nn::Linear> {
    let weight = vb.get_with_hints((out_f, in_f), "weight", WEIGHT_INIT)?;
    let bias = vb.get_with_hints(out_f, "bias", Init::Const(0.0))?;
    Ok(candle_nn::Linear::new(weight, Some(bias)))
}

/// Mean over every dimension but the first: one number per image.
pub fn per_item_mean(x: &Tensor) -> Result<Tensor> {
    let b = x.dim(0)?;
    x.reshape((b, ()))?.mean(D::Minus1)
}
