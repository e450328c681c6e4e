//! `xray-gan train`: trains a detector on the normal training images of a dataset.

use std::path::PathBuf;
use std::sync::Arc;
use std::sync::atomic::{AtomicBool, Ordering};

use anyhow::{Context, Result, bail};
use clap::Args;
use gan_data::{DatasetFormat, Fit};
use gan_models::kernels::Precision;
use gan_models::{DetectorKind, ModelConfig, device_name, select_device};
use gan_train::{RunFolder, TrainConfig, TrainOptions, train};

#[derive(Debug, Args)]
pub struct TrainArgs {
    /// Dataset folder: MURA-v1.1 (or the folder holding it), or ROOT/<split>/<class>/ images.
    #[arg(long)]
    data: Option<PathBuf>,
    /// Which detector to train (`xray-gan detectors` lists them with their settings).
    #[arg(long, value_parser = detector_parser())]
    model: Option<DetectorKind>,
    /// Run folder: config.json, losses.csv, samples/, checkpoints/, model.safetensors, best.safetensors.
    #[arg(long)]
    out: PathBuf,
    #[command(flatten)]
    setup: SetupArgs,
    /// Size of the latent code z (128 = the seed experiment); a smaller code reconstructs less of
    /// what it has not seen.
    #[arg(long, default_value_t = 128)]
    latent: usize,
    /// Total epochs (with --resume: train until this many are done).
    #[arg(long)]
    epochs: Option<u64>,
    /// Adam learning rate (default: the detector's paper's).
    #[arg(long)]
    lr: Option<f64>,
    #[arg(long, default_value_t = 0)]
    seed: u64,
    /// Continue the run in --out from its latest checkpoint, with its own configuration.
    #[arg(long)]
    resume: bool,
    /// A setting of the detector, KEY=VALUE, repeatable: e.g. `--set reconstruction_weight=0.1`
    /// (Alpha-GAN's λ), `--set gan_epochs=10` (f-AnoGAN). Checked against the detector's
    /// settings; `xray-gan detectors` lists them with their defaults.
    #[arg(long = "set", value_name = "KEY=VALUE")]
    settings: Vec<String>,
    /// Score with a moving average of the weights of this decay (0 = the last weights).
    #[arg(long, default_value_t = 0.999)]
    weight_average: f64,
    /// Instance noise on discriminator inputs at the first epoch, decaying to 0 (0 = off).
    #[arg(long, default_value_t = 0.0)]
    instance_noise: f64,
    /// How non-square images become square.
    #[arg(long, value_enum, default_value = "centre-crop")]
    fit: Fit,
    /// Stop at the first unreadable image instead of skipping it.
    #[arg(long)]
    strict: bool,
}

/// `--model`'s parser: the registered detectors' names, listed in `--help`.
pub fn detector_parser() -> impl clap::builder::TypedValueParser<Value = DetectorKind> {
    use clap::builder::TypedValueParser;
    clap::builder::PossibleValuesParser::new(DetectorKind::all().map(|k| k.name())).map(|name| {
        name.parse::<DetectorKind>()
            .expect("the parser only accepts registered names")
    })
}

/// The data, network and device flags that `train` and `benchmark` share.
#[derive(Debug, Args)]
pub struct SetupArgs {
    #[arg(long, value_enum, default_value = "auto")]
    format: DatasetFormat,
    /// MURA body parts (or folder classes), comma separated; all by default.
    #[arg(long, value_delimiter = ',')]
    parts: Vec<String>,
    /// Normal class of an image folder (e.g. NORMAL).
    #[arg(long)]
    normal_class: Option<String>,
    #[arg(long, default_value_t = 64)]
    image_size: usize,
    /// Base width w of the networks (64 = the seed experiment; 16 trains on a laptop CPU).
    #[arg(long, default_value_t = 64)]
    width: usize,
    /// Leave out the self-attention blocks (faster on a CPU at 64x64).
    #[arg(long)]
    no_self_attention: bool,
    /// Train on the images as they are: no flips, rotations, zooms or brightness changes (AE4AD
    /// trains its autoencoders so).
    #[arg(long)]
    no_augmentation: bool,
    #[arg(long, default_value_t = 64)]
    batch_size: usize,
    /// auto, cpu, cuda or cuda:N.
    #[arg(long, default_value = "auto")]
    pub device: String,
    /// Folder of the preprocessed-image cache (default: ~/.cache/xray-gan); `none` disables it.
    #[arg(long)]
    cache_dir: Option<String>,
    /// Number format of the matrix products (convolutions, attention) in training and in the
    /// run's later scoring: f32, or bf16 (bf16 operands, f32 sums and weights; needs a CPU with
    /// AVX512-BF16; 1.45x the seed's training images/s on the development machine).
    /// f32 by default: see the README's reduced-precision results. A resumed run keeps the
    /// precision it started with.
    #[arg(long)]
    precision: Option<Precision>,
}

impl SetupArgs {
    /// Writes these flags into a fresh configuration.
    pub fn apply(&self, config: &mut TrainConfig) {
        config.model = ModelConfig {
            image_size: self.image_size,
            width: self.width,
            self_attention: !self.no_self_attention,
            ..config.model
        };
        config.data.format = self.format;
        config.data.parts = self.parts.clone();
        config.data.normal_class = self.normal_class.clone();
        config.data.cache_dir = cache_dir(self.cache_dir.as_deref());
        config.batch_size = self.batch_size;
        config.precision = self.precision.unwrap_or_default();
        if self.no_augmentation {
            config.data.augmentation = gan_data::Augmentation::none();
        }
    }
}

