//! # gan-metrics: how well scores separate abnormal from normal, in pure Rust
//!
//! No candle here: numbers in, numbers, figures and a report out.
//! - [`roc`]: ROC curve, exact AUROC (ties ½), DeLong standard error and CI, O(n log n).
//! - [`precision`]: average precision and the PR curve (scikit-learn's definitions).
//! - [`threshold`]: Youden, sensitivity at 95 % specificity, quantile thresholds, confusion, F1, κ.
//! - [`scores`]: `scores.csv` reading (validated) and writing (atomic).
//! - [`evaluate`]: `metrics.json` — image, study and group level, fused and two-sided statistics,
//!   primary and best headlines.
//! - [`plots`] and [`report`]: PNG figures and the self-contained HTML report.
//! - [`benchmark`]: several models × seeds summarised (AUROC mean ± sd) as markdown, JSON, HTML.
//! - [`auroc_by_kind`]: AUROC of each abnormality kind against the normal images.

pub mod benchmark;
mod by_kind;
mod error;
pub mod evaluate;
pub mod plots;
pub mod precision;
pub mod report;
pub mod roc;
pub mod scores;
pub mod threshold;

pub use by_kind::{KindResult, auroc_by_kind};
pub use error::{MetricsError, Result};
pub use evaluate::{EvalOptions, FUSED, FUSED_TWO_SIDED, Metrics, StatisticMetrics, evaluate};
pub use roc::{auroc, auroc_delong, roc_curve};
pub use scores::{CALIBRATION_SPLIT, ScoreRow, ScoreTable, ScoreWriter, write_file};
