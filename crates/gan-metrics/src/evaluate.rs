//! From a score table to `metrics.json`: per statistic AUROC with DeLong CI, AP, Youden point,
//! sensitivity at 95 % specificity and the calibration-threshold operating point; derived
//! statistics (a fused score from statistics standardised on the calibration images, and two-sided
//! versions |x − median| / MAD); study-level and per-group results; the primary statistic (fixed
//! before any label is seen) and the best one (exploratory). AUROC is never flipped.

use std::collections::BTreeMap;

use serde::{Deserialize, Serialize};

use crate::precision::{PrPoint, average_precision, pr_curve};
use crate::roc::{RocPoint, auroc_delong, confidence_interval, roc_curve};
use crate::scores::{CALIBRATION_SPLIT, ScoreRow, ScoreTable};
use crate::threshold::{Confusion, quantile, sensitivity_at_specificity, youden};

/// Name of the fused statistic: the mean of the statistics standardised on the calibration
/// images, each taken as it runs (higher = more anomalous).
pub const FUSED: &str = "fused";
/// Name of the fused two-sided statistic: the mean of the two-sided versions |x − median| / MAD,
/// so a statistic on which abnormal images score *lower* than normal ones adds to the fused score
/// instead of cancelling the others.
pub const FUSED_TWO_SIDED: &str = "fused_2s";

#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
pub struct OperatingPoint {
    pub threshold: f64,
    pub sensitivity: Option<f64>,
    pub specificity: Option<f64>,
}

/// The unsupervised threshold: a quantile of the calibration (normal validation) scores.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
pub struct CalibrationThreshold {
    pub quantile: f64,
    pub threshold: f64,
    pub confusion: Confusion,
    pub sensitivity: Option<f64>,
    pub specificity: Option<f64>,
    pub f1: Option<f64>,
    pub kappa: Option<f64>,
}

/// Results of one statistic on one set of items. `null` fields are undefined, with `undefined`
/// saying why.
#[derive(Debug, Clone, Default, PartialEq, Serialize, Deserialize)]
pub struct StatisticMetrics {
    pub n_normal: usize,
    pub n_abnormal: usize,
    pub auroc: Option<f64>,
    pub auroc_ci: Option<[f64; 2]>,
    pub auroc_se: Option<f64>,
    pub ap: Option<f64>,
    pub youden: Option<OperatingPoint>,
    pub sensitivity_at_95_specificity: Option<f64>,
    pub calibration_threshold: Option<CalibrationThreshold>,
    #[serde(skip_serializing_if = "Option::is_none")]
    pub undefined: Option<String>,
}

#[derive(Debug, Clone, Default, PartialEq, Serialize, Deserialize)]
pub struct Headline {
    pub statistic: String,
    pub auroc: Option<f64>,
}

/// The content of `metrics.json`.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
pub struct Metrics {
    pub n_normal: usize,
    pub n_abnormal: usize,
    pub n_calibration: usize,
    pub statistics: Vec<String>,
    pub image_level: BTreeMap<String, StatisticMetrics>,
    /// `mean` and `max` of each study's image scores; empty when the data has no studies.
    pub study_level: BTreeMap<String, BTreeMap<String, StatisticMetrics>>,
    pub by_group: BTreeMap<String, BTreeMap<String, StatisticMetrics>>,
    /// The statistic fixed before any label was seen: the honest headline.
    pub primary: Headline,
    /// The highest AUROC among statistics: exploratory, chosen with the labels.
    pub best: Headline,
}

/// Curves and score distributions of the image-level evaluation, for the figures.
#[derive(Debug, Clone, Default)]
pub struct Curves {
    pub roc: BTreeMap<String, Vec<RocPoint>>,
    pub pr: BTreeMap<String, Vec<PrPoint>>,
    /// (normal scores, abnormal scores) per statistic.
    pub distributions: BTreeMap<String, (Vec<f64>, Vec<f64>)>,
}

#[derive(Debug, Clone)]
pub struct EvalOptions {
    /// The primary statistic; `fused` by default.
    pub primary: String,
    /// Quantile of calibration scores used as the unsupervised threshold.
    pub calibration_quantile: f64,
}

impl Default for EvalOptions {
    fn default() -> Self {
        EvalOptions {
            primary: FUSED.into(),
            calibration_quantile: 0.95,
        }
    }
}

fn mean_sd(values: &[f64]) -> (f64, f64) {
    let n = values.len() as f64;
    let mean = values.iter().sum::<f64>() / n;
    let var = values.iter().map(|v| (v - mean).powi(2)).sum::<f64>() / (n - 1.0).max(1.0);
    (mean, var.sqrt())
}

