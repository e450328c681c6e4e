//! The detectors, one folder each: its networks and players, settings and statistics (`mod.rs`,
//! networks only it uses in `networks.rs`), and its losses and training step (`step.rs`). A new
//! detector is a new folder, its `pub mod` line and its line in [`REGISTRY`].

use crate::registry::{Registration, registration};

pub mod alpha_gan;
pub mod autoencoder;
pub mod autoencoder_u;
pub mod bigan;
pub mod f_anogan;
pub mod ganomaly;
pub mod squid;

/// Every detector xray-gan knows, in the order listings show them.
pub static REGISTRY: &[Registration] = &[
    registration::<alpha_gan::AlphaGan>(),
    registration::<bigan::BiGan>(),
    registration::<ganomaly::Ganomaly>(),
    registration::<f_anogan::FAnogan>(),
    registration::<autoencoder::Autoencoder>(),
    registration::<squid::Squid>(),
    registration::<autoencoder_u::AutoencoderU>(),
];
