//! The throughput report's FLOP count is the right size, and its loader measurement runs.

use candle::Device;
use gan_models::{GanModel, ModelConfig, ModelKind};
use gan_train::steps::{forward_flops_per_image, step_flops_per_image};
use gan_train::throughput::measure_loader;

#[test]
fn seed_alpha_gan_step_is_about_nine_gflop_per_image() {
    let model = GanModel::new(
        ModelKind::AlphaGan,
        &ModelConfig::seed_64(),
        &Device::Cpu,
        0,
    )
    .unwrap();
    let forward = forward_flops_per_image(&model, &Device::Cpu).unwrap();
    // The generator's four transposed convolutions alone: 1 + 3 × 33.6 M multiply-adds.
    let generator = forward.iter().find(|(p, _)| *p == "generator").unwrap().1;
    assert!(generator > 2 * 100_000_000, "generator {generator}");
    let step = step_flops_per_image(&model, &Device::Cpu).unwrap() as f64 / 1e9;
    // The estimate for this configuration: roughly 9 GFLOP per image per step.
    assert!((7.0..11.0).contains(&step), "{step} GFLOP");
    let bigan = GanModel::new(ModelKind::Bigan, &ModelConfig::seed_64(), &Device::Cpu, 0).unwrap();
    let bigan_step = step_flops_per_image(&bigan, &Device::Cpu).unwrap() as f64 / 1e9;
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
