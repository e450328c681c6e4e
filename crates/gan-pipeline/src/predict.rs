//! `predict`: new images in (PNG, JPEG or DICOM files or folders, no labels), a decision per image out. The
//! threshold travels with the run: [`calibrate_run`] stores the run's scores on its normal
//! validation images (`RUN/calibration_scores.csv`, written after `train`); an image is flagged
//! when its primary statistic exceeds their `threshold_quantile` (95 % by default), and its
//! percentile among them says how unusual it is. Images stream through in batches, so memory
//! stays flat however many there are.

use std::io::Write;
use std::path::{Path, PathBuf};

use gan_data::{Preprocess, is_image_file, load_model_input};
use gan_metrics::evaluate::with_derived_statistics;
use gan_metrics::report::{escape, page_start};
use gan_metrics::threshold::quantile;
use gan_metrics::{CALIBRATION_SPLIT, ScoreRow, ScoreTable, ScoreWriter, write_file};
use gan_models::kernels::with_precision;
use gan_train::{RunFolder, TrainError, WhichWeights, load_training_data, preprocess_of};
use indicatif::{ProgressBar, ProgressStyle};

use crate::error::{PipelineError, Result, io};
use crate::maps::triptych;
use crate::score::{score_set, scoring_precision};

/// The file in a run folder holding its scores on its normal validation images.
pub const CALIBRATION_SCORES: &str = "calibration_scores.csv";

/// Images listed in `predictions.html` (the highest scores first).
const PAGE_ROWS: usize = 200;

/// What to predict and how.
#[derive(Debug, Clone)]
pub struct PredictSettings {
    pub run: PathBuf,
    pub out: PathBuf,
    /// Image files and folders (walked recursively).
    pub inputs: Vec<PathBuf>,
    /// Quantile of the normal validation scores used as the threshold.
    pub threshold_quantile: f64,
    /// Write an anomaly-map overlay per image into `out/maps/`.
    pub maps: bool,
    pub batch_size: usize,
    /// An unreadable image is an error instead of a counted skip.
    pub strict: bool,
}

/// What [`predict`] did.
#[derive(Debug, Clone)]
pub struct PredictSummary {
    pub images: usize,
    pub flagged: usize,
    /// (path, reason) of every input that could not be read.
    pub skipped: Vec<(PathBuf, String)>,
    pub primary: String,
    pub threshold: f64,
    pub csv: PathBuf,
    pub html: PathBuf,
}

/// Scores the run's normal validation images with its best weights into
/// `RUN/calibration_scores.csv` (reading the data it trained on).
pub fn calibrate_run(run: &Path, device: &candle::Device, batch_size: usize) -> Result<PathBuf> {
    let folder = RunFolder::new(run);
    let (config, model, _) = folder.load_model(WhichWeights::Best, device)?;
    let calibration = load_training_data(&config, false)?.calibration;
    let path = run.join(CALIBRATION_SCORES);
    let names: Vec<&str> = model.statistics().iter().map(|s| s.name()).collect();
    let mut out = ScoreWriter::create(&path, &names)?;
    with_precision(scoring_precision(&config, device), || {
        score_set(
            model.as_ref(),
            &calibration,
            Some(CALIBRATION_SPLIT),
            batch_size,
            device,
            &mut out,
            &ProgressBar::hidden(),
        )
    })?;
    out.finish()?;
    Ok(path)
}

/// Every image file under `inputs` (folders walked recursively, in sorted order); what is not an
/// image file goes to `skipped` with its reason.
fn collect_images(
    inputs: &[PathBuf],
    skipped: &mut Vec<(PathBuf, String)>,
) -> Result<Vec<PathBuf>> {
    fn walk(
        dir: &Path,
        depth: usize,
        out: &mut Vec<PathBuf>,
        skipped: &mut Vec<(PathBuf, String)>,
    ) -> Result<()> {
        let mut entries: Vec<PathBuf> = std::fs::read_dir(dir)
            .map_err(io(dir))?
            .flatten()
            .map(|e| e.path())
            .collect();
        entries.sort();
        for entry in entries {
            if entry.is_dir() {
                // a fixed depth: a looping symbolic link cannot recurse forever
                if depth < 32 {
                    walk(&entry, depth + 1, out, skipped)?;
                }
            } else if entry.is_file() && is_image_file(&entry) {
                out.push(entry);
            } else {
                skipped.push((entry, "not a .png/.jpg/.jpeg/.dcm file or DICOM".into()));
            }
        }
        Ok(())
    }
    let mut images = Vec::new();
    for input in inputs {
        if input.is_dir() {
            walk(input, 0, &mut images, skipped)?;
        } else if input.is_file() {
            images.push(input.clone());
        } else {
            return Err(PipelineError::Io {
                path: input.clone(),
                source: std::io::Error::new(std::io::ErrorKind::NotFound, "no such file or folder"),
            });
        }
    }
    Ok(images)
}