/// The default cache folder: `$XDG_CACHE_HOME/xray-gan` or `~/.cache/xray-gan`.
pub fn cache_dir(flag: Option<&str>) -> Option<PathBuf> {
    match flag {
        Some("none") => None,
        Some(dir) => Some(PathBuf::from(dir)),
        None => std::env::var_os("XDG_CACHE_HOME")
            .map(PathBuf::from)
            .or_else(|| std::env::var_os("HOME").map(|h| PathBuf::from(h).join(".cache")))
            .map(|d| d.join("xray-gan")),
    }
}

fn config_from(args: &TrainArgs) -> Result<TrainConfig> {
    let folder = RunFolder::new(&args.out);
    if args.resume {
        let mut config = folder
            .read_config()
            .context("--resume needs a run folder written by `xray-gan train`")?;
        if let Some(epochs) = args.epochs {
            config.epochs = epochs;
        }
        if !args.settings.is_empty() {
            bail!(gan_train::TrainError::Config(format!(
                "--set cannot change a run being resumed: its settings are fixed in {}",
                folder.config().display()
            )));
        }
        match args.setup.precision {
            Some(precision) if precision != config.precision => {
                bail!(gan_train::TrainError::Config(format!(
                    "--precision {precision} cannot change a run being resumed: it trains with \
                     {} products (see {})",
                    config.precision,
                    folder.config().display()
                )))
            }
            _ => return Ok(config),
        }
    }
    let (Some(data), Some(kind)) = (&args.data, args.model) else {
        bail!(gan_train::TrainError::Config(
            "--data and --model are required (unless --resume)".into()
        ));
    };
    let mut config = TrainConfig::new(kind, data.clone());
    args.setup.apply(&mut config);
    config.model.latent = args.latent;
    config.data.fit = args.fit;
    config.data.strict = args.strict;
    config.epochs = args.epochs.unwrap_or(20);
    if let Some(lr) = args.lr {
        config.optimiser.learning_rate = lr;
    }
    config.seed = args.seed;
    config.settings = kind.with_assignments(&config.settings, &args.settings)?;
    config.instance_noise = args.instance_noise;
    config.weight_average = args.weight_average;
    Ok(config)
}

/// First Ctrl-C: finish the step, checkpoint, stop; second: leave at once.
fn install_stop_handler(stop: Arc<AtomicBool>) -> std::result::Result<(), ctrlc::Error> {
    ctrlc::set_handler(move || {
        if stop.swap(true, Ordering::SeqCst) {
            std::process::exit(130);
        }
        eprintln!("\nstopping after this step and writing a checkpoint (Ctrl-C again to quit now)");
    })
}

/// What the user is told when the Ctrl-C handler cannot be installed.
fn stop_handler_warning(error: &ctrlc::Error) -> String {
    format!(
        "cannot catch Ctrl-C ({error}): an interrupt will end training at once, losing the \
         epoch in progress (the last epoch's checkpoint stays, and --resume continues from it)"
    )
}

pub fn run(args: TrainArgs) -> Result<()> {
    let config = config_from(&args)?;
    let device = select_device(&args.setup.device)?;
    let stop = Arc::new(AtomicBool::new(false));
    if let Err(e) = install_stop_handler(stop.clone()) {
        tracing::warn!("{}", stop_handler_warning(&e));
    }
    tracing::info!(
        "training {} on {} ({}x{}, width {}, batch {}, {} epochs, device {})",
        config.kind,
        config.data.root.display(),
        config.model.image_size,
        config.model.image_size,
        config.model.width,
        config.batch_size,
        config.epochs,
        device_name(&device)
    );
    let options = TrainOptions {
        resume: args.resume,
        progress: true,
        stop: Some(stop),
    };
    let summary = train(&config, &args.out, &device, &options)?;
    let best = summary
        .best_calibration_l1
        .map(|b| format!("{b:.4}"))
        .unwrap_or_else(|| "n/a".into());
    println!(
        "{}: {} epochs, {} steps on {} normal images ({} held out for calibration); best calibration L1 {best}; run folder {}",
        if summary.interrupted {
            "interrupted"
        } else {
            "done"
        },
        summary.epochs_done,
        summary.steps,
        summary.train_images,
        summary.calibration_images,
        args.out.display()
    );
    if summary.interrupted {
        println!(
            "continue with: xray-gan train --out {} --resume",
            args.out.display()
        );
    } else {
        // the threshold `predict` flags new images at travels with the run; the run itself is
        // saved already, so a failure here is a warning (predict computes them when missing)
        match gan_pipeline::calibrate_run(&args.out, &device, config.batch_size.max(1)) {
            Ok(path) => println!(
                "normal validation scores for predict's threshold: {}",
                path.display()
            ),
            Err(e) => tracing::warn!(
                "the run is saved, but its normal validation scores could not be written ({e}); predict will compute them"
            ),
        }
    }
    Ok(())
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn a_stop_handler_that_cannot_be_installed_is_reported() {
        // a process has one handler: the second installation fails, and is said so
        let first = install_stop_handler(Arc::new(AtomicBool::new(false)));
        let second = install_stop_handler(Arc::new(AtomicBool::new(false)));
        assert!(first.is_ok(), "{first:?}");
        let warning = stop_handler_warning(&second.unwrap_err());
        assert!(warning.contains("cannot catch Ctrl-C"), "{warning}");
        assert!(warning.contains("--resume"), "{warning}");
    }
}
