//! `cargo xtask ci`: formatting, lints, then the test command of the README.

use std::process::Command;

use anyhow::{Result, bail};

/// The steps, in order; the last one is the README's test command.
pub const STEPS: &[&[&str]] = &[
    &["fmt", "--all", "--", "--check"],
    &[
        "clippy",
        "--workspace",
        "--all-targets",
        "--release",
        "--",
        "-D",
        "warnings",
    ],
    &["test", "--workspace", "--release"],
];

pub fn run() -> Result<()> {
    let cargo = std::env::var("CARGO").unwrap_or_else(|_| "cargo".into());
    for step in STEPS {
        eprintln!("$ cargo {}", step.join(" "));
        let status = Command::new(&cargo).args(*step).status()?;
        if !status.success() {
            bail!("`cargo {}` failed ({status})", step.join(" "));
        }
    }
    Ok(())
}