/// The run's calibration scores, computed and stored first if the run has none yet.
fn calibration_table(run: &Path, device: &candle::Device, batch_size: usize) -> Result<ScoreTable> {
    let path = run.join(CALIBRATION_SCORES);
    if !path.is_file() {
        tracing::info!(
            "{} has no {CALIBRATION_SCORES} yet: scoring its normal validation images once",
            run.display()
        );
        calibrate_run(run, device, batch_size)?;
    }
    let table = ScoreTable::read(&path)?;
    if table.rows.len() < 2 {
        return Err(TrainError::Run {
            path: run.to_path_buf(),
            message: format!(
                "{CALIBRATION_SCORES} holds {} normal validation images; a threshold needs at least 2",
                table.rows.len()
            ),
        }
        .into());
    }
    Ok(table)
}

/// One scored image, kept for the ranking page.
struct Ranked {
    path: PathBuf,
    score: f64,
    percentile: f64,
    flagged: bool,
    map: Option<String>,
}

/// Scores every image of `settings.inputs` with the run's best weights and writes
/// `predictions.csv`, `predictions.html` and, with `maps`, `maps/NNNNNN-<name>.png`.
pub fn predict(settings: &PredictSettings, device: &candle::Device) -> Result<PredictSummary> {
    if !(0.0..=1.0).contains(&settings.threshold_quantile) {
        return Err(TrainError::Config(format!(
            "--threshold-quantile must be in [0, 1], got {}",
            settings.threshold_quantile
        ))
        .into());
    }
    let folder = RunFolder::new(&settings.run);
    let (config, model, weights) = folder.load_model(WhichWeights::Best, device)?;
    let calibration = calibration_table(&settings.run, device, settings.batch_size)?;
    let statistics: Vec<String> = model
        .statistics()
        .iter()
        .map(|s| s.name().to_string())
        .collect();
    if calibration.statistics != statistics {
        return Err(TrainError::Run {
            path: settings.run.clone(),
            message: format!(
                "{CALIBRATION_SCORES} has the statistics {:?}, the model {statistics:?}: remove it to recompute",
                calibration.statistics
            ),
        }
        .into());
    }
    let primary = model.primary_statistic().to_string();
    let derived = with_derived_statistics(&calibration);
    let Some(at) = derived.statistics.iter().position(|s| *s == primary) else {
        return Err(TrainError::Config(format!("no statistic {primary} to flag images by")).into());
    };
    let mut normal: Vec<f64> = derived.rows.iter().map(|r| r.values[at]).collect();
    normal.sort_by(f64::total_cmp);
    let threshold = quantile(&normal, settings.threshold_quantile).unwrap_or(f64::INFINITY);

    let mut skipped = Vec::new();
    let images = collect_images(&settings.inputs, &mut skipped)?;
    std::fs::create_dir_all(&settings.out).map_err(io(&settings.out))?;
    let maps_dir = settings.out.join("maps");
    if settings.maps {
        std::fs::create_dir_all(&maps_dir).map_err(io(&maps_dir))?;
    }
    let csv_path = settings.out.join("predictions.csv");
    let partial = settings.out.join("predictions.csv.partial");
    let file = std::fs::File::create(&partial).map_err(io(&partial))?;
    let mut csv = csv::Writer::from_writer(std::io::BufWriter::new(file));
    let mut header = vec!["path".to_string()];
    header.extend(statistics.iter().cloned());
    header.extend([
        "primary_statistic".into(),
        "primary".into(),
        "percentile".into(),
        "flagged".into(),
    ]);
    csv.write_record(&header)
        .map_err(|e| csv_error(&partial, e))?;

    let preprocess: Preprocess = preprocess_of(&config);
    let s = preprocess.size as usize;
    let bar = ProgressBar::new(images.len() as u64).with_style(
        ProgressStyle::with_template(
            "predicting {bar:30} {pos}/{len} images  {per_sec}  eta {eta}",
        )
        .unwrap_or_else(|_| ProgressStyle::default_bar()),
    );
    let mut ranked: Vec<Ranked> = Vec::with_capacity(images.len());
    let precision = scoring_precision(&config, device);
    for chunk in images.chunks(settings.batch_size.max(1)) {
        let mut pixels = Vec::with_capacity(chunk.len() * s * s);
        let mut read: Vec<&PathBuf> = Vec::with_capacity(chunk.len());
        for path in chunk {
            match load_model_input(path, &preprocess) {
                Ok(p) => {
                    pixels.extend(p);
                    read.push(path);
                }
                Err(e) if !settings.strict => {
                    tracing::warn!("skipping {e}");
                    skipped.push((path.clone(), e.to_string()));
                }
                Err(e) => return Err(e.into()),
            }
        }
        bar.inc(chunk.len() as u64);
        if read.is_empty() {
            continue;
        }
        let x = candle::Tensor::from_vec(pixels, (read.len(), 1, s, s), device)?;
        let scores = with_precision(precision, || model.score(&x))?;
        // the fused statistics are standardised on the calibration rows only
        let mut table = calibration.clone();
        let first = table.rows.len();
        for k in 0..read.len() {
            table.rows.push(ScoreRow {
                path: read[k].display().to_string(),
                split: "predict".into(),
                group: String::new(),
                patient: String::new(),
                study: String::new(),
                abnormal: false,
                values: scores.values.iter().map(|c| c[k] as f64).collect(),
            });
        }
        let table = with_derived_statistics(&table);
        let (input, recon, residual) = if settings.maps {
            (
                Some(x.flatten_from(1)?.to_vec2::<f32>()?),
                Some(scores.reconstruction.flatten_from(1)?.to_vec2::<f32>()?),
                Some(scores.residual.flatten_from(1)?.to_vec2::<f32>()?),
            )
        } else {
            (None, None, None)
        };
        for (k, row) in table.rows[first..].iter().enumerate() {
            let score = row.values[at];
            let below = normal.partition_point(|v| *v <= score);
            let percentile = 100.0 * below as f64 / normal.len() as f64;
            let flagged = score > threshold;
            let mut record: Vec<String> = vec![row.path.clone()];
            record.extend(row.values[..statistics.len()].iter().map(|v| v.to_string()));
            record.extend([
                primary.clone(),
                score.to_string(),
                format!("{percentile:.2}"),
                u8::from(flagged).to_string(),
            ]);
            csv.write_record(&record)
                .map_err(|e| csv_error(&partial, e))?;
            let map = match (&input, &recon, &residual) {
                (Some(i), Some(r), Some(d)) => {
                    let stem = read[k]
                        .file_stem()
                        .map(|n| n.to_string_lossy().to_string())
                        .unwrap_or_default();
                    let name = format!("{:06}-{stem}.png", ranked.len());
                    write_file(&maps_dir.join(&name), &triptych(&i[k], &r[k], &d[k], s)?)?;
                    Some(format!("maps/{name}"))
                }
                _ => None,
            };
            ranked.push(Ranked {
                path: read[k].clone(),
                score,
                percentile,
                flagged,
                map,
            });
        }
    }
    bar.finish_and_clear();
    let mut writer = csv.into_inner().map_err(|e| PipelineError::Io {
        path: partial.clone(),
        source: e.into_error(),
    })?;
    writer.flush().map_err(io(&partial))?;
    writer.get_ref().sync_all().map_err(io(&partial))?;
    drop(writer);
    std::fs::rename(&partial, &csv_path).map_err(io(&csv_path))?;

    let flagged = ranked.iter().filter(|r| r.flagged).count();
    let html_path = settings.out.join("predictions.html");
    let page = ranking_page(
        settings,
        &weights,
        &primary,
        threshold,
        &mut ranked,
        &skipped,
    );
    write_file(&html_path, page.as_bytes())?;
    Ok(PredictSummary {
        images: ranked.len(),
        flagged,
        skipped,
        primary,
        threshold,
        csv: csv_path,
        html: html_path,
    })
}

