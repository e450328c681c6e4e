//! Evaluation: `metrics.json`, `roc.png`, `pr.png`, `histograms.png` (and `losses.png`), and a
//! self-contained `report.html`; with the run, the report also shows training curves, the last
//! sample sheet and the most and least anomalous images with their residual maps.

use std::collections::BTreeMap;
use std::path::{Path, PathBuf};

use gan_data::{DatasetFormat, find_mura_dir, load_model_input};
use gan_metrics::evaluate::with_derived_statistics;
use gan_metrics::plots::{histograms_png, losses_png, pr_png, roc_png};
use gan_metrics::report::{GalleryItem, ReportParts, render_html};
use gan_metrics::{
    CALIBRATION_SPLIT, EvalOptions, FUSED, FUSED_TWO_SIDED, ScoreTable, evaluate, write_file,
};
use gan_models::kernels::with_precision;
use gan_models::{Detector, select_device};
use gan_train::{RunFolder, TrainConfig, WhichWeights, preprocess_of};

use crate::error::{Result, io};
use crate::maps::triptych;
use crate::score::{ScoredWith, score_run, scoring_precision};

/// What to evaluate and how.
#[derive(Debug, Clone)]
pub struct EvalSettings {
    /// `scores.csv` written by [`score_run`].
    pub scores: PathBuf,
    /// Output folder.
    pub out: PathBuf,
    /// Run folder, for training curves, samples, the anomaly-map gallery and the detector's
    /// primary statistic.
    pub run: Option<PathBuf>,
    /// The headline statistic, fixed before looking at results; `None`: the run's detector's
    /// own ([`gan_models::Register::PRIMARY`]), or `fused_2s` without a run.
    pub primary: Option<String>,
    /// Quantile of calibration scores used as the unsupervised threshold.
    pub calibration_quantile: f64,
    /// Images per gallery row (most and least anomalous).
    pub gallery: usize,
}

impl EvalSettings {
    /// The defaults for `scores` into `out`, with the run when there is one.
    pub fn new(scores: PathBuf, out: PathBuf, run: Option<PathBuf>) -> Self {
        EvalSettings {
            scores,
            out,
            run,
            primary: None,
            calibration_quantile: 0.95,
            gallery: 8,
        }
    }

    /// The primary statistic these settings choose (see [`EvalSettings::primary`]).
    pub fn primary_statistic(&self) -> Result<String> {
        if let Some(primary) = &self.primary {
            return Ok(primary.clone());
        }
        match &self.run {
            Some(run) => {
                let config = RunFolder::new(run).read_config()?;
                Ok(config.kind.registration().primary.to_string())
            }
            None => Ok(FUSED_TWO_SIDED.to_string()),
        }
    }
}

/// The entries drawn in ROC/PR/histogram figures: the base statistics and the two fused ones
/// (the two-sided versions of each statistic would double the curves).
fn drawn_only<T: Clone>(per_statistic: &BTreeMap<String, T>) -> BTreeMap<String, T> {
    per_statistic
        .iter()
        .filter(|(name, _)| !name.ends_with("_2s") || *name == FUSED_TWO_SIDED)
        .map(|(name, v)| (name.clone(), v.clone()))
        .collect()
}

/// What `demo` and `benchmark` do with each trained run: score its best weights into
/// `dir/scores.csv` and evaluate them into `dir/eval/` with the default settings (the
/// detector's primary statistic, the 95 % calibration quantile). Returns the metrics.
pub fn score_and_evaluate(
    run: &Path,
    dir: &Path,
    device: &candle::Device,
) -> Result<gan_metrics::Metrics> {
    let scores = dir.join("scores.csv");
    score_run(run, None, &scores, None, WhichWeights::Best, device, 64)?;
    evaluate_scores(&EvalSettings::new(
        scores,
        dir.join("eval"),
        Some(run.to_path_buf()),
    ))
}

