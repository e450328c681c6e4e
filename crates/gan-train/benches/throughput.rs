//! Training and scoring images/s, achieved GFLOP/s beside measured matmul GFLOP/s, peak resident
//! memory and data-loader speed, for Alpha-GAN and BiGAN (by default; `--models all` for every
//! detector) at the seed and demo configurations (and `seed-128`, the seed networks at 128×128).
//! Prints a table and JSON (also written to `--json FILE`), so runs can be compared.
//!
//! `cargo bench -p gan-train --bench throughput -- [--configs seed,seed-128,demo]
//!  [--models all|alpha-gan,bigan] [--steps N] [--device cpu|cuda] [--no-loader] [--json FILE]
//!  [--epoch [--epoch-studies N]] [--precision f32|bf16]`
//! `--precision bf16` runs every convolution product of the steps and the scoring passes with
//! bf16 operands (a CPU with AVX512-BF16).
//! `--epoch` also trains one whole epoch per cell as `train` runs it (synthetic radiographs, N
//! studies per body part, default 30), and reports its images/s beside the steps'.
//! Scoring is reported twice for Alpha-GAN and BiGAN: every statistic, and only the PyTorch
//! peer's six (`score_peer_statistics_img_per_s`), the number to set beside the peer's.
//! Threads: `RAYON_NUM_THREADS` (candle's CPU kernels), default every core.

use std::error::Error;

use gan_models::kernels::Precision;
use gan_models::{DetectorKind, select_device};
use gan_train::throughput::{
    BenchConfig, ModelThroughput, ThroughputReport, matmul_gflops, measure_epoch, measure_loader,
    measure_model,
};

#[global_allocator]
static ALLOCATOR: gan_alloc::KeepPages = gan_alloc::KeepPages;

struct Args {
    configs: Vec<String>,
    models: Vec<DetectorKind>,
    steps: Option<usize>,
    device: String,
    loader: bool,
    json: Option<String>,
    /// Studies per body part of the synthetic epoch, when one is measured.
    epoch_studies: Option<usize>,
    /// Measure one cell and print its JSON only (each cell runs in its own process, so that its
    /// peak memory is its own: the allocator keeps freed pages for the life of a process).
    cell: bool,
    precision: Precision,
}

fn parse_args() -> Result<Args, Box<dyn Error>> {
    let mut args = Args {
        configs: vec!["seed".into(), "demo".into()],
        models: vec!["alpha-gan".parse()?, "bigan".parse()?],
        steps: None,
        device: "cpu".into(),
        loader: true,
        json: None,
        epoch_studies: None,
        cell: false,
        precision: Precision::F32,
    };
    let mut it = std::env::args().skip(1);
    while let Some(a) = it.next() {
        let mut value = || it.next().ok_or_else(|| format!("{a} needs a value"));
        match a.as_str() {
            "--configs" => args.configs = value()?.split(',').map(str::to_string).collect(),
            "--models" => {
                let names = value()?;
                args.models = if names == "all" {
                    DetectorKind::all().collect()
                } else {
                    names.split(',').map(str::parse).collect::<Result<_, _>>()?
                }
            }
            "--steps" => args.steps = Some(value()?.parse()?),
            "--device" => args.device = value()?,
            "--json" => args.json = Some(value()?),
            "--no-loader" => args.loader = false,
            "--epoch" => args.epoch_studies = Some(args.epoch_studies.unwrap_or(30)),
            "--epoch-studies" => args.epoch_studies = Some(value()?.parse()?),
            "--cell" => args.cell = true,
            "--precision" => args.precision = value()?.parse()?,
            "--bench" => {} // added by `cargo bench`
            other => return Err(format!("unknown argument {other:?}").into()),
        }
    }
    Ok(args)
}

/// Runs one cell in a child process of this benchmark and reads its JSON line.
fn measure_in_child(
    config: &str,
    kind: DetectorKind,
    steps: usize,
    device: &str,
    epoch_studies: Option<usize>,
    precision: Precision,
) -> Result<ModelThroughput, Box<dyn Error>> {
    let epoch: Vec<String> = epoch_studies
        .map(|n| vec!["--epoch-studies".into(), n.to_string()])
        .unwrap_or_default();
    let output = std::process::Command::new(std::env::current_exe()?)
        .args(&epoch)
        .args([
            "--cell",
            "--no-loader",
            "--configs",
            config,
            "--models",
            kind.name(),
        ])
        .args(["--steps", &steps.to_string(), "--device", device])
        .args(["--precision", &precision.to_string()])
        .stderr(std::process::Stdio::inherit())
        .output()?;
    if !output.status.success() {
        return Err(format!("measuring {kind} at {config} failed: {}", output.status).into());
    }
    let stdout = String::from_utf8(output.stdout)?;
    let line = stdout
        .lines()
        .last()
        .ok_or("the measuring process printed nothing")?;
    Ok(serde_json::from_str(line)?)
}

