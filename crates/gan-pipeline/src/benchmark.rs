//! The benchmark: every chosen detector trained with every seed on the same data, each cell
//! scored and evaluated like a single run, then one table (`benchmark.md`, `benchmark.json`) of
//! AUROC mean ± sd over seeds (also per abnormality kind, or with and without metal hardware
//! where the dataset's manifest flags it) and one page (`benchmark.html`) with the ROC curves side by side.
//! Resumable: a finished cell (its `cell.json`) is read back, an interrupted training resumes, and
//! a cell trained with other settings is refused rather than mixed into the table.

use std::collections::{BTreeMap, HashMap};
use std::path::{Path, PathBuf};
use std::time::Instant;

use gan_data::synth::{AnomalyKind, AnomalyKinds, read_anomaly_kinds};
use gan_data::{find_mura_dir, read_manifest_flag};
use gan_metrics::benchmark::{Benchmark, BenchmarkCell, curve_aurocs, curve_label, summarise};
use gan_metrics::plots::roc_png;
use gan_metrics::{EvalOptions, KindResult, ScoreTable, auroc_by_kind, evaluate, write_file};
use gan_models::DetectorKind;
use gan_train::{RunFolder, TrainConfig, TrainError, TrainOptions, train};

use crate::error::{Result, io};
use crate::evaluate::score_and_evaluate;

/// What to benchmark.
pub struct BenchmarkPlan<'a> {
    /// The dataset every cell trains on and is scored on.
    pub data: PathBuf,
    /// The cells go to `out/DETECTOR/seed-N/`, the tables to `out/`.
    pub out: PathBuf,
    pub detectors: Vec<DetectorKind>,
    /// Seeds 0 … N−1 per detector.
    pub seeds: u64,
    /// The training configuration of one cell.
    pub train_config: &'a dyn Fn(DetectorKind, u64) -> TrainConfig,
}

/// What [`run_benchmark`] wrote.
pub struct BenchmarkOutcome {
    pub benchmark: Benchmark,
    pub markdown: String,
    pub html: PathBuf,
}

/// AUROC of every statistic per abnormality kind of the synthetic data.
pub fn auroc_by_anomaly_kind(scores: &ScoreTable, kinds: &AnomalyKinds) -> Vec<KindResult> {
    let names: Vec<&str> = AnomalyKind::ALL.iter().map(|k| k.name()).collect();
    let kind_of = |path: &str| {
        kinds
            .get(path)
            .copied()
            .flatten()
            .map(|k| k.name().to_string())
    };
    auroc_by_kind(scores, &names, &kind_of)
}

/// Subsets of the abnormal images whose AUROC (each against every normal image) a benchmark
/// reports beside the overall one: the synthetic data's anomaly kinds (`synth_anomalies.csv`),
/// or `hardware` and `no_hardware` for a dataset whose `manifest.csv` has a `hardware` column
/// (FracAtlas: metal fixation is a shortcut to the fractured class there).
struct AbnormalSubsets {
    names: Vec<String>,
    /// Relative path (as in `scores.csv`) → subset name.
    of: HashMap<String, String>,
}

impl AbnormalSubsets {
    fn read(data: &Path) -> Result<Option<AbnormalSubsets>> {
        if let Ok(mura) = find_mura_dir(data) {
            let csv = mura.join("synth_anomalies.csv");
            if csv.is_file() {
                let of = read_anomaly_kinds(&csv)?
                    .into_iter()
                    .filter_map(|(path, kind)| Some((path, kind?.name().to_string())))
                    .collect();
                let names = AnomalyKind::ALL.iter().map(|k| k.name().into()).collect();
                return Ok(Some(AbnormalSubsets { names, of }));
            }
        }
        let manifest = data.join("manifest.csv");
        if manifest.is_file()
            && let Some(flags) = read_manifest_flag(&manifest, "hardware")?
        {
            let of = flags
                .into_iter()
                .map(|(path, hardware)| {
                    let subset = if hardware { "hardware" } else { "no_hardware" };
                    (path, subset.to_string())
                })
                .collect();
            let names = vec!["hardware".into(), "no_hardware".into()];
            return Ok(Some(AbnormalSubsets { names, of }));
        }
        Ok(None)
    }

    fn auroc(&self, scores: &ScoreTable) -> BTreeMap<String, BTreeMap<String, Option<f64>>> {
        let names: Vec<&str> = self.names.iter().map(String::as_str).collect();
        auroc_by_kind(scores, &names, &|path| self.of.get(path).cloned())
            .into_iter()
            .map(|k| (k.kind, k.auroc))
            .collect()
    }
}