fn csv_error(path: &Path, e: csv::Error) -> PipelineError {
    PipelineError::Io {
        path: path.to_path_buf(),
        source: std::io::Error::other(e.to_string()),
    }
}

/// `predictions.html`: the images ranked by their primary score, highest first, with their maps.
fn ranking_page(
    settings: &PredictSettings,
    weights: &Path,
    primary: &str,
    threshold: f64,
    ranked: &mut [Ranked],
    skipped: &[(PathBuf, String)],
) -> String {
    ranked.sort_by(|a, b| b.score.total_cmp(&a.score));
    let flagged = ranked.iter().filter(|r| r.flagged).count();
    let mut html = page_start("xray-gan predictions");
    html.push_str(&format!(
        "<p class=\"note\">{} images scored with {} ({}); {flagged} flagged: {primary} above {threshold:.4}, the {:.0}th percentile of the run's normal validation images. \
         The highest {} scores are listed; <code>predictions.csv</code> has every image.</p>\n",
        ranked.len(),
        escape(&weights.display().to_string()),
        escape(&settings.run.display().to_string()),
        100.0 * settings.threshold_quantile,
        PAGE_ROWS.min(ranked.len()),
    ));
    html.push_str("<table><tr><th>rank</th><th>image</th><th>score</th><th>percentile</th><th>flagged</th><th>image | reconstruction | residual</th></tr>\n");
    for (i, r) in ranked.iter().take(PAGE_ROWS).enumerate() {
        let map = r
            .map
            .as_ref()
            .map(|m| {
                format!(
                    "<img src=\"{}\" alt=\"anomaly map\" style=\"width:400px\">",
                    escape(m)
                )
            })
            .unwrap_or_default();
        html.push_str(&format!(
            "<tr><td>{}</td><td class=\"path\">{}</td><td>{:.4}</td><td>{:.1}</td><td>{}</td><td>{map}</td></tr>\n",
            i + 1,
            escape(&r.path.display().to_string()),
            r.score,
            r.percentile,
            if r.flagged { "yes" } else { "" },
        ));
    }
    html.push_str("</table>\n");
    if !skipped.is_empty() {
        html.push_str(&format!("<h2>Skipped ({})</h2><ul>\n", skipped.len()));
        for (path, reason) in skipped.iter().take(PAGE_ROWS) {
            html.push_str(&format!(
                "<li>{}: {}</li>\n",
                escape(&path.display().to_string()),
                escape(reason)
            ));
        }
        html.push_str("</ul>\n");
    }
    html.push_str("</body></html>\n");
    html
}
