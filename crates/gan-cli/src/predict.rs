//! `xray-gan predict`: new images in — files or folders, no labels — and a decision per image out:
//! `predictions.csv`, `predictions.html` ranking them, and with `--maps` an anomaly map each. The
//! threshold is the run's own: a quantile of its scores on its normal validation images.

use std::path::PathBuf;

use anyhow::Result;
use clap::Args;
use gan_models::select_device;
use gan_pipeline::{PredictSettings, predict};

#[derive(Debug, Args)]
pub struct PredictArgs {
    /// Run folder written by `xray-gan train`.
    #[arg(long)]
    run: PathBuf,
    /// Folder for predictions.csv, predictions.html and maps/.
    #[arg(long)]
    out: PathBuf,
    /// Image files and folders (walked recursively).
    #[arg(required = true)]
    inputs: Vec<PathBuf>,
    /// Flag images whose primary score exceeds this quantile of the normal validation scores.
    #[arg(long, default_value_t = 0.95)]
    threshold_quantile: f64,
    /// Write an anomaly-map overlay (image | reconstruction | residual) per image.
    #[arg(long)]
    maps: bool,
    /// Stop at the first unreadable image instead of skipping it.
    #[arg(long)]
    strict: bool,
    #[arg(long, default_value = "auto")]
    device: String,
    #[arg(long, default_value_t = 64)]
    batch_size: usize,
}

pub fn run(args: PredictArgs) -> Result<()> {
    let device = select_device(&args.device)?;
    let summary = predict(
        &PredictSettings {
            run: args.run,
            out: args.out,
            inputs: args.inputs,
            threshold_quantile: args.threshold_quantile,
            maps: args.maps,
            batch_size: args.batch_size,
            strict: args.strict,
        },
        &device,
    )?;
    println!(
        "{} images scored, {} flagged ({} above {:.4}); {} skipped; {} and {}",
        summary.images,
        summary.flagged,
        summary.primary,
        summary.threshold,
        summary.skipped.len(),
        summary.csv.display(),
        summary.html.display()
    );
    Ok(())
}
