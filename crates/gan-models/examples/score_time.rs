//! Seconds per scoring batch, and how much of it the forward passes take (a quick look; the
//! throughput bench measures). `cargo run --release -p gan-models --example score_time -- WIDTH BATCH [no-attention]`

use std::time::Instant;

use candle::{Device, Tensor};
use gan_models::detectors::alpha_gan::AlphaGan;
use gan_models::{Detector, ModelConfig, Register};

#[global_allocator]
static ALLOCATOR: gan_alloc::KeepPages = gan_alloc::KeepPages;

fn main() -> Result<(), Box<dyn std::error::Error>> {
    let args: Vec<String> = std::env::args().skip(1).collect();
    let width: usize = args.first().map(|s| s.parse()).transpose()?.unwrap_or(16);
    let batch: usize = args.get(1).map(|s| s.parse()).transpose()?.unwrap_or(64);
    let attention = args.get(2).is_none_or(|s| s != "no-attention");
    let config = ModelConfig {
        width,
        self_attention: attention,
        ..ModelConfig::seed_64()
    };
    let m = AlphaGan::build(&config, Default::default(), &Device::Cpu, 0)?;
    let model: &dyn Detector = &m;
    let x = Tensor::randn(0f32, 0.5, (batch, 1, 64, 64), &Device::Cpu)?;
    model.score(&x)?;
    let time = |f: &dyn Fn() -> candle::Result<()>| -> candle::Result<f64> {
        let t = Instant::now();
        for _ in 0..8 {
            f()?;
        }
        Ok(t.elapsed().as_secs_f64() / 8.0)
    };
    let score = time(&|| {
        model
            .score(&x)
            .map(|_| ())
            .map_err(|e| candle::Error::Msg(e.to_string()))
    })?;
    let encoder = time(&|| m.encoder.forward_t(&x, false).map(|_| ()))?;
    let z = m.encoder.forward_t(&x, false)?.mean;
    let generator = time(&|| m.generator.forward_t(&z, false).map(|_| ()))?;
    let discriminator = time(&|| m.discriminator.forward_t(&x, false).map(|_| ()))?;
    let passes = 2.0 * encoder + generator + 2.0 * discriminator;
    println!(
        "score {score:.3} s ({:.0} img/s); passes E {encoder:.3} G {generator:.3} D {discriminator:.3}, sum {passes:.3} s; statistics {:.3} s",
        batch as f64 / score,
        score - passes
    );
    Ok(())
}
