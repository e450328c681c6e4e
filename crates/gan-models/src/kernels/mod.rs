//! The hand-written CPU kernels (f32), apart from the layers that call them: each is a candle
//! custom op with its own backward pass, used by a layer in [`crate::blocks`] when its tensors
//! are f32 on the CPU; on other devices and dtypes the layer composes candle's own ops, which is
//! also the reference the kernels are tested against (`tests/cpu_kernels.rs`).
//!
//! - [`gemm_conv`]: convolutions and transposed convolutions as im2col/col2im + gemm, an image or
//!   a small group of images per product, one graph node each, the columns recomputed in the
//!   backward pass.
//! - [`activation`]: bias + LeakyReLU (the trunk) and BatchNorm + ReLU in training and
//!   evaluation mode (the generator), keeping only input and output in the graph.
//! - [`attention`]: self-attention over positions, recomputed in the backward pass.
//! - [`softmax`]: softmax over the last dimension with its backward.
//! - [`bf16`]: matrix products with bf16 operands and f32 sums (AVX512-BF16), which the
//!   convolutions and attention use inside [`with_precision`]`(Precision::Bf16, …)`.
//! - `cpu`: their shared pieces (f32 storage access, gemm on strided views, the vectorised
//!   softmax row and dot, AVX2 + FMA dispatch).
//!
//! Whether a kernel runs is decided in one place, [`fused_kernels_apply`]: f32 tensors on the CPU,
//! unless the portable path is forced, for a scope by [`portable_kernels`] or for the whole
//! process by `XRAY_GAN_KERNELS=portable`. The portable path is what a GPU runs (candle's own
//! convolutions, composite bias + LeakyReLU and BatchNorm + ReLU, composite attention with
//! candle_nn's softmax), so forcing it on the CPU tests that path where no GPU is
//! (`crates/gan-train/tests/portable_path.rs`).

pub mod activation;
pub mod attention;
pub mod bf16;
mod cpu;
pub mod gemm_conv;
pub mod softmax;

pub use activation::{BatchStatistics, batch_norm_relu, batch_norm_relu_eval, bias_leaky_relu};
pub use softmax::softmax_last_dim;

use std::cell::Cell;
use std::sync::OnceLock;

use candle::{DType, Tensor};

/// The number format of the CPU kernels' matrix products (convolutions and attention).
///
/// `Bf16` rounds both operands of every convolution product (forward, input and weight
/// gradients) and of the attention's products with V, dO, K and Q to bf16 and sums in f32
/// ([`bf16`]); weights, optimiser state, activations and every other operation stay f32. It
/// needs a CPU with AVX512-BF16 ([`bf16::available`]).
#[derive(Debug, Clone, Copy, Default, PartialEq, Eq, serde::Serialize, serde::Deserialize)]
#[serde(rename_all = "lowercase")]
pub enum Precision {
    #[default]
    F32,
    Bf16,
}

impl std::fmt::Display for Precision {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.write_str(match self {
            Precision::F32 => "f32",
            Precision::Bf16 => "bf16",
        })
    }
}

impl std::str::FromStr for Precision {
    type Err = String;

    fn from_str(s: &str) -> std::result::Result<Self, String> {
        match s.to_ascii_lowercase().as_str() {
            "f32" => Ok(Precision::F32),
            "bf16" => Ok(Precision::Bf16),
            _ => Err(format!("precision {s:?}: expected f32 or bf16")),
        }
    }
}

impl Precision {
    /// Whether this machine can run it on `device`: bf16 products exist on the CPU, with
    /// AVX512-BF16, in the fused kernels only. The error says why not.
    pub fn check(self, device: &candle::Device) -> std::result::Result<(), String> {
        match self {
            Precision::F32 => Ok(()),
            Precision::Bf16 if !device.is_cpu() => {
                Err("--precision bf16 runs on the CPU only; on a GPU the products stay f32".into())
            }
            Precision::Bf16 if !bf16::available() => {
                Err("--precision bf16 needs a CPU with AVX512-BF16, which this one lacks".into())
            }
            Precision::Bf16 if !fused_kernels_enabled() => Err(format!(
                "--precision bf16 runs in the fused CPU kernels, which {KERNELS_ENV}=portable \
                 turns off"
            )),
            Precision::Bf16 => Ok(()),
        }
    }
}

