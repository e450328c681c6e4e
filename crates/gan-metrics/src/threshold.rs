//! Operating points: Youden's threshold, sensitivity at 95 % specificity, and an unsupervised
//! threshold from normal validation (`calib`) scores with the confusion matrix, F1 and Cohen's κ
//! it gives. A score at or above the threshold is called abnormal.

use serde::{Deserialize, Serialize};

use crate::roc::RocPoint;

/// Counts of a binary decision against the truth.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Default, Serialize, Deserialize)]
pub struct Confusion {
    pub tp: usize,
    pub fp: usize,
    pub tn: usize,
    #[serde(rename = "fn")]
    pub fn_: usize,
}

impl Confusion {
    pub fn at(scores: &[f64], positive: &[bool], threshold: f64) -> Self {
        let mut c = Confusion::default();
        for (&s, &p) in scores.iter().zip(positive) {
            match (s >= threshold, p) {
                (true, true) => c.tp += 1,
                (true, false) => c.fp += 1,
                (false, false) => c.tn += 1,
                (false, true) => c.fn_ += 1,
            }
        }
        c
    }

    fn ratio(a: usize, b: usize) -> Option<f64> {
        (b > 0).then(|| a as f64 / b as f64)
    }

    pub fn sensitivity(&self) -> Option<f64> {
        Self::ratio(self.tp, self.tp + self.fn_)
    }

    pub fn specificity(&self) -> Option<f64> {
        Self::ratio(self.tn, self.tn + self.fp)
    }

    pub fn precision(&self) -> Option<f64> {
        Self::ratio(self.tp, self.tp + self.fp)
    }

    /// 2TP / (2TP + FP + FN).
    pub fn f1(&self) -> Option<f64> {
        Self::ratio(2 * self.tp, 2 * self.tp + self.fp + self.fn_)
    }

    /// Cohen's κ = (pₒ − pₑ) / (1 − pₑ); `None` when pₑ = 1 (κ undefined).
    pub fn kappa(&self) -> Option<f64> {
        let n = (self.tp + self.fp + self.tn + self.fn_) as f64;
        if n == 0.0 {
            return None;
        }
        let po = (self.tp + self.tn) as f64 / n;
        let yes = ((self.tp + self.fp) as f64 / n) * ((self.tp + self.fn_) as f64 / n);
        let no = ((self.tn + self.fn_) as f64 / n) * ((self.tn + self.fp) as f64 / n);
        let pe = yes + no;
        (pe < 1.0).then(|| (po - pe) / (1.0 - pe))
    }
}

/// The ROC point maximising Youden's J = TPR − FPR (the first, i.e. highest threshold, on ties).
pub fn youden(curve: &[RocPoint]) -> Option<RocPoint> {
    curve
        .iter()
        .filter(|p| p.threshold.is_finite())
        .fold(None, |best: Option<RocPoint>, p| match best {
            Some(b) if b.tpr - b.fpr >= p.tpr - p.fpr => Some(b),
            _ => Some(*p),
        })
}

/// The highest sensitivity among thresholds whose specificity is at least `specificity`.
pub fn sensitivity_at_specificity(curve: &[RocPoint], specificity: f64) -> Option<f64> {
    curve
        .iter()
        .filter(|p| 1.0 - p.fpr >= specificity - 1e-12)
        .map(|p| p.tpr)
        .fold(None, |a: Option<f64>, t| Some(a.map_or(t, |a| a.max(t))))
}

/// The `q`-quantile (0–1) of `values` with linear interpolation (NumPy's default); `None` if empty.
pub fn quantile(values: &[f64], q: f64) -> Option<f64> {
    if values.is_empty() {
        return None;
    }
    let mut sorted = values.to_vec();
    sorted.sort_by(f64::total_cmp);
    let pos = q.clamp(0.0, 1.0) * (sorted.len() - 1) as f64;
    let (lo, hi) = (pos.floor() as usize, pos.ceil() as usize);
    Some(sorted[lo] + (sorted[hi] - sorted[lo]) * (pos - lo as f64))
}