fn main() -> Result<(), Box<dyn Error>> {
    let args = parse_args()?;
    if args.cell {
        let name = args.configs.first().ok_or("--cell needs --configs")?;
        let mut bench = BenchConfig::named(name).ok_or("unknown config")?;
        bench.precision = args.precision;
        let kind = *args.models.first().ok_or("--cell needs --models")?;
        let device = select_device(&args.device)?;
        let mut m = measure_model(kind, &bench, args.steps.unwrap_or(3), &device)?;
        if let Some(studies) = args.epoch_studies {
            let scratch = tempfile::tempdir()?;
            m.epoch = Some(measure_epoch(
                kind,
                &bench,
                scratch.path(),
                studies,
                &device,
            )?);
        }
        println!("{}", serde_json::to_string(&m)?);
        return Ok(());
    }
    let device = select_device(&args.device)?;
    let matmul_n = 1024;
    let mut report = ThroughputReport {
        device: format!("{device:?}"),
        threads: candle::utils::get_num_threads(),
        matmul_n,
        matmul_gflops: matmul_gflops(matmul_n, &device)?,
        models: Vec::new(),
        loader: None,
    };
    eprintln!(
        "{} threads; matmul {matmul_n}³: {:.1} GFLOP/s",
        report.threads, report.matmul_gflops
    );
    eprintln!(
        "{:<10} {:<8} {:>7} {:>9} {:>9} {:>9} {:>8} {:>7} {:>9}",
        "model", "config", "batch", "s/step", "train/s", "score/s", "GFLOP/s", "% peak", "peak MiB"
    );
    for name in &args.configs {
        if BenchConfig::named(name).is_none() {
            let known = BenchConfig::NAMES.join(", ");
            return Err(format!("unknown config {name:?}: one of {known}").into());
        }
        let steps = args
            .steps
            .unwrap_or(if name.starts_with("seed") { 3 } else { 10 });
        for &kind in &args.models {
            let m = measure_in_child(
                name,
                kind,
                steps,
                &args.device,
                args.epoch_studies,
                args.precision,
            )?;
            eprintln!(
                "{:<10} {:<8} {:>7} {:>9.3} {:>9.1} {:>9.1} {:>8.1} {:>6.0}% {:>9.0}",
                m.model,
                m.config,
                m.batch,
                m.train_step_s,
                m.train_img_per_s,
                m.score_img_per_s,
                m.achieved_train_gflops,
                100.0 * m.achieved_train_gflops / report.matmul_gflops,
                m.peak_rss_mib.unwrap_or(f64::NAN)
            );
            if let Some(peer) = m.score_peer_statistics_img_per_s {
                eprintln!(
                    "{:<18} scoring the PyTorch peer's six statistics: {peer:.1} img/s",
                    ""
                );
            }
            if let Some(e) = &m.epoch {
                eprintln!(
                    "{:<18} one epoch of {} images as `train` runs it: steps {:.1} s ({:.1} img/s), \
                     epoch end {:.1} s ({:.1} % of the steps), whole epoch {:.1} img/s",
                    "",
                    e.train_images,
                    e.step_s,
                    e.step_img_per_s,
                    e.epoch_end_s,
                    e.overhead_percent,
                    e.epoch_img_per_s
                );
            }
            report.models.push(m);
        }
    }
    if args.loader {
        let scratch = tempfile::tempdir()?;
        let loader = measure_loader(scratch.path(), 64, 64, &device)?;
        eprintln!(
            "loader ({} images, 64 px): decode {:.0} img/s, cache {:.0} img/s, batches {:.0} img/s",
            loader.images, loader.decode_img_per_s, loader.cache_img_per_s, loader.batch_img_per_s
        );
        report.loader = Some(loader);
    }
    let json = serde_json::to_string_pretty(&report)?;
    println!("{json}");
    if let Some(path) = &args.json {
        std::fs::write(path, &json)?;
        eprintln!("written to {path}");
    }
    Ok(())
}