thread_local! {
    static BF16: Cell<bool> = const { Cell::new(false) };
}

/// Runs `f` with the kernels' products in `precision` on this thread (the forward and
/// backward passes of a step or a scoring pass run on the calling thread); the previous state
/// comes back when `f` returns or unwinds, and an `F32` call inside a `Bf16` one runs f32.
/// `Bf16` on a CPU without AVX512-BF16 leaves the products f32 (callers check first with
/// [`Precision::check`]).
pub fn with_precision<T>(precision: Precision, f: impl FnOnce() -> T) -> T {
    crate::thread_flag::hold_while(&BF16, precision == Precision::Bf16, f)
}

/// Whether a kernel run here now takes bf16 products: inside
/// [`with_precision`]`(Precision::Bf16, …)` on a CPU that has them.
pub fn bf16_products_enabled() -> bool {
    BF16.with(Cell::get) && bf16::available()
}

/// The environment variable that forces the portable path for a whole process:
/// `XRAY_GAN_KERNELS=portable` (any other value, or none, keeps the fused CPU kernels).
pub const KERNELS_ENV: &str = "XRAY_GAN_KERNELS";

thread_local! {
    static PORTABLE: Cell<bool> = const { Cell::new(false) };
}

fn portable_by_environment() -> bool {
    static PORTABLE_ENV: OnceLock<bool> = OnceLock::new();
    *PORTABLE_ENV.get_or_init(|| match std::env::var(KERNELS_ENV) {
        Ok(value) if value.eq_ignore_ascii_case("portable") => {
            tracing::info!("{KERNELS_ENV}=portable: the fused CPU kernels are off");
            true
        }
        Ok(value) if !value.eq_ignore_ascii_case("fused") && !value.is_empty() => {
            tracing::warn!(
                "{KERNELS_ENV}={value:?} is neither `portable` nor `fused`: the fused CPU kernels stay on"
            );
            false
        }
        _ => false,
    })
}

/// Runs `f` with the fused CPU kernels off on this thread (every layer takes the path a GPU
/// takes); the previous state comes back when `f` returns or unwinds. Forward passes run on the
/// calling thread, so the whole of a training step or a scoring pass inside `f` is portable.
pub fn portable_kernels<T>(f: impl FnOnce() -> T) -> T {
    crate::thread_flag::set_while(&PORTABLE, f)
}

/// Whether the fused kernels are switched on here: not inside [`portable_kernels`] and not
/// turned off by [`KERNELS_ENV`].
pub fn fused_kernels_enabled() -> bool {
    !PORTABLE.with(Cell::get) && !portable_by_environment()
}

/// The one predicate every kernel's caller asks: all `tensors` are f32 on the CPU and the fused
/// kernels are switched on ([`fused_kernels_enabled`]).
pub fn fused_kernels_apply(tensors: &[&Tensor]) -> bool {
    tensors
        .iter()
        .all(|t| t.device().is_cpu() && t.dtype() == DType::F32)
        && fused_kernels_enabled()
}

#[cfg(test)]
mod tests {
    use super::{fused_kernels_apply, fused_kernels_enabled, portable_kernels};

    #[test]
    fn portable_kernels_nests_and_is_undone_on_return_and_on_panic() {
        let x = candle::Tensor::zeros(2, candle::DType::F32, &candle::Device::Cpu).unwrap();
        let f16 = x.to_dtype(candle::DType::F16).unwrap();
        assert!(fused_kernels_enabled() && fused_kernels_apply(&[&x]));
        assert!(
            !fused_kernels_apply(&[&x, &f16]),
            "an f16 tensor is not for the f32 kernels"
        );
        portable_kernels(|| {
            assert!(!fused_kernels_apply(&[&x]));
            portable_kernels(|| assert!(!fused_kernels_enabled()));
            assert!(
                !fused_kernels_enabled(),
                "an inner call must not switch them back on"
            );
        });
        assert!(fused_kernels_apply(&[&x]));
        let caught = std::panic::catch_unwind(|| portable_kernels(|| panic!("inside")));
        assert!(caught.is_err());
        assert!(
            fused_kernels_enabled(),
            "a panic inside must not leave them off"
        );
    }
}
