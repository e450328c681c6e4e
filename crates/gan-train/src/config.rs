//! The training configuration, written to `RUN/config.json` before the first step.

use std::collections::BTreeMap;
use std::path::PathBuf;

use gan_data::{Augmentation, DatasetFormat, Fit};
use gan_models::kernels::Precision;
use gan_models::{DetectorKind, ModelConfig, OptimiserConfig};
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

/// Everything that defines a training run.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
pub struct TrainConfig {
    /// The detector, by its registered name.
    pub kind: DetectorKind,
    pub model: ModelConfig,
    /// The detector's own settings (its loss weights, phases, …), every key written out: see
    /// `xray-gan detectors`. Missing keys take the detector's defaults.
    #[serde(default)]
    pub settings: serde_json::Value,
    pub data: DataConfig,
    pub optimiser: OptimiserConfig,
    pub batch_size: usize,
    /// Total epochs (a resumed run trains until this many are done).
    pub epochs: u64,
    pub seed: u64,
    /// Standard deviation of Gaussian noise added to discriminator image inputs at epoch 0,
    /// decaying linearly to 0 at `instance_noise_epochs`; 0 disables it.
    pub instance_noise: f64,
    pub instance_noise_epochs: u64,
    /// Decay of the moving average of the weights that scoring uses (`model.safetensors`,
    /// `best.safetensors`); 0 scores the last weights instead.
    #[serde(default = "default_weight_average")]
    pub weight_average: f64,
    /// The number format of the matrix products (convolutions, attention) of the training steps
    /// and of `score` and `predict`: `f32`, or `bf16` (bf16 operands, f32 sums, f32 weights;
    /// training needs a CPU with AVX512-BF16, scoring elsewhere falls back to f32). The epoch
    /// ends' monitoring (calibration error, samples) stays f32.
    #[serde(default)]
    pub precision: Precision,
    /// Version of the program that wrote this file.
    pub program_version: String,
    /// Keys this version does not know, kept when reading: a `config.json` written before
    /// detectors had their own settings has `reconstruction_weight` and `gan_epochs` here, which
    /// [`TrainConfig::upgraded`] moves into `settings`. Never written.
    #[serde(flatten, skip_serializing)]
    pub unknown: BTreeMap<String, serde_json::Value>,
}

/// Top-level keys that `config.json` had before detectors had their own settings: a detector
/// that kept one says where it went ([`gan_models::Register::LEGACY_KEYS`]); for the others it
/// meant nothing.
const FORMER_KEYS: [&str; 2] = ["reconstruction_weight", "gan_epochs"];

/// EGBAD's decay.
fn default_weight_average() -> f64 {
    0.999
}

impl TrainConfig {
    /// Seed-experiment defaults for `kind` on the data at `root`, with the detector's own
    /// settings and optimiser at its paper's values.
    pub fn new(kind: DetectorKind, root: PathBuf) -> Self {
        TrainConfig {
            kind,
            model: ModelConfig::default(),
            settings: kind.default_settings(),
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
            optimiser: kind.default_optimiser(),
            batch_size: 64,
            epochs: 20,
            seed: 0,
            instance_noise: 0.0,
            instance_noise_epochs: 10,
            weight_average: default_weight_average(),
            precision: Precision::F32,
            program_version: env!("CARGO_PKG_VERSION").to_string(),
            unknown: BTreeMap::new(),
        }
    }

    /// This configuration with the keys of an older `config.json` moved to the detector settings
    /// they became ([`gan_models::Register::LEGACY_KEYS`]), where the settings do not already
    /// hold them, so that resuming an old run trains as it did; other unknown keys are dropped
    /// with a warning.
    pub fn upgraded(mut self) -> TrainConfig {
        let unknown = std::mem::take(&mut self.unknown);
        if unknown.is_empty() {
            return self;
        }
        let mut settings = match std::mem::take(&mut self.settings) {
            serde_json::Value::Object(map) => map,
            _ => serde_json::Map::new(),
        };
        for (key, value) in unknown {
            let became = self
                .kind
                .registration()
                .legacy_keys
                .iter()
                .find(|(old, _)| *old == key);
            match became {
                Some((_, new)) if !value.is_null() && !settings.contains_key(*new) => {
                    tracing::info!("config.json from an older version: {key} is now --set {new}");
                    settings.insert(new.to_string(), value);
                }
                Some(_) => {}
                None if FORMER_KEYS.contains(&key.as_str()) => {}
                None => tracing::warn!("config.json: ignoring the unknown key {key:?}"),
            }
        }
        self.settings = serde_json::Value::Object(settings);
        self
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
        if !(self.instance_noise >= 0.0 && self.instance_noise.is_finite()) {
            return bad("instance noise must be a finite number ≥ 0".into());
        }
        self.kind.settings_for_run(&self.settings, self.epochs)?;
        Ok(())
    }

    /// The configuration a run writes to `config.json`: the detector's settings complete, with
    /// what depends on the run's length fixed (f-AnoGAN's phase boundary), so that resuming with
    /// more epochs keeps it.
    pub fn for_run(&self) -> Result<TrainConfig> {
        let mut fixed = self.clone();
        fixed.settings = self.kind.settings_for_run(&self.settings, self.epochs)?;
        Ok(fixed)
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

#[cfg(test)]
mod tests {
    use super::*;

    /// A `config.json` as versions before per-detector settings wrote it.
    fn old_config(kind: &str, extra: serde_json::Value) -> TrainConfig {
        let mut json = serde_json::to_value(TrainConfig::new(
            kind.parse().unwrap(),
            PathBuf::from("data"),
        ))
        .unwrap();
        let object = json.as_object_mut().unwrap();
        object.remove("settings");
        for (k, v) in extra.as_object().unwrap() {
            object.insert(k.clone(), v.clone());
        }
        serde_json::from_value(json).unwrap()
    }

    #[test]
    fn an_old_config_keeps_its_loss_weights_and_phases_as_detector_settings() {
        let alpha = old_config(
            "alpha-gan",
            serde_json::json!({"reconstruction_weight": 10.0, "gan_epochs": null}),
        )
        .upgraded();
        assert_eq!(alpha.settings["reconstruction_weight"], 10.0);
        assert!(alpha.unknown.is_empty());
        let ganomaly = old_config(
            "ganomaly",
            serde_json::json!({"reconstruction_weight": 40.0, "gan_epochs": null}),
        )
        .upgraded();
        assert_eq!(ganomaly.settings["contextual_weight"], 40.0);
        let complete = ganomaly.for_run().unwrap();
        assert_eq!(complete.settings["contextual_weight"], 40.0);
        assert_eq!(complete.settings["latent_weight"], 1.0);
        let f_anogan = old_config(
            "f-anogan",
            serde_json::json!({"reconstruction_weight": 0.01, "gan_epochs": 3}),
        )
        .upgraded();
        assert_eq!(f_anogan.settings["gan_epochs"], 3);
        assert!(f_anogan.settings.get("reconstruction_weight").is_none());
        // a configuration written now round-trips unchanged, nothing unknown in it
        let now = TrainConfig::new("bigan".parse().unwrap(), PathBuf::from("d"));
        let text = serde_json::to_string(&now).unwrap();
        let back: TrainConfig = serde_json::from_str(&text).unwrap();
        assert_eq!(back.clone().upgraded(), now);
        assert!(!text.contains("unknown"));
    }
}
