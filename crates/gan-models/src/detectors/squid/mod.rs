//! SQUID (Xiang et al., "SQUID: Deep Feature In-Painting for Unsupervised Anomaly Detection",
//! CVPR 2023; code `tiangexiang/SQUID`): the image cut into patches encoded separately, each
//! patch's features in-painted from a memory queue of normal patch features and its neighbours,
//! a student decoder distilled from a teacher that sees the raw features, and a discriminator on
//! the student's reconstructions whose doubt is the anomaly score.
//!
//! The score `squid` is −log σ(D(x̂)), the discriminator's cross-entropy for calling the
//! reconstruction real: the paper reports 1 − σ((D(x̂) − μ)/σ_n) with μ, σ_n the mean and sd over
//! normal training images, a decreasing map of the same logit (the same AUROC) that saturates
//! at 0 and 1 in float; evaluation standardises it on the normal validation images for its
//! threshold and the fused statistics.
//!
//! Left out of the paper's model: the learned memory matrices in the first two decoder levels
//! (`MemoryMatrixBlock`), the eight zero-padded attention keys of the 3×3 window (three real
//! neighbours here), eight attention heads (one here) and the double convolutions of each level
//! (one convolution here); the paper's images are [0, 1] with a sigmoid output, ours [−1, 1] with
//! tanh.

mod networks;
mod step;

use candle::{Device, Tensor};
use serde::{Deserialize, Serialize};

use crate::blocks::per_item_mean;
use crate::config::ModelConfig;
use crate::detector::{Detector, Passes, StepContext, counted, discriminator_flops, non_negative};
use crate::error::{ModelError, Result};
use crate::networks::Discriminator;
use crate::optim::OptimiserConfig;
use crate::player::Player;
use crate::registry::Register;
use crate::statistics::{ScoreBatch, ScoreInputs, Statistic, column, compute};

pub use networks::{
    Decoded, InpaintBlock, Inpainted, MEMORY_QUEUE, PATCHES, PatchDecoder, PatchEncoder,
    PatchFeatures, split_patches, stitch_patches,
};
pub use step::PASSES;

/// SQUID's anomaly score: −log σ(D(x̂)) ≥ 0, higher when the discriminator finds the
/// reconstruction less real.
pub const SQUID: Statistic = Statistic::new("squid");

/// Draw purpose of the in-painting mask.
const DRAW_MASK: u64 = 11;

/// SQUID's settings (the paper's `configs/zhang_best.py`).
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
#[serde(default, deny_unknown_fields)]
pub struct SquidSettings {
    /// Slots of each patch position's memory queue.
    pub memory_slots: usize,
    /// Memory slots a query reads (the paper's hard shrinkage with k = 5 keeps 4).
    pub memory_top_k: usize,
    /// Share of bottleneck positions that take the in-painted feature while training (the rest
    /// keep the encoder's own).
    pub mask_ratio: f64,
    /// Weight of MSE(x̂, x), the student's reconstruction.
    pub reconstruction_weight: f64,
    /// Weight of MSE(x̂_T, x), the teacher's reconstruction.
    pub teacher_weight: f64,
    /// Weight of the summed MSE between student and teacher features at each decoder level.
    pub distillation_weight: f64,
    /// Weight of the generator's adversarial term BCE(D(x̂), 1).
    pub adversarial_weight: f64,
    /// Weight of the discriminator's loss.
    pub discriminator_weight: f64,
    /// The generator side learns every `critic_every`-th step, the discriminator every step.
    pub critic_every: u64,
}

impl Default for SquidSettings {
    fn default() -> Self {
        SquidSettings {
            memory_slots: 200,
            memory_top_k: 4,
            mask_ratio: 0.95,
            reconstruction_weight: 10.0,
            teacher_weight: 0.01,
            distillation_weight: 0.001,
            adversarial_weight: 0.005,
            discriminator_weight: 0.005,
            critic_every: 2,
        }
    }
}

