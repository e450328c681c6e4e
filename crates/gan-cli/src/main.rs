//! `xray-gan`: a thin command line over the gan-* crates. Flags are parsed into validated options,
//! the library does the work, errors become exit codes (0 success, 2 bad usage or input, 1 other).

mod synth;

use std::process::ExitCode;

use clap::{Parser, Subcommand};

/// Train GANs on normal radiographs, then flag abnormal ones.
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
    };
    match result {
        Ok(()) => ExitCode::SUCCESS,
        Err(e) => {
            eprintln!("error: {e:#}");
            ExitCode::from(exit_code(&e))
        }
    }
}

/// 2 when the user's input or flags are at fault, 1 otherwise.
fn exit_code(error: &anyhow::Error) -> u8 {
    use gan_data::DataError;
    match error.downcast_ref::<DataError>() {
        Some(
            DataError::Layout { .. }
            | DataError::Csv { .. }
            | DataError::Decode { .. }
            | DataError::TooLarge { .. }
            | DataError::Strict(..)
            | DataError::Config(_),
        ) => 2,
        _ => 1,
    }
}
