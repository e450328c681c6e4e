//! # gan-train: adversarial training of xray-gan's detectors
//!
//! - [`TrainConfig`] (written to `RUN/config.json` first) and [`train`], the epoch loop with
//!   progress, calibration error, sample sheets, `losses.csv` and atomic checkpoints; `--resume`
//!   continues exactly ([`TrainOptions`]).
//! - [`steps`]: one Alpha-GAN step (E, G, D, C, each from a fresh forward pass) and one BiGAN
//!   step (D, then joint G+E), on stable BCE-with-logits, with optional decaying instance noise.
//! - [`Adam`]: an optimiser whose moments and step are saved in checkpoints.
//! - [`RunFolder`]: the files of a run.
//! - [`throughput`]: training/scoring images/s, GFLOP/s, peak memory and loader speed, for
//!   `cargo bench -p gan-train --bench throughput`.

mod adam;
mod config;
mod data;
mod ema;
mod error;
mod run_folder;
mod samples;
pub mod steps;
pub mod throughput;
mod trainer;

pub use adam::Adam;
pub use config::{DataConfig, OptimiserConfig, TrainConfig};
pub use data::{TRAIN_SPLIT, TrainingData, load_training_data, preprocess_of};
pub use ema::WeightAverage;
pub use error::{Result, TrainError};
pub use run_folder::{LossRow, RunFolder, WhichWeights};
pub use samples::{sample_diversity, write_sample_sheet};
pub use trainer::{TrainOptions, TrainState, TrainSummary, Trainer, calibration_l1, train};
