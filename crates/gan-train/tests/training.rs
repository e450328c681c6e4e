//! Training loops on a small synthetic set at 32×32, width 8: Alpha-GAN learns to reconstruct,
//! BiGAN stays finite and moves, a resumed run equals an uninterrupted one, a NaN stops the run and
//! keeps the last good checkpoint.

use std::path::{Path, PathBuf};
use std::sync::Arc;
use std::sync::atomic::AtomicBool;

use candle::{Device, Tensor};
use gan_data::Augmentation;
use gan_models::{DetectorKind, read_checkpoint};
use gan_train::{
    TrainConfig, TrainError, TrainOptions, Trainer, calibration_l1, load_training_data, train,
};

mod common;
use common::{checkpoint_weights, kind, weights};

fn dataset() -> tempfile::TempDir {
    common::dataset(2)
}

fn config(kind: DetectorKind, root: &Path, epochs: u64) -> TrainConfig {
    let mut c = common::config(kind, root, epochs, 7);
    c.optimiser.learning_rate = 1e-3;
    c.data.augmentation = Augmentation::default();
    c
}

/// losses.csv without the images/s column (timing differs between runs).
fn loss_rows(run: &Path) -> Vec<String> {
    std::fs::read_to_string(run.join("losses.csv"))
        .unwrap()
        .lines()
        .map(|l| l.rsplit_once(',').unwrap().0.to_string())
        .collect()
}

/// Alpha-GAN on `root` for `epochs`, reconstruction-dominated (λ = 10, so that a few dozen steps
/// show whether its gradients flow), and its untrained calibration L1.
fn reconstructing_alpha_gan(root: &Path, epochs: u64) -> (TrainConfig, f64) {
    let mut c = config(kind("alpha-gan"), root, epochs);
    c.settings = c
        .kind
        .with_assignments(&c.settings, &["reconstruction_weight=10".into()])
        .unwrap();
    let images = load_training_data(&c, false).unwrap();
    let before = calibration_l1(
        Trainer::new(&c, &Device::Cpu).unwrap().model.as_ref(),
        &images.calibration,
        8,
        &Device::Cpu,
    )
    .unwrap();
    (c, before)
}

#[test]
fn alpha_gan_lowers_the_reconstruction_error() {
    let data = dataset();
    let run = tempfile::tempdir().unwrap();
    let (c, before) = reconstructing_alpha_gan(data.path(), 8);
    let summary = train(&c, run.path(), &Device::Cpu, &TrainOptions::default()).unwrap();
    assert!(summary.steps >= 24, "a few dozen steps: {}", summary.steps);
    let after = summary.last_row.unwrap().calibration_l1;
    eprintln!(
        "{}",
        std::fs::read_to_string(run.path().join("losses.csv")).unwrap()
    );
    assert!(after < 0.75 * before, "calibration L1 {before} → {after}");
    // every output of the run folder is there
    for f in [
        "config.json",
        "losses.csv",
        "model.safetensors",
        "best.safetensors",
        "checkpoints/latest.safetensors",
        "checkpoints/epoch-0007.safetensors",
        "samples/epoch-0007.png",
    ] {
        assert!(run.path().join(f).is_file(), "{f}");
    }
    let csv = std::fs::read_to_string(run.path().join("losses.csv")).unwrap();
    assert!(csv.starts_with("epoch,step,encoder_loss,generator_loss,discriminator_loss,code_discriminator_loss,calibration_l1,sample_diversity,images_per_s\n"), "{csv}");
    assert_eq!(csv.lines().count(), 9);
    let sheet = image::open(run.path().join("samples/epoch-0000.png")).unwrap();
    assert_eq!(sheet.height(), 3 * 34 + 2);
}

