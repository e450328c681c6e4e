//! An exponential moving average of a model's weights, the weights that scoring uses (EGBAD's
//! habit, decay 0.999): GAN weights swing from step to step, and so do the statistics computed
//! with them; their average swings less.
//!
//! Parameters and BatchNorm statistics are averaged; spectral-norm vectors and memory queues are
//! copied from the live model (unit vectors of a power iteration and stored features, not
//! something to average). The decay
//! warms up as `min(decay, (1 + n) / (10 + n))` after `n` updates, so early averages are not
//! dominated by the random initialisation.

use std::collections::HashMap;

use candle::{Device, Tensor};
use gan_models::{Detector, is_copied_not_averaged};

use crate::error::Result;

/// Prefix of the averaged weights inside a training checkpoint.
pub const EMA_PREFIX: &str = "ema";

/// A model whose variables follow the running average of another's.
pub struct WeightAverage {
    pub model: Box<dyn Detector>,
    decay: f64,
    /// Updates so far (saved in checkpoints).
    pub updates: u64,
}

impl WeightAverage {
    /// Starts the average at `live`'s current weights.
    pub fn new(live: &dyn Detector, decay: f64, device: &Device) -> Result<Self> {
        let model = live
            .kind()
            .build(live.config(), &live.settings(), device, 0)?;
        let average = WeightAverage {
            model,
            decay,
            updates: 0,
        };
        average.copy_from(live)?;
        Ok(average)
    }

    fn pairs<'a>(
        &'a self,
        live: &'a dyn Detector,
    ) -> impl Iterator<Item = (String, candle::Var, candle::Var)> + 'a {
        self.model
            .players()
            .iter()
            .zip(live.players())
            .flat_map(|(mine, theirs)| mine.named_vars().into_iter().zip(theirs.named_vars()))
            .map(|((name, mine), (_, theirs))| (name, mine, theirs))
    }

    fn copy_from(&self, live: &dyn Detector) -> Result<()> {
        for (_, mine, theirs) in self.pairs(live) {
            mine.set(theirs.as_tensor())?;
        }
        Ok(())
    }

    /// The decay used by the next update.
    pub fn current_decay(&self) -> f64 {
        let n = self.updates as f64;
        self.decay.min((1.0 + n) / (10.0 + n))
    }

    /// Moves the average towards `live`'s weights after one optimisation step.
    pub fn update(&mut self, live: &dyn Detector) -> Result<()> {
        let d = self.current_decay();
        for (name, mine, theirs) in self.pairs(live) {
            if is_copied_not_averaged(&name) {
                mine.set(theirs.as_tensor())?;
            } else {
                let averaged = (mine.as_tensor().affine(d, 0.0)?
                    + theirs.as_tensor().affine(1.0 - d, 0.0)?)?;
                mine.set(&averaged)?;
            }
        }
        self.updates += 1;
        Ok(())
    }

    /// The averaged variables as `ema.<name>` tensors, for a training checkpoint.
    pub fn tensors(&self) -> Vec<(String, Tensor)> {
        self.model
            .players()
            .iter()
            .flat_map(|p| p.named_vars())
            .map(|(name, var)| (format!("{EMA_PREFIX}.{name}"), var.as_tensor().clone()))
            .collect()
    }

    /// Restores the average from a checkpoint's `ema.<name>` tensors; a checkpoint without them
    /// (written with the average off) restarts it at `live`'s weights.
    pub fn restore(
        &mut self,
        live: &dyn Detector,
        tensors: &HashMap<String, Tensor>,
        updates: u64,
    ) -> std::result::Result<(), String> {
        let saved: Vec<_> = self
            .pairs(live)
            .map(|(name, mine, _)| (tensors.get(&format!("{EMA_PREFIX}.{name}")), name, mine))
            .collect();
        if saved.iter().all(|(t, _, _)| t.is_none()) {
            self.copy_from(live).map_err(|e| e.to_string())?;
            self.updates = 0;
            return Ok(());
        }
        for (tensor, name, mine) in saved {
            let tensor = tensor.ok_or_else(|| format!("averaged weights lack {name}"))?;
            mine.set(tensor)
                .map_err(|e| format!("averaged weight {name}: {e}"))?;
        }
        self.updates = updates;
        Ok(())
    }
}

