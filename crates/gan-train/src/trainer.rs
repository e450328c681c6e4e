//! The training loop: epochs of steps, then per epoch a calibration reconstruction error, a sample
//! sheet, a `losses.csv` row and atomic checkpoints. Every random draw is keyed by (seed, epoch,
//! step), so the "RNG state" of a checkpoint is its epoch and step: a resumed run repeats exactly
//! what an uninterrupted one would have done.

use std::path::Path;
use std::sync::Arc;
use std::sync::atomic::{AtomicBool, Ordering};
use std::time::Instant;

use candle::{Device, Tensor};
use gan_data::{Batcher, ImageSet, mix};
use gan_models::kernels::with_precision;
use gan_models::{Adam, Detector, StepContext, StepLosses, read_checkpoint, save_checkpoint};
use indicatif::{ProgressBar, ProgressStyle};
use serde::{Deserialize, Serialize};

use crate::config::TrainConfig;
use crate::data::{TrainingData, load_training_data};
use crate::ema::WeightAverage;
use crate::error::{Result, TrainError};
use crate::run_folder::{LossRow, RunFolder};
use crate::samples::{sample_diversity, write_sample_sheet};

/// Purpose of the sample sheet's draws, mixed into their seed (a step's own draws use
/// [`gan_models::DRAW_Z`] and its neighbours).
const DRAW_FIXED_Z: u64 = 4;

/// How to run.
#[derive(Debug, Clone, Default)]
pub struct TrainOptions {
    /// Continue from `checkpoints/latest.safetensors`.
    pub resume: bool,
    pub progress: bool,
    /// When set (Ctrl-C), the current step finishes, a checkpoint is written and training stops.
    pub stop: Option<Arc<AtomicBool>>,
}

/// Where a run stands; saved as JSON in every checkpoint's metadata.
#[derive(Debug, Clone, Default, PartialEq, Serialize, Deserialize)]
pub struct TrainState {
    /// The epoch in progress (or next to start).
    pub epoch: u64,
    /// Batches of that epoch already done.
    pub batch_in_epoch: u64,
    pub step: u64,
    /// Running sums of each player's loss over the epoch so far.
    pub loss_sums: Vec<(String, f64)>,
    pub rows: Vec<LossRow>,
    pub best_calibration_l1: Option<f64>,
}

/// What a call to [`train`] did.
#[derive(Debug, Clone)]
pub struct TrainSummary {
    pub epochs_done: u64,
    pub steps: u64,
    pub last_row: Option<LossRow>,
    pub best_calibration_l1: Option<f64>,
    pub interrupted: bool,
    pub train_images: usize,
    pub calibration_images: usize,
    /// Seconds spent in training steps, and at the ends of epochs (the calibration error, the
    /// sample sheet, `losses.csv` and the checkpoints), by this call.
    pub step_seconds: f64,
    pub epoch_end_seconds: f64,
}

/// A detector with one optimiser per player.
pub struct Trainer {
    pub model: Box<dyn Detector>,
    /// The moving average of `model`'s weights, when the configuration asks for one.
    average: Option<WeightAverage>,
    optimisers: Vec<Adam>,
    config: TrainConfig,
    device: Device,
}

impl Trainer {
    pub fn new(config: &TrainConfig, device: &Device) -> Result<Self> {
        config.precision.check(device).map_err(TrainError::Config)?;
        let model = config
            .kind
            .build(&config.model, &config.settings, device, config.seed)?;
        let optimisers = model
            .players()
            .iter()
            .map(|p| Adam::new(p.trainable_vars(), config.optimiser))
            .collect::<candle::Result<Vec<_>>>()?;
        let average = if config.weight_average > 0.0 {
            Some(WeightAverage::new(
                model.as_ref(),
                config.weight_average,
                device,
            )?)
        } else {
            None
        };
        Ok(Trainer {
            model,
            average,
            optimisers,
            config: config.clone(),
            device: device.clone(),
        })
    }

