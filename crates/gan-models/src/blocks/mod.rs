//! Building blocks: spectrally normalised convolutions, self-attention.

mod attention;
mod conv;
mod softmax;

pub use attention::SelfAttention;
pub use conv::{Conv, ConvSpec, SpectralNorm, WEIGHT_INIT, linear, per_item_mean};
pub use softmax::softmax_last_dim;