/// Adds the fused statistic, the two-sided versions and their mean (the fused two-sided
/// statistic), all standardised on the calibration rows only (never on evaluation labels).
/// Without two calibration rows the table is returned as it is.
pub fn with_derived_statistics(table: &ScoreTable) -> ScoreTable {
    let calib: Vec<&ScoreRow> = table
        .rows
        .iter()
        .filter(|r| r.split == CALIBRATION_SPLIT)
        .collect();
    if calib.len() < 2 {
        return table.clone();
    }
    let k = table.statistics.len();
    let mut standard = Vec::with_capacity(k);
    let mut robust = Vec::with_capacity(k);
    for s in 0..k {
        let values: Vec<f64> = calib.iter().map(|r| r.values[s]).collect();
        let (mean, sd) = mean_sd(&values);
        standard.push((mean, if sd > 0.0 { sd } else { 1.0 }));
        let median = quantile(&values, 0.5).unwrap_or(0.0);
        let deviations: Vec<f64> = values.iter().map(|v| (v - median).abs()).collect();
        let mad = quantile(&deviations, 0.5).unwrap_or(0.0);
        robust.push((median, if mad > 0.0 { mad } else { sd.max(1e-12) }));
    }
    let mut out = table.clone();
    out.statistics.push(FUSED.into());
    out.statistics
        .extend(table.statistics.iter().map(|s| format!("{s}_2s")));
    out.statistics.push(FUSED_TWO_SIDED.into());
    for row in &mut out.rows {
        let base = row.values[..k].to_vec();
        let fused = base
            .iter()
            .zip(&standard)
            .map(|(v, (m, sd))| (v - m) / sd)
            .sum::<f64>()
            / k as f64;
        row.values.push(fused);
        let two_sided: Vec<f64> = base
            .iter()
            .zip(&robust)
            .map(|(v, (med, mad))| (v - med).abs() / mad)
            .collect();
        let fused_two_sided = two_sided.iter().sum::<f64>() / k as f64;
        row.values.extend(two_sided);
        row.values.push(fused_two_sided);
    }
    out
}

fn statistic_metrics(
    scores: &[f64],
    positive: &[bool],
    calibration: Option<&[f64]>,
    q: f64,
) -> StatisticMetrics {
    let n_abnormal = positive.iter().filter(|p| **p).count();
    let n_normal = positive.len() - n_abnormal;
    let delong = auroc_delong(scores, positive);
    let curve = roc_curve(scores, positive);
    let undefined = match (n_normal, n_abnormal) {
        (0, 0) => Some("no images".to_string()),
        (0, _) => Some("no normal images: AUROC is undefined".to_string()),
        (_, 0) => Some("no abnormal images: AUROC is undefined".to_string()),
        _ => None,
    };
    let calibration_threshold = calibration.and_then(|c| quantile(c, q)).map(|threshold| {
        let confusion = Confusion::at(scores, positive, threshold);
        CalibrationThreshold {
            quantile: q,
            threshold,
            sensitivity: confusion.sensitivity(),
            specificity: confusion.specificity(),
            f1: confusion.f1(),
            kappa: confusion.kappa(),
            confusion,
        }
    });
    StatisticMetrics {
        n_normal,
        n_abnormal,
        auroc: delong.map(|d| d.0),
        auroc_ci: delong.map(|(a, se)| confidence_interval(a, se)),
        auroc_se: delong.map(|d| d.1),
        ap: average_precision(scores, positive).filter(|_| n_normal > 0),
        youden: youden(&curve).map(|p| OperatingPoint {
            threshold: p.threshold,
            sensitivity: Some(p.tpr),
            specificity: Some(1.0 - p.fpr),
        }),
        sensitivity_at_95_specificity: sensitivity_at_specificity(&curve, 0.95),
        calibration_threshold,
        undefined,
    }
}

