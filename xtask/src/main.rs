//! `cargo xtask <task>`: one module per task, one match.

use std::process::ExitCode;

const USAGE: &str = "usage:
  cargo xtask fetch-data [--url URL | --archive FILE] [--dest data/] [--max-size GIB]
  cargo xtask ci
  cargo xtask peer-pairs [--pairs 3] [--steps 3] [--threads 2] [--python PY] [--peer FILE]
                         [--peer-arg ARG]... [--precision f32|bf16] [--out pairs.json]";

fn main() -> ExitCode {
    let args: Vec<String> = std::env::args().skip(1).collect();
    let result =
        match args.first().map(String::as_str) {
            Some("fetch-data") => xtask::fetch_data::Options::parse(&args[1..])
                .and_then(|o| xtask::fetch_data::run(&o)),
            Some("ci") => xtask::ci::run(),
            Some("peer-pairs") => xtask::peer_pairs::Options::parse(&args[1..])
                .and_then(|o| xtask::peer_pairs::run(&o)),
            _ => {
                eprintln!("{USAGE}");
                return ExitCode::from(2);
            }
        };
    match result {
        Ok(()) => ExitCode::SUCCESS,
        Err(e) => {
            eprintln!("error: {e:#}");
            ExitCode::FAILURE
        }
    }
}
