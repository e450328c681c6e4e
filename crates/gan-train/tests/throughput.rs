//! The throughput report's FLOP count is the right size, and its loader and epoch measurements
//! run.

use candle::Device;
use gan_models::{DetectorKind, ModelConfig};
use gan_train::throughput::{BenchConfig, measure_epoch, measure_loader};

#[test]
fn seed_alpha_gan_step_is_about_nine_gflop_per_image() {
    let build = |name: &str| {
        let kind: DetectorKind = name.parse().unwrap();
        kind.build(
            &ModelConfig::seed_64(),
            &serde_json::Value::Null,
            &Device::Cpu,
            0,
        )
        .unwrap()
    };
    let model = build("alpha-gan");
    let forward = model.forward_flops_per_image(&Device::Cpu).unwrap();
    // The generator's four transposed convolutions alone: 1 + 3 × 33.6 M multiply-adds.
    let generator = forward.iter().find(|(p, _)| *p == "generator").unwrap().1;
    assert!(generator > 2 * 100_000_000, "generator {generator}");
    let step = model.step_flops_per_image(&Device::Cpu).unwrap() as f64 / 1e9;
    // The estimate for this configuration: roughly 9 GFLOP per image per step.
    assert!((7.0..11.0).contains(&step), "{step} GFLOP");
    let bigan_step = build("bigan").step_flops_per_image(&Device::Cpu).unwrap() as f64 / 1e9;
    assert!(bigan_step < step, "BiGAN {bigan_step} vs Alpha-GAN {step}");
}

#[test]
fn loader_measurement_reads_decodes_and_batches() {
    let scratch = tempfile::tempdir().unwrap();
    let loader = measure_loader(scratch.path(), 32, 8, &Device::Cpu).unwrap();
    assert!(loader.images > 50, "{} images", loader.images);
    for rate in [
        loader.decode_img_per_s,
        loader.cache_img_per_s,
        loader.batch_img_per_s,
    ] {
        assert!(rate.is_finite() && rate > 0.0, "{loader:?}");
    }
    // the cache must be faster than decoding PNGs, or it is not being used
    assert!(
        loader.cache_img_per_s > loader.decode_img_per_s,
        "{loader:?}"
    );
}

/// The epoch measurement runs `train` itself: a real run folder with its checkpoint appears, the
/// counts are the dataset's, and the whole epoch is slower than its steps by the epoch end.
#[test]
fn epoch_measurement_trains_one_real_epoch_and_splits_its_time() {
    let scratch = tempfile::tempdir().unwrap();
    let bench = BenchConfig {
        name: "tiny".into(),
        model: ModelConfig {
            image_size: 32,
            width: 8,
            latent: 16,
            self_attention: false,
            ..ModelConfig::default()
        },
        batch: 8,
        precision: Default::default(),
    };
    let kind: DetectorKind = "autoencoder".parse().unwrap();
    let epoch = measure_epoch(kind, &bench, scratch.path(), 5, &Device::Cpu).unwrap();
    assert!(
        scratch
            .path()
            .join("run/checkpoints/latest.safetensors")
            .exists()
    );
    assert!(
        epoch.train_images > 8 && epoch.calibration_images > 0,
        "{epoch:?}"
    );
    assert!(epoch.step_s > 0.0 && epoch.epoch_end_s > 0.0, "{epoch:?}");
    assert!(epoch.epoch_img_per_s < epoch.step_img_per_s, "{epoch:?}");
    let share = 100.0 * epoch.epoch_end_s / epoch.step_s;
    assert!((epoch.overhead_percent - share).abs() < 1e-9, "{epoch:?}");
}
