//! `cargo xtask peer-pairs`: xray-gan's seed Alpha-GAN beside the PyTorch peer
//! (`../shared/peer/alpha_gan_ref.py`, outside this repository), alternated in pairs on one
//! machine, with the medians and their ratios. The machine's speed drifts between runs, so only
//! ratios measured side by side mean anything.
//!
//! Each pair runs both sides once, the order alternating (peer first in odd pairs): the peer's
//! `bench` (two warm-up steps, then `--steps` timed steps and scoring passes) under
//! `/usr/bin/time` for its peak memory, and `cargo bench -p gan-train --bench throughput -- --cell`
//! (one warm-up step, the same number timed) for ours. Both at 64×64, width 64, batch 64, with the
//! same thread count (`OMP_NUM_THREADS`, `RAYON_NUM_THREADS`). Scoring is compared on the peer's
//! six statistics (l1, l2, fm_d3, fm_d4, fm_e, disc).

use std::path::PathBuf;
use std::process::Command;

use anyhow::{Context, Result, bail};
use serde_json::Value;

pub struct Options {
    pub pairs: usize,
    pub steps: usize,
    pub threads: usize,
    pub python: PathBuf,
    pub peer: PathBuf,
    /// Extra arguments for the peer (e.g. `--joint`, or a copy's own switches).
    pub peer_args: Vec<String>,
    /// Our side's convolution products: `f32` or `bf16` (the throughput bench's `--precision`).
    pub precision: String,
    pub out: Option<PathBuf>,
}

impl Options {
    pub fn parse(args: &[String]) -> Result<Self> {
        let mut o = Options {
            pairs: 3,
            steps: 3,
            threads: 2,
            python: "python3".into(),
            peer: "../shared/peer/alpha_gan_ref.py".into(),
            peer_args: Vec::new(),
            precision: "f32".into(),
            out: None,
        };
        let mut it = args.iter();
        while let Some(a) = it.next() {
            let mut value = || it.next().with_context(|| format!("{a} needs a value"));
            match a.as_str() {
                "--pairs" => o.pairs = value()?.parse()?,
                "--steps" => o.steps = value()?.parse()?,
                "--threads" => o.threads = value()?.parse()?,
                "--python" => o.python = value()?.into(),
                "--peer" => o.peer = value()?.into(),
                "--peer-arg" => o.peer_args.push(value()?.clone()),
                "--out" => o.out = Some(value()?.into()),
                "--precision" => o.precision = value()?.clone(),
                other => bail!("unknown argument {other:?}"),
            }
        }
        if o.pairs == 0 || o.steps == 0 {
            bail!("--pairs and --steps must be at least 1");
        }
        if !o.peer.exists() {
            bail!(
                "{}: the PyTorch peer is not there (--peer FILE)",
                o.peer.display()
            );
        }
        Ok(o)
    }
}

/// One side's numbers from one run.
#[derive(Debug, Clone, Copy, serde::Serialize)]
pub struct Side {
    pub train_step_s: f64,
    pub train_img_per_s: f64,
    pub score_img_per_s: f64,
    pub peak_mib: f64,
}

/// The last line of `text` that parses as a JSON object.
fn last_json(text: &str) -> Option<Value> {
    text.lines().rev().find_map(|l| {
        serde_json::from_str::<Value>(l.trim())
            .ok()
            .filter(Value::is_object)
    })
}

fn number(v: &Value, key: &str) -> Result<f64> {
    v.get(key)
        .and_then(Value::as_f64)
        .with_context(|| format!("no number {key:?} in {v}"))
}

fn run_peer(o: &Options) -> Result<Side> {
    let output = Command::new("/usr/bin/time")
        .args(["-f", "xtask-peak-kib %M"])
        .arg(&o.python)
        .arg(&o.peer)
        .args(["bench", "--batch", "64", "--width", "64", "--steps"])
        .arg(o.steps.to_string())
        .args(&o.peer_args)
        .env("OMP_NUM_THREADS", o.threads.to_string())
        .output()
        .context("running the peer under /usr/bin/time")?;
    let stderr = String::from_utf8_lossy(&output.stderr);
    if !output.status.success() {
        bail!("the peer failed ({}): {stderr}", output.status);
    }
    let json = last_json(&String::from_utf8_lossy(&output.stdout))
        .context("the peer printed no JSON line")?;
    let peak_kib: f64 = stderr
        .lines()
        .find_map(|l| l.strip_prefix("xtask-peak-kib "))
        .context("/usr/bin/time printed no peak")?
        .trim()
        .parse()?;
    Ok(Side {
        train_step_s: number(&json, "train_step_s")?,
        train_img_per_s: number(&json, "train_img_per_s")?,
        score_img_per_s: number(&json, "score_img_per_s")?,
        peak_mib: peak_kib / 1024.0,
    })
}