/// Writes metrics.json, the figures and report.html; returns the metrics.
pub fn evaluate_scores(args: &EvalSettings) -> Result<gan_metrics::Metrics> {
    let table = ScoreTable::read(&args.scores)?;
    let mut primary = args.primary_statistic()?;
    // a headline that is not among the scores is an error, not a silent substitute; only the
    // fused statistics, which need two normal validation images, fall back, saying so
    let known = with_derived_statistics(&table).statistics;
    if (primary == FUSED || primary == FUSED_TWO_SIDED)
        && !known.contains(&primary)
        && let Some(first) = table.statistics.first()
    {
        tracing::warn!(
            "{}: fewer than two normal validation images, so no {primary} statistic: {first} is the primary",
            args.scores.display()
        );
        primary = first.clone();
    }
    if !known.contains(&primary) {
        return Err(gan_metrics::MetricsError::Input {
            path: args.scores.clone(),
            message: format!(
                "has no statistic {primary:?} to report as primary (it has {}); choose one with --primary",
                known.join(", ")
            ),
        }
        .into());
    }
    let options = EvalOptions {
        primary,
        calibration_quantile: args.calibration_quantile,
    };
    let (metrics, curves) = evaluate(&table, &options);
    std::fs::create_dir_all(&args.out).map_err(io(&args.out))?;
    let json = serde_json::to_vec_pretty(&metrics)?;
    write_file(&args.out.join("metrics.json"), &json)?;

    let roc = drawn_only(&curves.roc);
    let pr = drawn_only(&curves.pr);
    let dist = drawn_only(&curves.distributions);
    let aurocs = metrics
        .image_level
        .iter()
        .map(|(k, m)| (k.clone(), m.auroc))
        .collect();
    let aps = metrics
        .image_level
        .iter()
        .map(|(k, m)| (k.clone(), m.ap))
        .collect();
    let mut figures = vec![
        ("ROC curves".to_string(), "roc.png", roc_png(&roc, &aurocs)?),
        (
            "Precision–recall curves".to_string(),
            "pr.png",
            pr_png(&pr, &aps)?,
        ),
        (
            "Scores of normal and abnormal images".to_string(),
            "histograms.png",
            histograms_png(&dist)?,
        ),
    ];
    let mut parts = ReportParts {
        title: format!("xray-gan report: {}", args.scores.display()),
        ..Default::default()
    };
    if let Some(run) = &args.run {
        let folder = RunFolder::new(run);
        match read_losses(&folder.losses()) {
            Ok(text) => figures.push(("Training losses".into(), "losses.png", losses_png(&text)?)),
            Err(note) => {
                tracing::warn!("{note}");
                parts.notes.push(note);
            }
        }
        if let Some(sheet) = last_sample_sheet(&folder) {
            parts.figures.push((
                "Last sample sheet: inputs | reconstructions | generated images".into(),
                std::fs::read(&sheet).map_err(io(&sheet))?,
            ));
        }
        let (config, model, weights, base) = scoring_weights(&folder, &args.scores, &mut parts)?;
        parts.notes.push(format!(
            "Run {}: {} at {}×{}, width {}, trained {} epochs on {}; scored with {}.",
            run.display(),
            config.kind,
            config.model.image_size,
            config.model.image_size,
            config.model.width,
            config.epochs,
            config.data.root.display(),
            weights.display()
        ));
        let (most, least) = gallery(
            &table,
            &metrics.primary.statistic,
            &config,
            &base,
            model.as_ref(),
            args.gallery,
        )?;
        parts.most_anomalous = most;
        parts.least_anomalous = least;
    }
    for (_, name, png) in &figures {
        write_file(&args.out.join(name), png)?;
    }
    let mut all_figures: Vec<(String, Vec<u8>)> = figures
        .into_iter()
        .map(|(caption, _, png)| (caption, png))
        .collect();
    all_figures.append(&mut parts.figures);
    parts.figures = all_figures;
    let html = render_html(&metrics, &parts);
    write_file(&args.out.join("report.html"), html.as_bytes())?;
    Ok(metrics)
}

/// The run's configuration, the detector with the weights that produced `scores` (from the
/// [`ScoredWith`] record beside it), those weights' path and the folder the scores' image paths
/// are relative to. Without a record (scores from an older version), the run's best weights and
/// its own data, said in a note; weights changed since scoring are said too.
fn scoring_weights(
    folder: &RunFolder,
    scores: &Path,
    parts: &mut ReportParts,
) -> Result<(TrainConfig, Box<dyn Detector>, PathBuf, PathBuf)> {
    let cpu = select_device("cpu")?;
    // the recorded weights, or the run's file of that name where the run folder moved since
    let weights = ScoredWith::read(scores)?.and_then(|record| {
        if record.weights.is_file() {
            return Some(record);
        }
        let weights = folder.root.join(record.weights.file_name()?);
        weights
            .is_file()
            .then_some(ScoredWith { weights, ..record })
    });
    let Some(record) = weights else {
        let (config, model, weights) = folder.load_model(WhichWeights::Best, &cpu)?;
        parts.notes.push(format!(
            "{} has no provenance record beside it, or the weights it names are gone: the \
             gallery uses the run's best weights and its own data, which may not be what \
             produced these scores.",
            scores.display()
        ));
        let base = path_base(&config.data.root, config.data.format);
        return Ok((config, model, weights, base));
    };
    let config = folder.read_config()?;
    let checkpoint = gan_models::read_checkpoint(&record.weights, &cpu)?;
    let now = checkpoint.metadata.get("content_sha256");
    if record.weights_sha256.is_some() && now != record.weights_sha256.as_ref() {
        let note = format!(
            "{} changed after these scores were computed (training went on?): the gallery's \
             reconstructions come from the weights as they are now.",
            record.weights.display()
        );
        tracing::warn!("{note}");
        parts.notes.push(note);
    }
    let model = checkpoint.detector(&cpu)?;
    let base = path_base(&record.data, record.format);
    Ok((config, model, record.weights, base))
}