    /// One optimisation step on a batch `(B, C, S, S)` at global step `step`.
    pub fn step(&mut self, x: &Tensor, epoch: u64, step: u64) -> Result<StepLosses> {
        let context = StepContext {
            epoch,
            step,
            epochs: self.config.epochs,
            seed: self.config.seed,
            noise_sd: self.config.noise_at(epoch),
            device: self.device.clone(),
        };
        let (model, optimisers) = (&mut self.model, &mut self.optimisers);
        let losses = with_precision(self.config.precision, || {
            model.train_step(optimisers, x, &context)
        })?;
        for (player, value) in &losses {
            if !value.is_finite() {
                return Err(TrainError::NonFinite {
                    player: player.to_string(),
                    value: *value,
                    step,
                    epoch,
                });
            }
        }
        if let Some(average) = &mut self.average {
            average.update(self.model.as_ref())?;
        }
        Ok(losses)
    }

    /// Starts (or stops) keeping every gradient the optimisers apply (see
    /// [`Adam::record_gradients`]).
    pub fn record_gradients(&mut self, on: bool) {
        for optimiser in &mut self.optimisers {
            optimiser.record_gradients(on);
        }
    }

    /// The gradients applied since [`Trainer::record_gradients`], as `player.variable`, per
    /// player in order.
    pub fn recorded_gradients(&self) -> Vec<(String, Tensor)> {
        self.model
            .players()
            .iter()
            .zip(&self.optimisers)
            .flat_map(|(player, optimiser)| {
                optimiser
                    .recorded_gradients()
                    .iter()
                    .map(move |(name, g)| (format!("{}.{name}", player.name), g.clone()))
            })
            .collect()
    }

    /// The weights that scoring uses: the moving average when there is one, else the last.
    pub fn scoring_model(&self) -> &dyn Detector {
        self.average
            .as_ref()
            .map_or(self.model.as_ref(), |a| a.model.as_ref())
    }

    /// Optimiser moments as named tensors, for checkpoints.
    fn optimiser_tensors(&self) -> Vec<(String, Tensor)> {
        self.optimisers
            .iter()
            .flat_map(|o| o.state_tensors("optim"))
            .collect()
    }

    fn save(&self, path: &Path, state: &TrainState) -> Result<()> {
        let json = serde_json::to_string(state).map_err(|e| TrainError::Run {
            path: path.into(),
            message: e.to_string(),
        })?;
        let steps: Vec<String> = self.optimisers.iter().map(|o| o.step.to_string()).collect();
        let mut tensors = self.optimiser_tensors();
        let mut metadata = vec![
            ("train_state".to_string(), json),
            ("optimiser_steps".to_string(), steps.join(",")),
            (
                "train_config".to_string(),
                serde_json::to_string(&self.config).map_err(|e| TrainError::Run {
                    path: path.into(),
                    message: format!("the training configuration cannot be written: {e}"),
                })?,
            ),
        ];
        if let Some(average) = &self.average {
            tensors.extend(average.tensors());
            metadata.push(("weight_average_updates".into(), average.updates.to_string()));
        }
        save_checkpoint(path, self.model.as_ref(), &tensors, &metadata)?;
        Ok(())
    }

