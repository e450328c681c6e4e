//! # gan-pipeline: from a trained run to scores, and from scores to a report
//!
//! The layer between the training loop and the CLI, holding no per-detector code:
//! - [`score_run`]: a run's detector scores a dataset's evaluation split and the run's normal
//!   validation images, streaming batches into `scores.csv`.
//! - [`evaluate_scores`]: `metrics.json`, the figures and `report.html` from `scores.csv`, with
//!   the run's training curves, last sample sheet and the most and least anomalous images.
//! - [`score_and_evaluate`]: both with the defaults, as the demo and the benchmark run them; the
//!   primary statistic is the detector's own ([`gan_models::Register::PRIMARY`]).
//! - [`predict`]: new images (no labels) to `predictions.csv`, maps and a ranking page, flagged at
//!   a threshold stored with the run ([`calibrate_run`]).
//! - [`run_benchmark`]: detectors × seeds trained, scored, evaluated and summarised, resumable.

#[cfg(test)]
mod tests {
    #[test]
    fn the_detectors_and_the_metrics_name_the_fused_statistic_alike() {
        assert_eq!(gan_models::FUSED, gan_metrics::FUSED);
        assert_eq!(gan_models::FUSED_TWO_SIDED, gan_metrics::FUSED_TWO_SIDED);
    }
}

mod benchmark;
mod error;
mod evaluate;
mod maps;
mod predict;
mod score;

pub use benchmark::{BenchmarkOutcome, BenchmarkPlan, auroc_by_anomaly_kind, run_benchmark};
pub use error::{PipelineError, Result};
pub use evaluate::{EvalSettings, evaluate_scores, score_and_evaluate};
pub use predict::{CALIBRATION_SCORES, PredictSettings, PredictSummary, calibrate_run, predict};
pub use score::{ScoreSummary, ScoredWith, score_run};
