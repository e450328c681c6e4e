//! The images a run trains on: normal training images of the chosen parts, minus a held-out
//! normal validation ("calibration") split. Abnormal labels are never looked at beyond filtering
//! them out.

use gan_data::{
    DatasetSpec, ImageSet, Label, LoadOptions, Preprocess, hold_out_calibration, load_images,
    open_dataset,
};

use crate::config::TrainConfig;
use crate::error::{Result, TrainError};

/// Training and calibration images of a run.
pub struct TrainingData {
    pub train: ImageSet,
    pub calibration: ImageSet,
}

/// The preprocessing a run uses (also what scoring must use).
pub fn preprocess_of(config: &TrainConfig) -> Preprocess {
    Preprocess {
        size: config.model.image_size as u32,
        fit: config.data.fit,
        ..Preprocess::default()
    }
}

/// The name of the training split: `train` for MURA and for folders that have one.
pub const TRAIN_SPLIT: &str = "train";

/// Loads the normal training images and splits off the calibration set.
pub fn load_training_data(config: &TrainConfig, progress: bool) -> Result<TrainingData> {
    let spec = DatasetSpec {
        format: config.data.format,
        normal_class: config.data.normal_class.clone(),
    };
    let table = open_dataset(&config.data.root, &spec)?;
    let splits = table.splits();
    let table = table
        .split(TRAIN_SPLIT)
        .groups(&config.data.parts)
        .label(Label::Normal);
    if table.is_empty() {
        return Err(TrainError::Config(format!(
            "{}: no normal images in split `{TRAIN_SPLIT}` for parts {:?} (splits found: {})",
            config.data.root.display(),
            config.data.parts,
            splits.join(", ")
        )));
    }
    let options = LoadOptions {
        preprocess: preprocess_of(config),
        cache_dir: config.data.cache_dir.clone(),
        strict: config.data.strict,
        progress,
    };
    let images = load_images(&table.samples, &options)?;
    let (train_idx, calib_idx) = hold_out_calibration(
        &images.samples,
        config.data.calibration_fraction,
        config.seed,
    );
    if train_idx.len() < config.batch_size {
        return Err(TrainError::Config(format!(
            "only {} training images after holding out calibration images, fewer than one batch of {}",
            train_idx.len(),
            config.batch_size
        )));
    }
    Ok(TrainingData {
        train: images.select(&train_idx),
        calibration: images.select(&calib_idx),
    })
}