/// A run's `losses.csv`, or the sentence that says why the report has no loss figure (a missing
/// file, or one that cannot be read, is said, not silently dropped).
fn read_losses(path: &Path) -> std::result::Result<String, String> {
    std::fs::read_to_string(path).map_err(|e| match e.kind() {
        std::io::ErrorKind::NotFound => format!(
            "No training-loss figure: {} is missing (the run has not finished an epoch).",
            path.display()
        ),
        _ => format!(
            "No training-loss figure: {} cannot be read: {e}.",
            path.display()
        ),
    })
}

fn last_sample_sheet(folder: &RunFolder) -> Option<PathBuf> {
    let mut sheets: Vec<PathBuf> = std::fs::read_dir(folder.samples())
        .ok()?
        .flatten()
        .map(|e| e.path())
        .filter(|p| p.extension().is_some_and(|e| e == "png"))
        .collect();
    sheets.sort();
    sheets.pop()
}

/// The folder that `scores.csv` paths are relative to, for a dataset at `root`.
fn path_base(root: &Path, format: DatasetFormat) -> PathBuf {
    match format.resolve(root) {
        DatasetFormat::Mura => find_mura_dir(root).unwrap_or_else(|_| root.to_path_buf()),
        _ => root.to_path_buf(),
    }
}

/// The `n` most and least anomalous evaluated images by `statistic`, each as image |
/// reconstruction | residual overlay.
fn gallery(
    table: &ScoreTable,
    statistic: &str,
    config: &TrainConfig,
    base: &Path,
    model: &dyn Detector,
    n: usize,
) -> Result<(Vec<GalleryItem>, Vec<GalleryItem>)> {
    let derived = with_derived_statistics(table);
    let Some(k) = derived.statistics.iter().position(|s| s == statistic) else {
        return Ok((Vec::new(), Vec::new()));
    };
    let mut rows: Vec<_> = derived
        .rows
        .iter()
        .filter(|r| r.split != CALIBRATION_SPLIT)
        .collect();
    rows.sort_by(|a, b| b.values[k].total_cmp(&a.values[k]));
    let preprocess = preprocess_of(config);
    let precision = scoring_precision(config, &candle::Device::Cpu);
    let render = |rows: &[&gan_metrics::ScoreRow]| -> Result<Vec<GalleryItem>> {
        let mut items = Vec::new();
        for row in rows {
            let path = base.join(&row.path);
            let Ok(pixels) = load_model_input(&path, &preprocess) else {
                tracing::warn!("{}: cannot be read for the gallery", path.display());
                continue;
            };
            let s = preprocess.size as usize;
            let x = candle::Tensor::from_vec(pixels, (1, 1, s, s), &candle::Device::Cpu)?;
            // in the number format the scores were made in
            let scores = with_precision(precision, || model.score(&x))?;
            let recon: Vec<f32> = scores.reconstruction.flatten_all()?.to_vec1()?;
            let residual: Vec<f32> = scores.residual.flatten_all()?.to_vec1()?;
            let input: Vec<f32> = x.flatten_all()?.to_vec1()?;
            items.push(GalleryItem {
                caption: format!(
                    "{} [{}] {statistic} = {:.4}",
                    row.path,
                    if row.abnormal { "abnormal" } else { "normal" },
                    row.values[k]
                ),
                png: triptych(&input, &recon, &residual, s)?,
            });
        }
        Ok(items)
    };
    let most: Vec<_> = rows.iter().take(n).copied().collect();
    let least: Vec<_> = rows.iter().rev().take(n).copied().collect();
    Ok((render(&most)?, render(&least)?))
}

#[cfg(test)]
mod tests {
    use super::read_losses;

    #[test]
    fn a_missing_or_unreadable_losses_file_is_said_not_dropped() {
        let dir = tempfile::tempdir().unwrap();
        let path = dir.path().join("losses.csv");
        let missing = read_losses(&path).unwrap_err();
        assert!(
            missing.contains("is missing") && missing.contains("losses.csv"),
            "{missing}"
        );
        std::fs::create_dir(&path).unwrap(); // a folder where the file should be
        let unreadable = read_losses(&path).unwrap_err();
        assert!(unreadable.contains("cannot be read"), "{unreadable}");
        std::fs::remove_dir(&path).unwrap();
        std::fs::write(&path, "epoch,step\n0,1\n").unwrap();
        assert_eq!(read_losses(&path).unwrap(), "epoch,step\n0,1\n");
    }
}
