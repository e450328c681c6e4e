//! The hand-written CPU kernels (f32), apart from the layers that call them: each is a candle
//! custom op with its own backward pass, used by a layer in [`crate::blocks`] when its tensors
//! are f32 on the CPU; on other devices and dtypes the layer composes candle's own ops, which is
//! also the reference the kernels are tested against (`tests/cpu_kernels.rs`).
//!
//! - [`gemm_conv`]: convolutions and transposed convolutions as im2col/col2im + one gemm, one
//!   graph node each, the column matrix recomputed in the backward pass.
//! - [`activation`]: bias + LeakyReLU (the trunk) and training-mode BatchNorm + ReLU (the
//!   generator), keeping only input and output in the graph.
//! - [`attention`]: self-attention over positions, recomputed in the backward pass.
//! - [`softmax`]: softmax over the last dimension with its backward.
//! - `cpu`: their shared pieces (f32 storage access, the vectorised softmax row and dot, AVX2
//!   dispatch).

pub mod activation;
pub mod attention;
mod cpu;
pub mod gemm_conv;
pub mod softmax;

pub use activation::{BatchStatistics, batch_norm_relu, bias_leaky_relu};
pub use softmax::softmax_last_dim;