/// With bf16 products (where the CPU has them) Alpha-GAN, self-attention included, learns to
/// reconstruct as the f32 run does, on a different path (its losses differ), and `config.json`
/// records the precision for `--resume`.
#[test]
fn bf16_training_lowers_the_reconstruction_error_as_f32_does() {
    use gan_models::kernels::{Precision, bf16};
    if !bf16::available() {
        let c = config(kind("alpha-gan"), Path::new("unused"), 1);
        let c = TrainConfig {
            precision: Precision::Bf16,
            ..c
        };
        let refused = Trainer::new(&c, &Device::Cpu).err().map(|e| e.to_string());
        assert!(refused.is_some_and(|e| e.contains("AVX512-BF16")));
        return;
    }
    let data = dataset();
    let (c, before) = reconstructing_alpha_gan(data.path(), 5);
    let mut after = Vec::new();
    let mut rows = Vec::new();
    for precision in [Precision::F32, Precision::Bf16] {
        let run = tempfile::tempdir().unwrap();
        let c = TrainConfig {
            precision,
            ..c.clone()
        };
        let summary = train(&c, run.path(), &Device::Cpu, &TrainOptions::default()).unwrap();
        after.push(summary.last_row.unwrap().calibration_l1);
        rows.push(loss_rows(run.path()));
        let written = gan_train::RunFolder::new(run.path()).read_config().unwrap();
        assert_eq!(written.precision, precision);
    }
    eprintln!(
        "calibration L1 {before} → f32 {} / bf16 {}",
        after[0], after[1]
    );
    assert!(
        after[1] < 0.8 * before,
        "bf16: calibration L1 {before} → {}",
        after[1]
    );
    assert!(
        (after[1] - after[0]).abs() < 0.15 * after[0],
        "bf16 {} against f32 {}",
        after[1],
        after[0]
    );
    assert_ne!(rows[0], rows[1], "the bf16 run took the f32 path");
}

#[test]
fn bigan_losses_stay_finite_and_its_encoder_and_generator_change() {
    let data = dataset();
    let run = tempfile::tempdir().unwrap();
    let mut c = config(kind("bigan"), data.path(), 3);
    c.instance_noise = 0.1;
    let initial = weights(Trainer::new(&c, &Device::Cpu).unwrap().model.as_ref());
    let summary = train(&c, run.path(), &Device::Cpu, &TrainOptions::default()).unwrap();
    let row = summary.last_row.unwrap();
    assert!(
        row.losses.iter().all(|(_, v)| v.is_finite()),
        "{:?}",
        row.losses
    );
    assert_eq!(
        row.losses
            .iter()
            .map(|(p, _)| p.as_str())
            .collect::<Vec<_>>(),
        vec!["discriminator", "encoder_generator"]
    );
    let trained = checkpoint_weights(&run.path().join("model.safetensors"));
    for player in ["encoder.", "generator.", "discriminator."] {
        let changed = initial
            .iter()
            .zip(&trained)
            .filter(|((n, a), (_, b))| n.starts_with(player) && !n.ends_with("gamma") && a != b)
            .count();
        assert!(changed > 5, "{player}: only {changed} tensors changed");
    }
}

#[test]
fn an_interrupted_and_resumed_run_equals_an_uninterrupted_one() {
    let data = dataset();
    resumed_equals_uninterrupted(config(kind("alpha-gan"), data.path(), 3));
    // f-AnoGAN's interruption falls in its encoder phase, its last checkpoint in the GAN phase
    let mut f_anogan = config(kind("f-anogan"), data.path(), 3);
    f_anogan.settings = f_anogan
        .kind
        .with_assignments(&f_anogan.settings, &["gan_epochs=1".into()])
        .unwrap();
    resumed_equals_uninterrupted(f_anogan);
    // SQUID's memory queue is state that every step rewrites: the checkpoint must carry it
    resumed_equals_uninterrupted(config(kind("squid"), data.path(), 3));
}