impl crate::detector::Settings for SquidSettings {
    fn validate(&self) -> std::result::Result<(), String> {
        if self.memory_slots == 0 || self.memory_top_k == 0 {
            return Err("memory_slots and memory_top_k must be at least 1".into());
        }
        if self.memory_top_k > self.memory_slots {
            return Err(format!(
                "memory_top_k ({}) cannot exceed memory_slots ({})",
                self.memory_top_k, self.memory_slots
            ));
        }
        if !(0.0..=1.0).contains(&self.mask_ratio) {
            return Err(format!(
                "mask_ratio must be in [0, 1], got {}",
                self.mask_ratio
            ));
        }
        if self.critic_every == 0 {
            return Err("critic_every must be at least 1".into());
        }
        non_negative("reconstruction_weight", self.reconstruction_weight)?;
        non_negative("teacher_weight", self.teacher_weight)?;
        non_negative("distillation_weight", self.distillation_weight)?;
        non_negative("adversarial_weight", self.adversarial_weight)?;
        non_negative("discriminator_weight", self.discriminator_weight)
    }
}

#[derive(Debug, Clone)]
pub struct Squid {
    pub config: ModelConfig,
    pub settings: SquidSettings,
    pub encoder: PatchEncoder,
    pub inpaint: InpaintBlock,
    pub student: PatchDecoder,
    pub teacher: PatchDecoder,
    pub discriminator: Discriminator,
    /// encoder, inpaint, student, teacher, discriminator.
    pub players: [Player; 5],
}

/// One pass: the patches' features, the in-painted ones, and both decoders' outputs.
pub struct SquidPass {
    pub features: PatchFeatures,
    pub inpainted: Inpainted,
    pub student: Decoded,
    pub teacher: Decoded,
}

impl Squid {
    /// Its own score first, then the reconstruction statistics and the realism of x.
    pub const STATISTICS: [Statistic; 8] = [
        SQUID,
        Statistic::L1,
        Statistic::L2,
        Statistic::L1_TOP1,
        Statistic::L1_TOP1_WIDE,
        Statistic::DSSIM,
        Statistic::DSSIM_TOP1,
        Statistic::DISC,
    ];

    /// The whole forward pass; `training`: in train mode, with this step's in-painting mask.
    /// The teacher decodes the encoder's raw features, detached, so only the student's losses
    /// train the encoder.
    pub fn pass(&self, x: &Tensor, training: Option<&StepContext>) -> candle::Result<SquidPass> {
        let train = training.is_some();
        let features = self.encoder.forward_t(&split_patches(x)?, train)?;
        let keep = match training {
            Some(context) => {
                let (n, _, s, _) = features.bottleneck.dims4()?;
                Some(keep_mask(
                    (n, 1, s, s),
                    self.settings.mask_ratio,
                    gan_data::mix(context.seed, context.step, DRAW_MASK),
                    x.device(),
                )?)
            }
            None => None,
        };
        let inpainted = self
            .inpaint
            .forward_t(&features.bottleneck, keep.as_ref(), train)?;
        let student = self
            .student
            .forward_t(&inpainted.bottleneck, &features.skips, train)?;
        let detached = [features.skips[0].detach(), features.skips[1].detach()];
        let teacher = self
            .teacher
            .forward_t(&features.bottleneck.detach(), &detached, train)?;
        Ok(SquidPass {
            features,
            inpainted,
            student,
            teacher,
        })
    }

    /// x̂, the student's reconstruction in eval mode (the teacher, which only trains the
    /// student, is not run).
    pub fn reconstruct(&self, x: &Tensor) -> candle::Result<Tensor> {
        let features = self.encoder.forward_t(&split_patches(x)?, false)?;
        let inpainted = self.inpaint.forward_t(&features.bottleneck, None, false)?;
        Ok(self
            .student
            .forward_t(&inpainted.bottleneck, &features.skips, false)?
            .reconstruction)
    }
}

/// A tensor of `shape` holding 1 with probability `ratio` and 0 otherwise, drawn from `seed`.
fn keep_mask(
    shape: (usize, usize, usize, usize),
    ratio: f64,
    seed: u64,
    device: &Device,
) -> candle::Result<Tensor> {
    use rand::{Rng, SeedableRng};
    let mut rng = rand::rngs::StdRng::seed_from_u64(seed);
    let n = shape.0 * shape.1 * shape.2 * shape.3;
    let values: Vec<f32> = (0..n)
        .map(|_| f32::from(u8::from(rng.random::<f64>() < ratio)))
        .collect();
    Tensor::from_vec(values, shape, device)
}

/// ln(1 + eˣ), computed without overflow: max(x, 0) + ln(1 + e^−|x|).
fn softplus(x: &Tensor) -> candle::Result<Tensor> {
    x.relu()? + (x.abs()?.neg()?.exp()? + 1.0)?.log()?
}

