//! Metrics against reference implementations on fixed vectors with ties.
//!
//! Reference numbers (scikit-learn 1.x, NumPy):
//! ```python
//! import numpy as np
//! from sklearn.metrics import roc_auc_score, average_precision_score, roc_curve, cohen_kappa_score, f1_score
//! s = np.array([0.1, 0.4, 0.35, 0.8, 0.4, 0.2, 0.9, 0.35, 0.5, 0.4])
//! y = np.array([0, 0, 1, 1, 1, 0, 1, 0, 1, 0])
//! roc_auc_score(y, s)            # 0.86
//! average_precision_score(y, s)  # 0.8583333333333332
//! roc_curve(y, s, drop_intermediate=False)
//! # fpr [0, 0, 0, 0, .4, .6, .8, 1]  tpr [0, .2, .4, .6, .8, 1, 1, 1]
//! # thr [inf, .9, .8, .5, .4, .35, .2, .1]
//! pred = (s >= 0.4).astype(int); cohen_kappa_score(y, pred), f1_score(y, pred)  # 0.4, 0.7272727272727273
//! ```
//! DeLong reference: the direct O(m·n) definition of DeLong, DeLong & Clarke-Pearson (Biometrics
//! 1988) — structural components V10ᵢ = mean_j ψ(Xᵢ, Yⱼ), V01ⱼ = mean_i ψ(Xᵢ, Yⱼ), ψ = 1, ½, 0 —
//! with var = s²(V10)/m + s²(V01)/n, evaluated in NumPy on the same vectors: SE 0.11916375287812986,
//! 95 % CI [0.6264433360962343, 1] (upper end clipped).

use gan_metrics::precision::average_precision;
use gan_metrics::roc::{auroc, auroc_delong, confidence_interval, roc_curve};
use gan_metrics::threshold::{Confusion, quantile, sensitivity_at_specificity, youden};

const S: [f64; 10] = [0.1, 0.4, 0.35, 0.8, 0.4, 0.2, 0.9, 0.35, 0.5, 0.4];
const Y: [bool; 10] = [
    false, false, true, true, true, false, true, false, true, false,
];

fn close(a: f64, b: f64) -> bool {
    (a - b).abs() < 1e-12
}

#[test]
fn auroc_ap_and_roc_points_equal_scikit_learn() {
    assert!(close(auroc(&S, &Y).unwrap(), 0.86));
    assert!(close(
        average_precision(&S, &Y).unwrap(),
        0.8583333333333332
    ));
    let curve = roc_curve(&S, &Y);
    let fpr: Vec<f64> = curve.iter().map(|p| p.fpr).collect();
    let tpr: Vec<f64> = curve.iter().map(|p| p.tpr).collect();
    let thr: Vec<f64> = curve.iter().map(|p| p.threshold).collect();
    assert_eq!(fpr, vec![0.0, 0.0, 0.0, 0.0, 0.4, 0.6, 0.8, 1.0]);
    assert_eq!(tpr, vec![0.0, 0.2, 0.4, 0.6, 0.8, 1.0, 1.0, 1.0]);
    assert_eq!(thr, vec![f64::INFINITY, 0.9, 0.8, 0.5, 0.4, 0.35, 0.2, 0.1]);
}

#[test]
fn delong_interval_equals_the_direct_definition() {
    let (auc, se) = auroc_delong(&S, &Y).unwrap();
    assert!(close(auc, 0.86));
    assert!((se - 0.11916375287812986).abs() < 1e-12, "{se}");
    let [lo, hi] = confidence_interval(auc, se);
    assert!((lo - 0.6264433360962343).abs() < 1e-12);
    assert_eq!(hi, 1.0);
}

#[test]
fn thresholds_f1_and_kappa_on_hand_checked_cases() {
    // at 0.4: abnormal calls 0.4, 0.8, 0.4, 0.9, 0.5, 0.4 → TP 4, FP 2, TN 3, FN 1
    let c = Confusion::at(&S, &Y, 0.4);
    assert_eq!((c.tp, c.fp, c.tn, c.fn_), (4, 2, 3, 1));
    assert!(close(c.sensitivity().unwrap(), 0.8));
    assert!(close(c.specificity().unwrap(), 0.6));
    assert!(close(c.f1().unwrap(), 0.7272727272727273));
    assert!((c.kappa().unwrap() - 0.4).abs() < 1e-12);
    // Youden's J is largest (0.6) at threshold 0.5: TPR 0.6, FPR 0
    let curve = roc_curve(&S, &Y);
    let y = youden(&curve).unwrap();
    assert_eq!((y.threshold, y.tpr, y.fpr), (0.5, 0.6, 0.0));
    assert!(close(
        sensitivity_at_specificity(&curve, 0.95).unwrap(),
        0.6
    ));
    // NumPy: np.percentile([1, 2, 3, 4], 95) → 3.85
    assert!((quantile(&[4.0, 1.0, 3.0, 2.0], 0.95).unwrap() - 3.85).abs() < 1e-12);
    // κ of a perfect and of a chance-free constant rater
    let perfect = Confusion::at(&[1.0, 0.0], &[true, false], 0.5);
    assert!(close(perfect.kappa().unwrap(), 1.0));
    let all_yes = Confusion::at(&[1.0, 1.0], &[true, true], 0.5);
    assert_eq!(all_yes.kappa(), None, "p_e = 1: κ is undefined");
}

#[test]
fn undefined_and_degenerate_cases_are_reported_not_invented() {
    assert_eq!(auroc(&[0.1, 0.2], &[true, true]), None);
    assert_eq!(auroc_delong(&[0.1, 0.2], &[false, false]), None);
    assert!(roc_curve(&[0.3], &[true]).is_empty());
    assert_eq!(average_precision(&[0.3, 0.4], &[false, false]), None);
    // constant scores: every pair ties, AUROC is exactly ½
    assert_eq!(
        auroc(&[0.7; 6], &[true, false, true, false, false, true]),
        Some(0.5)
    );
    // a statistic that runs the wrong way is reported below ½, not flipped
    assert_eq!(
        auroc(&[0.9, 0.8, 0.1, 0.2], &[false, false, true, true]),
        Some(0.0)
    );
}
