//! Average precision and the precision–recall curve, as scikit-learn defines them:
//! AP = Σₙ (Rₙ − Rₙ₋₁)·Pₙ over the distinct thresholds, from the highest score down.

use serde::{Deserialize, Serialize};

use crate::roc::{counts, cumulative_counts};

#[derive(Debug, Clone, Copy, PartialEq, Serialize, Deserialize)]
pub struct PrPoint {
    pub threshold: f64,
    pub recall: f64,
    pub precision: f64,
}

/// The precision–recall curve at every distinct score, highest first. Empty without positives.
pub fn pr_curve(scores: &[f64], positive: &[bool]) -> Vec<PrPoint> {
    let (p, _) = counts(positive);
    if p == 0 {
        return Vec::new();
    }
    cumulative_counts(scores, positive)
        .into_iter()
        .map(|(threshold, tp, fp)| PrPoint {
            threshold,
            recall: tp as f64 / p as f64,
            precision: tp as f64 / (tp + fp) as f64,
        })
        .collect()
}

/// Average precision, or `None` without positives.
pub fn average_precision(scores: &[f64], positive: &[bool]) -> Option<f64> {
    let curve = pr_curve(scores, positive);
    if curve.is_empty() {
        return None;
    }
    let mut previous_recall = 0.0;
    let mut ap = 0.0;
    for point in curve {
        ap += (point.recall - previous_recall) * point.precision;
        previous_recall = point.recall;
    }
    Some(ap)
}