    /// Restores weights, optimiser moments and the training state from a checkpoint.
    fn restore(&mut self, path: &Path) -> Result<TrainState> {
        let checkpoint = read_checkpoint(path, &self.device)?;
        self.model.load_checkpoint(&checkpoint)?;
        let bad = |message: String| TrainError::Run {
            path: path.to_path_buf(),
            message,
        };
        let state: TrainState = serde_json::from_str(
            checkpoint
                .metadata
                .get("train_state")
                .ok_or_else(|| bad("no training state in this checkpoint".into()))?,
        )
        .map_err(|e| bad(format!("training state is not valid: {e}")))?;
        let steps: Vec<u64> = checkpoint
            .metadata
            .get("optimiser_steps")
            .map(|s| s.split(',').filter_map(|v| v.parse().ok()).collect())
            .unwrap_or_default();
        if steps.len() != self.optimisers.len() {
            return Err(bad(
                "optimiser state does not match the model's players".into()
            ));
        }
        for (opt, step) in self.optimisers.iter_mut().zip(steps) {
            opt.load_state("optim", step, &checkpoint.tensors)
                .map_err(bad)?;
        }
        if let Some(average) = &mut self.average {
            let updates =
                average_updates(checkpoint.metadata.get("weight_average_updates")).map_err(bad)?;
            average
                .restore(self.model.as_ref(), &checkpoint.tensors, updates)
                .map_err(bad)?;
        }
        Ok(state)
    }
}

/// The number of updates the moving average had, from a checkpoint's `weight_average_updates`:
/// a missing or garbled value is an error, since resuming with 0 would restart the average's
/// warm-up and silently change what the run scores with.
fn average_updates(value: Option<&String>) -> std::result::Result<u64, String> {
    let value = value.ok_or_else(|| {
        "has a moving average of the weights but no weight_average_updates: it was not written \
         by this version of xray-gan's trainer; resume without --weight-average, or start anew"
            .to_string()
    })?;
    value.trim().parse().map_err(|_| {
        format!(
            "weight_average_updates is {value:?}, not a whole number: the checkpoint is damaged"
        )
    })
}

/// The detector's mean per-image validation error over a set, in eval mode (NaN for an empty
/// set): for the reconstructing detectors, the L1 of x − x̂.
pub fn calibration_l1(
    model: &dyn Detector,
    images: &ImageSet,
    batch_size: usize,
    device: &Device,
) -> Result<f64> {
    if images.is_empty() {
        return Ok(f64::NAN);
    }
    let mut total = 0.0;
    for batch in Batcher::new(images, batch_size, device).eval_batches() {
        let x = batch?.images;
        let per_image = model.validation_error(&x)?;
        total += per_image.iter().map(|&v| v as f64).sum::<f64>();
    }
    Ok(total / images.len() as f64)
}

/// Trains `config` into the run folder `run`. A new run refuses a folder that already holds one; a
/// resumed run continues from its latest checkpoint until `config.epochs` epochs are done.
pub fn train(
    config: &TrainConfig,
    run: &Path,
    device: &Device,
    options: &TrainOptions,
) -> Result<TrainSummary> {
    config.validate()?;
    let config = &config.for_run()?;
    let folder = RunFolder::new(run);
    if !options.resume && folder.latest_checkpoint().exists() {
        return Err(TrainError::Run {
            path: run.to_path_buf(),
            message:
                "already holds a training run; use --resume to continue it, or choose another --out"
                    .into(),
        });
    }
    folder.create()?;
    let stale = folder.remove_stale_temporaries();
    if stale > 0 {
        tracing::info!("removed {stale} temporary files left by an interrupted run");
    }
    folder.write_config(config)?;
    let data = load_training_data(config, options.progress)?;
    let mut trainer = Trainer::new(config, device)?;
    let mut state = TrainState::default();
    if options.resume && folder.latest_checkpoint().exists() {
        state = trainer.restore(&folder.latest_checkpoint())?;
        // a kill between writing losses.csv and the checkpoint could leave one row too many
        folder.write_losses(&state.rows)?;
        tracing::info!("resuming at epoch {} step {}", state.epoch, state.step);
    }
    let sample_seed = mix(config.seed, 0, DRAW_FIXED_Z);
    run_epochs(
        &mut trainer,
        &folder,
        &data,
        &mut state,
        sample_seed,
        options,
    )
}

