//! # gan-models: the networks of xray-gan on candle
//!
//! - [`ModelConfig`] (serde, `Default` = the seed experiment at 64×64) and [`ModelKind`].
//! - Blocks ([`blocks`]): spectrally normalised convolutions, self-attention.
//! - Networks ([`networks`]): [`Encoder`], [`Generator`], [`Discriminator`],
//!   [`JointDiscriminator`], [`CodeDiscriminator`] around a shared conv trunk.
//! - Bundles [`AlphaGan`], [`BiGan`], [`Ganomaly`] and [`FAnogan`], one [`Player`] (VarMap) per
//!   network, behind [`GanModel`].
//! - Scoring ([`Statistic`], [`ScoreBatch`]): each model's statistics and the residual map.
//! - Checkpoints ([`save_checkpoint`], [`read_checkpoint`]): safetensors with the config in metadata.
//! - [`flops`]: counting the FLOPs of forward passes for throughput reports.
//! - With the default `jemalloc` feature, jemalloc is the global allocator of every program that
//!   links this crate, configured to keep freed pages (a tensor allocation then costs no page
//!   faults).
//! - Losses ([`loss`]) on logits, numerically stable; [`select_device`] for `auto|cpu|cuda[:N]`.

#[cfg(all(feature = "jemalloc", not(target_env = "msvc")))]
mod allocator;
pub mod alpha_gan;
pub mod bigan;
pub mod blocks;
mod checkpoint;
mod config;
mod device;
mod error;
pub mod f_anogan;
pub mod flops;
pub mod ganomaly;
pub mod loss;
mod model;
pub mod networks;
mod player;
mod score;

pub use alpha_gan::AlphaGan;
pub use bigan::BiGan;
pub use checkpoint::{Checkpoint, FORMAT, read_checkpoint, save_checkpoint};
pub use config::{ModelConfig, ModelKind};
pub use device::{device_name, select_device};
pub use error::{ModelError, Result};
pub use f_anogan::FAnogan;
pub use ganomaly::{Ganomaly, GanomalyPass};
pub use model::GanModel;
pub use networks::{CodeDiscriminator, Discriminator, Encoder, Generator, JointDiscriminator};
pub use player::{Player, is_trainable};
pub use score::{ScoreBatch, Statistic};