/// One epoch, then a Ctrl-C in the middle of the second, then the rest, against all in one go.
fn resumed_equals_uninterrupted(c: TrainConfig) {
    let whole = tempfile::tempdir().unwrap();
    let parts = tempfile::tempdir().unwrap();
    train(&c, whole.path(), &Device::Cpu, &TrainOptions::default()).unwrap();

    let one = TrainConfig {
        epochs: 1,
        ..c.clone()
    };
    train(&one, parts.path(), &Device::Cpu, &TrainOptions::default()).unwrap();
    let err = train(&one, parts.path(), &Device::Cpu, &TrainOptions::default()).unwrap_err();
    assert!(
        err.to_string().contains("--resume"),
        "a second plain run must not overwrite: {err}"
    );
    let stop = Arc::new(AtomicBool::new(true));
    let summary = train(
        &c,
        parts.path(),
        &Device::Cpu,
        &TrainOptions {
            resume: true,
            progress: false,
            stop: Some(stop),
        },
    )
    .unwrap();
    assert!(
        summary.interrupted && summary.epochs_done == 1,
        "{summary:?}"
    );
    train(
        &c,
        parts.path(),
        &Device::Cpu,
        &TrainOptions {
            resume: true,
            ..Default::default()
        },
    )
    .unwrap();

    assert_eq!(loss_rows(whole.path()), loss_rows(parts.path()));
    assert_eq!(
        checkpoint_weights(&whole.path().join("model.safetensors")),
        checkpoint_weights(&parts.path().join("model.safetensors"))
    );
    let a = read_checkpoint(
        &whole.path().join("checkpoints/latest.safetensors"),
        &Device::Cpu,
    )
    .unwrap();
    let b = read_checkpoint(
        &parts.path().join("checkpoints/latest.safetensors"),
        &Device::Cpu,
    )
    .unwrap();
    // optimiser moments and the moving average of the weights
    let saved = |c: &gan_models::Checkpoint, prefix: &str| -> Vec<(String, Vec<f32>)> {
        let mut v: Vec<_> = c
            .tensors
            .iter()
            .filter(|(n, _)| n.starts_with(prefix))
            .map(|(n, t)| (n.clone(), t.flatten_all().unwrap().to_vec1().unwrap()))
            .collect();
        v.sort_by(|x, y| x.0.cmp(&y.0));
        v
    };
    for prefix in ["optim.", "ema."] {
        assert!(!saved(&a, prefix).is_empty(), "{prefix}");
        assert_eq!(saved(&a, prefix), saved(&b, prefix), "{prefix}");
    }
}

#[test]
fn a_nan_loss_stops_the_run_naming_player_and_step_and_keeps_the_last_checkpoint() {
    let data = dataset();
    let run = tempfile::tempdir().unwrap();
    let c = config(kind("alpha-gan"), data.path(), 1);
    train(&c, run.path(), &Device::Cpu, &TrainOptions::default()).unwrap();
    let good: PathBuf = run.path().join("checkpoints/latest.safetensors");
    let good_weights = checkpoint_weights(&good);

    // a learning rate that blows the weights up: the loss turns non-finite
    let mut exploding = TrainConfig {
        epochs: 3,
        ..c.clone()
    };
    exploding.optimiser.learning_rate = 1e30;
    let err = train(
        &exploding,
        run.path(),
        &Device::Cpu,
        &TrainOptions {
            resume: true,
            ..Default::default()
        },
    )
    .unwrap_err();
    let TrainError::NonFinite {
        player,
        step,
        epoch,
        ..
    } = &err
    else {
        panic!("{err}")
    };
    assert!(!player.is_empty() && *epoch >= 1 && *step >= 1, "{err}");
    assert!(err.to_string().contains("last good checkpoint"), "{err}");
    assert_eq!(
        checkpoint_weights(&good),
        good_weights,
        "the last good checkpoint is untouched"
    );

    // directly: a NaN weight in the discriminator is reported for the step it happens in
    let mut trainer = Trainer::new(&c, &Device::Cpu).unwrap();
    let (_, var) = trainer
        .model
        .player("discriminator")
        .unwrap()
        .trainable_vars()
        .into_iter()
        .find(|(n, _)| n.ends_with("head.weight"))
        .unwrap();
    var.set(&(var.as_tensor() * f64::NAN).unwrap()).unwrap();
    let x = Tensor::zeros((8, 1, 32, 32), candle::DType::F32, &Device::Cpu).unwrap();
    let err = trainer.step(&x, 0, 41).unwrap_err().to_string();
    assert!(
        err.contains("step 41") && err.contains("loss became NaN"),
        "{err}"
    );
}
