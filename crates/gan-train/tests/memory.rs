//! Memory stays flat over many training steps (a test of its own: RSS is per process).

use candle::{Device, Tensor};
use gan_models::{DetectorKind, ModelConfig};
use gan_train::{TrainConfig, Trainer};

// the allocator xray-gan's programs declare, so that this measures what a user's run does
#[global_allocator]
static ALLOCATOR: gan_alloc::KeepPages = gan_alloc::KeepPages;

fn rss_mib() -> f64 {
    let status = std::fs::read_to_string("/proc/self/status").unwrap();
    let line = status.lines().find(|l| l.starts_with("VmRSS:")).unwrap();
    line.split_whitespace()
        .nth(1)
        .unwrap()
        .parse::<f64>()
        .unwrap()
        / 1024.0
}

#[test]
fn training_steps_do_not_accumulate_memory() {
    for kind in DetectorKind::all() {
        let mut config = TrainConfig::new(kind, "unused".into());
        config.model = ModelConfig {
            image_size: 32,
            width: 8,
            latent: 16,
            ..ModelConfig::default()
        };
        config.batch_size = 16;
        let mut trainer = Trainer::new(&config, &Device::Cpu).unwrap();
        let x = Tensor::zeros((16, 1, 32, 32), candle::DType::F32, &Device::Cpu).unwrap();
        for step in 0..5 {
            trainer.step(&x, 0, step).unwrap();
        }
        let before = rss_mib();
        for step in 5..105 {
            trainer.step(&x, 0, step).unwrap();
        }
        let growth = rss_mib() - before;
        // a step's graph is several MiB at this size: 100 retained steps would add hundreds
        assert!(
            growth < 60.0,
            "{kind}: resident memory grew {growth:.0} MiB over 100 steps"
        );
    }
}
