//! Building blocks: spectrally normalised convolutions (as gemm on the CPU), self-attention.

pub mod activation;
mod attention;
pub mod attention_kernel;
mod conv;
mod cpu;
mod frozen;
pub mod gemm_conv;
mod softmax;

pub use activation::{BatchNormRelu, bias_leaky_relu};
pub use attention::SelfAttention;
pub use conv::{Conv, ConvSpec, SpectralNorm, WEIGHT_INIT, linear, per_item_mean};
pub use frozen::{frozen, is_frozen};
pub use softmax::softmax_last_dim;
