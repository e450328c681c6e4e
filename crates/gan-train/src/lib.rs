//! # gan-train: the training loop of xray-gan's detectors, the same for every detector
//!
//! - [`TrainConfig`] (written to `RUN/config.json` first) and [`train`], the epoch loop with
//!   progress, calibration error, sample sheets, `losses.csv` and atomic checkpoints; `--resume`
//!   continues exactly ([`TrainOptions`]). Each step is the detector's own
//!   ([`gan_models::Detector::train_step`]); nothing here names a detector.
//! - [`WeightAverage`]: the moving average of the weights that scoring uses.
//! - [`RunFolder`]: the files of a run.
//! - [`throughput`]: training/scoring images/s, GFLOP/s, peak memory and loader speed, for
//!   `cargo bench -p gan-train --bench throughput`.

mod config;
mod data;
mod ema;
mod error;
mod run_folder;
mod samples;
pub mod throughput;
mod trainer;

pub use config::{DataConfig, TrainConfig};
pub use data::{TRAIN_SPLIT, TrainingData, load_training_data, preprocess_of};
pub use ema::WeightAverage;
pub use error::{Result, TrainError};
pub use gan_models::{Adam, OptimiserConfig};
pub use run_folder::{LossRow, RunFolder, WhichWeights};
pub use samples::{sample_diversity, write_sample_sheet};
pub use trainer::{TrainOptions, TrainState, TrainSummary, Trainer, calibration_l1, train};
