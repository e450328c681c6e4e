//! Per-image anomaly statistics (SPEC §4; higher = more anomalous) and the residual map.
//! `l2` is a squared error (the seed's "L2" was L1 again) and feature matching uses squared
//! differences (the seed used a signed mean, which lets errors cancel).

use candle::{Result, Tensor};
use serde::{Deserialize, Serialize};

use crate::blocks::per_item_mean;
use crate::networks::{Discriminator, Encoder, Generator};

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
    /// GANomaly: mean squared distance between the code of x and the second encoder's code of x̂
    Latent,
    /// f-AnoGAN's anomaly score: `l2` + κ·`fm_d4` (κ = 1), the image and critic-feature residuals
    Izif,
}

impl Statistic {
    /// What every model with an encoder, a generator and a classifying image discriminator
    /// computes (BiGAN, Alpha-GAN).
    pub const RECONSTRUCTION_AND_DISCRIMINATOR: [Statistic; 10] = [
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

    /// Every statistic of any model.
    pub const ALL: [Statistic; 12] = [
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
        Statistic::Latent,
        Statistic::Izif,
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
            Statistic::Latent => "latent",
            Statistic::Izif => "izif",
        }
    }
}

/// Scores of one batch.
#[derive(Debug, Clone)]
pub struct ScoreBatch {
    /// The model's statistics, in its order (the columns of `scores.csv`).
    pub statistics: Vec<Statistic>,
    /// `values[s][i]`: statistic `statistics[s]` of image `i`.
    pub values: Vec<Vec<f32>>,
    /// |x − x̂|, `(B, C, S, S)`: the anomaly map.
    pub residual: Tensor,
    /// x̂, `(B, C, S, S)`.
    pub reconstruction: Tensor,
}

impl ScoreBatch {
    /// The values of `statistic`; empty when the model does not compute it.
    pub fn get(&self, statistic: Statistic) -> &[f32] {
        self.statistics
            .iter()
            .position(|&s| s == statistic)
            .map_or(&[], |i| &self.values[i])
    }
}

/// What scoring needs from a model's forward passes in eval mode; a model leaves out what it does
/// not have and asks only for the statistics its parts allow.
pub(crate) struct ScoreInputs<'a> {
    pub x: &'a Tensor,
    pub reconstruction: &'a Tensor,
    /// Realism logit D(x) of a classifying discriminator.
    pub d_logit: Option<&'a Tensor>,
    /// Image-discriminator features (x3, x4) of x and of x̂.
    pub d_features: Option<[(&'a Tensor, &'a Tensor); 2]>,
    /// Encoder trunk features x4 of x and of x̂.
    pub e_features: Option<(&'a Tensor, &'a Tensor)>,
    /// Code of x and the second encoder's code of x̂.
    pub codes: Option<(&'a Tensor, &'a Tensor)>,
}

/// Scoring of a model with an encoder E, a generator G and an image discriminator D: x̂ = G(E(x))
/// with E's mean code, E's and D's features of x and of x̂, D's realism logit when D is a
/// classifier (not a Wasserstein critic), and with a second encoder E′ (GANomaly) the codes E(x)
/// and E′(x̂). All in eval mode.
pub(crate) fn score_reconstruction(
    wanted: &[Statistic],
    x: &Tensor,
    encoder: &Encoder,
    generator: &Generator,
    discriminator: &Discriminator,
    classifier: bool,
    second_encoder: Option<&Encoder>,
) -> Result<ScoreBatch> {
    let code = encoder.forward_t(x, false)?;
    let x_hat = generator.forward_t(&code.mean, false)?;
    let code_hat = encoder.forward_t(&x_hat, false)?;
    let second_code = match second_encoder {
        Some(e) => Some(e.forward_t(&x_hat, false)?.mean),
        None => None,
    };
    let d = discriminator.forward_t(x, false)?;
    let d_hat = discriminator.forward_t(&x_hat, false)?;
    compute(
        wanted,
        ScoreInputs {
            x,
            reconstruction: &x_hat,
            d_logit: classifier.then_some(&d.logit),
            d_features: Some([
                (&d.features.x3, &d_hat.features.x3),
                (&d.features.x4, &d_hat.features.x4),
            ]),
            e_features: Some((&code.features.x4, &code_hat.features.x4)),
            codes: second_code.as_ref().map(|c| (&code.mean, c)),
        },
    )
}

fn mean_squared(a: &Tensor, b: &Tensor) -> Result<Tensor> {
    per_item_mean(&a.sub(b)?.sqr()?)
}

fn column(t: &Tensor) -> Result<Vec<f32>> {
    t.to_dtype(candle::DType::F32)?.to_vec1::<f32>()
}

fn missing<T>(statistic: Statistic) -> Result<T> {
    candle::bail!(
        "statistic {} needs a network this model does not have",
        statistic.name()
    )
}

/// Computes `wanted`, in that order.
pub(crate) fn compute(wanted: &[Statistic], inputs: ScoreInputs) -> Result<ScoreBatch> {
    let residual = inputs.x.sub(inputs.reconstruction)?.abs()?;
    let mut dissimilarity: Option<Tensor> = None;
    let mut values = Vec::with_capacity(wanted.len());
    for &statistic in wanted {
        let features = |depth: usize| match inputs.d_features {
            Some(pairs) => mean_squared(pairs[depth].0, pairs[depth].1),
            None => missing(statistic),
        };
        values.push(match statistic {
            Statistic::L1 => column(&per_item_mean(&residual)?)?,
            Statistic::L2 => column(&per_item_mean(&residual.sqr()?)?)?,
            Statistic::FmD3 => column(&features(0)?)?,
            Statistic::FmD4 => column(&features(1)?)?,
            Statistic::Izif => column(&(per_item_mean(&residual.sqr()?)? + features(1)?)?)?,
            Statistic::FmE => match inputs.e_features {
                Some((a, b)) => column(&mean_squared(a, b)?)?,
                None => missing(statistic)?,
            },
            Statistic::Latent => match inputs.codes {
                Some((a, b)) => column(&mean_squared(a, b)?)?,
                None => missing(statistic)?,
            },
            Statistic::Disc => match inputs.d_logit {
                Some(logit) => column(&candle_nn::ops::sigmoid(logit)?.affine(-1.0, 1.0)?)?,
                None => missing(statistic)?,
            },
            Statistic::L1Top1 => top_percent_mean(&residual.avg_pool2d_with_stride(3, 1)?, 0.01)?,
            Statistic::L1Top1Wide => {
                let wide = (residual.dim(3)? / 8).max(3);
                top_percent_mean(&residual.avg_pool2d_with_stride(wide, 1)?, 0.01)?
            }
            Statistic::Dssim | Statistic::DssimTop1 => {
                let map = match &dissimilarity {
                    Some(map) => map.clone(),
                    None => structural_dissimilarity(inputs.x, inputs.reconstruction, 7)?,
                };
                dissimilarity = Some(map.clone());
                if statistic == Statistic::Dssim {
                    column(&per_item_mean(&map)?)?
                } else {
                    top_percent_mean(&map, 0.01)?
                }
            }
        });
    }
    Ok(ScoreBatch {
        statistics: wanted.to_vec(),
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
