//! # gan-models: xray-gan's detectors on candle
//!
//! - [`Detector`]: what the training loop, scoring and the CLI know of a detector; each detector
//!   is one folder under [`detectors`] (networks, settings, statistics, training step and losses)
//!   and one line in [`REGISTRY`]. [`DetectorKind`] is a registered name.
//! - [`ModelConfig`] (serde, `Default` = the seed experiment at 64×64): the network shapes.
//! - Blocks ([`blocks`]): spectrally normalised convolutions, self-attention, BatchNorm + ReLU;
//!   on the CPU they run the hand-written f32 kernels of [`kernels`].
//! - Networks detectors share ([`networks`]): [`Encoder`], [`Generator`], [`Discriminator`]
//!   around a conv trunk, one [`Player`] (VarMap) per network.
//! - Statistics ([`Statistic`], [`ScoreBatch`]): an open set of per-image anomaly statistics and
//!   the reconstruction statistics detectors share ([`statistics`]).
//! - Training pieces: [`Adam`] with saveable moments, [`training`] (term-by-term backward,
//!   instance noise), [`loss`] on logits, numerically stable.
//! - Checkpoints ([`save_checkpoint`], [`read_checkpoint`]): safetensors with the detector, its
//!   config and settings in metadata.
//! - [`flops`]: counting the FLOPs of forward passes for throughput reports.
//! - [`select_device`] for `auto|cpu|cuda[:N]`.

pub mod blocks;
mod checkpoint;
mod config;
mod detector;
pub mod detectors;
mod device;
mod error;
pub mod flops;
pub mod kernels;
pub mod loss;
pub mod networks;
mod optim;
mod player;
mod registry;
pub mod statistics;
mod thread_flag;
pub mod training;

pub use checkpoint::{
    Checkpoint, FORMAT, read_checkpoint, read_checkpoint_metadata, save_checkpoint,
};
pub use config::ModelConfig;
pub use detector::{
    DRAW_EPSILON, DRAW_NOISE, DRAW_Z, Detector, FUSED, FUSED_TWO_SIDED, Passes, Settings,
    StepContext, StepLosses, normal_tensor, passes,
};
pub use device::{device_name, resolve_device, select_device};
pub use error::{ModelError, Result};
pub use networks::{Discriminator, Encoder, Generator};
pub use optim::{Adam, OptimiserConfig};
pub use player::{Player, is_copied_not_averaged, is_trainable};
pub use registry::{DetectorKind, REGISTRY, Register, Registration, registration};
pub use statistics::{ScoreBatch, Statistic};
