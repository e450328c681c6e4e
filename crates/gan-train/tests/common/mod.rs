//! Shared by the training tests: a small synthetic MURA set, a tiny model and its weights.
#![allow(dead_code)] // each test binary uses its own subset

use std::path::Path;

use candle::Device;
use gan_data::synth::{SynthConfig, write_synthetic_mura};
use gan_models::{Detector, DetectorKind, ModelConfig, read_checkpoint};
use gan_train::TrainConfig;

/// 32×32, width 8, latent 16: a few steps take seconds.
pub fn tiny_model() -> ModelConfig {
    ModelConfig {
        image_size: 32,
        width: 8,
        latent: 16,
        ..ModelConfig::default()
    }
}

/// Forearm and humerus, 24 studies each, 64 px, drawn with `seed`.
pub fn dataset(seed: u64) -> tempfile::TempDir {
    let dir = tempfile::tempdir().unwrap();
    let config = SynthConfig {
        seed,
        studies_per_part: 24,
        parts: vec!["forearm".into(), "humerus".into()],
        size: 64,
        ..Default::default()
    };
    write_synthetic_mura(dir.path(), &config, false).unwrap();
    dir
}

/// The registered detector called `name`.
pub fn kind(name: &str) -> DetectorKind {
    name.parse().unwrap()
}

/// The tiny model on `root` for `epochs`, batch 8, a fifth of the normal images held out.
pub fn config(kind: DetectorKind, root: &Path, epochs: u64, seed: u64) -> TrainConfig {
    let mut c = TrainConfig::new(kind, root.to_path_buf());
    c.model = tiny_model();
    c.batch_size = 8;
    c.epochs = epochs;
    c.seed = seed;
    c.data.calibration_fraction = 0.2;
    c
}

/// Every variable of every player, by name, flattened.
pub fn weights(model: &dyn Detector) -> Vec<(String, Vec<f32>)> {
    model
        .players()
        .iter()
        .flat_map(|p| p.named_vars())
        .map(|(n, v)| (n, v.flatten_all().unwrap().to_vec1().unwrap()))
        .collect()
}

fn checkpoint_model(path: &Path) -> Box<dyn Detector> {
    read_checkpoint(path, &Device::Cpu)
        .unwrap()
        .detector(&Device::Cpu)
        .unwrap()
}

/// [`weights`] of the model in a checkpoint file.
pub fn checkpoint_weights(path: &Path) -> Vec<(String, Vec<f32>)> {
    weights(checkpoint_model(path).as_ref())
}

/// Every variable of the player `player` in a checkpoint file, flattened.
pub fn player_weights(path: &Path, player: &str) -> Vec<Vec<f32>> {
    checkpoint_model(path)
        .players()
        .iter()
        .filter(|p| p.name == player)
        .flat_map(|p| p.named_vars())
        .map(|(_, v)| v.flatten_all().unwrap().to_vec1().unwrap())
        .collect()
}

/// The first `n` images of a set as a `(n, 1, S, S)` batch.
pub fn first_images(images: &gan_data::ImageSet, n: usize) -> candle::Tensor {
    let s = images.image_size();
    let pixels: Vec<f32> = (0..n).flat_map(|i| images.image(i)).collect();
    candle::Tensor::from_vec(pixels, (n, 1, s, s), &Device::Cpu).unwrap()
}

/// A tiny run trained by [`train_and_measure_calibration_l1`].
pub struct MeasuredRun {
    /// The synthetic data (kept while the run may resume).
    pub data: tempfile::TempDir,
    pub config: TrainConfig,
    pub images: gan_train::TrainingData,
    /// Normal-validation L1 of the initial weights and of the best epoch.
    pub before: f64,
    pub after: f64,
}

/// Trains `kind` on a fresh synthetic set for `epochs` into `run` (lr 1e-3, no augmentation, the
/// last weights rather than their slow moving average), measuring its normal-validation L1
/// before and after.
pub fn train_and_measure_calibration_l1(
    kind: DetectorKind,
    epochs: u64,
    run: &Path,
) -> MeasuredRun {
    let data = dataset(6);
    let mut config = config(kind, data.path(), epochs, 3);
    config.optimiser.learning_rate = 1e-3;
    config.weight_average = 0.0;
    config.data.augmentation = gan_data::Augmentation::none();
    let images = gan_train::load_training_data(&config, false).unwrap();
    let trainer = gan_train::Trainer::new(&config, &Device::Cpu).unwrap();
    let before =
        gan_train::calibration_l1(trainer.model.as_ref(), &images.calibration, 8, &Device::Cpu)
            .unwrap();
    let summary = gan_train::train(&config, run, &Device::Cpu, &Default::default()).unwrap();
    MeasuredRun {
        data,
        config,
        images,
        before,
        after: summary.best_calibration_l1.unwrap(),
    }
}

/// A batch of `b` 32×32 images with smooth structure and noise, drawn from `seed` (the detector
/// fixture's and the portable-path comparison's input).
pub fn ridge_images(b: usize, seed: u64) -> candle::Tensor {
    use rand::{Rng, SeedableRng};
    let mut rng = rand::rngs::StdRng::seed_from_u64(seed);
    let values: Vec<f32> = (0..b * 32 * 32)
        .map(|i| {
            let (r, c) = ((i / 32) % 32, i % 32);
            let ridge = ((r as f32 / 5.0).sin() * (c as f32 / 7.0).cos()) * 0.6;
            (ridge + rng.random_range(-0.3f32..0.3)).clamp(-1.0, 1.0)
        })
        .collect();
    candle::Tensor::from_vec(values, (b, 1, 32, 32), &Device::Cpu).unwrap()
}
