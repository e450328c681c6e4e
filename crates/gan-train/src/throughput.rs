//! Throughput measurements for `cargo bench -p gan-train --bench throughput`: training and scoring
//! images/s, achieved GFLOP/s beside the machine's matmul GFLOP/s, peak resident memory, and how
//! fast the data loader feeds batches.

use std::path::Path;
use std::time::Instant;

use candle::Device;
use gan_data::synth::{SynthConfig, write_synthetic_mura};
use gan_data::{Augmentation, Batcher};
use gan_models::kernels::{Precision, with_precision};
use gan_models::{DetectorKind, ModelConfig, Statistic, normal_tensor};
use serde::{Deserialize, Serialize};

use crate::data::load_training_data;
use crate::error::Result;
use crate::{TrainConfig, Trainer};

/// One measured (model, configuration) cell.
#[derive(Debug, Clone, Serialize, Deserialize)]
pub struct ModelThroughput {
    pub model: String,
    pub config: String,
    pub image_size: usize,
    pub width: usize,
    pub batch: usize,
    pub self_attention: bool,
    /// The convolution products' number format, in training steps and scoring passes alike.
    #[serde(default)]
    pub precision: Precision,
    /// Timed steps (after one untimed warm-up step).
    pub steps: usize,
    pub train_step_s: f64,
    pub train_img_per_s: f64,
    pub score_img_per_s: f64,
    /// FLOPs of one training step per image ([`step_flops_per_image`]), in GFLOP.
    pub train_gflop_per_image: f64,
    pub achieved_train_gflops: f64,
    /// Scoring images/s computing only the PyTorch peer's statistics ([`PEER_STATISTICS`]), for
    /// the detectors that have all of them (Alpha-GAN, BiGAN): the same work on both sides.
    #[serde(default)]
    pub score_peer_statistics_img_per_s: Option<f64>,
    /// One whole epoch as `train` runs it, when asked for (`--epoch`).
    #[serde(default)]
    pub epoch: Option<EpochThroughput>,
    /// Peak resident memory of the process while this cell ran (Linux; `None` elsewhere).
    pub peak_rss_mib: Option<f64>,
}

/// The statistics the PyTorch peer (`../shared/peer/alpha_gan_ref.py`) computes when it scores.
pub const PEER_STATISTICS: [Statistic; 6] = [
    Statistic::L1,
    Statistic::L2,
    Statistic::FM_D3,
    Statistic::FM_D4,
    Statistic::FM_E,
    Statistic::DISC,
];

/// One epoch of [`crate::train`] on synthetic normal images, timed as a user sees it: the steps,
/// then the end of the epoch (calibration error, sample sheet, `losses.csv`, checkpoints).
#[derive(Debug, Clone, Serialize, Deserialize)]
pub struct EpochThroughput {
    pub train_images: usize,
    pub calibration_images: usize,
    pub step_s: f64,
    pub epoch_end_s: f64,
    /// Training images per second of the steps alone, and of the whole epoch (steps + end).
    pub step_img_per_s: f64,
    pub epoch_img_per_s: f64,
    /// The end of the epoch as a share of the steps' time, in percent.
    pub overhead_percent: f64,
}

/// A named configuration to measure.
#[derive(Debug, Clone)]
pub struct BenchConfig {
    pub name: String,
    pub model: ModelConfig,
    pub batch: usize,
    /// The convolution products' number format (steps and scoring).
    pub precision: Precision,
}

impl BenchConfig {
    /// The seed experiment: 64×64, width 64, self-attention, batch 64.
    pub fn seed() -> Self {
        BenchConfig {
            name: "seed".into(),
            model: ModelConfig::seed_64(),
            batch: 64,
            precision: Precision::F32,
        }
    }

    /// The seed networks at 128×128 (where a 1–3 px fracture line is still a pixel or more),
    /// batch 32.
    pub fn seed_128() -> Self {
        BenchConfig {
            name: "seed-128".into(),
            model: ModelConfig {
                image_size: 128,
                ..ModelConfig::seed_64()
            },
            batch: 32,
            precision: Precision::F32,
        }
    }

    /// The configurations the bench knows, by name.
    pub const NAMES: [&str; 3] = ["seed", "seed-128", "demo"];

    /// `seed`, `seed-128` or `demo`.
    pub fn named(name: &str) -> Option<Self> {
        match name {
            "seed" => Some(Self::seed()),
            "seed-128" => Some(Self::seed_128()),
            "demo" => Some(Self::demo()),
            _ => None,
        }
    }