/// Evaluates a score table. Rows with split `calib` calibrate; every other row is evaluated.
pub fn evaluate(table: &ScoreTable, options: &EvalOptions) -> (Metrics, Curves) {
    let table = with_derived_statistics(table);
    let eval: Vec<&ScoreRow> = table
        .rows
        .iter()
        .filter(|r| r.split != CALIBRATION_SPLIT)
        .collect();
    let calib: Vec<&ScoreRow> = table
        .rows
        .iter()
        .filter(|r| r.split == CALIBRATION_SPLIT)
        .collect();
    let positive: Vec<bool> = eval.iter().map(|r| r.abnormal).collect();
    let q = options.calibration_quantile;
    let mut curves = Curves::default();
    let mut image_level = BTreeMap::new();
    for (k, name) in table.statistics.iter().enumerate() {
        let scores: Vec<f64> = eval.iter().map(|r| r.values[k]).collect();
        let calib_scores: Vec<f64> = calib.iter().map(|r| r.values[k]).collect();
        let calibration = (!calib_scores.is_empty()).then_some(calib_scores.as_slice());
        image_level.insert(
            name.clone(),
            statistic_metrics(&scores, &positive, calibration, q),
        );
        curves
            .roc
            .insert(name.clone(), roc_curve(&scores, &positive));
        curves.pr.insert(name.clone(), pr_curve(&scores, &positive));
        let normal = scores
            .iter()
            .zip(&positive)
            .filter(|(_, p)| !**p)
            .map(|(s, _)| *s)
            .collect();
        let abnormal = scores
            .iter()
            .zip(&positive)
            .filter(|(_, p)| **p)
            .map(|(s, _)| *s)
            .collect();
        curves
            .distributions
            .insert(name.clone(), (normal, abnormal));
    }

    // studies: mean and max of their images' scores; the label is the study's
    let mut studies: BTreeMap<String, Vec<&ScoreRow>> = BTreeMap::new();
    for row in &eval {
        if let Some(key) = row.study_key() {
            studies.entry(key).or_default().push(row);
        }
    }
    let mut study_level = BTreeMap::new();
    if !studies.is_empty() {
        let study_positive: Vec<bool> = studies
            .values()
            .map(|rows| rows.iter().any(|r| r.abnormal))
            .collect();
        for (how, reduce) in [
            ("mean", reduce_mean as fn(&[f64]) -> f64),
            ("max", reduce_max),
        ] {
            let mut per_stat = BTreeMap::new();
            for (k, name) in table.statistics.iter().enumerate() {
                let scores: Vec<f64> = studies
                    .values()
                    .map(|rows| reduce(&rows.iter().map(|r| r.values[k]).collect::<Vec<_>>()))
                    .collect();
                per_stat.insert(
                    name.clone(),
                    statistic_metrics(&scores, &study_positive, None, q),
                );
            }
            study_level.insert(how.to_string(), per_stat);
        }
    }

    // groups: normal vs abnormal within a group that has both (MURA body parts); a group of
    // abnormal images only (a folder's abnormal class) against every normal image
    let mut groups: BTreeMap<&str, Vec<&ScoreRow>> = BTreeMap::new();
    for row in &eval {
        groups.entry(row.group.as_str()).or_default().push(row);
    }
    let all_normal: Vec<&ScoreRow> = eval.iter().copied().filter(|r| !r.abnormal).collect();
    let mut by_group = BTreeMap::new();
    for (group, rows) in groups {
        let has_normal = rows.iter().any(|r| !r.abnormal);
        let has_abnormal = rows.iter().any(|r| r.abnormal);
        let members: Vec<&ScoreRow> = match (has_normal, has_abnormal) {
            (true, _) => rows,
            (false, true) => rows.into_iter().chain(all_normal.iter().copied()).collect(),
            (false, false) => continue,
        };
        let pos: Vec<bool> = members.iter().map(|r| r.abnormal).collect();
        let mut per_stat = BTreeMap::new();
        for (k, name) in table.statistics.iter().enumerate() {
            let scores: Vec<f64> = members.iter().map(|r| r.values[k]).collect();
            per_stat.insert(name.clone(), statistic_metrics(&scores, &pos, None, q));
        }
        by_group.insert(group.to_string(), per_stat);
    }

    let primary_name = if table.statistics.contains(&options.primary) {
        options.primary.clone()
    } else {
        table.statistics.first().cloned().unwrap_or_default()
    };
    let primary = Headline {
        auroc: image_level.get(&primary_name).and_then(|m| m.auroc),
        statistic: primary_name,
    };
    let best = image_level
        .iter()
        .filter_map(|(name, m)| m.auroc.map(|a| (name, a)))
        .fold(None, |best: Option<(&String, f64)>, (n, a)| match best {
            Some((_, b)) if b >= a => best,
            _ => Some((n, a)),
        })
        .map(|(n, a)| Headline {
            statistic: n.clone(),
            auroc: Some(a),
        })
        .unwrap_or(Headline {
            statistic: String::new(),
            auroc: None,
        });
    let n_abnormal = positive.iter().filter(|p| **p).count();
    let metrics = Metrics {
        n_normal: positive.len() - n_abnormal,
        n_abnormal,
        n_calibration: calib.len(),
        statistics: table.statistics.clone(),
        image_level,
        study_level,
        by_group,
        primary,
        best,
    };
    (metrics, curves)
}

fn reduce_mean(v: &[f64]) -> f64 {
    v.iter().sum::<f64>() / v.len() as f64
}

fn reduce_max(v: &[f64]) -> f64 {
    v.iter().copied().fold(f64::NEG_INFINITY, f64::max)
}