fn run_epochs(
    trainer: &mut Trainer,
    folder: &RunFolder,
    data: &TrainingData,
    state: &mut TrainState,
    sample_seed: u64,
    options: &TrainOptions,
) -> Result<TrainSummary> {
    let config = trainer.config.clone();
    let device = trainer.device.clone();
    let batcher = Batcher::new(&data.train, config.batch_size, &device);
    let per_epoch = batcher.train_batches_per_epoch() as u64;
    let mut interrupted = false;
    let (mut step_seconds, mut epoch_end_seconds) = (0.0, 0.0);
    while state.epoch < config.epochs && !interrupted {
        let epoch = state.epoch;
        let bar = epoch_bar(options.progress, per_epoch, epoch, config.epochs);
        bar.set_position(state.batch_in_epoch);
        let started = Instant::now();
        let mut images = 0usize;
        let batches = batcher
            .train_epoch(config.seed, epoch, &config.data.augmentation)
            .skip(state.batch_in_epoch as usize);
        for batch in batches {
            let x = batch?.images;
            let losses = trainer.step(&x, epoch, state.step)?;
            if state.loss_sums.is_empty() {
                state.loss_sums = losses.iter().map(|(p, _)| (p.to_string(), 0.0)).collect();
            }
            for ((_, sum), (_, v)) in state.loss_sums.iter_mut().zip(&losses) {
                *sum += *v as f64;
            }
            state.step += 1;
            state.batch_in_epoch += 1;
            images += x.dim(0)?;
            let rate = images as f64 / started.elapsed().as_secs_f64().max(1e-9);
            let shown: Vec<String> = losses
                .iter()
                .map(|(p, v)| format!("{}={v:.3}", short(p)))
                .collect();
            bar.set_message(format!("{}  {rate:.1} img/s", shown.join(" ")));
            bar.inc(1);
            if options
                .stop
                .as_ref()
                .is_some_and(|s| s.load(Ordering::SeqCst))
                && state.batch_in_epoch < per_epoch
            {
                trainer.save(&folder.latest_checkpoint(), state)?;
                tracing::warn!(
                    "interrupted: checkpoint written at epoch {epoch} step {}",
                    state.step
                );
                interrupted = true;
                break;
            }
        }
        bar.finish_and_clear();
        step_seconds += started.elapsed().as_secs_f64();
        if interrupted {
            break;
        }
        let ending = Instant::now();
        finish_epoch(
            trainer,
            folder,
            data,
            state,
            sample_seed,
            images as f64 / started.elapsed().as_secs_f64().max(1e-9),
        )?;
        epoch_end_seconds += ending.elapsed().as_secs_f64();
        if options
            .stop
            .as_ref()
            .is_some_and(|s| s.load(Ordering::SeqCst))
        {
            interrupted = state.epoch < config.epochs;
        }
    }
    let last_row = state.rows.last().cloned();
    if let Some(row) = &last_row {
        let losses: Vec<String> = row
            .losses
            .iter()
            .map(|(p, v)| format!("{p} {v:.4}"))
            .collect();
        tracing::info!(
            "{} epoch {}/{}: {}; calibration L1 {:.4}; {:.1} images/s",
            config.kind,
            row.epoch + 1,
            config.epochs,
            losses.join(", "),
            row.calibration_l1,
            row.images_per_second
        );
    }
    if step_seconds > 0.0 {
        tracing::info!(
            "{step_seconds:.1} s of training steps; the ends of epochs (calibration error, samples, \
             checkpoints) took {epoch_end_seconds:.1} s more ({:.1} % of the steps' time)",
            100.0 * epoch_end_seconds / step_seconds
        );
    }
    Ok(TrainSummary {
        epochs_done: state.epoch,
        steps: state.step,
        last_row,
        best_calibration_l1: state.best_calibration_l1,
        interrupted,
        train_images: data.train.len(),
        calibration_images: data.calibration.len(),
        step_seconds,
        epoch_end_seconds,
    })
}