    /// The CPU demo: 64×64, width 16, no self-attention, batch 16.
    pub fn demo() -> Self {
        BenchConfig {
            name: "demo".into(),
            model: ModelConfig {
                width: 16,
                self_attention: false,
                ..ModelConfig::seed_64()
            },
            batch: 16,
            precision: Precision::F32,
        }
    }
}

/// Resets the kernel's peak-RSS mark of this process (Linux ≥ 4.0), so each cell reports its own.
pub fn reset_peak_rss() {
    let _ = std::fs::write("/proc/self/clear_refs", "5");
}

/// VmHWM of this process in MiB (Linux).
pub fn peak_rss_mib() -> Option<f64> {
    let status = std::fs::read_to_string("/proc/self/status").ok()?;
    let line = status.lines().find(|l| l.starts_with("VmHWM:"))?;
    let kib: f64 = line.split_whitespace().nth(1)?.parse().ok()?;
    Some(kib / 1024.0)
}

/// Seconds per call of `f`, called once untimed (with 0), then `steps` times (with 1..=steps)
/// between two synchronisations of `device`.
fn seconds_per_call(
    device: &Device,
    steps: usize,
    f: &mut dyn FnMut(u64) -> Result<()>,
) -> Result<f64> {
    f(0)?;
    device.synchronize()?;
    let start = Instant::now();
    for step in 1..=steps as u64 {
        f(step)?;
    }
    device.synchronize()?;
    Ok(start.elapsed().as_secs_f64() / steps as f64)
}

/// Trains `steps` steps (after one warm-up step) and scores as many batches of random images.
pub fn measure_model(
    kind: DetectorKind,
    bench: &BenchConfig,
    steps: usize,
    device: &Device,
) -> Result<ModelThroughput> {
    reset_peak_rss();
    let mut config = TrainConfig::new(kind, "unused".into());
    config.model = bench.model;
    config.batch_size = bench.batch;
    config.precision = bench.precision;
    let steps = steps.max(1);
    let mut trainer = Trainer::new(&config, device)?;
    let s = bench.model.image_size;
    let x = (normal_tensor((bench.batch, s * s), 7, device)? * 0.5)?
        .reshape((bench.batch, 1, s, s))?
        .tanh()?;
    let train_step_s = seconds_per_call(device, steps, &mut |step| {
        trainer.step(&x, 0, step)?;
        Ok(())
    })?;
    let score_s = seconds_per_call(device, steps, &mut |_| {
        with_precision(bench.precision, || trainer.model.score(&x))?;
        Ok(())
    })?;
    let has_peer_statistics = PEER_STATISTICS
        .iter()
        .all(|s| trainer.model.statistics().contains(s));
    let score_peer_statistics_img_per_s = if has_peer_statistics {
        let seconds = seconds_per_call(device, steps, &mut |_| {
            with_precision(bench.precision, || {
                trainer.model.score_statistics(&x, &PEER_STATISTICS)
            })?;
            Ok(())
        })?;
        Some(bench.batch as f64 / seconds)
    } else {
        None
    };

    let flops = trainer.model.step_flops_per_image(device)? as f64;
    let train_img_per_s = bench.batch as f64 / train_step_s;
    Ok(ModelThroughput {
        model: kind.name().to_string(),
        config: bench.name.clone(),
        image_size: s,
        width: bench.model.width,
        batch: bench.batch,
        self_attention: bench.model.self_attention,
        precision: bench.precision,
        steps,
        train_step_s,
        train_img_per_s,
        score_img_per_s: bench.batch as f64 / score_s,
        train_gflop_per_image: flops / 1e9,
        achieved_train_gflops: flops * train_img_per_s / 1e9,
        score_peer_statistics_img_per_s,
        epoch: None,
        peak_rss_mib: peak_rss_mib(),
    })
}

