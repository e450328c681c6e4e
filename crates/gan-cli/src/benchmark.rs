//! `xray-gan benchmark`: every chosen model kind trained with every seed on the same data, each
//! scored and evaluated like a single run, then one table (`benchmark.md`, `benchmark.json`) of
//! AUROC mean ± sd over seeds and one page (`benchmark.html`) with the ROC curves side by side.
//! Resumable: a finished cell (its `cell.json`) is read back, an interrupted training resumes.

use std::collections::BTreeMap;
use std::path::{Path, PathBuf};
use std::time::Instant;

use anyhow::{Context, Result, bail};
use clap::Args;
use gan_data::find_mura_dir;
use gan_data::synth::{AnomalyKinds, read_anomaly_kinds};
use gan_metrics::benchmark::{BenchmarkCell, curve_aurocs, curve_label, summarise};
use gan_metrics::plots::roc_png;
use gan_metrics::{EvalOptions, ScoreTable, evaluate, write_file};
use gan_models::{ModelKind, select_device};
use gan_train::{RunFolder, TrainConfig, TrainOptions, train};

use crate::demo::auroc_by_kind;
use crate::eval::score_and_evaluate;
use crate::train::SetupArgs;

#[derive(Debug, Args)]
pub struct BenchmarkArgs {
    /// Dataset folder (MURA-v1.1, the folder holding it, or ROOT/<split>/<class>/ images).
    #[arg(long)]
    data: PathBuf,
    /// Folder for the cells (MODEL/seed-N/) and the tables.
    #[arg(long, default_value = "benchmark-output")]
    out: PathBuf,
    /// Model kinds, comma separated, or `all`.
    #[arg(long, value_delimiter = ',', default_value = "all")]
    models: Vec<String>,
    /// Seeds per model: 0, 1, … N−1.
    #[arg(long, default_value_t = 3)]
    seeds: u64,
    #[command(flatten)]
    setup: SetupArgs,
    /// Epochs of every model (f-AnoGAN: half GAN, half encoder).
    #[arg(long, default_value_t = 20)]
    epochs: u64,
    /// Adam learning rate of every model (default: each model's paper's).
    #[arg(long)]
    lr: Option<f64>,
}

fn model_kinds(names: &[String]) -> Result<Vec<ModelKind>> {
    if names.iter().any(|n| n == "all") {
        return Ok(ModelKind::ALL.to_vec());
    }
    let mut kinds = Vec::new();
    for name in names {
        let kind: ModelKind = name.parse()?;
        if !kinds.contains(&kind) {
            kinds.push(kind);
        }
    }
    if kinds.is_empty() {
        bail!(gan_train::TrainError::Config(
            "--models names no model".into()
        ));
    }
    Ok(kinds)
}

impl BenchmarkArgs {
    fn train_config(&self, kind: ModelKind, seed: u64) -> TrainConfig {
        let mut c = TrainConfig::new(kind, self.data.clone());
        self.setup.apply(&mut c);
        c.epochs = self.epochs;
        c.seed = seed;
        if let Some(lr) = self.lr {
            c.optimiser.learning_rate = lr;
        }
        c
    }
}

/// The abnormality kind of each image, where the data has `synth_anomalies.csv`.
fn anomaly_kinds(data: &Path) -> Result<Option<AnomalyKinds>> {
    let Ok(mura) = find_mura_dir(data) else {
        return Ok(None);
    };
    let csv = mura.join("synth_anomalies.csv");
    if !csv.is_file() {
        return Ok(None);
    }
    Ok(Some(read_anomaly_kinds(&csv)?))
}

/// A cell already trained with other settings (another `--epochs`, say) is an error naming the
/// settings that differ: reusing it would mix settings in one table.
fn refuse_other_settings(run: &Path, config: &TrainConfig) -> Result<()> {
    let folder = RunFolder::new(run);
    if !folder.config().is_file() {
        return Ok(());
    }
    let wanted = config.with_phases_fixed();
    let mut saved = folder.read_config()?;
    // neither changes what is trained
    saved.program_version = wanted.program_version.clone();
    saved.data.cache_dir = wanted.data.cache_dir.clone();
    if saved == wanted {
        return Ok(());
    }
    let (a, b) = (
        serde_json::to_value(&saved)?,
        serde_json::to_value(&wanted)?,
    );
    let differing: Vec<String> = match (a.as_object(), b.as_object()) {
        (Some(a), Some(b)) => b
            .iter()
            .filter(|(k, v)| a.get(*k) != Some(*v))
            .map(|(k, _)| k.clone())
            .collect(),
        _ => Vec::new(),
    };
    bail!(gan_train::TrainError::Config(format!(
        "{} was trained with other settings ({} differ); choose another --out or remove that folder",
        run.display(),
        differing.join(", ")
    )))
}

