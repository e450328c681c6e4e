//! Per-image anomaly statistics (SPEC §4; higher = more anomalous), the residual map, and the
//! reconstruction statistics that detectors with an encoder, a generator and an image
//! discriminator share. Statistics are an open set: a detector names its own
//! (`Statistic::new("latent")`) and computes them in its folder; the ones here are a library.
//! `l2` is a squared error (the seed's "L2" was L1 again) and feature matching uses squared
//! differences (the seed used a signed mean, which lets errors cancel).

use candle::{Result, Tensor};

use crate::blocks::per_item_mean;
use crate::networks::{Discriminator, Encoder, EncoderOutput, Generator};

/// One anomaly statistic, named as its column in `scores.csv`.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash, PartialOrd, Ord)]
pub struct Statistic(&'static str);

impl Statistic {
    pub const fn new(name: &'static str) -> Self {
        Statistic(name)
    }

    /// mean |x − x̂|
    pub const L1: Statistic = Statistic("l1");
    /// mean (x − x̂)²
    pub const L2: Statistic = Statistic("l2");
    /// mean squared difference of discriminator features x3 between x and x̂
    pub const FM_D3: Statistic = Statistic("fm_d3");
    /// likewise for x4
    pub const FM_D4: Statistic = Statistic("fm_d4");
    /// mean squared difference of encoder features (trunk x4) between x and x̂
    pub const FM_E: Statistic = Statistic("fm_e");
    /// 1 − sigmoid(D(x)): lower realism, more anomalous
    pub const DISC: Statistic = Statistic("disc");
    /// mean of the largest 1 % of the 3×3-smoothed residual map: a local defect (a plate, a
    /// lesion) that a whole-image mean dilutes
    pub const L1_TOP1: Statistic = Statistic("l1_top1");
    /// likewise at a coarser scale: the residual map smoothed over S/8 × S/8 pixels (8×8 at
    /// 64×64), for defects larger than a few pixels
    pub const L1_TOP1_WIDE: Statistic = Statistic("l1_top1_wide");
    /// mean structural dissimilarity (1 − SSIM) / 2 between x and x̂ over 7×7 windows: local
    /// contrast and structure that x̂ fails to reproduce, less sensitive to brightness offsets
    pub const DSSIM: Statistic = Statistic("dssim");
    /// mean of the largest 1 % of the structural-dissimilarity map
    pub const DSSIM_TOP1: Statistic = Statistic("dssim_top1");

    /// What every detector with an encoder, a generator and a classifying image discriminator
    /// computes (BiGAN, Alpha-GAN).
    pub const RECONSTRUCTION_AND_DISCRIMINATOR: [Statistic; 10] = [
        Statistic::L1,
        Statistic::L2,
        Statistic::FM_D3,
        Statistic::FM_D4,
        Statistic::FM_E,
        Statistic::DISC,
        Statistic::L1_TOP1,
        Statistic::L1_TOP1_WIDE,
        Statistic::DSSIM,
        Statistic::DSSIM_TOP1,
    ];

    /// Column name in `scores.csv`.
    pub const fn name(self) -> &'static str {
        self.0
    }
}

impl std::fmt::Display for Statistic {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.write_str(self.0)
    }
}

/// Scores of one batch.
#[derive(Debug, Clone)]
pub struct ScoreBatch {
    /// The detector's statistics, in its order (the columns of `scores.csv`).
    pub statistics: Vec<Statistic>,
    /// `values[s][i]`: statistic `statistics[s]` of image `i`.
    pub values: Vec<Vec<f32>>,
    /// The anomaly map, `(B, C, S, S)`: |x − x̂|, or where a detector's own score weights the
    /// residual (the autoencoder-u), the weighted residual in the same units.
    pub residual: Tensor,
    /// x̂, `(B, C, S, S)`.
    pub reconstruction: Tensor,
}

impl ScoreBatch {
    /// The values of `statistic`; empty when the detector does not compute it.
    pub fn get(&self, statistic: Statistic) -> &[f32] {
        self.statistics
            .iter()
            .position(|&s| s == statistic)
            .map_or(&[], |i| &self.values[i])
    }
}

/// What the shared statistics need from a detector's forward passes in eval mode; a detector
/// leaves out what it does not have and asks only for the statistics its parts allow.
pub struct ScoreInputs<'a> {
    pub x: &'a Tensor,
    pub reconstruction: &'a Tensor,
    /// Realism logit D(x) of a classifying discriminator.
    pub d_logit: Option<&'a Tensor>,
    /// Image-discriminator features (x3, x4) of x and of x̂.
    pub d_features: Option<[(&'a Tensor, &'a Tensor); 2]>,
    /// Encoder trunk features x4 of x and of x̂.
    pub e_features: Option<(&'a Tensor, &'a Tensor)>,
}