/// A cell already trained with other settings (another `--epochs`, say) is an error naming the
/// settings that differ: reusing it would mix settings in one table.
fn refuse_other_settings(run: &Path, config: &TrainConfig) -> Result<()> {
    let folder = RunFolder::new(run);
    if !folder.config().is_file() {
        return Ok(());
    }
    let wanted = config.for_run()?;
    let mut saved = folder.read_config()?.for_run()?;
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
    Err(TrainError::Config(format!(
        "{} was trained with other settings ({} differ); choose another --out or remove that folder",
        run.display(),
        differing.join(", ")
    ))
    .into())
}

/// Trains, scores and evaluates one (detector, seed) in `dir`, or reads back its finished result.
fn run_cell(
    config: &TrainConfig,
    dir: &Path,
    subsets: Option<&AbnormalSubsets>,
    device: &candle::Device,
) -> Result<BenchmarkCell> {
    let (kind, seed) = (config.kind, config.seed);
    let run = dir.join("run");
    refuse_other_settings(&run, config)?;
    let done = dir.join("cell.json");
    if done.is_file() {
        let text = std::fs::read(&done).map_err(io(&done))?;
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
        config.epochs,
        run.display()
    );
    let started = Instant::now();
    train(
        config,
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
    let by_kind = match subsets {
        Some(subsets) => subsets.auroc(&ScoreTable::read(&dir.join("scores.csv"))?),
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

/// Runs every cell of `plan` (or reads it back) and writes the tables and the page.
pub fn run_benchmark(plan: &BenchmarkPlan, device: &candle::Device) -> Result<BenchmarkOutcome> {
    if plan.seeds == 0 || plan.detectors.is_empty() {
        return Err(TrainError::Config("a benchmark needs a detector and a seed".into()).into());
    }
    std::fs::create_dir_all(&plan.out).map_err(io(&plan.out))?;
    let subsets = AbnormalSubsets::read(&plan.data)?;
    let (mut cells, mut scores) = (Vec::new(), Vec::new());
    for &kind in &plan.detectors {
        for seed in 0..plan.seeds {
            let dir = plan.out.join(kind.name()).join(format!("seed-{seed}"));
            let config = (plan.train_config)(kind, seed);
            cells.push(run_cell(&config, &dir, subsets.as_ref(), device)?);
            scores.push(dir.join("scores.csv"));
        }
    }
    let benchmark = summarise(&cells);
    let markdown = benchmark.to_markdown();
    write_file(&plan.out.join("benchmark.md"), markdown.as_bytes())?;
    write_file(
        &plan.out.join("benchmark.json"),
        &serde_json::to_vec_pretty(&benchmark)?,
    )?;
    let html_path = plan.out.join("benchmark.html");
    let html = benchmark.to_html(
        &format!("xray-gan benchmark: {}", plan.data.display()),
        &roc_figure(&cells, &scores)?,
    );
    write_file(&html_path, html.as_bytes())?;
    Ok(BenchmarkOutcome {
        benchmark,
        markdown,
        html: html_path,
    })
}

#[cfg(test)]
mod tests {
    use super::*;
    use gan_metrics::ScoreRow;

    /// A folder dataset whose manifest flags hardware gets AUROC with and without it: here the
    /// statistic finds exactly the hardware images, so it is perfect on them and at chance on
    /// the others.
    #[test]
    fn a_manifest_hardware_column_splits_the_abnormal_images() {
        let dir = tempfile::tempdir().unwrap();
        std::fs::write(
            dir.path().join("manifest.csv"),
            "path,class,hardware\nn1.png,NORMAL,0\nn2.png,NORMAL,0\na1.png,ABNORMAL,1\na2.png,ABNORMAL,0\n",
        )
        .unwrap();
        let subsets = AbnormalSubsets::read(dir.path()).unwrap().unwrap();
        let row = |path: &str, abnormal, value| ScoreRow {
            path: path.into(),
            split: "test".into(),
            group: String::new(),
            patient: String::new(),
            study: String::new(),
            abnormal,
            values: vec![value],
        };
        let scores = ScoreTable {
            statistics: vec!["l2".into()],
            rows: vec![
                row("n1.png", false, 1.0),
                row("n2.png", false, 3.0),
                row("a1.png", true, 9.0),
                row("a2.png", true, 2.0),
            ],
        };
        let auroc = subsets.auroc(&scores);
        assert_eq!(auroc["hardware"]["l2"], Some(1.0));
        assert_eq!(auroc["no_hardware"]["l2"], Some(0.5));
        // without a manifest or synthetic data, no subsets
        let empty = tempfile::tempdir().unwrap();
        assert!(AbnormalSubsets::read(empty.path()).unwrap().is_none());
    }
}
