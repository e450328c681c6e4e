//! `xray-gan demo`: the whole job on built-in synthetic radiographs — synthesise a MURA-layout
//! dataset, train the autoencoder-u (a small-bottleneck autoencoder with a learnt per-pixel
//! uncertainty, the detector that does best on these data), Alpha-GAN and BiGAN on its normal
//! images, score and evaluate each, and print AUROC per statistic and per abnormality kind, the
//! autoencoder-u first. Re-running continues where it stopped: the data
//! is reused and finished training runs are resumed (a no-op when complete).

use std::path::{Path, PathBuf};
use std::time::Instant;

use anyhow::Result;
use clap::Args;
use gan_data::synth::{AnomalyKind, SynthConfig, read_anomaly_kinds, write_synthetic_mura};
use gan_data::{Augmentation, MURA_DIR};
use gan_metrics::{KindResult, Metrics, ScoreTable};
use gan_models::{DetectorKind, ModelConfig, select_device};
use gan_pipeline::{auroc_by_anomaly_kind, score_and_evaluate};
use gan_train::{TrainConfig, TrainOptions, train};
use serde::Serialize;

use crate::train::cache_dir;

#[derive(Debug, Args)]
pub struct DemoArgs {
    /// Folder for the data, runs, scores and reports.
    #[arg(long, default_value = "demo-output")]
    out: PathBuf,
    /// A smaller, faster demo (about 2 minutes on 2 cores) with less accurate models.
    #[arg(long)]
    quick: bool,
    #[arg(long, default_value_t = 0)]
    seed: u64,
    #[arg(long, default_value = "auto")]
    device: String,
}

/// The settings of one demo mode.
pub struct DemoSettings {
    pub synth: SynthConfig,
    pub model: ModelConfig,
    pub batch_size: usize,
    /// The detectors trained, each with its epochs and its `--set` settings.
    pub runs: Vec<(DetectorKind, u64, Vec<String>)>,
    pub learning_rate: f64,
}

/// The demo's detectors: the autoencoder-u (the best primary AUROC on the synthetic data over
/// three seeds, see the README), Alpha-GAN reconstruction-weighted (the seed's λ = 0.01 leaves
/// reconstructions unlearnt in minutes), and BiGAN.
fn demo_runs(
    autoencoder_epochs: u64,
    alpha_gan_epochs: u64,
    bigan_epochs: u64,
) -> Vec<(DetectorKind, u64, Vec<String>)> {
    let kind = |name: &str| name.parse().expect("a registered detector");
    vec![
        (kind("autoencoder-u"), autoencoder_epochs, Vec::new()),
        (
            kind("alpha-gan"),
            alpha_gan_epochs,
            vec!["reconstruction_weight=10".into()],
        ),
        (kind("bigan"), bigan_epochs, Vec::new()),
    ]
}

impl DemoSettings {
    pub fn new(quick: bool, seed: u64) -> Self {
        if quick {
            DemoSettings {
                synth: SynthConfig {
                    seed,
                    studies_per_part: 40,
                    parts: vec!["forearm".into(), "humerus".into()],
                    size: 96,
                    ..Default::default()
                },
                model: ModelConfig {
                    image_size: 32,
                    width: 8,
                    self_attention: false,
                    ..ModelConfig::default()
                },
                batch_size: 8,
                runs: demo_runs(30, 30, 10),
                learning_rate: 1e-3,
            }
        } else {
            DemoSettings {
                synth: SynthConfig {
                    seed,
                    studies_per_part: 30,
                    parts: Vec::new(),
                    size: 128,
                    ..Default::default()
                },
                // width 16 without self-attention: attention at 32×32 triples a CPU step
                model: ModelConfig {
                    image_size: 64,
                    width: 16,
                    self_attention: false,
                    ..ModelConfig::default()
                },
                batch_size: 16,
                runs: demo_runs(30, 15, 8),
                learning_rate: 1e-3,
            }
        }
    }

    fn train_config(
        &self,
        kind: DetectorKind,
        epochs: u64,
        settings: &[String],
        data: &Path,
        seed: u64,
    ) -> Result<TrainConfig> {
        let mut c = TrainConfig::new(kind, data.to_path_buf());
        c.model = self.model;
        c.batch_size = self.batch_size;
        c.epochs = epochs;
        c.seed = seed;
        c.optimiser.learning_rate = self.learning_rate;
        c.settings = kind.with_assignments(&c.settings, settings)?;
        c.data.augmentation = Augmentation {
            max_rotation_deg: 3.0,
            ..Augmentation::default()
        };
        c.data.cache_dir = cache_dir(None);
        Ok(c)
    }
}

#[derive(Serialize)]
struct ModelSummary {
    model: String,
    seconds: f64,
    metrics: Metrics,
    by_kind: Vec<KindResult>,
    report: PathBuf,
}

