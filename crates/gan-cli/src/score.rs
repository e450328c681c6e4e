//! `xray-gan score`: scores every image of the evaluation split and the run's normal validation
//! images (split `calib`) with a trained run, streaming batches into `scores.csv`.

use std::path::PathBuf;

use anyhow::Result;
use clap::Args;
use gan_models::select_device;
use gan_pipeline::score_run;
use gan_train::WhichWeights;

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

pub fn run(args: ScoreArgs) -> Result<()> {
    let device = select_device(&args.device)?;
    let which = if args.latest {
        WhichWeights::Latest
    } else {
        WhichWeights::Best
    };
    let summary = score_run(
        &args.run,
        args.data.as_deref(),
        &args.out,
        args.split.as_deref(),
        which,
        &device,
        args.batch_size,
    )?;
    println!(
        "scored {} {} images and {} calibration images → {}",
        summary.images,
        summary.split,
        summary.calibration_images,
        args.out.display()
    );
    Ok(())
}