#[cfg(test)]
mod tests {
    use gan_models::ModelConfig;

    use super::*;

    fn tiny(seed: u64) -> Box<dyn Detector> {
        let config = ModelConfig {
            image_size: 32,
            width: 8,
            latent: 8,
            ..ModelConfig::default()
        };
        let kind: gan_models::DetectorKind = "alpha-gan".parse().unwrap();
        kind.build(&config, &serde_json::Value::Null, &Device::Cpu, seed)
            .unwrap()
    }

    fn values(model: &dyn Detector) -> Vec<(String, Vec<f32>)> {
        model
            .players()
            .iter()
            .flat_map(|p| p.named_vars())
            .map(|(n, v)| (n, v.flatten_all().unwrap().to_vec1().unwrap()))
            .collect()
    }

    #[test]
    fn the_average_moves_by_the_warmed_up_decay_and_copies_power_iteration_vectors() {
        let live = tiny(1);
        let mut average = WeightAverage::new(live.as_ref(), 0.999, &Device::Cpu).unwrap();
        assert_eq!(values(average.model.as_ref()), values(live.as_ref()));
        let start = values(live.as_ref());
        let other = values(tiny(2).as_ref());
        for (p, q) in live.players().iter().zip(tiny(2).players()) {
            for ((_, a), (_, b)) in p.named_vars().iter().zip(q.named_vars()) {
                a.set(b.as_tensor()).unwrap();
            }
        }
        // first update: decay min(0.999, 1/10) = 0.1
        assert!((average.current_decay() - 0.1).abs() < 1e-12);
        average.update(live.as_ref()).unwrap();
        let mut averaged = 0;
        for (((name, got), (_, old)), (_, new)) in values(average.model.as_ref())
            .iter()
            .zip(&start)
            .zip(&other)
        {
            for ((g, o), n) in got.iter().zip(old).zip(new) {
                let want = if is_copied_not_averaged(name) {
                    *n
                } else {
                    0.1 * o + 0.9 * n
                };
                assert!((g - want).abs() < 1e-6, "{name}: {g} vs {want}");
            }
            averaged += usize::from(!is_copied_not_averaged(name) && old != new);
        }
        assert!(averaged > 10, "only {averaged} tensors differed");
        // late updates use the configured decay
        average.updates = 100_000;
        assert!((average.current_decay() - 0.999).abs() < 1e-12);
    }

    #[test]
    fn restoring_from_saved_tensors_gives_the_same_average() {
        let live = tiny(1);
        let mut average = WeightAverage::new(tiny(3).as_ref(), 0.9, &Device::Cpu).unwrap();
        average.update(live.as_ref()).unwrap();
        let saved: HashMap<String, Tensor> = average.tensors().into_iter().collect();
        assert!(saved.keys().all(|k| k.starts_with("ema.")));
        let mut restored = WeightAverage::new(live.as_ref(), 0.9, &Device::Cpu).unwrap();
        restored.restore(live.as_ref(), &saved, 1).unwrap();
        assert_eq!(
            values(restored.model.as_ref()),
            values(average.model.as_ref())
        );
        assert_eq!(restored.updates, 1);
        // a checkpoint without an average restarts it at the live weights
        restored.restore(live.as_ref(), &HashMap::new(), 7).unwrap();
        assert_eq!(values(restored.model.as_ref()), values(live.as_ref()));
        assert_eq!(restored.updates, 0);
        // a partial one is an error naming the missing variable
        let mut partial = saved.clone();
        let dropped = partial.keys().next().unwrap().clone();
        partial.remove(&dropped);
        let err = restored.restore(live.as_ref(), &partial, 1).unwrap_err();
        assert!(dropped.ends_with(err.rsplit(' ').next().unwrap()), "{err}");
    }
}
