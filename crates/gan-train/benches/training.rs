//! Training images/s of each detector at the seed configuration (64×64, width 64, batch 64) and at
//! the CPU demo configuration (64×64, width 16, batch 16), one optimisation step per iteration, on
//! the CPU; the peak resident memory (VmHWM) is printed at the end.
//!
//! `cargo bench -p gan-train --bench training` (`XRAY_GAN_BENCH_SEED=0` skips the slow seed config)

use std::time::Duration;

use candle::{Device, Tensor};
use criterion::{Criterion, Throughput, criterion_group, criterion_main};
use gan_models::{DetectorKind, ModelConfig};
use gan_train::throughput::peak_rss_mib;
use gan_train::{TrainConfig, Trainer};

#[global_allocator]
static ALLOCATOR: gan_alloc::KeepPages = gan_alloc::KeepPages;

fn training(c: &mut Criterion) {
    let with_seed = std::env::var("XRAY_GAN_BENCH_SEED")
        .map(|v| v != "0")
        .unwrap_or(true);
    let mut settings = vec![("demo_w16_b16", 16usize, 16usize)];
    if with_seed {
        settings.push(("seed_w64_b64", 64, 64));
    }
    for (label, width, batch) in settings {
        let mut group = c.benchmark_group(format!("train_step_64px_{label}"));
        group
            .sample_size(10)
            .warm_up_time(Duration::from_secs(1))
            .measurement_time(Duration::from_secs(10));
        group.throughput(Throughput::Elements(batch as u64));
        for kind in DetectorKind::all() {
            let mut config = TrainConfig::new(kind, "unused".into());
            config.model = ModelConfig {
                width,
                ..ModelConfig::seed_64()
            };
            config.batch_size = batch;
            let mut trainer = Trainer::new(&config, &Device::Cpu).expect("trainer");
            let x = Tensor::randn(0f32, 0.5, (batch, 1, 64, 64), &Device::Cpu).expect("batch");
            let mut step = 0;
            group.bench_function(kind.name(), |b| {
                b.iter(|| {
                    step += 1;
                    trainer.step(&x, 0, step).expect("step")
                })
            });
        }
        group.finish();
    }
    if let Some(mib) = peak_rss_mib() {
        println!("peak resident memory of the benchmark process: {mib:.0} MiB");
    }
}

criterion_group!(benches, training);
criterion_main!(benches);
