//! `xray-gan demo`: the whole job on built-in synthetic radiographs — synthesise a MURA-layout
//! dataset, train Alpha-GAN and BiGAN on its normal images, score and evaluate both, and print
//! AUROC per statistic and per abnormality kind. Re-running continues where it stopped: the data
//! is reused and finished training runs are resumed (a no-op when complete).

use std::collections::BTreeMap;
use std::path::{Path, PathBuf};
use std::time::Instant;

use anyhow::Result;
use clap::Args;
use gan_data::synth::{
    AnomalyKind, AnomalyKinds, SynthConfig, read_anomaly_kinds, write_synthetic_mura,
};
use gan_data::{Augmentation, MURA_DIR};
use gan_metrics::evaluate::with_derived_statistics;
use gan_metrics::{CALIBRATION_SPLIT, Metrics, ScoreTable, auroc};
use gan_models::{ModelConfig, ModelKind, select_device};
use gan_train::{TrainConfig, TrainOptions, train};
use serde::Serialize;

use crate::eval::score_and_evaluate;
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
    pub epochs: [(ModelKind, u64); 2],
    pub learning_rate: f64,
    pub reconstruction_weight: f64,
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
                epochs: [(ModelKind::AlphaGan, 30), (ModelKind::Bigan, 10)],
                learning_rate: 1e-3,
                reconstruction_weight: 10.0,
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
                epochs: [(ModelKind::AlphaGan, 15), (ModelKind::Bigan, 8)],
                learning_rate: 1e-3,
                // reconstruction-weighted: the seed's 0.01 leaves reconstructions unlearnt in minutes
                reconstruction_weight: 10.0,
            }
        }
    }

    fn train_config(&self, kind: ModelKind, epochs: u64, data: &Path, seed: u64) -> TrainConfig {
        let mut c = TrainConfig::new(kind, data.to_path_buf());
        c.model = self.model;
        c.batch_size = self.batch_size;
        c.epochs = epochs;
        c.seed = seed;
        c.optimiser.learning_rate = self.learning_rate;
        c.reconstruction_weight = self.reconstruction_weight;
        c.data.augmentation = Augmentation {
            max_rotation_deg: 3.0,
            ..Augmentation::default()
        };
        c.data.cache_dir = cache_dir(None);
        c
    }
}

/// AUROC of one statistic for one abnormality kind: that kind's abnormal images against every
/// normal image of the evaluation split.
#[derive(Debug, Clone, Serialize)]
pub struct KindResult {
    pub kind: String,
    pub n_abnormal: usize,
    /// statistic → AUROC
    pub auroc: BTreeMap<String, Option<f64>>,
}

/// AUROC per abnormality kind, for every statistic (derived ones included).
pub fn auroc_by_kind(scores: &ScoreTable, kinds: &AnomalyKinds) -> Vec<KindResult> {
    let table = with_derived_statistics(scores);
    let eval: Vec<_> = table
        .rows
        .iter()
        .filter(|r| r.split != CALIBRATION_SPLIT)
        .collect();
    AnomalyKind::ALL
        .iter()
        .map(|kind| {
            let members: Vec<_> = eval
                .iter()
                .filter(|r| !r.abnormal || kinds.get(&r.path).copied().flatten() == Some(*kind))
                .collect();
            let positive: Vec<bool> = members.iter().map(|r| r.abnormal).collect();
            let auroc = table
                .statistics
                .iter()
                .enumerate()
                .map(|(k, name)| {
                    (
                        name.clone(),
                        auroc(
                            &members.iter().map(|r| r.values[k]).collect::<Vec<_>>(),
                            &positive,
                        ),
                    )
                })
                .collect();
            KindResult {
                kind: kind.name().to_string(),
                n_abnormal: positive.iter().filter(|p| **p).count(),
                auroc,
            }
        })
        .collect()
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
    for (kind, epochs) in settings.epochs {
        let model_started = Instant::now();
        let dir = args.out.join(kind.name());
        let run = dir.join("run");
        let config = settings.train_config(kind, epochs, &data, args.seed);
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
        let by_kind = auroc_by_kind(&ScoreTable::read(&dir.join("scores.csv"))?, &kinds);
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
    let statistics = summaries
        .first()
        .map(|s| s.metrics.statistics.clone())
        .unwrap_or_default();
    for stat in &statistics {
        out.push_str(&format!("| {stat} |"));
        for s in summaries {
            let m = s.metrics.image_level.get(stat);
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