/// Trains one epoch with [`crate::train`] (no progress bar) on synthetic radiographs written under
/// `scratch` (`studies_per_part` studies of each of the seven parts; their normal images, less the
/// held-out tenth, are the epoch), into a run folder under `scratch`.
pub fn measure_epoch(
    kind: DetectorKind,
    bench: &BenchConfig,
    scratch: &Path,
    studies_per_part: usize,
    device: &Device,
) -> Result<EpochThroughput> {
    let data = scratch.join("data");
    write_synthetic_mura(
        &data,
        &SynthConfig {
            studies_per_part,
            size: 96,
            ..Default::default()
        },
        false,
    )?;
    let mut config = TrainConfig::new(kind, data.join(gan_data::MURA_DIR));
    config.model = bench.model;
    config.batch_size = bench.batch;
    config.precision = bench.precision;
    config.epochs = 1;
    config.data.cache_dir = None;
    let summary = crate::train(
        &config,
        &scratch.join("run"),
        device,
        &crate::TrainOptions::default(),
    )?;
    let images = summary.train_images as f64;
    let epoch_s = summary.step_seconds + summary.epoch_end_seconds;
    Ok(EpochThroughput {
        train_images: summary.train_images,
        calibration_images: summary.calibration_images,
        step_s: summary.step_seconds,
        epoch_end_s: summary.epoch_end_seconds,
        step_img_per_s: images / summary.step_seconds,
        epoch_img_per_s: images / epoch_s,
        overhead_percent: 100.0 * summary.epoch_end_seconds / summary.step_seconds,
    })
}

/// Best GFLOP/s of an `n`×`n` by `n`×`n` f32 matmul over a few tries: the machine's practical peak
/// for this library.
pub fn matmul_gflops(n: usize, device: &Device) -> Result<f64> {
    let a = normal_tensor((n, n), 1, device)?;
    let b = normal_tensor((n, n), 2, device)?;
    a.matmul(&b)?;
    let mut best = f64::INFINITY;
    for _ in 0..5 {
        device.synchronize()?;
        let start = Instant::now();
        let c = a.matmul(&b)?;
        device.synchronize()?;
        best = best.min(start.elapsed().as_secs_f64());
        drop(c);
    }
    Ok(2.0 * (n as f64).powi(3) / best / 1e9)
}

/// How fast images reach training.
#[derive(Debug, Clone, Serialize)]
pub struct LoaderThroughput {
    pub images: usize,
    pub image_size: usize,
    /// Decoding and preprocessing the PNG files (first load, filling the cache).
    pub decode_img_per_s: f64,
    /// Loading the same images again from the preprocessed cache.
    pub cache_img_per_s: f64,
    /// Assembling augmented, shuffled training batches on the device from memory, the work on
    /// the training loop's critical path each step.
    pub batch_img_per_s: f64,
}

/// Synthesises a small dataset under `scratch`, loads it cold and from the cache, then assembles
/// augmented batches of `batch` images.
pub fn measure_loader(
    scratch: &Path,
    image_size: usize,
    batch: usize,
    device: &Device,
) -> Result<LoaderThroughput> {
    let data = scratch.join("data");
    write_synthetic_mura(
        &data,
        &SynthConfig {
            studies_per_part: 40,
            parts: vec!["hand".into(), "wrist".into()],
            size: 256,
            ..Default::default()
        },
        false,
    )?;
    let kind = DetectorKind::all()
        .next()
        .expect("at least one detector is registered");
    let mut config = TrainConfig::new(kind, data.join(gan_data::MURA_DIR));
    config.model.image_size = image_size;
    config.batch_size = batch;
    config.data.cache_dir = Some(scratch.join("cache"));
    let start = Instant::now();
    let cold = load_training_data(&config, false)?;
    let decode_s = start.elapsed().as_secs_f64();
    let start = Instant::now();
    let warm = load_training_data(&config, false)?;
    let cache_s = start.elapsed().as_secs_f64();
    let images = cold.train.len() + cold.calibration.len();

    let batcher = Batcher::new(&warm.train, batch, device);
    let augmentation = Augmentation::default();
    let mut assembled = 0usize;
    let start = Instant::now();
    let mut epoch = 0;
    while assembled < 4096 {
        for b in batcher.train_epoch(0, epoch, &augmentation) {
            let b = b?;
            assembled += b.images.dim(0)?;
        }
        epoch += 1;
    }
    device.synchronize()?;
    let batch_s = start.elapsed().as_secs_f64();
    Ok(LoaderThroughput {
        images,
        image_size,
        decode_img_per_s: images as f64 / decode_s,
        cache_img_per_s: images as f64 / cache_s,
        batch_img_per_s: assembled as f64 / batch_s,
    })
}

/// The whole report.
#[derive(Debug, Clone, Serialize)]
pub struct ThroughputReport {
    pub device: String,
    /// Threads candle's CPU kernels use (`RAYON_NUM_THREADS`, else every core).
    pub threads: usize,
    pub matmul_n: usize,
    pub matmul_gflops: f64,
    pub models: Vec<ModelThroughput>,
    pub loader: Option<LoaderThroughput>,
}
