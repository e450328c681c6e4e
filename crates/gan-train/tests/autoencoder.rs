//! The autoencoder learns to reconstruct normal images through the generic training loop, its
//! structural-dissimilarity term trains, and it scores without a discriminator.

use candle::Device;
use gan_train::{TrainOptions, Trainer, load_training_data, train};

mod common;
use common::{first_images, kind, weights};

#[test]
fn the_autoencoder_lowers_its_reconstruction_error() {
    let run = tempfile::tempdir().unwrap();
    let measured = common::train_and_measure_calibration_l1(kind("autoencoder"), 15, run.path());
    let (before, after) = (measured.before, measured.after);
    assert!(after < 0.5 * before, "calibration L1 {before} → {after}");
    let csv = std::fs::read_to_string(run.path().join("losses.csv")).unwrap();
    assert!(csv.starts_with("epoch,step,autoencoder_loss,"), "{csv}");
    // it does not generate: its sample diversity is left empty, and the run resumes from its
    // training state all the same
    let first = csv.lines().nth(1).unwrap();
    assert!(first.contains(",,"), "{first}");
    let mut longer = measured.config.clone();
    longer.epochs = 16;
    let options = TrainOptions {
        resume: true,
        ..TrainOptions::default()
    };
    let summary = train(&longer, run.path(), &Device::Cpu, &options).unwrap();
    assert_eq!(summary.epochs_done, 16);
    let (_, model, _) = gan_train::RunFolder::new(run.path())
        .load_model(gan_train::WhichWeights::Best, &Device::Cpu)
        .unwrap();
    let scores = model
        .score(&first_images(&measured.images.calibration, 4))
        .unwrap();
    assert_eq!(scores.statistics[0].name(), "l2");
    assert_eq!(model.primary_statistic(), "l2");
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
        let x = first_images(&images.calibration, 4);
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

/// The autoencoder-u learns to reconstruct and to predict where it cannot: its log-variance
/// head trains (normal images' mean log σ² falls below 0, the initial scale), and its primary
/// `l2_u` is the residual weighted by exp(−log σ²).
#[test]
fn the_autoencoder_u_learns_its_uncertainty_and_weights_the_residual_by_it() {
    use gan_models::detectors::autoencoder_u::{AutoencoderU, L2_U};
    use gan_models::{Detector, Register};
    let run = tempfile::tempdir().unwrap();
    let measured = common::train_and_measure_calibration_l1(kind("autoencoder-u"), 15, run.path());
    let (before, after) = (measured.before, measured.after);
    assert!(after < 0.5 * before, "calibration L1 {before} → {after}");
    let checkpoint =
        gan_models::read_checkpoint(&run.path().join("best.safetensors"), &Device::Cpu).unwrap();
    let model = checkpoint.detector(&Device::Cpu).unwrap();
    assert_eq!(model.primary_statistic(), "l2_u");
    let x = first_images(&measured.images.calibration, 4);
    let scores = model.score(&x).unwrap();
    // the same networks as the concrete type, for the decoder's two outputs
    let settings = serde_json::from_value(checkpoint.settings.clone()).unwrap();
    let concrete =
        <AutoencoderU as Register>::build(&checkpoint.config, settings, &Device::Cpu, 0).unwrap();
    (&concrete as &dyn Detector)
        .load_checkpoint(&checkpoint)
        .unwrap();
    let decoded = concrete.decode(&x, false).unwrap();
    let log_variance: f32 = decoded
        .log_variance
        .mean_all()
        .unwrap()
        .to_scalar()
        .unwrap();
    assert!(log_variance < -0.5, "mean log σ² {log_variance}");
    let weighted: Vec<f32> = AutoencoderU::weighted_residual(&x, &decoded)
        .unwrap()
        .flatten_from(1)
        .unwrap()
        .mean(1)
        .unwrap()
        .to_vec1()
        .unwrap();
    let primary = scores.get(L2_U);
    for (a, b) in primary.iter().zip(&weighted) {
        assert!(
            (a - b).abs() <= 1e-5 * b.abs().max(1e-3),
            "l2_u {a}, by hand {b}"
        );
    }
    // a confident model weights the residual up: l2_u is not the plain l2
    let l2 = scores.get(gan_models::Statistic::L2);
    assert!(
        primary.iter().zip(l2).all(|(u, plain)| u > plain),
        "{primary:?} vs {l2:?}"
    );
}
