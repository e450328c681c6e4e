//! Per-image anomaly statistics (SPEC §4; higher = more anomalous) and the residual map.
//! `l2` is a squared error (the seed's "L2" was L1 again) and feature matching uses squared
//! differences (the seed used a signed mean, which lets errors cancel).

use candle::{Result, Tensor};
use serde::{Deserialize, Serialize};

use crate::blocks::per_item_mean;

/// One anomaly statistic.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash, PartialOrd, Ord, Serialize, Deserialize)]
#[serde(rename_all = "snake_case")]
pub enum Statistic {
    /// mean |x − x̂|
    L1,
    /// mean (x − x̂)²
    L2,
    /// mean squared difference of discriminator features x3 between x and x̂
    FmD3,
    /// likewise for x4
    FmD4,
    /// mean squared difference of encoder features (trunk x4) between x and x̂
    FmE,
    /// 1 − sigmoid(D(x)): lower realism, more anomalous
    Disc,
    /// mean of the largest 1 % of the 3×3-smoothed residual map: a local defect (a plate, a
    /// lesion) that a whole-image mean dilutes
    L1Top1,
}

impl Statistic {
    pub const ALL: [Statistic; 7] = [
        Statistic::L1,
        Statistic::L2,
        Statistic::FmD3,
        Statistic::FmD4,
        Statistic::FmE,
        Statistic::Disc,
        Statistic::L1Top1,
    ];

    /// Column name in `scores.csv`.
    pub fn name(self) -> &'static str {
        match self {
            Statistic::L1 => "l1",
            Statistic::L2 => "l2",
            Statistic::FmD3 => "fm_d3",
            Statistic::FmD4 => "fm_d4",
            Statistic::FmE => "fm_e",
            Statistic::Disc => "disc",
            Statistic::L1Top1 => "l1_top1",
        }
    }
}

/// Scores of one batch.
#[derive(Debug, Clone)]
pub struct ScoreBatch {
    /// `values[s][i]`: statistic `Statistic::ALL[s]` of image `i`.
    pub values: Vec<Vec<f32>>,
    /// |x − x̂|, `(B, C, S, S)`: the anomaly map.
    pub residual: Tensor,
    /// x̂ = G(E(x)), `(B, C, S, S)`.
    pub reconstruction: Tensor,
}

impl ScoreBatch {
    pub fn get(&self, statistic: Statistic) -> &[f32] {
        let i = Statistic::ALL
            .iter()
            .position(|&s| s == statistic)
            .unwrap_or(0);
        &self.values[i]
    }
}

/// What scoring needs from a model's forward passes in eval mode.
pub(crate) struct ScoreInputs<'a> {
    pub x: &'a Tensor,
    pub reconstruction: &'a Tensor,
    pub d_real: (&'a Tensor, &'a Tensor, &'a Tensor),
    pub d_reconstructed: (&'a Tensor, &'a Tensor),
    pub e_features: (&'a Tensor, &'a Tensor),
}

fn mean_squared(a: &Tensor, b: &Tensor) -> Result<Tensor> {
    per_item_mean(&a.sub(b)?.sqr()?)
}

pub(crate) fn compute(inputs: ScoreInputs) -> Result<ScoreBatch> {
    let residual = inputs.x.sub(inputs.reconstruction)?.abs()?;
    let (logit, x3, x4) = inputs.d_real;
    let (x3_hat, x4_hat) = inputs.d_reconstructed;
    let columns = [
        per_item_mean(&residual)?,
        per_item_mean(&residual.sqr()?)?,
        mean_squared(x3, x3_hat)?,
        mean_squared(x4, x4_hat)?,
        mean_squared(inputs.e_features.0, inputs.e_features.1)?,
        candle_nn::ops::sigmoid(logit)?.affine(-1.0, 1.0)?,
    ];
    let mut values = columns
        .iter()
        .map(|c| c.to_dtype(candle::DType::F32)?.to_vec1::<f32>())
        .collect::<Result<Vec<_>>>()?;
    values.push(top_percent_mean(
        &residual.avg_pool2d_with_stride(3, 1)?,
        0.01,
    )?);
    Ok(ScoreBatch {
        values,
        residual,
        reconstruction: inputs.reconstruction.clone(),
    })
}

/// Per image: the mean of the largest `fraction` of its values (at least one value).
fn top_percent_mean(maps: &Tensor, fraction: f64) -> Result<Vec<f32>> {
    let rows = maps
        .flatten_from(1)?
        .to_dtype(candle::DType::F32)?
        .to_vec2::<f32>()?;
    Ok(rows
        .into_iter()
        .map(|mut row| {
            let k = ((row.len() as f64 * fraction).ceil() as usize).clamp(1, row.len().max(1));
            if row.is_empty() {
                return 0.0;
            }
            row.select_nth_unstable_by(k - 1, |a, b| b.total_cmp(a));
            row[..k].iter().sum::<f32>() / k as f32
        })
        .collect())
}