pub fn run(args: DemoArgs) -> Result<()> {
    let started = Instant::now();
    let device = select_device(&args.device)?;
    let settings = DemoSettings::new(args.quick, args.seed);
    std::fs::create_dir_all(&args.out)?;
    let data = args.out.join("data");
    if data.join(MURA_DIR).is_dir() {
        tracing::info!("reusing the synthetic data in {}", data.display());
    } else {
        tracing::info!("synthesising radiographs into {}", data.display());
        write_synthetic_mura(&data, &settings.synth, true)?;
    }
    let kinds = read_anomaly_kinds(&data.join(MURA_DIR).join("synth_anomalies.csv"))?;
    let mut summaries = Vec::new();
    for (kind, epochs, detector_settings) in &settings.runs {
        let (kind, epochs) = (*kind, *epochs);
        let model_started = Instant::now();
        let dir = args.out.join(kind.name());
        let run = dir.join("run");
        let config = settings.train_config(kind, epochs, detector_settings, &data, args.seed)?;
        let resume = run.join("checkpoints/latest.safetensors").exists();
        tracing::info!("training {kind} for {epochs} epochs into {}", run.display());
        train(
            &config,
            &run,
            &device,
            &TrainOptions {
                resume,
                progress: true,
                stop: None,
            },
        )?;
        let metrics = score_and_evaluate(&run, &dir, &device)?;
        let by_kind = auroc_by_anomaly_kind(&ScoreTable::read(&dir.join("scores.csv"))?, &kinds);
        summaries.push(ModelSummary {
            model: kind.name().into(),
            seconds: model_started.elapsed().as_secs_f64(),
            metrics,
            by_kind,
            report: dir.join("eval/report.html"),
        });
    }
    let table = render_tables(&summaries);
    println!("{table}");
    let summary_json = serde_json::to_vec_pretty(&summaries)?;
    gan_metrics::write_file(&args.out.join("demo-summary.json"), &summary_json)?;
    gan_metrics::write_file(&args.out.join("demo-summary.md"), table.as_bytes())?;
    for s in &summaries {
        println!("{} report: {}", s.model, s.report.display());
    }
    println!(
        "demo finished in {:.0} s; summary in {}",
        started.elapsed().as_secs_f64(),
        args.out.join("demo-summary.md").display()
    );
    Ok(())
}

fn cell(v: Option<f64>) -> String {
    v.map(|v| format!("{v:.3}")).unwrap_or_else(|| "n/a".into())
}

/// Markdown tables: statistic × model AUROC with CI; AUROC per abnormality kind.
fn render_tables(summaries: &[ModelSummary]) -> String {
    let mut out = String::from("| statistic |");
    for s in summaries {
        out.push_str(&format!(" {} AUROC [95% CI] |", s.model));
    }
    out.push_str("\n|---|");
    out.push_str(&"---|".repeat(summaries.len()));
    out.push('\n');
    // every model's statistics, in first-seen order (the autoencoder-u has no discriminator's)
    let mut statistics: Vec<String> = Vec::new();
    for s in summaries {
        for stat in &s.metrics.statistics {
            if !statistics.contains(stat) {
                statistics.push(stat.clone());
            }
        }
    }
    for stat in &statistics {
        out.push_str(&format!("| {stat} |"));
        for s in summaries {
            let Some(m) = s.metrics.image_level.get(stat) else {
                out.push_str(" — |");
                continue;
            };
            let m = Some(m);
            let ci = m
                .and_then(|m| m.auroc_ci)
                .map(|[a, b]| format!(" [{a:.2}, {b:.2}]"))
                .unwrap_or_default();
            out.push_str(&format!(" {}{ci} |", cell(m.and_then(|m| m.auroc))));
        }
        out.push('\n');
    }
    out.push_str("\nAUROC per abnormality kind (that kind against every normal image):\n\n| model | statistic |");
    for kind in AnomalyKind::ALL {
        out.push_str(&format!(" {kind} |"));
    }
    out.push_str("\n|---|---|");
    out.push_str(&"---|".repeat(AnomalyKind::ALL.len()));
    out.push('\n');
    for s in summaries {
        let mut shown = vec![s.metrics.primary.statistic.clone()];
        if s.metrics.best.statistic != s.metrics.primary.statistic
            && !s.metrics.best.statistic.is_empty()
        {
            shown.push(s.metrics.best.statistic.clone());
        }
        for stat in shown {
            let label = if stat == s.metrics.primary.statistic {
                format!("{stat} (primary)")
            } else {
                format!("{stat} (best overall, exploratory)")
            };
            out.push_str(&format!("| {} | {label} |", s.model));
            for k in &s.by_kind {
                out.push_str(&format!(
                    " {} |",
                    cell(k.auroc.get(&stat).copied().flatten())
                ));
            }
            out.push('\n');
        }
    }
    for s in summaries {
        out.push_str(&format!(
            "\n{}: primary {} AUROC {}; best (exploratory) {} AUROC {}; {} normal / {} abnormal validation images; {:.0} s\n",
            s.model,
            s.metrics.primary.statistic,
            cell(s.metrics.primary.auroc),
            s.metrics.best.statistic,
            cell(s.metrics.best.auroc),
            s.metrics.n_normal,
            s.metrics.n_abnormal,
            s.seconds
        ));
    }
    out
}
