//! The autoencoder learns to reconstruct normal images through the generic training loop, its
//! structural-dissimilarity term trains, and it scores without a discriminator.

use candle::{Device, Tensor};
use gan_data::{Augmentation, ImageSet};
use gan_train::{TrainOptions, Trainer, calibration_l1, load_training_data, train};

mod common;
use common::{kind, weights};

/// The first `n` images of a set as a batch.
fn batch(images: &ImageSet, n: usize) -> Tensor {
    let s = images.image_size();
    let pixels: Vec<f32> = (0..n).flat_map(|i| images.image(i)).collect();
    Tensor::from_vec(pixels, (n, 1, s, s), &Device::Cpu).unwrap()
}

#[test]
fn the_autoencoder_lowers_its_reconstruction_error() {
    let data = common::dataset(4);
    let run = tempfile::tempdir().unwrap();
    let mut c = common::config(kind("autoencoder"), data.path(), 15, 3);
    c.optimiser.learning_rate = 1e-3;
    // the trained weights themselves: the moving average lags by a hundred steps or so
    c.weight_average = 0.0;
    c.data.augmentation = Augmentation::none();
    let images = load_training_data(&c, false).unwrap();
    let trainer = Trainer::new(&c, &Device::Cpu).unwrap();
    let before =
        calibration_l1(trainer.model.as_ref(), &images.calibration, 8, &Device::Cpu).unwrap();
    let summary = train(&c, run.path(), &Device::Cpu, &TrainOptions::default()).unwrap();
    let after = summary.best_calibration_l1.unwrap();
    assert!(after < 0.5 * before, "calibration L1 {before} → {after}");
    let csv = std::fs::read_to_string(run.path().join("losses.csv")).unwrap();
    assert!(csv.starts_with("epoch,step,autoencoder_loss,"), "{csv}");
    // it does not generate: its sample diversity is left empty, and the run resumes from its
    // training state all the same
    let first = csv.lines().nth(1).unwrap();
    assert!(first.contains(",,"), "{first}");
    let mut longer = c.clone();
    longer.epochs = 16;
    let options = TrainOptions {
        resume: true,
        ..TrainOptions::default()
    };
    let summary = train(&longer, run.path(), &Device::Cpu, &options).unwrap();
    assert_eq!(summary.epochs_done, 16);
    let scores = trainer.model.score(&batch(&images.calibration, 4)).unwrap();
    assert_eq!(scores.statistics[0].name(), "l2");
    assert_eq!(trainer.model.primary_statistic(), "l2");
}

#[test]
fn the_structural_dissimilarity_term_trains_and_changes_the_loss() {
    let data = common::dataset(4);
    let step_loss = |ssim: &str| {
        let mut c = common::config(kind("autoencoder"), data.path(), 1, 3);
        c.settings = c
            .kind
            .with_assignments(&c.settings, &[format!("ssim_weight={ssim}")])
            .unwrap();
        let images = load_training_data(&c, false).unwrap();
        let mut trainer = Trainer::new(&c, &Device::Cpu).unwrap();
        let before = weights(trainer.model.as_ref());
        let x = batch(&images.calibration, 4);
        let losses = trainer.step(&x, 0, 0).unwrap();
        assert_ne!(
            weights(trainer.model.as_ref()),
            before,
            "ssim_weight={ssim}"
        );
        losses[0].1
    };
    let (mse, with_ssim) = (step_loss("0"), step_loss("1"));
    assert!(mse.is_finite() && with_ssim.is_finite());
    // the same weights and batch: the added term is (1 − SSIM)/2 > 0
    assert!(with_ssim > mse, "MSE {mse}, with SSIM {with_ssim}");
}
