//! Forward and forward+backward time of each player at 64×64, width 64, batch 64 (the seed
//! configuration), and scoring images/s of each detector, on the CPU. Set `XRAY_GAN_BENCH_BATCH` or `XRAY_GAN_BENCH_WIDTH` to change them.
//!
//! `cargo bench -p gan-models --bench players`

use std::time::Duration;

use candle::{DType, Device, Tensor};
use criterion::{Criterion, Throughput, criterion_group, criterion_main};
use gan_models::detectors::alpha_gan::AlphaGan;
use gan_models::detectors::bigan::BiGan;
use gan_models::{DetectorKind, ModelConfig, Register};

#[global_allocator]
static ALLOCATOR: gan_alloc::KeepPages = gan_alloc::KeepPages;

fn env_usize(name: &str, default: usize) -> usize {
    std::env::var(name)
        .ok()
        .and_then(|v| v.parse().ok())
        .unwrap_or(default)
}

fn players(c: &mut Criterion) {
    let batch = env_usize("XRAY_GAN_BENCH_BATCH", 64);
    let config = ModelConfig {
        width: env_usize("XRAY_GAN_BENCH_WIDTH", 64),
        ..ModelConfig::seed_64()
    };
    let device = Device::Cpu;
    let x = Tensor::randn(0f32, 1.0, (batch, 1, 64, 64), &device).expect("input");
    let z = Tensor::randn(0f32, 1.0, (batch, config.latent), &device).expect("code");
    let alpha = AlphaGan::build(&config, Default::default(), &device, 0).expect("model");
    let bigan = BiGan::build(&config, Default::default(), &device, 0).expect("model");
    type Forward<'a> = Box<dyn Fn() -> candle::Result<Tensor> + 'a>;
    let cases: Vec<(&str, Forward)> = vec![
        (
            "encoder",
            Box::new(|| alpha.encoder.forward_t(&x, true).map(|o| o.mean)),
        ),
        (
            "generator",
            Box::new(|| alpha.generator.forward_t(&z, true)),
        ),
        (
            "discriminator",
            Box::new(|| alpha.discriminator.forward_t(&x, true).map(|o| o.logit)),
        ),
        (
            "code_discriminator",
            Box::new(|| alpha.code_discriminator.forward(&z)),
        ),
        (
            "joint_discriminator",
            Box::new(|| bigan.discriminator.forward_t(&x, &z, true).map(|o| o.logit)),
        ),
    ];
    let mut group = c.benchmark_group(format!("players_64px_w{}_b{batch}", config.width));
    group
        .sample_size(10)
        .warm_up_time(Duration::from_secs(1))
        .measurement_time(Duration::from_secs(15));
    group.throughput(Throughput::Elements(batch as u64));
    for (name, forward) in &cases {
        group.bench_function(format!("{name}/forward"), |b| {
            b.iter(|| forward().expect("forward"))
        });
        group.bench_function(format!("{name}/forward_backward"), |b| {
            b.iter(|| {
                let out = forward().expect("forward");
                out.to_dtype(DType::F32)
                    .and_then(|o| o.mean_all())
                    .and_then(|l| l.backward())
                    .expect("backward")
            })
        });
    }
    group.finish();

    // scoring: every statistic of a batch in eval mode, as `xray-gan score` runs it
    let mut scoring = c.benchmark_group(format!("score_64px_w{}_b{batch}", config.width));
    scoring
        .sample_size(10)
        .warm_up_time(Duration::from_secs(1))
        .measurement_time(Duration::from_secs(15));
    scoring.throughput(Throughput::Elements(batch as u64));
    for kind in DetectorKind::all() {
        let model = kind
            .build(&config, &serde_json::Value::Null, &device, 0)
            .expect("model");
        scoring.bench_function(kind.name(), |b| b.iter(|| model.score(&x).expect("score")));
    }
    scoring.finish();
}

criterion_group!(benches, players);
criterion_main!(benches);
