//! `xray-gan eval`: metrics.json, roc.png, pr.png, histograms.png (and losses.png), and a
//! self-contained report.html; with `--run`, the report also shows training curves, the last sample
//! sheet and the most and least anomalous images with their residual maps.

use std::path::PathBuf;

use anyhow::Result;
use clap::Args;
use gan_pipeline::{EvalSettings, evaluate_scores};

#[derive(Debug, Args)]
pub struct EvalArgs {
    /// scores.csv written by `xray-gan score`.
    #[arg(long)]
    pub scores: PathBuf,
    /// Output folder.
    #[arg(long)]
    pub out: PathBuf,
    /// Run folder, for training curves, samples and the anomaly-map gallery.
    #[arg(long)]
    pub run: Option<PathBuf>,
    /// The headline statistic, fixed before looking at results (default: the run's detector's
    /// own score; `fused_2s`, the fused two-sided statistic, for a detector whose paper has none or
    /// without --run).
    #[arg(long)]
    pub primary: Option<String>,
    /// Quantile of calibration scores used as the unsupervised threshold.
    #[arg(long, default_value_t = 0.95)]
    pub calibration_quantile: f64,
    /// Images per gallery row (most and least anomalous).
    #[arg(long, default_value_t = 8)]
    pub gallery: usize,
}

pub fn run(args: EvalArgs) -> Result<()> {
    let metrics = evaluate_scores(&EvalSettings {
        scores: args.scores.clone(),
        out: args.out.clone(),
        run: args.run.clone(),
        primary: args.primary.clone(),
        calibration_quantile: args.calibration_quantile,
        gallery: args.gallery,
    })?;
    print_summary(&metrics);
    println!("report: {}", args.out.join("report.html").display());
    Ok(())
}

fn print_summary(metrics: &gan_metrics::Metrics) {
    println!(
        "{:<14} {:>7}  {:<15} {:>6}",
        "statistic", "AUROC", "95% CI", "AP"
    );
    let show = |v: Option<f64>| v.map(|v| format!("{v:.3}")).unwrap_or_else(|| "n/a".into());
    for name in &metrics.statistics {
        let m = &metrics.image_level[name];
        let ci = m
            .auroc_ci
            .map(|[a, b]| format!("{a:.3}–{b:.3}"))
            .unwrap_or_else(|| "n/a".into());
        println!(
            "{name:<14} {:>7}  {ci:<15} {:>6}",
            show(m.auroc),
            show(m.ap)
        );
    }
    println!(
        "primary {} AUROC {}; best (exploratory) {} AUROC {}",
        metrics.primary.statistic,
        show(metrics.primary.auroc),
        metrics.best.statistic,
        show(metrics.best.auroc)
    );
}
