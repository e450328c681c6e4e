//! Times forward and forward+backward of each network once (rough profile).
//! `cargo run --release -p gan-models --example profile_step -- WIDTH BATCH [no-attention]`

use std::time::Instant;

use candle::{Device, Tensor};
use gan_models::detectors::alpha_gan::AlphaGan;
use gan_models::{ModelConfig, Register};

#[global_allocator]
static ALLOCATOR: gan_alloc::KeepPages = gan_alloc::KeepPages;

fn main() -> Result<(), Box<dyn std::error::Error>> {
    let args: Vec<String> = std::env::args().skip(1).collect();
    let width: usize = args.first().map(|s| s.parse()).transpose()?.unwrap_or(16);
    let batch: usize = args.get(1).map(|s| s.parse()).transpose()?.unwrap_or(16);
    let attention = args.get(2).map(|s| s != "no-attention").unwrap_or(true);
    let config = ModelConfig {
        width,
        self_attention: attention,
        ..ModelConfig::seed_64()
    };
    let m = AlphaGan::build(&config, Default::default(), &Device::Cpu, 0)?;
    let x = Tensor::randn(0f32, 1.0, (batch, 1, 64, 64), &Device::Cpu)?;
    let z = Tensor::randn(0f32, 1.0, (batch, 128), &Device::Cpu)?;
    for _ in 0..2 {
        let t = Instant::now();
        let e = m.encoder.forward_t(&x, true)?.mean;
        let fe = t.elapsed();
        e.mean_all()?.backward()?;
        let be = t.elapsed();
        let t = Instant::now();
        let g = m.generator.forward_t(&z, true)?;
        let fg = t.elapsed();
        g.mean_all()?.backward()?;
        let bg = t.elapsed();
        let t = Instant::now();
        let d = m.discriminator.forward_t(&x, true)?.logit;
        let fd = t.elapsed();
        d.mean_all()?.backward()?;
        let bd = t.elapsed();
        println!(
            "E fwd {fe:.2?} fwd+bwd {be:.2?} | G fwd {fg:.2?} fwd+bwd {bg:.2?} | D fwd {fd:.2?} fwd+bwd {bd:.2?}"
        );
    }
    Ok(())
}
