//! Seconds per training step for a configuration (a quick look; benches/training.rs measures).
//! `cargo run --release -p gan-train --example step_time -- KIND SIZE WIDTH BATCH [no-attention]`

use std::time::Instant;

use candle::{Device, Tensor};
use gan_models::{DetectorKind, ModelConfig};
use gan_train::{TrainConfig, Trainer};

#[global_allocator]
static ALLOCATOR: gan_alloc::KeepPages = gan_alloc::KeepPages;

fn main() -> Result<(), Box<dyn std::error::Error>> {
    let a: Vec<String> = std::env::args().skip(1).collect();
    let kind: DetectorKind = a.first().map_or("alpha-gan", String::as_str).parse()?;
    let size: usize = a.get(1).map(|s| s.parse()).transpose()?.unwrap_or(64);
    let width: usize = a.get(2).map(|s| s.parse()).transpose()?.unwrap_or(16);
    let batch: usize = a.get(3).map(|s| s.parse()).transpose()?.unwrap_or(16);
    let attention = a.get(4).is_none_or(|s| s != "no-attention");
    let mut config = TrainConfig::new(kind, "unused".into());
    config.model = ModelConfig {
        image_size: size,
        width,
        self_attention: attention,
        ..ModelConfig::seed_64()
    };
    config.batch_size = batch;
    let mut trainer = Trainer::new(&config, &Device::Cpu)?;
    let x = Tensor::randn(0f32, 0.5, (batch, 1, size, size), &Device::Cpu)?;
    trainer.step(&x, 0, 0)?;
    let t = Instant::now();
    let n = 3;
    for s in 1..=n {
        trainer.step(&x, 0, s)?;
    }
    let per = t.elapsed().as_secs_f64() / n as f64;
    println!(
        "{kind} {size}px w{width} b{batch} attention={attention}: {per:.3} s/step, {:.1} images/s",
        batch as f64 / per
    );
    Ok(())
}