fn run_ours(o: &Options) -> Result<Side> {
    let cargo = std::env::var("CARGO").unwrap_or_else(|_| "cargo".into());
    let output = Command::new(cargo)
        .args([
            "bench",
            "-q",
            "-p",
            "gan-train",
            "--bench",
            "throughput",
            "--",
        ])
        .args(["--cell", "--no-loader", "--configs", "seed", "--models"])
        .args(["alpha-gan", "--steps"])
        .arg(o.steps.to_string())
        .args(["--precision", &o.precision])
        .env("RAYON_NUM_THREADS", o.threads.to_string())
        .output()
        .context("running cargo bench")?;
    if !output.status.success() {
        bail!(
            "the throughput bench failed ({}): {}",
            output.status,
            String::from_utf8_lossy(&output.stderr)
        );
    }
    let json = last_json(&String::from_utf8_lossy(&output.stdout))
        .context("the throughput bench printed no JSON line")?;
    Ok(Side {
        train_step_s: number(&json, "train_step_s")?,
        train_img_per_s: number(&json, "train_img_per_s")?,
        score_img_per_s: number(&json, "score_peer_statistics_img_per_s")?,
        peak_mib: number(&json, "peak_rss_mib")?,
    })
}

/// The commit measured, `+dirty` when the working tree has changes (`None` outside git).
fn commit() -> Option<String> {
    let git = |args: &[&str]| {
        Command::new("git")
            .args(args)
            .output()
            .ok()
            .filter(|o| o.status.success())
            .map(|o| String::from_utf8_lossy(&o.stdout).trim().to_string())
    };
    let head = git(&["rev-parse", "--short", "HEAD"])?;
    let dirty =
        git(&["status", "--porcelain", "--untracked-files=no"]).is_some_and(|s| !s.is_empty());
    Some(if dirty { format!("{head}+dirty") } else { head })
}

pub fn median(values: &mut [f64]) -> f64 {
    values.sort_by(f64::total_cmp);
    let n = values.len();
    if n % 2 == 1 {
        values[n / 2]
    } else {
        (values[n / 2 - 1] + values[n / 2]) / 2.0
    }
}

pub fn run(o: &Options) -> Result<()> {
    let mut pairs: Vec<(Side, Side)> = Vec::new();
    for i in 0..o.pairs {
        let peer_first = i % 2 == 0;
        eprintln!(
            "pair {}/{}: {} first",
            i + 1,
            o.pairs,
            if peer_first { "peer" } else { "xray-gan" }
        );
        let (ours, peer) = if peer_first {
            let peer = run_peer(o)?;
            (run_ours(o)?, peer)
        } else {
            let ours = run_ours(o)?;
            (ours, run_peer(o)?)
        };
        eprintln!("  xray-gan {ours:?}\n  peer     {peer:?}");
        pairs.push((ours, peer));
    }
    let med = |f: &dyn Fn(&Side) -> f64| {
        let ours = median(&mut pairs.iter().map(|p| f(&p.0)).collect::<Vec<_>>());
        let peer = median(&mut pairs.iter().map(|p| f(&p.1)).collect::<Vec<_>>());
        (ours, peer)
    };
    let (step, train, score, peak) = (
        med(&|s| s.train_step_s),
        med(&|s| s.train_img_per_s),
        med(&|s| s.score_img_per_s),
        med(&|s| s.peak_mib),
    );
    println!(
        "| medians of {} pairs, {} threads | xray-gan | PyTorch peer | ratio |",
        o.pairs, o.threads
    );
    println!("|---|---:|---:|---:|");
    println!("| training step, s | {:.2} | {:.2} | |", step.0, step.1);
    println!(
        "| training images/s | {:.2} | {:.2} | {:.2}× |",
        train.0,
        train.1,
        train.0 / train.1
    );
    println!(
        "| scoring images/s (the peer's six statistics) | {:.1} | {:.1} | {:.2}× |",
        score.0,
        score.1,
        score.0 / score.1
    );
    println!(
        "| peak resident memory, MiB | {:.0} | {:.0} | {:.2}× |",
        peak.0,
        peak.1,
        peak.0 / peak.1
    );
    if let Some(path) = &o.out {
        let json = serde_json::json!({
            "commit": commit(),
            "threads": o.threads,
            "steps": o.steps,
            "peer_args": o.peer_args,
            "precision": o.precision,
            "pairs": pairs.iter().map(|(a, b)| serde_json::json!({"xray_gan": a, "peer": b})).collect::<Vec<_>>(),
        });
        std::fs::write(path, serde_json::to_string_pretty(&json)?)
            .with_context(|| format!("writing {}", path.display()))?;
        eprintln!("pairs written to {}", path.display());
    }
    Ok(())
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn medians_of_odd_and_even_counts() {
        assert_eq!(median(&mut [3.0, 1.0, 2.0]), 2.0);
        assert_eq!(median(&mut [4.0, 1.0, 3.0, 2.0]), 2.5);
    }

    #[test]
    fn the_last_json_object_line_is_found_among_log_lines() {
        let text = "warming up\n{\"a\": 1}\nnot json\n{\"train_step_s\": 6.5}\ndone\n";
        let v = last_json(text).unwrap();
        assert_eq!(number(&v, "train_step_s").unwrap(), 6.5);
        assert!(last_json("no json here\n[1, 2]\n").is_none());
    }
}
