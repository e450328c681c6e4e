//! The run folder: `config.json`, `losses.csv`, `samples/epoch-NNNN.png`, `checkpoints/`
//! (`epoch-NNNN.safetensors` per epoch and `latest.safetensors`, both with optimiser and RNG
//! state), `model.safetensors` (latest weights) and `best.safetensors` (lowest reconstruction
//! error on normal validation images). Every file is written atomically.

use std::fs;
use std::path::{Path, PathBuf};

use serde::{Deserialize, Serialize};

use crate::config::TrainConfig;
use crate::error::{Result, TrainError};

/// One row of `losses.csv`: an epoch's mean losses and measurements.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
pub struct LossRow {
    pub epoch: u64,
    /// Optimiser steps done at the end of the epoch.
    pub step: u64,
    /// (player, mean loss over the epoch's steps).
    pub losses: Vec<(String, f64)>,
    /// The detector's mean validation error on the normal validation split (the L1 of x − x̂
    /// for the reconstructing detectors; NaN when the split is empty).
    #[serde(with = "nan_as_null")]
    pub calibration_l1: f64,
    /// Mean pairwise L1 between G(z) samples of a fixed z, relative to the same for real images
    /// (NaN for a detector that does not generate).
    #[serde(with = "nan_as_null")]
    pub sample_diversity: f64,
    pub images_per_second: f64,
}

/// An `f64` that may be NaN, as JSON: NaN is written as `null` (serde_json's own choice) and
/// read back from it, so a training state holding one still loads on resume.
mod nan_as_null {
    use serde::{Deserialize, Deserializer, Serializer};

    pub fn serialize<S: Serializer>(value: &f64, serializer: S) -> Result<S::Ok, S::Error> {
        if value.is_finite() {
            serializer.serialize_f64(*value)
        } else {
            serializer.serialize_none()
        }
    }

    pub fn deserialize<'de, D: Deserializer<'de>>(deserializer: D) -> Result<f64, D::Error> {
        Ok(Option::<f64>::deserialize(deserializer)?.unwrap_or(f64::NAN))
    }
}

/// Paths of a run folder.
#[derive(Debug, Clone)]
pub struct RunFolder {
    pub root: PathBuf,
}

impl RunFolder {
    pub fn new(root: &Path) -> Self {
        RunFolder {
            root: root.to_path_buf(),
        }
    }
    pub fn config(&self) -> PathBuf {
        self.root.join("config.json")
    }
    pub fn losses(&self) -> PathBuf {
        self.root.join("losses.csv")
    }
    pub fn model(&self) -> PathBuf {
        self.root.join("model.safetensors")
    }
    pub fn best(&self) -> PathBuf {
        self.root.join("best.safetensors")
    }
    pub fn checkpoints(&self) -> PathBuf {
        self.root.join("checkpoints")
    }
    pub fn latest_checkpoint(&self) -> PathBuf {
        self.checkpoints().join("latest.safetensors")
    }
    pub fn epoch_checkpoint(&self, epoch: u64) -> PathBuf {
        self.checkpoints()
            .join(format!("epoch-{epoch:04}.safetensors"))
    }
    pub fn samples(&self) -> PathBuf {
        self.root.join("samples")
    }
    pub fn sample_sheet(&self, epoch: u64) -> PathBuf {
        self.samples().join(format!("epoch-{epoch:04}.png"))
    }

    /// Creates the folders; a folder that cannot be created is an error naming it.
    pub fn create(&self) -> Result<()> {
        for dir in [self.root.clone(), self.checkpoints(), self.samples()] {
            fs::create_dir_all(&dir).map_err(|e| TrainError::io(&dir, e))?;
        }
        Ok(())
    }

    /// Removes temporary files that a killed run left in the run folder, its checkpoints and
    /// samples (every file here is written by [`gan_data::write_atomically`]); returns how many.
    /// A run folder is one run's: two runs writing to the same folder are not supported anyway.
    pub fn remove_stale_temporaries(&self) -> usize {
        [self.root.clone(), self.checkpoints(), self.samples()]
            .iter()
            .map(|dir| gan_data::remove_stale_temporaries(dir))
            .sum()
    }

