//! `xray-gan score`: scores every image of the evaluation split and the run's normal validation
//! images (split `calib`) with a trained run, streaming batches into `scores.csv`.

use std::path::{Path, PathBuf};

use anyhow::{Context, Result, bail};
use clap::Args;
use gan_data::{
    Batcher, DatasetFormat, DatasetSpec, ImageSet, LoadOptions, Sample, load_images, open_dataset,
};
use gan_metrics::{CALIBRATION_SPLIT, ScoreRow, ScoreWriter};
use gan_models::{GanModel, select_device};
use gan_train::{RunFolder, WhichWeights, load_training_data, preprocess_of};
use indicatif::{ProgressBar, ProgressStyle};

#[derive(Debug, Args)]
pub struct ScoreArgs {
    /// Run folder written by `xray-gan train`.
    #[arg(long)]
    run: PathBuf,
    /// Dataset to score (default: the one the run trained on).
    #[arg(long)]
    data: Option<PathBuf>,
    /// Where to write the scores.
    #[arg(long)]
    out: PathBuf,
    /// Split to evaluate (default: `valid` for MURA, `test` for image folders).
    #[arg(long)]
    split: Option<String>,
    /// Use the latest weights instead of the best ones.
    #[arg(long)]
    latest: bool,
    #[arg(long, default_value = "auto")]
    device: String,
    #[arg(long, default_value_t = 64)]
    batch_size: usize,
}

/// Scores `images` in batches and writes one row per image.
fn score_set(
    model: &GanModel,
    images: &ImageSet,
    split: Option<&str>,
    batch_size: usize,
    device: &candle::Device,
    out: &mut ScoreWriter,
    bar: &ProgressBar,
) -> Result<()> {
    for batch in Batcher::new(images, batch_size, device).eval_batches() {
        let batch = batch?;
        let scores = model.score(&batch.images)?;
        for (k, &i) in batch.indices.iter().enumerate() {
            let s: &Sample = &images.samples[i];
            out.write(&ScoreRow {
                path: s.rel_path.clone(),
                split: split.unwrap_or(&s.split).to_string(),
                group: s.group.clone(),
                patient: s.patient.clone().unwrap_or_default(),
                study: s.study.clone().unwrap_or_default(),
                abnormal: s.label.as_u8() == 1,
                values: scores
                    .values
                    .iter()
                    .map(|column| column[k] as f64)
                    .collect(),
            })?;
        }
        bar.inc(batch.indices.len() as u64);
    }
    Ok(())
}

pub fn run(args: ScoreArgs) -> Result<()> {
    let device = select_device(&args.device)?;
    let which = if args.latest {
        WhichWeights::Latest
    } else {
        WhichWeights::Best
    };
    score_run(
        &args.run,
        args.data.as_deref(),
        &args.out,
        args.split.as_deref(),
        which,
        &device,
        args.batch_size,
    )
}

/// Scores the evaluation split (and the calibration images) of `run` into `out_path`.
pub fn score_run(
    run: &Path,
    data: Option<&Path>,
    out_path: &Path,
    split: Option<&str>,
    which: WhichWeights,
    device: &candle::Device,
    batch_size: usize,
) -> Result<()> {
    let device = device.clone();
    let folder = RunFolder::new(run);
    let (mut config, model, weights) = folder.load_model(which, &device)?;
    tracing::info!("scoring with {}", weights.display());
    let calibration = load_training_data(&config, true)?.calibration;
    if let Some(data) = data {
        config.data.root = data.to_path_buf();
    }
    let spec = DatasetSpec {
        format: config.data.format,
        normal_class: config.data.normal_class.clone(),
    };
    let table = open_dataset(&config.data.root, &spec)?;
    let split = split.map(String::from).unwrap_or_else(|| {
        match config.data.format.resolve(&config.data.root) {
            DatasetFormat::Mura => "valid".into(),
            _ => "test".into(),
        }
    });
    let available = table.splits();
    let table = table.split(&split).groups(&config.data.parts);
    if table.is_empty() {
        bail!(gan_train::TrainError::Config(format!(
            "{}: no images in split {split:?} (splits found: {})",
            config.data.root.display(),
            available.join(", ")
        )));
    }
    let options = LoadOptions {
        preprocess: preprocess_of(&config),
        cache_dir: config.data.cache_dir.clone(),
        strict: config.data.strict,
        progress: true,
    };
    let images = load_images(&table.samples, &options)?;
    let names: Vec<&str> = model.statistics().iter().map(|s| s.name()).collect();
    let mut out = ScoreWriter::create(out_path, &names)?;
    let bar = ProgressBar::new((images.len() + calibration.len()) as u64).with_style(
        ProgressStyle::with_template("scoring {bar:30} {pos}/{len} images  {per_sec}  eta {eta}")
            .unwrap_or_else(|_| ProgressStyle::default_bar()),
    );
    score_set(
        &model,
        &calibration,
        Some(CALIBRATION_SPLIT),
        batch_size,
        &device,
        &mut out,
        &bar,
    )?;
    score_set(&model, &images, None, batch_size, &device, &mut out, &bar)?;
    bar.finish_and_clear();
    out.finish()
        .with_context(|| format!("writing {}", out_path.display()))?;
    println!(
        "scored {} {split} images and {} calibration images → {}",
        images.len(),
        calibration.len(),
        out_path.display()
    );
    Ok(())
}
