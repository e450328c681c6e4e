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
