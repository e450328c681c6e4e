//! The two later detectors: f-AnoGAN's gradient penalty has the gradient it should, its two
//! phases train what they should and leave the rest alone, and GANomaly learns to reconstruct.

use std::path::Path;

use candle::{Device, Tensor};
use gan_data::Augmentation;
use gan_models::detectors::f_anogan::{FAnogan, gradient_penalty};
use gan_models::{DetectorKind, ModelConfig, Register};
use gan_train::{TrainConfig, TrainOptions, Trainer, calibration_l1, load_training_data, train};

mod common;
use common::{kind, player_weights, tiny_model as tiny};

fn dataset() -> tempfile::TempDir {
    common::dataset(3)
}

fn config(kind: DetectorKind, root: &Path, epochs: u64) -> TrainConfig {
    let mut c = common::config(kind, root, epochs, 5);
    c.data.augmentation = Augmentation::none();
    c
}

#[test]
fn the_gradient_penalty_term_has_the_gradient_of_the_penalty() {
    let config = ModelConfig {
        self_attention: false,
        ..tiny()
    };
    let model = FAnogan::build(&config, Default::default(), &Device::Cpu, 4).unwrap();
    // a critic at a scale where ‖∇D‖ is near 1, so the penalty's slope is not dominated by
    // the constant (‖g‖ − 1)² ≈ 1 of a tiny initialisation
    for (_, var) in model.players[2].trainable_vars() {
        var.set(&(var.as_tensor() * 12.0).unwrap()).unwrap();
    }
    let values: Vec<f32> = (0..4 * 32 * 32)
        .map(|i| ((i * 29 % 97) as f32 / 48.0) - 1.0)
        .collect();
    let x_tilde = Tensor::from_vec(values, (4, 1, 32, 32), &Device::Cpu).unwrap();
    let (penalty, term) = gradient_penalty(&model.critic, &x_tilde, 10.0).unwrap();
    assert!(penalty.is_finite() && penalty > 0.0, "{penalty}");
    let grads = term.backward().unwrap();
    // the element of the critic's weights with the largest gradient, checked against a central
    // difference of the penalty's value in that weight
    let mut largest = (0f32, 0usize, None);
    for (name, var) in model.players[2].trainable_vars() {
        let Some(g) = grads.get(var.as_tensor()) else {
            continue;
        };
        for (i, v) in g
            .flatten_all()
            .unwrap()
            .to_vec1::<f32>()
            .unwrap()
            .iter()
            .enumerate()
        {
            if v.abs() > largest.0.abs() {
                largest = (*v, i, Some((name.clone(), var.clone())));
            }
        }
    }
    let (analytic, index, Some((name, var))) = largest else {
        panic!("no gradient reached the critic");
    };
    let original = var.flatten_all().unwrap().to_vec1::<f32>().unwrap();
    let delta = 1e-3 * original[index].abs().max(1e-2);
    let penalty_at = |shift: f32| {
        let mut moved = original.clone();
        moved[index] += shift;
        var.set(&Tensor::from_vec(moved, var.shape(), &Device::Cpu).unwrap())
            .unwrap();
        gradient_penalty(&model.critic, &x_tilde, 10.0).unwrap().0
    };
    let numeric = (penalty_at(delta) - penalty_at(-delta)) / (2.0 * delta);
    assert!(
        (numeric - analytic).abs() < 0.05 * analytic.abs(),
        "{name}[{index}]: penalty slope {numeric} by differences, {analytic} by the term"
    );
}

#[test]
fn f_anogan_trains_the_gan_then_only_the_encoder() {
    let data = dataset();
    let run = tempfile::tempdir().unwrap();
    let mut c = config(kind("f-anogan"), data.path(), 4);
    c.settings = c
        .kind
        .with_assignments(&c.settings, &["gan_epochs=2".into()])
        .unwrap();
    c.weight_average = 0.0; // compare the trained weights themselves
    let initial = tempfile::tempdir().unwrap();
    let trainer = Trainer::new(&c, &Device::Cpu).unwrap();
    gan_models::save_checkpoint(
        &initial.path().join("w.safetensors"),
        trainer.model.as_ref(),
        &[],
        &[],
    )
    .unwrap();
    train(&c, run.path(), &Device::Cpu, &TrainOptions::default()).unwrap();
    let at = |name: &str| run.path().join("checkpoints").join(name);
    let start = initial.path().join("w.safetensors");
    let (gan_end, last) = (at("epoch-0001.safetensors"), at("epoch-0003.safetensors"));
    // GAN phase: critic and generator move, the encoder does not
    assert_ne!(
        player_weights(&start, "critic"),
        player_weights(&gan_end, "critic")
    );
    assert_ne!(
        player_weights(&start, "generator"),
        player_weights(&gan_end, "generator")
    );
    assert_eq!(
        player_weights(&start, "encoder"),
        player_weights(&gan_end, "encoder")
    );
    // encoder phase: the reverse
    assert_eq!(
        player_weights(&gan_end, "critic"),
        player_weights(&last, "critic")
    );
    assert_eq!(
        player_weights(&gan_end, "generator"),
        player_weights(&last, "generator")
    );
    assert_ne!(
        player_weights(&gan_end, "encoder"),
        player_weights(&last, "encoder")
    );
    let csv = std::fs::read_to_string(run.path().join("losses.csv")).unwrap();
    let rows: Vec<Vec<f64>> = csv
        .lines()
        .skip(1)
        .map(|l| l.split(',').map(|v| v.parse().unwrap()).collect())
        .collect();
    assert!(
        csv.starts_with("epoch,step,encoder_loss,generator_loss,critic_loss,"),
        "{csv}"
    );
    // columns: epoch, step, encoder, generator, critic, calibration L1, ...
    assert!(
        rows[..2].iter().all(|r| r[2] == 0.0 && r[4] != 0.0),
        "{csv}"
    );
    assert!(rows[2..].iter().all(|r| r[2] > 0.0 && r[4] == 0.0), "{csv}");
    // the encoder learns: its loss falls over its phase
    assert!(rows[3][2] < rows[2][2], "{csv}");
}

#[test]
fn ganomaly_lowers_its_reconstruction_error_and_moves_every_network() {
    let data = dataset();
    let run = tempfile::tempdir().unwrap();
    let mut c = config(kind("ganomaly"), data.path(), 12);
    c.optimiser.learning_rate = 1e-3;
    let images = load_training_data(&c, false).unwrap();
    let trainer = Trainer::new(&c, &Device::Cpu).unwrap();
    let before =
        calibration_l1(trainer.model.as_ref(), &images.calibration, 8, &Device::Cpu).unwrap();
    let initial = tempfile::tempdir().unwrap();
    let start = initial.path().join("w.safetensors");
    gan_models::save_checkpoint(&start, trainer.model.as_ref(), &[], &[]).unwrap();
    let summary = train(&c, run.path(), &Device::Cpu, &TrainOptions::default()).unwrap();
    let after = summary.best_calibration_l1.unwrap();
    assert!(after < 0.8 * before, "calibration L1 {before} → {after}");
    let last = run.path().join("checkpoints/latest.safetensors");
    for player in ["encoder", "generator", "second_encoder", "discriminator"] {
        assert_ne!(
            player_weights(&start, player),
            player_weights(&last, player),
            "{player}"
        );
    }
    let csv = std::fs::read_to_string(run.path().join("losses.csv")).unwrap();
    assert!(
        csv.starts_with("epoch,step,generator_loss,discriminator_loss,"),
        "{csv}"
    );
}
