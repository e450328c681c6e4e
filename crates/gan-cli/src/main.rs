//! `xray-gan`: a thin command line over the gan-* crates. Flags are parsed into validated options,
//! the library does the work, errors become exit codes (0 success, 2 bad usage or input, 1 other).

mod benchmark;
mod demo;
mod detectors;
mod eval;
mod predict;
mod score;
mod synth;
mod train;

use std::process::ExitCode;

use clap::{Parser, Subcommand};

#[global_allocator]
static ALLOCATOR: gan_alloc::KeepPages = gan_alloc::KeepPages;

/// Train anomaly detectors on normal radiographs, then flag abnormal ones.
#[derive(Debug, Parser)]
#[command(name = "xray-gan", version, about, long_about = None)]
struct Cli {
    #[command(subcommand)]
    command: Command,
}

#[derive(Debug, Subcommand)]
enum Command {
    /// Write a synthetic MURA-v1.1 dataset of radiographs with labelled abnormalities.
    Synth(synth::SynthArgs),
    /// Train a detector on the normal training images.
    Train(train::TrainArgs),
    /// List the detectors, their primary statistics and their settings (for `train --set`).
    Detectors(detectors::DetectorsArgs),
    /// Score the evaluation split and the normal validation images with a trained run.
    Score(score::ScoreArgs),
    /// Metrics, figures and an HTML report from scores.csv.
    Eval(eval::EvalArgs),
    /// Score new images (files or folders, no labels) and flag them at the run's threshold.
    Predict(predict::PredictArgs),
    /// The whole job on built-in synthetic radiographs: synth, train both models, score, evaluate.
    Demo(demo::DemoArgs),
    /// Train every detector with several seeds on one dataset, score, evaluate, compare.
    Benchmark(benchmark::BenchmarkArgs),
}

fn main() -> ExitCode {
    tracing_subscriber::fmt()
        .with_env_filter(
            tracing_subscriber::EnvFilter::try_from_default_env()
                .unwrap_or_else(|_| tracing_subscriber::EnvFilter::new("info")),
        )
        .with_writer(std::io::stderr)
        .with_target(false)
        .init();
    let cli = match Cli::try_parse() {
        Ok(cli) => cli,
        Err(e) => {
            let _ = e.print();
            return if e.use_stderr() {
                ExitCode::from(2)
            } else {
                ExitCode::SUCCESS
            };
        }
    };
    let result = match cli.command {
        Command::Synth(args) => synth::run(args),
        Command::Train(args) => train::run(args),
        Command::Detectors(args) => detectors::run(args),
        Command::Score(args) => score::run(args),
        Command::Eval(args) => eval::run(args),
        Command::Predict(args) => predict::run(args),
        Command::Demo(args) => demo::run(args),
        Command::Benchmark(args) => benchmark::run(args),
    };
    match result {
        Ok(()) => ExitCode::SUCCESS,
        Err(e) => {
            eprintln!("error: {}", error_message(&e));
            ExitCode::from(exit_code(&e))
        }
    }
}

/// The error and its causes, each cause once: errors that name a file already quote their
/// source's message, which `{:#}` would print a second time.
fn error_message(error: &anyhow::Error) -> String {
    let mut message = String::new();
    for cause in error.chain() {
        let text = cause.to_string();
        if !message.contains(&text) {
            if !message.is_empty() {
                message.push_str(": ");
            }
            message.push_str(&text);
        }
    }
    message
}

/// 2 when the user's input or flags are at fault, 1 otherwise.
fn exit_code(error: &anyhow::Error) -> u8 {
    use gan_data::DataError;
    use gan_models::ModelError;
    use gan_train::TrainError;
    let data = |e: &DataError| !matches!(e, DataError::Io { .. } | DataError::Tensor(_));
    let model = |e: &ModelError| match e {
        ModelError::Config(_)
        | ModelError::Settings(_)
        | ModelError::Device(_)
        | ModelError::Checkpoint { .. } => true,
        ModelError::Data(d) => data(d),
        ModelError::Tensor(_) => false,
    };
    for cause in error.chain() {
        let bad_input = if let Some(gan_pipeline::PipelineError::Input { .. }) =
            cause.downcast_ref::<gan_pipeline::PipelineError>()
        {
            true
        } else if let Some(e) = cause.downcast_ref::<DataError>() {
            data(e)
        } else if let Some(e) = cause.downcast_ref::<ModelError>() {
            model(e)
        } else if let Some(e) = cause.downcast_ref::<TrainError>() {
            match e {
                TrainError::Data(d) => data(d),
                TrainError::Model(m) => model(m),
                TrainError::Config(_) | TrainError::Run { .. } => true,
                TrainError::NonFinite { .. } | TrainError::Tensor(_) | TrainError::Io { .. } => {
                    false
                }
            }
        } else if let Some(e) = cause.downcast_ref::<gan_metrics::MetricsError>() {
            !matches!(
                e,
                gan_metrics::MetricsError::Io { .. } | gan_metrics::MetricsError::Plot { .. }
            )
        } else {
            continue;
        };
        return if bad_input { 2 } else { 1 };
    }
    1
}