impl Register for Squid {
    const NAME: &'static str = "squid";
    const SUMMARY: &'static str = "patches in-painted from a memory queue of normal features, teacher-student decoders, discriminator score (Xiang et al. 2023)";
    const PRIMARY: &'static str = SQUID.name();
    type Settings = SquidSettings;

    /// SQUID's: Adam lr 1e-4, betas 0.5 / 0.999, ε 1e-7 (its weight decay of 1e-5 and cosine
    /// schedule are not applied).
    fn optimiser() -> OptimiserConfig {
        OptimiserConfig {
            learning_rate: 1e-4,
            epsilon: 1e-7,
            ..OptimiserConfig::default()
        }
    }

    fn build(
        config: &ModelConfig,
        settings: SquidSettings,
        device: &Device,
        seed: u64,
    ) -> Result<Self> {
        let patch = config.image_size / networks::GRID;
        if patch < 16 {
            return Err(ModelError::Config(format!(
                "SQUID needs images of at least 32 px (patches of 16), got {}",
                config.image_size
            )));
        }
        let players = [
            Player::new("encoder", device),
            Player::new("inpaint", device),
            Player::new("student", device),
            Player::new("teacher", device),
            Player::new("discriminator", device),
        ];
        let (w, c) = (config.width, config.channels);
        let model = Squid {
            config: *config,
            encoder: PatchEncoder::new(w, c, players[0].var_builder())?,
            inpaint: InpaintBlock::new(
                w,
                patch / 16,
                settings.memory_slots,
                settings.memory_top_k,
                players[1].var_builder(),
            )?,
            student: PatchDecoder::new(w, c, players[2].var_builder())?,
            teacher: PatchDecoder::new(w, c, players[3].var_builder())?,
            discriminator: Discriminator::new(config, players[4].var_builder())?,
            settings,
            players,
        };
        Player::seed_all(&model.players, seed)?;
        model
            .inpaint
            .seed_memory(gan_data::mix(seed, 0, DRAW_MASK))?;
        Ok(model)
    }
}

impl Detector for Squid {
    crate::detector::detector_parts!();

    fn score_statistics(&self, x: &Tensor, wanted: &[Statistic]) -> Result<ScoreBatch> {
        let reconstruction = self.reconstruct(x)?;
        let (d_real, d_reconstruction) = self.discriminator.forward_pair(x, &reconstruction)?;
        let (d_real, d_reconstruction) = (d_real.logit, d_reconstruction.logit);
        let own = |statistic: Statistic| {
            (statistic == SQUID).then(|| column(&softplus(&d_reconstruction.neg()?)?))
        };
        Ok(compute(
            wanted,
            ScoreInputs {
                x,
                reconstruction: &reconstruction,
                d_logit: Some(&d_real),
                d_features: None,
                e_features: None,
            },
            &own,
        )?)
    }

    /// Mean |x − x̂| of the student's reconstruction: normal images only choose the checkpoint.
    fn validation_error(&self, x: &Tensor) -> Result<Vec<f32>> {
        let residual = x.sub(&self.reconstruct(x)?)?.abs()?;
        Ok(per_item_mean(&residual)?.to_vec1()?)
    }

    /// SQUID reconstructs; it has no prior to sample from.
    fn generate(&self, _: usize, _: u64) -> Result<Option<Tensor>> {
        Ok(None)
    }

    fn forward_flops_per_image(&self, device: &Device) -> Result<Vec<(&'static str, u64)>> {
        let x = (self as &dyn Detector).probe_image(device)?;
        let patches = split_patches(&x)?;
        let features = self.encoder.forward_t(&patches, false)?;
        let inpainted = self.inpaint.forward_t(&features.bottleneck, None, false)?;
        let decoder = |d: &PatchDecoder| {
            counted(&|| {
                Ok(d.forward_t(&inpainted.bottleneck, &features.skips, false)?
                    .reconstruction)
            })
        };
        Ok(vec![
            (
                "encoder",
                counted(&|| Ok(self.encoder.forward_t(&patches, false)?.bottleneck))?,
            ),
            (
                "inpaint",
                counted(&|| {
                    Ok(self
                        .inpaint
                        .forward_t(&features.bottleneck, None, false)?
                        .bottleneck)
                })?,
            ),
            ("student", decoder(&self.student)?),
            ("teacher", decoder(&self.teacher)?),
            (
                "discriminator",
                discriminator_flops(&self.discriminator, &x)?,
            ),
        ])
    }

    fn step_passes(&self) -> Vec<Passes> {
        PASSES.to_vec()
    }
}
