//! ROC curve, exact AUROC (ties count ½) and DeLong's variance, all O(n log n).
//!
//! AUROC is the Mann–Whitney statistic from mid-ranks; DeLong's variance uses the fast
//! structural-component algorithm of Sun & Xu (IEEE Signal Processing Letters, 2014), and the 95 %
//! interval is AUROC ± 1.96·SE clipped to [0, 1] (as pROC reports it).

use serde::{Deserialize, Serialize};

/// A point of the ROC curve: classify as abnormal when score ≥ `threshold`.
#[derive(Debug, Clone, Copy, PartialEq, Serialize, Deserialize)]
pub struct RocPoint {
    pub threshold: f64,
    pub fpr: f64,
    pub tpr: f64,
}

/// Mid-ranks (1-based, ties share their mean rank) of `values`.
pub fn midranks(values: &[f64]) -> Vec<f64> {
    let mut order: Vec<usize> = (0..values.len()).collect();
    order.sort_by(|&a, &b| values[a].total_cmp(&values[b]));
    let mut ranks = vec![0.0; values.len()];
    let mut i = 0;
    while i < order.len() {
        let mut j = i;
        while j + 1 < order.len() && values[order[j + 1]] == values[order[i]] {
            j += 1;
        }
        let rank = (i + j) as f64 / 2.0 + 1.0;
        for &k in &order[i..=j] {
            ranks[k] = rank;
        }
        i = j + 1;
    }
    ranks
}

fn split(scores: &[f64], positive: &[bool]) -> (Vec<f64>, Vec<f64>) {
    let pos = scores
        .iter()
        .zip(positive)
        .filter(|(_, p)| **p)
        .map(|(s, _)| *s)
        .collect();
    let neg = scores
        .iter()
        .zip(positive)
        .filter(|(_, p)| !**p)
        .map(|(s, _)| *s)
        .collect();
    (pos, neg)
}

/// Area under the ROC curve, or `None` when one class is missing.
pub fn auroc(scores: &[f64], positive: &[bool]) -> Option<f64> {
    let (pos, neg) = split(scores, positive);
    if pos.is_empty() || neg.is_empty() {
        return None;
    }
    let ranks = midranks(scores);
    let rank_sum: f64 = ranks
        .iter()
        .zip(positive)
        .filter(|(_, p)| **p)
        .map(|(r, _)| r)
        .sum();
    let (m, n) = (pos.len() as f64, neg.len() as f64);
    Some((rank_sum - m * (m + 1.0) / 2.0) / (m * n))
}

/// AUROC with DeLong's standard error, or `None` when one class is missing.
pub fn auroc_delong(scores: &[f64], positive: &[bool]) -> Option<(f64, f64)> {
    let (pos, neg) = split(scores, positive);
    let (m, n) = (pos.len(), neg.len());
    if m == 0 || n == 0 {
        return None;
    }
    let all: Vec<f64> = pos.iter().chain(&neg).copied().collect();
    let tz = midranks(&all);
    let tx = midranks(&pos);
    let ty = midranks(&neg);
    let v10: Vec<f64> = (0..m).map(|i| (tz[i] - tx[i]) / n as f64).collect();
    let v01: Vec<f64> = (0..n)
        .map(|j| 1.0 - (tz[m + j] - ty[j]) / m as f64)
        .collect();
    let auc = v10.iter().sum::<f64>() / m as f64;
    let var = |v: &[f64]| -> f64 {
        if v.len() < 2 {
            return 0.0;
        }
        let mean = v.iter().sum::<f64>() / v.len() as f64;
        v.iter().map(|x| (x - mean).powi(2)).sum::<f64>() / (v.len() - 1) as f64
    };
    let variance = var(&v10) / m as f64 + var(&v01) / n as f64;
    Some((auc, variance.max(0.0).sqrt()))
}

/// The 95 % confidence interval AUROC ± 1.959964·SE, clipped to [0, 1].
pub fn confidence_interval(auc: f64, se: f64) -> [f64; 2] {
    let z = 1.959_963_984_540_054;
    [(auc - z * se).max(0.0), (auc + z * se).min(1.0)]
}

/// The ROC curve at every distinct score, from (0, 0) (threshold +∞) to (1, 1), as scikit-learn's
/// `roc_curve(..., drop_intermediate=False)` computes it. Empty when a class is missing.
pub fn roc_curve(scores: &[f64], positive: &[bool]) -> Vec<RocPoint> {
    let (p, n) = counts(positive);
    if p == 0 || n == 0 {
        return Vec::new();
    }
    let mut points = vec![RocPoint {
        threshold: f64::INFINITY,
        fpr: 0.0,
        tpr: 0.0,
    }];
    for (threshold, tp, fp) in cumulative_counts(scores, positive) {
        points.push(RocPoint {
            threshold,
            fpr: fp as f64 / n as f64,
            tpr: tp as f64 / p as f64,
        });
    }
    points
}

pub(crate) fn counts(positive: &[bool]) -> (usize, usize) {
    let p = positive.iter().filter(|&&x| x).count();
    (p, positive.len() - p)
}

/// For each distinct score, from the highest: (score, true positives, false positives) among the
/// items scoring at least that much.
pub(crate) fn cumulative_counts(scores: &[f64], positive: &[bool]) -> Vec<(f64, usize, usize)> {
    let mut order: Vec<usize> = (0..scores.len()).collect();
    order.sort_by(|&a, &b| scores[b].total_cmp(&scores[a]));
    let mut out = Vec::new();
    let (mut tp, mut fp) = (0, 0);
    for (k, &i) in order.iter().enumerate() {
        if positive[i] {
            tp += 1;
        } else {
            fp += 1;
        }
        let last_of_tie = k + 1 == order.len() || scores[order[k + 1]] != scores[i];
        if last_of_tie {
            out.push((scores[i], tp, fp));
        }
    }
    out
}
