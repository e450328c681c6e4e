//! `xray-gan benchmark`: the flags of [`gan_pipeline::run_benchmark`] — every chosen detector
//! trained with every seed on the same data, scored and evaluated, summarised as AUROC mean ± sd
//! over seeds (`benchmark.md`, `benchmark.json`, `benchmark.html`); resumable.

use std::path::PathBuf;

use anyhow::{Result, bail};
use clap::Args;
use gan_models::{DetectorKind, select_device};
use gan_pipeline::{BenchmarkPlan, run_benchmark};
use gan_train::TrainConfig;

use crate::train::SetupArgs;

#[derive(Debug, Args)]
pub struct BenchmarkArgs {
    /// Dataset folder (MURA-v1.1, the folder holding it, or ROOT/<split>/<class>/ images).
    #[arg(long)]
    data: PathBuf,
    /// Folder for the cells (MODEL/seed-N/) and the tables.
    #[arg(long, default_value = "benchmark-output")]
    out: PathBuf,
    /// Detectors, comma separated, or `all`.
    #[arg(long, value_delimiter = ',', default_value = "all")]
    models: Vec<String>,
    /// Seeds per model: 0, 1, … N−1.
    #[arg(long, default_value_t = 3)]
    seeds: u64,
    #[command(flatten)]
    setup: SetupArgs,
    /// Epochs of every detector (one with phases splits them as its settings say).
    #[arg(long, default_value_t = 20)]
    epochs: u64,
    /// Adam learning rate of every detector (default: each detector's paper's).
    #[arg(long)]
    lr: Option<f64>,
    /// A detector setting, KEY=VALUE, repeatable, given to every detector benchmarked (so
    /// usually with one `--models`): e.g. `--models autoencoder --set bottleneck=4`.
    #[arg(long = "set", value_name = "KEY=VALUE")]
    settings: Vec<String>,
}

fn detector_kinds(names: &[String]) -> Result<Vec<DetectorKind>> {
    if names.iter().any(|n| n == "all") {
        return Ok(DetectorKind::all().collect());
    }
    let mut kinds = Vec::new();
    for name in names {
        let kind: DetectorKind = name.parse()?;
        if !kinds.contains(&kind) {
            kinds.push(kind);
        }
    }
    if kinds.is_empty() {
        bail!(gan_train::TrainError::Config(
            "--models names no detector".into()
        ));
    }
    Ok(kinds)
}

impl BenchmarkArgs {
    /// The configuration of one cell; `--set` is checked against the detector's settings.
    fn train_config(&self, kind: DetectorKind, seed: u64) -> Result<TrainConfig> {
        let mut c = TrainConfig::new(kind, self.data.clone());
        self.setup.apply(&mut c);
        c.epochs = self.epochs;
        c.seed = seed;
        if let Some(lr) = self.lr {
            c.optimiser.learning_rate = lr;
        }
        c.settings = kind.with_assignments(&c.settings, &self.settings)?;
        Ok(c)
    }
}

pub fn run(args: BenchmarkArgs) -> Result<()> {
    let detectors = detector_kinds(&args.models)?;
    if args.seeds == 0 {
        bail!(gan_train::TrainError::Config(
            "--seeds must be at least 1".into()
        ));
    }
    let device = select_device(&args.setup.device)?;
    // every detector takes every --set before anything trains
    for &kind in &detectors {
        args.train_config(kind, 0)?;
    }
    let train_config = |kind, seed| {
        args.train_config(kind, seed)
            .expect("checked for every detector above")
    };
    let plan = BenchmarkPlan {
        data: args.data.clone(),
        out: args.out.clone(),
        detectors,
        seeds: args.seeds,
        train_config: &train_config,
    };
    let outcome = run_benchmark(&plan, &device)?;
    println!("{}", outcome.markdown);
    println!(
        "benchmark of {} detectors × {} seeds: {}",
        plan.detectors.len(),
        args.seeds,
        outcome.html.display()
    );
    Ok(())
}
