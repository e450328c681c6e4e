//! `xray-gan detectors`: every registered detector with its primary statistic and its settings
//! (the keys `train --set KEY=VALUE` accepts) at their defaults.

use std::io::Write;

use anyhow::Result;
use clap::Args;
use gan_models::REGISTRY;

#[derive(Debug, Args)]
pub struct DetectorsArgs {
    /// Print JSON (name, summary, primary, settings) instead of text.
    #[arg(long)]
    json: bool,
}

pub fn run(args: DetectorsArgs) -> Result<()> {
    let text = listing(args.json)?;
    // a listing piped into `head` is not an error
    match std::io::stdout().lock().write_all(text.as_bytes()) {
        Err(e) if e.kind() == std::io::ErrorKind::BrokenPipe => Ok(()),
        other => Ok(other?),
    }
}

fn listing(json: bool) -> Result<String> {
    if json {
        let entries: Vec<serde_json::Value> = REGISTRY
            .iter()
            .map(|r| {
                serde_json::json!({
                    "name": r.name,
                    "summary": r.summary,
                    "primary": r.primary,
                    "settings": (r.default_settings)(),
                })
            })
            .collect();
        return Ok(serde_json::to_string_pretty(&entries)? + "\n");
    }
    let mut text = String::new();
    for r in REGISTRY {
        text.push_str(&format!("{}: {}\n", r.name, r.summary));
        text.push_str(&format!("  primary statistic: {}\n", r.primary));
        let settings = (r.default_settings)();
        match settings.as_object() {
            Some(keys) if !keys.is_empty() => {
                for (key, value) in keys {
                    text.push_str(&format!("  --set {key}={value}\n"));
                }
            }
            _ => text.push_str("  no settings\n"),
        }
    }
    Ok(text)
}