/// The eval-mode passes of a detector with an encoder E, a generator G and an image
/// discriminator D: x̂ = G(E(x)) with E's mean code, E's and D's outputs for x and for x̂.
pub struct ReconstructionPasses {
    pub x: Tensor,
    pub code: EncoderOutput,
    pub reconstruction: Tensor,
    pub code_of_reconstruction: EncoderOutput,
    pub d: crate::networks::DiscriminatorOutput,
    pub d_of_reconstruction: crate::networks::DiscriminatorOutput,
}

impl ReconstructionPasses {
    pub fn run(
        x: &Tensor,
        encoder: &Encoder,
        generator: &Generator,
        discriminator: &Discriminator,
    ) -> Result<Self> {
        let code = encoder.forward_t(x, false)?;
        let reconstruction = generator.forward_t(&code.mean, false)?;
        let code_of_reconstruction = encoder.forward_t(&reconstruction, false)?;
        // D in eval mode treats each image on its own, so x and x̂ go through it as one batch:
        // the same numbers from half as many (twice as wide) matrix products
        let (d, d_of_reconstruction) = discriminator.forward_pair(x, &reconstruction)?;
        Ok(ReconstructionPasses {
            x: x.clone(),
            code,
            reconstruction,
            code_of_reconstruction,
            d,
            d_of_reconstruction,
        })
    }

    /// The inputs of the shared statistics; `classifier`: whether D's logit is a realism
    /// probability (not a Wasserstein critic's score).
    pub fn inputs(&self, classifier: bool) -> ScoreInputs<'_> {
        ScoreInputs {
            x: &self.x,
            reconstruction: &self.reconstruction,
            d_logit: classifier.then_some(&self.d.logit),
            d_features: Some([
                (&self.d.features.x3, &self.d_of_reconstruction.features.x3),
                (&self.d.features.x4, &self.d_of_reconstruction.features.x4),
            ]),
            e_features: Some((
                &self.code.features.x4,
                &self.code_of_reconstruction.features.x4,
            )),
        }
    }
}

/// A detector's own statistics: given one it computes, its per-image values; `None` for the
/// statistics it leaves to [`compute`].
pub type OwnStatistics<'a> = &'a dyn Fn(Statistic) -> Option<Result<Vec<f32>>>;

/// Computes `wanted`, in that order: each statistic `own` knows from it, the rest from the shared
/// reconstruction statistics.
pub fn compute(
    wanted: &[Statistic],
    inputs: ScoreInputs,
    own: OwnStatistics,
) -> Result<ScoreBatch> {
    let residual = inputs.x.sub(inputs.reconstruction)?.abs()?;
    let mut dissimilarity: Option<Tensor> = None;
    let mut values = Vec::with_capacity(wanted.len());
    for &statistic in wanted {
        if let Some(column) = own(statistic) {
            values.push(column?);
            continue;
        }
        let features = |depth: usize| match inputs.d_features {
            Some(pairs) => per_item_mean_squared(pairs[depth].0, pairs[depth].1),
            None => missing(statistic),
        };
        values.push(match statistic {
            Statistic::L1 => column(&per_item_mean(&residual)?)?,
            Statistic::L2 => column(&per_item_mean(&residual.sqr()?)?)?,
            Statistic::FM_D3 => column(&features(0)?)?,
            Statistic::FM_D4 => column(&features(1)?)?,
            Statistic::FM_E => match inputs.e_features {
                Some((a, b)) => column(&per_item_mean_squared(a, b)?)?,
                None => missing(statistic)?,
            },
            Statistic::DISC => match inputs.d_logit {
                Some(logit) => column(&candle_nn::ops::sigmoid(logit)?.affine(-1.0, 1.0)?)?,
                None => missing(statistic)?,
            },
            Statistic::L1_TOP1 => top_percent_mean(&residual.avg_pool2d_with_stride(3, 1)?, 0.01)?,
            Statistic::L1_TOP1_WIDE => {
                let wide = (residual.dim(3)? / 8).max(3);
                top_percent_mean(&residual.avg_pool2d_with_stride(wide, 1)?, 0.01)?
            }
            Statistic::DSSIM | Statistic::DSSIM_TOP1 => {
                let map = match &dissimilarity {
                    Some(map) => map.clone(),
                    None => structural_dissimilarity(inputs.x, inputs.reconstruction, 7)?,
                };
                dissimilarity = Some(map.clone());
                if statistic == Statistic::DSSIM {
                    column(&per_item_mean(&map)?)?
                } else {
                    top_percent_mean(&map, 0.01)?
                }
            }
            other => candle::bail!(
                "statistic {other} is not a shared reconstruction statistic, and the detector does not compute it"
            ),
        });
    }
    Ok(ScoreBatch {
        statistics: wanted.to_vec(),
        values,
        residual,
        reconstruction: inputs.reconstruction.clone(),
    })
}

