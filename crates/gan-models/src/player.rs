//! A player of the adversarial game: one network's variables in a VarMap of its own, so that each
//! optimiser touches only its player. Initialisation is seeded by us (candle's CPU RNG cannot be
//! seeded): weights N(0, 0.02), spectral-norm vectors N(0, 1), each drawn from a generator keyed by
//! (seed, variable name), so it does not depend on construction order.

use candle::{DType, Device, Result, Tensor, Var};
use candle_nn::{VarBuilder, VarMap};
use rand::SeedableRng;
use rand::rngs::StdRng;
use rand_distr::{Distribution, Normal};

/// Suffixes of variables that are state, not parameters: no gradient, not optimised.
const STATE_SUFFIXES: [&str; 5] = [
    "running_mean",
    "running_var",
    "sn_u",
    "sn_v",
    "memory_queue",
];

/// Suffixes of state that a weight average copies from the live model instead of averaging:
/// spectral-norm power-iteration vectors (unit vectors) and memory queues (stored features).
const COPIED_SUFFIXES: [&str; 3] = ["sn_u", "sn_v", "memory_queue"];

/// True for variables the optimiser trains.
pub fn is_trainable(name: &str) -> bool {
    !STATE_SUFFIXES.iter().any(|s| name.ends_with(s))
}

/// True for variables that a moving average of the weights copies rather than averages.
pub fn is_copied_not_averaged(name: &str) -> bool {
    COPIED_SUFFIXES.iter().any(|s| name.ends_with(s))
}

#[derive(Clone)]
pub struct Player {
    /// `encoder`, `generator`, `discriminator` or `code_discriminator`; prefixes every variable.
    pub name: &'static str,
    pub vars: VarMap,
    device: Device,
}

impl std::fmt::Debug for Player {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        write!(
            f,
            "Player({}, {} parameters)",
            self.name,
            self.parameter_count()
        )
    }
}

impl Player {
    pub fn new(name: &'static str, device: &Device) -> Self {
        Player {
            name,
            vars: VarMap::new(),
            device: device.clone(),
        }
    }

    /// The device its variables live on.
    pub fn device(&self) -> &Device {
        &self.device
    }

    /// The builder that names this player's variables `<name>.…`.
    pub fn var_builder(&self) -> VarBuilder<'static> {
        VarBuilder::from_varmap(&self.vars, DType::F32, &self.device).pp(self.name)
    }

    /// Every variable, sorted by name.
    pub fn named_vars(&self) -> Vec<(String, Var)> {
        let data = self.vars.data().lock().unwrap_or_else(|e| e.into_inner());
        let mut vars: Vec<(String, Var)> =
            data.iter().map(|(k, v)| (k.clone(), v.clone())).collect();
        vars.sort_by(|a, b| a.0.cmp(&b.0));
        vars
    }

    /// The variables an optimiser should update, sorted by name.
    pub fn trainable_vars(&self) -> Vec<(String, Var)> {
        self.named_vars()
            .into_iter()
            .filter(|(n, _)| is_trainable(n))
            .collect()
    }

    /// Number of trainable scalars.
    pub fn parameter_count(&self) -> usize {
        self.trainable_vars()
            .iter()
            .map(|(_, v)| v.elem_count())
            .sum()
    }

    /// Seeds every player of a detector, in order ([`Player::seed_init`]).
    pub fn seed_all(players: &[Player], seed: u64) -> Result<()> {
        players.iter().try_for_each(|p| p.seed_init(seed))
    }

    /// Redraws the randomly initialised variables from `seed`.
    pub fn seed_init(&self, seed: u64) -> Result<()> {
        for (name, var) in self.named_vars() {
            let stdev = if name.ends_with("sn_u") || name.ends_with("sn_v") {
                1.0
            } else if name.ends_with(".weight") && !name.ends_with("bn.weight") {
                0.02
            } else {
                continue; // biases, γ, BatchNorm affine and statistics keep their constants
            };
            let mut rng = StdRng::seed_from_u64(seed ^ name_hash(&name));
            let normal =
                Normal::new(0.0f32, stdev).map_err(|e| candle::Error::Msg(e.to_string()))?;
            let values: Vec<f32> = (0..var.elem_count())
                .map(|_| normal.sample(&mut rng))
                .collect();
            var.set(&Tensor::from_vec(values, var.shape(), &self.device)?)?;
        }
        Ok(())
    }
}

/// FNV-1a of a name.
fn name_hash(name: &str) -> u64 {
    name.bytes().fold(0xcbf2_9ce4_8422_2325u64, |h, b| {
        (h ^ b as u64).wrapping_mul(0x0100_0000_01b3)
    })
}
