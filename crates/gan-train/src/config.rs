//! The training configuration, written to `RUN/config.json` before the first step.

use std::path::PathBuf;

use gan_data::{Augmentation, DatasetFormat, Fit};
use gan_models::{ModelConfig, ModelKind};
use serde::{Deserialize, Serialize};

use crate::error::{Result, TrainError};

/// Where the images come from and how they are prepared.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
pub struct DataConfig {
    pub root: PathBuf,
    pub format: DatasetFormat,
    /// Normal class of an image folder.
    pub normal_class: Option<String>,
    /// MURA body parts (or folder classes) to use; empty = all.
    pub parts: Vec<String>,
    pub fit: Fit,
    /// Share of normal training studies held out as the normal validation ("calibration") split.
    pub calibration_fraction: f64,
    /// Fail on unreadable images instead of skipping them.
    pub strict: bool,
    /// Preprocessed-image cache; `None` disables it.
    pub cache_dir: Option<PathBuf>,
    pub augmentation: Augmentation,
}

/// Adam settings.
#[derive(Debug, Clone, Copy, PartialEq, Serialize, Deserialize)]
pub struct OptimiserConfig {
    pub learning_rate: f64,
    pub beta1: f64,
    pub beta2: f64,
    pub epsilon: f64,
}

impl Default for OptimiserConfig {
    /// The seed experiment: Adam, lr 1e-4, betas 0.5/0.999.
    fn default() -> Self {
        OptimiserConfig {
            learning_rate: 1e-4,
            beta1: 0.5,
            beta2: 0.999,
            epsilon: 1e-8,
        }
    }
}

/// Everything that defines a training run.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
pub struct TrainConfig {
    pub kind: ModelKind,
    pub model: ModelConfig,
    pub data: DataConfig,
    pub optimiser: OptimiserConfig,
    pub batch_size: usize,
    /// Total epochs (a resumed run trains until this many are done).
    pub epochs: u64,
    pub seed: u64,
    /// Weight of the L1 reconstruction terms: Alpha-GAN's λ, GANomaly's contextual weight.
    pub reconstruction_weight: f64,
    /// f-AnoGAN: how many epochs, the first ones, train the WGAN-GP; the epochs after them train
    /// the encoder with G and the critic frozen. Unset: half of the epochs, fixed in
    /// `config.json` when the run starts (so that resuming with more epochs keeps the phases).
    #[serde(default)]
    pub gan_epochs: Option<u64>,
    /// Standard deviation of Gaussian noise added to discriminator image inputs at epoch 0,
    /// decaying linearly to 0 at `instance_noise_epochs`; 0 disables it.
    pub instance_noise: f64,
    pub instance_noise_epochs: u64,
    /// Decay of the moving average of the weights that scoring uses (`model.safetensors`,
    /// `best.safetensors`); 0 scores the last weights instead.
    #[serde(default = "default_weight_average")]
    pub weight_average: f64,
    /// Version of the program that wrote this file.
    pub program_version: String,
}

/// EGBAD's decay.
fn default_weight_average() -> f64 {
    0.999
}

impl TrainConfig {
    /// Seed-experiment defaults for `kind` on the data at `root`.
    pub fn new(kind: ModelKind, root: PathBuf) -> Self {
        TrainConfig {
            kind,
            model: ModelConfig::default(),
            data: DataConfig {
                root,
                format: DatasetFormat::Auto,
                normal_class: None,
                parts: Vec::new(),
                fit: Fit::CentreCrop,
                calibration_fraction: 0.1,
                strict: false,
                cache_dir: None,
                augmentation: Augmentation::default(),
            },
            optimiser: match kind {
                // WGAN-GP's: Adam lr 1e-4, betas 0 / 0.9
                ModelKind::FAnogan => OptimiserConfig {
                    beta1: 0.0,
                    beta2: 0.9,
                    ..OptimiserConfig::default()
                },
                // GANomaly's: lr 2e-4
                ModelKind::Ganomaly => OptimiserConfig {
                    learning_rate: 2e-4,
                    ..OptimiserConfig::default()
                },
                _ => OptimiserConfig::default(),
            },
            batch_size: 64,
            epochs: 20,
            seed: 0,
            reconstruction_weight: match kind {
                ModelKind::Ganomaly => 50.0,
                _ => 0.01,
            },
            gan_epochs: None,
            instance_noise: 0.0,
            instance_noise_epochs: 10,
            weight_average: default_weight_average(),
            program_version: env!("CARGO_PKG_VERSION").to_string(),
        }
    }

    pub fn validate(&self) -> Result<()> {
        self.model.validate()?;
        let bad = |m: String| Err(TrainError::Config(m));
        if self.batch_size == 0 {
            return bad("batch size must be at least 1".into());
        }
        if !(self.optimiser.learning_rate > 0.0 && self.optimiser.learning_rate.is_finite()) {
            return bad(format!(
                "learning rate must be positive, got {}",
                self.optimiser.learning_rate
            ));
        }
        if !(0.0..1.0).contains(&self.optimiser.beta1)
            || !(0.0..1.0).contains(&self.optimiser.beta2)
        {
            return bad("Adam betas must be in [0, 1)".into());
        }
        if !(0.0..0.9).contains(&self.data.calibration_fraction) {
            return bad(format!(
                "calibration fraction must be in [0, 0.9), got {}",
                self.data.calibration_fraction
            ));
        }
        if !(0.0..1.0).contains(&self.weight_average) {
            return bad(format!(
                "weight-average decay must be in [0, 1), got {}",
                self.weight_average
            ));
        }
        if self.instance_noise < 0.0 || self.reconstruction_weight < 0.0 {
            return bad("instance noise and reconstruction weight cannot be negative".into());
        }
        Ok(())
    }

    /// f-AnoGAN: epochs of the GAN phase.
    pub fn gan_epochs(&self) -> u64 {
        self.gan_epochs.unwrap_or(self.epochs / 2)
    }

    /// The configuration a run writes to `config.json`: f-AnoGAN's phase boundary fixed, so that
    /// resuming with more epochs keeps it.
    pub fn with_phases_fixed(&self) -> TrainConfig {
        let mut fixed = self.clone();
        if fixed.kind == ModelKind::FAnogan && fixed.gan_epochs.is_none() {
            fixed.gan_epochs = Some(fixed.gan_epochs());
        }
        fixed
    }

    /// f-AnoGAN: whether `epoch` trains the encoder (else the GAN).
    pub fn in_encoder_phase(&self, epoch: u64) -> bool {
        epoch >= self.gan_epochs()
    }

    /// Instance-noise standard deviation during `epoch`.
    pub fn noise_at(&self, epoch: u64) -> f64 {
        if self.instance_noise_epochs == 0 {
            return 0.0;
        }
        let left = 1.0 - epoch as f64 / self.instance_noise_epochs as f64;
        self.instance_noise * left.max(0.0)
    }
}
