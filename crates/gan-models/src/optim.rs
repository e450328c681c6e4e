//! Adam (Kingma & Ba 2015) with state we can save and restore exactly: first and second moments
//! per variable and the step count. candle's `AdamW` keeps its moments private, so a resumed run
//! could not continue where it stopped.

use candle::backprop::GradStore;
use candle::{Result, Tensor, Var};
use serde::{Deserialize, Serialize};

/// Adam settings; each detector names its paper's ([`crate::Register::optimiser`]).
#[derive(Debug, Clone, Copy, PartialEq, Serialize, Deserialize)]
pub struct OptimiserConfig {
    pub learning_rate: f64,
    pub beta1: f64,
    pub beta2: f64,
    pub epsilon: f64,
}

impl Default for OptimiserConfig {
    /// The seed experiment: Adam, lr 1e-4, betas 0.5/0.999.
    fn default() -> Self {
        OptimiserConfig {
            learning_rate: 1e-4,
            beta1: 0.5,
            beta2: 0.999,
            epsilon: 1e-8,
        }
    }
}

pub struct Adam {
    vars: Vec<(String, Var)>,
    first: Vec<Tensor>,
    second: Vec<Tensor>,
    pub step: u64,
    config: OptimiserConfig,
    /// When on, every gradient [`Adam::step`] applies, by variable name, in order.
    recorded: Option<Vec<(String, Tensor)>>,
}

impl Adam {
    /// An optimiser over `vars` (name, variable), moments at zero.
    pub fn new(vars: Vec<(String, Var)>, config: OptimiserConfig) -> Result<Self> {
        let first = vars
            .iter()
            .map(|(_, v)| v.zeros_like())
            .collect::<Result<Vec<_>>>()?;
        let second = vars
            .iter()
            .map(|(_, v)| v.zeros_like())
            .collect::<Result<Vec<_>>>()?;
        Ok(Adam {
            vars,
            first,
            second,
            step: 0,
            config,
            recorded: None,
        })
    }

    /// Starts (or stops) keeping every gradient that [`Adam::step`] applies, for comparing two
    /// code paths' gradients (`crates/gan-train/tests/portable_path.rs`); off by default.
    pub fn record_gradients(&mut self, on: bool) {
        self.recorded = on.then(Vec::new);
    }

    /// The gradients applied since [`Adam::record_gradients`] was switched on (empty when off).
    pub fn recorded_gradients(&self) -> &[(String, Tensor)] {
        self.recorded.as_deref().unwrap_or_default()
    }

    /// The variables this optimiser updates.
    pub fn vars(&self) -> impl Iterator<Item = &Var> {
        self.vars.iter().map(|(_, v)| v)
    }

    /// One update from `grads`; variables without a gradient are left as they are.
    pub fn step(&mut self, grads: &GradStore) -> Result<()> {
        self.step += 1;
        let c = self.config;
        let t = self.step as i32;
        let correction1 = 1.0 - c.beta1.powi(t);
        let correction2 = 1.0 - c.beta2.powi(t);
        let step_size = c.learning_rate / correction1;
        for (i, (_, var)) in self.vars.iter().enumerate() {
            let Some(g) = grads.get(var.as_tensor()) else {
                continue;
            };
            if let Some(recorded) = &mut self.recorded {
                recorded.push((self.vars[i].0.clone(), g.clone()));
            }
            let m = ((&self.first[i] * c.beta1)? + (g * (1.0 - c.beta1))?)?;
            let v = ((&self.second[i] * c.beta2)? + (g.sqr()? * (1.0 - c.beta2))?)?;
            let denom = ((&v / correction2)?.sqrt()? + c.epsilon)?;
            let update = (m.div(&denom)? * step_size)?;
            var.set(&var.as_tensor().sub(&update)?)?;
            self.first[i] = m.detach();
            self.second[i] = v.detach();
        }
        Ok(())
    }

    /// Moments as named tensors: `<prefix>.<var>.m` and `.v`.
    pub fn state_tensors(&self, prefix: &str) -> Vec<(String, Tensor)> {
        self.vars
            .iter()
            .zip(self.first.iter().zip(&self.second))
            .flat_map(|((name, _), (m, v))| {
                [
                    (format!("{prefix}.{name}.m"), m.clone()),
                    (format!("{prefix}.{name}.v"), v.clone()),
                ]
            })
            .collect()
    }

    /// Restores moments saved by [`Adam::state_tensors`]; a missing or misshapen one is an error.
    pub fn load_state(
        &mut self,
        prefix: &str,
        step: u64,
        tensors: &std::collections::HashMap<String, Tensor>,
    ) -> std::result::Result<(), String> {
        for (i, (name, var)) in self.vars.iter().enumerate() {
            for (suffix, slot) in [("m", &mut self.first[i]), ("v", &mut self.second[i])] {
                let key = format!("{prefix}.{name}.{suffix}");
                let t = tensors
                    .get(&key)
                    .ok_or_else(|| format!("missing optimiser tensor {key}"))?;
                if t.shape() != var.shape() {
                    return Err(format!(
                        "optimiser tensor {key} has shape {:?}, expected {:?}",
                        t.dims(),
                        var.dims()
                    ));
                }
                *slot = t.clone();
            }
        }
        self.step = step;
        Ok(())
    }
}
