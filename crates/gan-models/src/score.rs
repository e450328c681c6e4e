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
    /// likewise at a coarser scale: the residual map smoothed over S/8 × S/8 pixels (8×8 at
    /// 64×64), for defects larger than a few pixels
    L1Top1Wide,
    /// mean structural dissimilarity (1 − SSIM) / 2 between x and x̂ over 7×7 windows: local
    /// contrast and structure that x̂ fails to reproduce, less sensitive to brightness offsets
    Dssim,
    /// mean of the largest 1 % of the structural-dissimilarity map
    DssimTop1,
}

impl Statistic {
    pub const ALL: [Statistic; 10] = [
        Statistic::L1,
        Statistic::L2,
        Statistic::FmD3,
        Statistic::FmD4,
        Statistic::FmE,
        Statistic::Disc,
        Statistic::L1Top1,
        Statistic::L1Top1Wide,
        Statistic::Dssim,
        Statistic::DssimTop1,
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
            Statistic::L1Top1Wide => "l1_top1_wide",
            Statistic::Dssim => "dssim",
            Statistic::DssimTop1 => "dssim_top1",
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
    let wide = (residual.dim(3)? / 8).max(3);
    values.push(top_percent_mean(
        &residual.avg_pool2d_with_stride(wide, 1)?,
        0.01,
    )?);
    let dissimilarity = structural_dissimilarity(inputs.x, inputs.reconstruction, 7)?;
    values.push(
        per_item_mean(&dissimilarity)?
            .to_dtype(candle::DType::F32)?
            .to_vec1::<f32>()?,
    );
    values.push(top_percent_mean(&dissimilarity, 0.01)?);
    Ok(ScoreBatch {
        values,
        residual,
        reconstruction: inputs.reconstruction.clone(),
    })
}

/// (1 − SSIM) / 2 per `window`×`window` patch (box window, valid positions only) of images in
/// [−1, 1], with the usual constants for a dynamic range of 1 after mapping to [0, 1]. 0 where
/// the patches are identical, up to 1 where they are anti-correlated.
fn structural_dissimilarity(x: &Tensor, y: &Tensor, window: usize) -> Result<Tensor> {
    let window = window.min(x.dim(2)?).min(x.dim(3)?);
    let (c1, c2) = (0.01f64.powi(2), 0.03f64.powi(2));
    let x = x.to_dtype(candle::DType::F32)?.affine(0.5, 0.5)?;
    let y = y.to_dtype(candle::DType::F32)?.affine(0.5, 0.5)?;
    let pool = |t: &Tensor| t.avg_pool2d_with_stride(window, 1);
    let (mx, my) = (pool(&x)?, pool(&y)?);
    let vx = pool(&x.sqr()?)?.sub(&mx.sqr()?)?;
    let vy = pool(&y.sqr()?)?.sub(&my.sqr()?)?;
    let cov = pool(&x.mul(&y)?)?.sub(&mx.mul(&my)?)?;
    let numerator = (mx.mul(&my)?.affine(2.0, c1)?).mul(&cov.affine(2.0, c2)?)?;
    let denominator = (mx.sqr()? + my.sqr()?)?
        .affine(1.0, c1)?
        .mul(&(vx + vy)?.affine(1.0, c2)?)?;
    numerator.div(&denominator)?.affine(-0.5, 0.5)
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

#[cfg(test)]
mod tests {
    use candle::Device;

    use super::*;

    fn stripes(size: usize, sign: f32) -> Tensor {
        let values: Vec<f32> = (0..size * size)
            .map(|i| sign * if (i % size) % 4 < 2 { 0.8 } else { -0.6 })
            .collect();
        Tensor::from_vec(values, (1, 1, size, size), &Device::Cpu).unwrap()
    }

    fn mean(t: &Tensor) -> f32 {
        t.mean_all().unwrap().to_scalar().unwrap()
    }

    #[test]
    fn structural_dissimilarity_is_zero_for_identical_images_and_near_one_for_inverted_ones() {
        let x = stripes(16, 1.0);
        let same = structural_dissimilarity(&x, &x, 7).unwrap();
        assert_eq!(same.dims(), &[1, 1, 10, 10]);
        assert!(mean(&same).abs() < 1e-5, "{}", mean(&same));
        let inverted = mean(&structural_dissimilarity(&x, &stripes(16, -1.0), 7).unwrap());
        assert!(inverted > 0.9 && inverted <= 1.0 + 1e-5, "{inverted}");
        // a brightness offset keeps the structure: far less dissimilar than losing it
        let brighter =
            mean(&structural_dissimilarity(&x, &x.affine(1.0, 0.1).unwrap(), 7).unwrap());
        let flat = mean(&structural_dissimilarity(&x, &x.zeros_like().unwrap(), 7).unwrap());
        assert!(
            brighter < 0.05 && flat > 0.4,
            "offset {brighter}, flat {flat}"
        );
    }

    #[test]
    fn the_top_percent_mean_takes_the_largest_values_of_each_image() {
        let values: Vec<f32> = (0..200).map(|i| i as f32).collect();
        let maps = Tensor::from_vec(values, (2, 1, 10, 10), &Device::Cpu).unwrap();
        // 1 % of 100 values is one value: each image's maximum
        assert_eq!(top_percent_mean(&maps, 0.01).unwrap(), vec![99.0, 199.0]);
        assert_eq!(top_percent_mean(&maps, 0.02).unwrap(), vec![98.5, 198.5]);
    }
}
