//! Every registered detector through the generic training loop's step and scoring, at 128×128
//! (a first-class size: the seed's 64 hides a 1–3 px fracture line).

use candle::{Device, Tensor};
use gan_models::{DetectorKind, ModelConfig};
use gan_train::{TrainConfig, Trainer};

mod common;
use common::weights;

/// Two 128×128 images with structure: a bright band and a gradient.
fn images(size: usize) -> Tensor {
    let values: Vec<f32> = (0..2 * size * size)
        .map(|i| {
            let (r, c) = ((i / size) % size, i % size);
            let band = if (size / 3..size / 2).contains(&c) {
                0.7
            } else {
                -0.4
            };
            band + 0.3 * r as f32 / size as f32 - 0.1 * (i / (size * size)) as f32
        })
        .collect();
    Tensor::from_vec(values, (2, 1, size, size), &Device::Cpu).unwrap()
}

#[test]
fn every_detector_trains_one_step_and_scores_at_128_pixels() {
    let x = images(128);
    for kind in DetectorKind::all() {
        let mut config = TrainConfig::new(kind, "unused".into());
        config.model = ModelConfig {
            image_size: 128,
            width: 8,
            latent: 16,
            ..ModelConfig::default()
        };
        config.batch_size = 2;
        let mut trainer = Trainer::new(&config, &Device::Cpu).unwrap();
        let before = weights(trainer.model.as_ref());
        let losses = trainer.step(&x, 0, 0).unwrap();
        assert!(
            losses.iter().all(|(_, v)| v.is_finite()),
            "{kind}: {losses:?}"
        );
        assert_ne!(
            weights(trainer.model.as_ref()),
            before,
            "{kind}: a step moved no weight"
        );
        for model in [trainer.model.as_ref(), trainer.scoring_model()] {
            let scores = model.score(&x).unwrap();
            assert_eq!(scores.reconstruction.dims(), &[2, 1, 128, 128], "{kind}");
            assert_eq!(scores.residual.dims(), &[2, 1, 128, 128], "{kind}");
            assert_eq!(scores.statistics, model.statistics(), "{kind}");
            for (statistic, values) in scores.statistics.iter().zip(&scores.values) {
                assert_eq!(values.len(), 2, "{kind} {statistic}");
                assert!(
                    values.iter().all(|v| v.is_finite()),
                    "{kind} {statistic}: {values:?}"
                );
            }
            let error = model.validation_error(&x).unwrap();
            assert!(error.len() == 2 && error.iter().all(|e| *e > 0.0), "{kind}");
        }
    }
}