/// Calibration error, sample sheet, losses row, checkpoints.
fn finish_epoch(
    trainer: &Trainer,
    folder: &RunFolder,
    data: &TrainingData,
    state: &mut TrainState,
    sample_seed: u64,
    images_per_second: f64,
) -> Result<()> {
    let config = &trainer.config;
    let epoch = state.epoch;
    let scoring = trainer.scoring_model();
    let calibration_l1 = calibration_l1(
        scoring,
        &data.calibration,
        config.batch_size,
        &trainer.device,
    )?;
    let shown = if data.calibration.is_empty() {
        &data.train
    } else {
        &data.calibration
    };
    let generated = scoring.generate(8, sample_seed)?;
    let diversity = match &generated {
        Some(images) => sample_diversity(images, shown)?,
        None => f64::NAN,
    };
    if diversity < 0.1 {
        tracing::warn!(
            "epoch {epoch}: generated images are {:.0}% as diverse as real ones: the generator may be collapsing",
            diversity * 100.0
        );
    }
    write_sample_sheet(
        &folder.sample_sheet(epoch),
        scoring,
        shown,
        generated.as_ref(),
    )?;
    let count = state.batch_in_epoch.max(1) as f64;
    state.rows.push(LossRow {
        epoch,
        step: state.step,
        losses: state
            .loss_sums
            .iter()
            .map(|(p, s)| (p.clone(), s / count))
            .collect(),
        calibration_l1,
        sample_diversity: diversity,
        images_per_second,
    });
    state.epoch += 1;
    state.batch_in_epoch = 0;
    state.loss_sums.clear();
    let improved =
        calibration_l1.is_finite() && state.best_calibration_l1.is_none_or(|b| calibration_l1 < b);
    if improved {
        state.best_calibration_l1 = Some(calibration_l1);
    }
    // order: the epoch's files first, the pointers to "latest" last. Each checkpoint's bytes
    // are serialised and hashed once: `best` is the same file as `model` and `latest` the same
    // as the epoch's checkpoint (hard links where the file system has them, else copies)
    trainer.save(&folder.epoch_checkpoint(epoch), state)?;
    folder.write_losses(&state.rows)?;
    save_checkpoint(
        &folder.model(),
        scoring,
        &[],
        &[("epoch".into(), epoch.to_string())],
    )?;
    if improved {
        gan_data::link_or_copy_atomically(&folder.model(), &folder.best())?;
    }
    gan_data::link_or_copy_atomically(
        &folder.epoch_checkpoint(epoch),
        &folder.latest_checkpoint(),
    )?;
    Ok(())
}

/// A player's initials for the progress bar: `code_discriminator` → `CD`.
fn short(player: &str) -> String {
    player
        .split('_')
        .filter_map(|word| word.chars().next())
        .flat_map(char::to_uppercase)
        .collect()
}

fn epoch_bar(progress: bool, len: u64, epoch: u64, epochs: u64) -> ProgressBar {
    if !progress {
        return ProgressBar::hidden();
    }
    let bar = ProgressBar::new(len);
    bar.set_style(
        ProgressStyle::with_template(&format!(
            "epoch {}/{epochs} {{bar:25}} {{pos}}/{{len}} {{msg}} eta {{eta}}",
            epoch + 1
        ))
        .unwrap_or_else(|_| ProgressStyle::default_bar()),
    );
    bar
}

#[cfg(test)]
mod tests {
    use super::average_updates;

    #[test]
    fn a_missing_or_garbled_average_count_is_an_error_not_a_restart() {
        assert_eq!(average_updates(Some(&"17".to_string())), Ok(17));
        let missing = average_updates(None).unwrap_err();
        assert!(missing.contains("no weight_average_updates"), "{missing}");
        for garbled in ["", "-3", "1.5", "seventeen"] {
            let err = average_updates(Some(&garbled.to_string())).unwrap_err();
            assert!(err.contains("not a whole number"), "{garbled:?}: {err}");
        }
    }
}
