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
mod cpu;
pub mod gemm_conv;
pub mod softmax;

pub use activation::{BatchStatistics, batch_norm_relu, batch_norm_relu_eval, bias_leaky_relu};
pub use softmax::softmax_last_dim;

use std::cell::Cell;
use std::sync::OnceLock;

use candle::{DType, Tensor};

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
