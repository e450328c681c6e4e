//! Building blocks: spectrally normalised convolutions, self-attention, BatchNorm + ReLU, and
//! `frozen` passes. On the CPU (f32) they run the kernels of [`crate::kernels`].

mod attention;
mod batch_norm;
mod conv;
mod frozen;

pub use attention::SelfAttention;
pub use batch_norm::BatchNormRelu;
pub use conv::{Conv, ConvSpec, SpectralNorm, WEIGHT_INIT, linear, per_item_mean};
pub use frozen::{frozen, is_frozen};
