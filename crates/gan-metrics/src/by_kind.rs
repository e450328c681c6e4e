//! AUROC per abnormality kind: each kind's abnormal images against every normal image of the
//! evaluation split, for every statistic (derived ones included). The kinds are the caller's
//! (the synthetic data's fracture, hardware, lesion, cast).

use std::collections::BTreeMap;

use serde::Serialize;

use crate::evaluate::with_derived_statistics;
use crate::roc::auroc;
use crate::scores::{CALIBRATION_SPLIT, ScoreTable};

/// AUROC of every statistic for one abnormality kind.
#[derive(Debug, Clone, Serialize)]
pub struct KindResult {
    pub kind: String,
    pub n_abnormal: usize,
    /// statistic → AUROC
    pub auroc: BTreeMap<String, Option<f64>>,
}

/// For each of `kinds`, in order: the AUROC of every statistic over that kind's abnormal images
/// (`kind_of(path)`) and every normal image; abnormal images of other kinds are left out.
pub fn auroc_by_kind(
    scores: &ScoreTable,
    kinds: &[&str],
    kind_of: &dyn Fn(&str) -> Option<String>,
) -> Vec<KindResult> {
    let table = with_derived_statistics(scores);
    let eval: Vec<_> = table
        .rows
        .iter()
        .filter(|r| r.split != CALIBRATION_SPLIT)
        .collect();
    kinds
        .iter()
        .map(|&kind| {
            let members: Vec<_> = eval
                .iter()
                .filter(|r| !r.abnormal || kind_of(&r.path).as_deref() == Some(kind))
                .collect();
            let positive: Vec<bool> = members.iter().map(|r| r.abnormal).collect();
            let auroc = table
                .statistics
                .iter()
                .enumerate()
                .map(|(k, name)| {
                    let values: Vec<f64> = members.iter().map(|r| r.values[k]).collect();
                    (name.clone(), auroc(&values, &positive))
                })
                .collect();
            KindResult {
                kind: kind.to_string(),
                n_abnormal: positive.iter().filter(|p| **p).count(),
                auroc,
            }
        })
        .collect()
}