/// No statistics of the detector's own.
pub fn none_of_its_own(_: Statistic) -> Option<Result<Vec<f32>>> {
    None
}

/// Per-image mean |x − G(E(x))| with E's mean code, in eval mode: the validation error of a
/// detector that reconstructs through an encoder and a generator.
pub fn reconstruction_error(
    encoder: &Encoder,
    generator: &Generator,
    x: &Tensor,
) -> Result<Vec<f32>> {
    let code = encoder.forward_t(x, false)?.mean;
    x.sub(&generator.forward_t(&code, false)?)?
        .abs()?
        .flatten_from(1)?
        .mean(1)?
        .to_vec1::<f32>()
}

pub fn per_item_mean_squared(a: &Tensor, b: &Tensor) -> Result<Tensor> {
    per_item_mean(&a.sub(b)?.sqr()?)
}

pub fn column(t: &Tensor) -> Result<Vec<f32>> {
    t.to_dtype(candle::DType::F32)?.to_vec1::<f32>()
}

fn missing<T>(statistic: Statistic) -> Result<T> {
    candle::bail!(
        "statistic {} needs a network this detector does not have",
        statistic.name()
    )
}

/// (1 − SSIM) / 2 per `window`×`window` patch (box window, valid positions only) of images in
/// [−1, 1], with the usual constants for a dynamic range of 1 after mapping to [0, 1]. 0 where
/// the patches are identical, up to 1 where they are anti-correlated.
fn structural_dissimilarity(x: &Tensor, y: &Tensor, window: usize) -> Result<Tensor> {
    let window = window.min(x.dim(2)?).min(x.dim(3)?);
    dissimilarity_map(x, y, &|t| t.avg_pool2d_with_stride(window, 1))
}

/// The (1 − SSIM) / 2 map of [`structural_dissimilarity`] with the windows' means taken by a
/// depthwise convolution of a constant kernel instead of an average pool: the same numbers up to
/// the order of sums, and differentiable (candle has no backward for an average pool whose
/// stride differs from its size), for a training loss.
pub(crate) fn differentiable_structural_dissimilarity(
    x: &Tensor,
    y: &Tensor,
    window: usize,
) -> Result<Tensor> {
    let channels = x.dim(1)?;
    let window = window.min(x.dim(2)?).min(x.dim(3)?);
    let kernel = (Tensor::ones((channels, 1, window, window), x.dtype(), x.device())?
        / (window * window) as f64)?;
    dissimilarity_map(x, y, &|t| t.conv2d(&kernel, 0, 1, 1, channels))
}

/// (1 − SSIM) / 2 from the local means that `pool` takes, of images in [−1, 1].
fn dissimilarity_map(
    x: &Tensor,
    y: &Tensor,
    pool: &dyn Fn(&Tensor) -> Result<Tensor>,
) -> Result<Tensor> {
    let (c1, c2) = (0.01f64.powi(2), 0.03f64.powi(2));
    let x = x.to_dtype(candle::DType::F32)?.affine(0.5, 0.5)?;
    let y = y.to_dtype(candle::DType::F32)?.affine(0.5, 0.5)?;
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
    fn the_differentiable_dissimilarity_equals_the_pooled_one_and_has_a_gradient() {
        let x = stripes(16, 1.0);
        let y = candle::Var::from_tensor(&(&x * 0.5).unwrap().affine(1.0, 0.1).unwrap()).unwrap();
        let pooled = structural_dissimilarity(&x, y.as_tensor(), 7).unwrap();
        let convolved = differentiable_structural_dissimilarity(&x, y.as_tensor(), 7).unwrap();
        assert_eq!(pooled.dims(), convolved.dims());
        let gap = pooled
            .sub(&convolved)
            .unwrap()
            .abs()
            .unwrap()
            .max_all()
            .unwrap()
            .to_scalar::<f32>()
            .unwrap();
        assert!(gap < 1e-5, "{gap}");
        assert!(mean(&convolved) > 0.01, "{}", mean(&convolved));
        let grads = convolved.mean_all().unwrap().backward().unwrap();
        let g = grads
            .get(y.as_tensor())
            .unwrap()
            .abs()
            .unwrap()
            .sum_all()
            .unwrap();
        assert!(g.to_scalar::<f32>().unwrap() > 0.0);
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