    pub fn write_config(&self, config: &TrainConfig) -> Result<()> {
        let json = serde_json::to_vec_pretty(config).map_err(|e| TrainError::Run {
            path: self.config(),
            message: e.to_string(),
        })?;
        gan_data::write_atomically(&self.config(), &json)?;
        Ok(())
    }

    pub fn read_config(&self) -> Result<TrainConfig> {
        let path = self.config();
        let bytes = fs::read(&path).map_err(|e| TrainError::io(&path, e))?;
        let config: TrainConfig = serde_json::from_slice(&bytes).map_err(|e| TrainError::Run {
            path: path.clone(),
            message: format!("not a valid run configuration: {e}"),
        })?;
        let config = config.upgraded();
        // settings edited by hand are checked here, naming the file
        if let Err(e) = config
            .kind
            .settings_for_run(&config.settings, config.epochs)
        {
            return Err(TrainError::Run {
                path,
                message: e.to_string(),
            });
        }
        Ok(config)
    }

    /// Rewrites `losses.csv` from all rows so far (atomically, so it always matches a checkpoint).
    pub fn write_losses(&self, rows: &[LossRow]) -> Result<()> {
        let mut text = String::from("epoch,step");
        if let Some(first) = rows.first() {
            for (player, _) in &first.losses {
                text.push_str(&format!(",{player}_loss"));
            }
        }
        text.push_str(",calibration_l1,sample_diversity,images_per_s\n");
        let number = |v: f64| {
            if v.is_finite() {
                format!("{v}")
            } else {
                String::new()
            }
        };
        for row in rows {
            text.push_str(&format!("{},{}", row.epoch, row.step));
            for (_, loss) in &row.losses {
                text.push_str(&format!(",{}", number(*loss)));
            }
            text.push_str(&format!(
                ",{},{},{:.2}\n",
                number(row.calibration_l1),
                number(row.sample_diversity),
                row.images_per_second
            ));
        }
        gan_data::write_atomically(&self.losses(), text.as_bytes())?;
        Ok(())
    }
}

/// Which weights of a run to use.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum WhichWeights {
    /// `best.safetensors` (lowest normal-validation reconstruction error), else the latest.
    Best,
    Latest,
}

impl RunFolder {
    /// The run's configuration and model, loaded from the chosen weights.
    pub fn load_model(
        &self,
        which: WhichWeights,
        device: &candle::Device,
    ) -> Result<(TrainConfig, Box<dyn gan_models::Detector>, PathBuf)> {
        let config = self.read_config()?;
        let path = match which {
            WhichWeights::Best if self.best().is_file() => self.best(),
            _ => self.model(),
        };
        if !path.is_file() {
            return Err(TrainError::Run {
                path: self.root.clone(),
                message: "holds no trained weights yet (model.safetensors is missing): train first"
                    .into(),
            });
        }
        let checkpoint = gan_models::read_checkpoint(&path, device)?;
        let model = checkpoint.detector(device)?;
        Ok((config, model, path))
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn a_loss_row_without_validation_error_or_samples_survives_a_round_trip() {
        let row = LossRow {
            epoch: 3,
            step: 40,
            losses: vec![("encoder".into(), 0.5)],
            calibration_l1: f64::NAN,
            sample_diversity: f64::NAN,
            images_per_second: 12.0,
        };
        let json = serde_json::to_string(&row).unwrap();
        assert!(json.contains("\"calibration_l1\":null"), "{json}");
        let back: LossRow = serde_json::from_str(&json).unwrap();
        assert!(back.calibration_l1.is_nan() && back.sample_diversity.is_nan());
        assert_eq!((back.epoch, &back.losses), (3, &row.losses));
        let finite = LossRow {
            calibration_l1: 0.25,
            sample_diversity: 0.75,
            ..back
        };
        let again: LossRow =
            serde_json::from_str(&serde_json::to_string(&finite).unwrap()).unwrap();
        assert_eq!(again, finite);
    }
}
