//! The [`Detector`] trait: what the training loop, the run folder, scoring, the benchmark and the
//! CLI know of a detector. Each detector lives in its own folder under [`crate::detectors`]
//! (networks, losses, training step, statistics, settings) and is registered with one line in
//! [`crate::REGISTRY`] (`detectors/mod.rs`); nothing outside its folder names it.
//!
//! Detectors are trait objects (`Box<dyn Detector>`): a run holds one detector, called once per
//! batch, so a virtual call costs nothing measurable, and a new detector needs no enum variant and
//! no arm in a dispatching `match`.

use candle::{DType, Device, Tensor};
use gan_data::mix;
use serde::Serialize;
use serde::de::DeserializeOwned;

use crate::config::ModelConfig;
use crate::error::{ModelError, Result};
use crate::networks::{Discriminator, Encoder, Generator};
use crate::optim::Adam;
use crate::player::Player;
use crate::registry::DetectorKind;
use crate::statistics::{ScoreBatch, Statistic};

/// Loss of each player (or of each jointly stepped group of players) in one step.
pub type StepLosses = Vec<(&'static str, f32)>;

/// Purposes of a step's random draws, mixed into their seeds with the run seed and the step.
pub const DRAW_Z: u64 = 1;
pub const DRAW_EPSILON: u64 = 2;
pub const DRAW_NOISE: u64 = 3;

/// Where one training step stands: every random draw of a step derives from the run seed and the
/// step number, so a resumed run repeats what an uninterrupted one would have done.
#[derive(Debug, Clone)]
pub struct StepContext {
    pub epoch: u64,
    pub step: u64,
    /// Epochs the run trains in all.
    pub epochs: u64,
    pub seed: u64,
    /// Standard deviation of the instance noise on discriminator inputs this epoch (0 = none).
    pub noise_sd: f64,
    pub device: Device,
}

impl StepContext {
    /// A `(rows, cols)` tensor of N(0, 1) draws for `purpose` at this step.
    pub fn normal(&self, shape: (usize, usize), purpose: u64) -> candle::Result<Tensor> {
        normal_tensor(shape, mix(self.seed, self.step, purpose), &self.device)
    }

    /// Seed of this step's instance noise (each noisy input adds its own offset).
    pub fn noise_seed(&self) -> u64 {
        mix(self.seed, self.step, DRAW_NOISE)
    }
}

/// A `(rows, cols)` tensor of N(0, 1) draws from a generator seeded by `seed` (candle's own CPU
/// generator cannot be seeded).
pub fn normal_tensor(shape: (usize, usize), seed: u64, device: &Device) -> candle::Result<Tensor> {
    use rand::SeedableRng;
    use rand_distr::{Distribution, StandardNormal};
    let mut rng = rand::rngs::StdRng::seed_from_u64(seed);
    let values: Vec<f32> = (0..shape.0 * shape.1)
        .map(|_| StandardNormal.sample(&mut rng))
        .collect();
    Tensor::from_vec(values, shape, device)
}

/// How often one training step runs a network: `trained` passes are differentiated for its own
/// weights (backward: an input and a weight gradient, about three forward costs in all),
/// `frozen` passes only carry gradients through it to another player (input gradient only, two
/// forward costs), `forward` passes take no gradient (one).
#[derive(Debug, Clone, Copy)]
pub struct Passes {
    pub player: &'static str,
    pub trained: f64,
    pub frozen: f64,
    pub forward: f64,
}

pub const fn passes(player: &'static str, trained: f64, frozen: f64, forward: f64) -> Passes {
    Passes {
        player,
        trained,
        frozen,
        forward,
    }
}

/// The statistic a run reports as its headline, fixed before any label is seen: one of the
/// detector's statistics, or `fused` (the mean of the statistics standardised on normal
/// validation images, computed by evaluation).
pub const FUSED: &str = "fused";

/// The fused two-sided statistic, computed by evaluation: each statistic made two-sided against
/// the normal validation images (|x − median| / MAD), then averaged. The primary of a detector
/// whose paper gives no anomaly score: an abnormality moves an image's statistics away from
/// where normal images put them, but a label-free rule cannot know in which direction (a cast
/// or a dense bone can reconstruct *better* than normal anatomy), and the one-sided mean lets a
/// statistic that runs the wrong way cancel one that runs the right way.
pub const FUSED_TWO_SIDED: &str = "fused_2s";

/// A detector's settings: a serde struct whose `Default` is its paper's values. Unknown keys are
/// refused (`#[serde(deny_unknown_fields)]`), so a mistyped `--set` is an error, not ignored.
pub trait Settings: Serialize + DeserializeOwned + Default + Clone + std::fmt::Debug {
    /// A message naming the setting that is out of range.
    fn validate(&self) -> std::result::Result<(), String> {
        Ok(())
    }
    /// Fixes, when a run starts, what depends on the run's length (f-AnoGAN's phase boundary),
    /// so that resuming with more epochs keeps it.
    fn fix_for_run(&mut self, _epochs: u64) {}
}

/// For [`Settings::validate`]: an error unless `value` is finite and ≥ 0.
pub fn non_negative(name: &str, value: f64) -> std::result::Result<(), String> {
    if value.is_finite() && value >= 0.0 {
        Ok(())
    } else {
        Err(format!("{name} must be a finite number ≥ 0, got {value}"))
    }
}

/// What every detector provides. A detector is built by [`DetectorKind::build`] from its network
/// shapes ([`ModelConfig`]) and its settings, with seeded weights.
pub trait Detector: Send + Sync {
    fn kind(&self) -> DetectorKind;
    fn config(&self) -> &ModelConfig;
    /// Its settings as JSON (every key, defaults included), as written to `config.json`.
    fn settings(&self) -> serde_json::Value;
    /// Its networks, one [`Player`] (VarMap) each, in the order of its optimisers.
    fn players(&self) -> &[Player];

    /// The statistics [`Detector::score`] computes, in its order (the columns of `scores.csv`).
    fn statistics(&self) -> &[Statistic];

    /// One optimisation step on a batch `(B, C, S, S)`; `optimisers[i]` holds `players()[i]`'s
    /// trainable variables.
    fn train_step(
        &self,
        optimisers: &mut [Adam],
        x: &Tensor,
        context: &StepContext,
    ) -> Result<StepLosses>;

    /// Every statistic for a batch, in eval mode: the same input always gives the same numbers.
    fn score(&self, x: &Tensor) -> Result<ScoreBatch> {
        self.score_statistics(x, self.statistics())
    }

    /// The statistics `wanted` (some of [`Detector::statistics`], in any order) for a batch, in
    /// eval mode: the forward passes, then only what those statistics need (the throughput bench
    /// scores the PyTorch peer's six this way).
    fn score_statistics(&self, x: &Tensor, wanted: &[Statistic]) -> Result<ScoreBatch>;

    /// Per-image error on normal validation images that selects `best.safetensors` (lower is
    /// better; reported as `calibration_l1` in `losses.csv`).
    fn validation_error(&self, x: &Tensor) -> Result<Vec<f32>>;

    /// `n` images generated from prior draws seeded by `seed`, for the sample sheet and the
    /// collapse warning; `None` for a detector that does not generate.
    fn generate(&self, n: usize, seed: u64) -> Result<Option<Tensor>>;

    /// FLOPs of one image's forward pass through each player (eval mode, counted as it runs).
    fn forward_flops_per_image(&self, device: &Device) -> Result<Vec<(&'static str, u64)>>;
    /// The passes of one training step (of its longer phase), for FLOP counts.
    fn step_passes(&self) -> Vec<Passes>;
}

/// The [`Detector`] methods every detector writes alike, for a struct with `config`,
/// `settings` and `players` fields and a `STATISTICS` constant, whose folder's `step.rs` has
/// `train_step(&Self, optimisers, x, context)`: `kind`, `config`, `settings`, `players`,
/// `statistics` and `train_step`. Used inside `impl Detector for …`.
macro_rules! detector_parts {
    () => {
        fn kind(&self) -> $crate::registry::DetectorKind {
            $crate::registry::DetectorKind::of::<Self>()
        }
        fn config(&self) -> &$crate::config::ModelConfig {
            &self.config
        }
        fn settings(&self) -> serde_json::Value {
            serde_json::to_value(&self.settings).unwrap_or_default()
        }
        fn players(&self) -> &[$crate::player::Player] {
            &self.players
        }
        fn statistics(&self) -> &[$crate::statistics::Statistic] {
            &Self::STATISTICS
        }
        fn train_step(
            &self,
            optimisers: &mut [$crate::optim::Adam],
            x: &candle::Tensor,
            context: &$crate::detector::StepContext,
        ) -> $crate::error::Result<$crate::detector::StepLosses> {
            Ok(step::train_step(self, optimisers, x, context)?)
        }
    };
}
pub(crate) use detector_parts;

impl dyn Detector {
    /// The headline statistic: the paper's anomaly score, or [`FUSED_TWO_SIDED`] where the paper
    /// has none ([`crate::Register::PRIMARY`]).
    pub fn primary_statistic(&self) -> &'static str {
        self.kind().registration().primary
    }

    /// The player called `name`, if this detector has one.
    pub fn player(&self, name: &str) -> Option<&Player> {
        self.players().iter().find(|p| p.name == name)
    }

    /// FLOPs of one training step per image: each network's forward FLOPs times its [`Passes`],
    /// a trained pass counting three forward costs and a frozen one two.
    pub fn step_flops_per_image(&self, device: &Device) -> Result<u64> {
        let forward = self.forward_flops_per_image(device)?;
        let mut total = 0f64;
        for p in self.step_passes() {
            let Some((_, f)) = forward.iter().find(|(name, _)| *name == p.player) else {
                return Err(ModelError::Config(format!(
                    "no forward count for player {}",
                    p.player
                )));
            };
            total += *f as f64 * (3.0 * p.trained + 2.0 * p.frozen + p.forward);
        }
        Ok(total.round() as u64)
    }

    /// A zero image batch of one image, for FLOP counts.
    pub fn probe_image(&self, device: &Device) -> Result<Tensor> {
        let c = self.config();
        Ok(Tensor::zeros(
            (1, c.channels, c.image_size, c.image_size),
            DType::F32,
            device,
        )?)
    }
}

/// FLOPs of what `f` runs.
pub fn counted(f: &dyn Fn() -> candle::Result<Tensor>) -> Result<u64> {
    let (out, flops) = crate::flops::count(f);
    out.map(|_| flops).map_err(ModelError::from)
}

/// Eval-mode FLOPs of the shared networks on one probe input, for
/// [`Detector::forward_flops_per_image`]: an encoder or an image discriminator on `image`
/// ([`probe_image`](Detector::probe_image)), a generator on a zero code of its own size.
pub fn encoder_flops(encoder: &Encoder, image: &Tensor) -> Result<u64> {
    counted(&|| Ok(encoder.forward_t(image, false)?.mean))
}

/// See [`encoder_flops`].
pub fn generator_flops(generator: &Generator, device: &Device) -> Result<u64> {
    let code = Tensor::zeros((1, generator.latent()), DType::F32, device)?;
    counted(&|| generator.forward_t(&code, false))
}

/// See [`encoder_flops`].
pub fn discriminator_flops(discriminator: &Discriminator, image: &Tensor) -> Result<u64> {
    counted(&|| Ok(discriminator.forward_t(image, false)?.logit))
}