/// Trains, scores and evaluates one (model, seed) in `dir`, or reads back its finished result.
fn run_cell(
    args: &BenchmarkArgs,
    kind: ModelKind,
    seed: u64,
    dir: &Path,
    kinds: Option<&AnomalyKinds>,
    device: &candle::Device,
) -> Result<BenchmarkCell> {
    let run = dir.join("run");
    let config = args.train_config(kind, seed);
    refuse_other_settings(&run, &config)?;
    let done = dir.join("cell.json");
    if done.is_file() {
        let text = std::fs::read(&done).with_context(|| done.display().to_string())?;
        if let Ok(cell) = serde_json::from_slice::<BenchmarkCell>(&text) {
            tracing::info!(
                "{kind} seed {seed}: done before, reading {}",
                done.display()
            );
            return Ok(cell);
        }
        tracing::warn!("{}: unreadable, computing the cell again", done.display());
    }
    let resumed = RunFolder::new(&run).latest_checkpoint().exists();
    tracing::info!(
        "{kind} seed {seed}: training {} epochs into {}",
        args.epochs,
        run.display()
    );
    let started = Instant::now();
    train(
        &config,
        &run,
        device,
        &TrainOptions {
            resume: resumed,
            progress: true,
            stop: None,
        },
    )?;
    let train_seconds = started.elapsed().as_secs_f64();
    let metrics = score_and_evaluate(&run, dir, device)?;
    let by_kind = match kinds {
        Some(kinds) => auroc_by_kind(&ScoreTable::read(&dir.join("scores.csv"))?, kinds)
            .into_iter()
            .map(|k| (k.kind, k.auroc))
            .collect(),
        None => BTreeMap::new(),
    };
    let cell = BenchmarkCell {
        model: kind.name().into(),
        seed,
        train_seconds,
        resumed,
        metrics,
        by_kind,
    };
    write_file(&done, &serde_json::to_vec_pretty(&cell)?)?;
    Ok(cell)
}

/// ROC curves of every cell's primary statistic, from its scores (`scores[i]` is `cells[i]`'s).
fn roc_figure(cells: &[BenchmarkCell], scores: &[PathBuf]) -> Result<Vec<u8>> {
    let mut curves = BTreeMap::new();
    for (cell, scores) in cells.iter().zip(scores) {
        let table = ScoreTable::read(scores)?;
        let (_, all) = evaluate(&table, &EvalOptions::default());
        let statistic = &cell.metrics.primary.statistic;
        if let Some(curve) = all.roc.get(statistic) {
            curves.insert(
                curve_label(&cell.model, cell.seed, statistic),
                curve.clone(),
            );
        }
    }
    Ok(roc_png(&curves, &curve_aurocs(cells))?)
}

pub fn run(args: BenchmarkArgs) -> Result<()> {
    let kinds_to_run = model_kinds(&args.models)?;
    if args.seeds == 0 {
        bail!(gan_train::TrainError::Config(
            "--seeds must be at least 1".into()
        ));
    }
    let device = select_device(&args.setup.device)?;
    std::fs::create_dir_all(&args.out).with_context(|| args.out.display().to_string())?;
    let kinds = anomaly_kinds(&args.data)?;
    let (mut cells, mut scores) = (Vec::new(), Vec::new());
    for &kind in &kinds_to_run {
        for seed in 0..args.seeds {
            let dir = args.out.join(kind.name()).join(format!("seed-{seed}"));
            cells.push(run_cell(&args, kind, seed, &dir, kinds.as_ref(), &device)?);
            scores.push(dir.join("scores.csv"));
        }
    }
    let benchmark = summarise(&cells);
    let markdown = benchmark.to_markdown();
    write_file(&args.out.join("benchmark.md"), markdown.as_bytes())?;
    write_file(
        &args.out.join("benchmark.json"),
        &serde_json::to_vec_pretty(&benchmark)?,
    )?;
    let html = benchmark.to_html(
        &format!("xray-gan benchmark: {}", args.data.display()),
        &roc_figure(&cells, &scores)?,
    );
    write_file(&args.out.join("benchmark.html"), html.as_bytes())?;
    println!("{markdown}");
    println!(
        "benchmark of {} models × {} seeds: {}",
        kinds_to_run.len(),
        args.seeds,
        args.out.join("benchmark.html").display()
    );
    Ok(())
}
