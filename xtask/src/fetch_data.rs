//! `cargo xtask fetch-data`: get MURA-v1.1 (from the link Stanford sends after registration, or a
//! zip already downloaded), check its SHA-256, extract it safely, check the layout, print counts.

use std::path::{Path, PathBuf};

use anyhow::{Context, Result, bail};

use crate::download::{download, sha256_file};
use crate::extract::extract_zip;

/// Flags of `fetch-data`.
#[derive(Debug, Clone, PartialEq)]
pub struct Options {
    pub url: Option<String>,
    pub archive: Option<PathBuf>,
    pub dest: PathBuf,
    /// Largest uncompressed size accepted, in bytes.
    pub max_bytes: u64,
}

impl Options {
    pub fn parse(args: &[String]) -> Result<Options> {
        let mut options = Options {
            url: None,
            archive: None,
            dest: PathBuf::from("data"),
            max_bytes: 16 << 30,
        };
        let mut it = args.iter();
        while let Some(flag) = it.next() {
            let mut value = || it.next().with_context(|| format!("{flag} needs a value"));
            match flag.as_str() {
                "--url" => options.url = Some(value()?.clone()),
                "--archive" => options.archive = Some(PathBuf::from(value()?)),
                "--dest" => options.dest = PathBuf::from(value()?),
                "--max-size" => {
                    let gib: f64 = value()?
                        .parse()
                        .context("--max-size takes a number of GiB")?;
                    options.max_bytes = (gib * (1u64 << 30) as f64) as u64;
                }
                other => bail!("unknown flag {other}"),
            }
        }
        if options.url.is_some() == options.archive.is_some() {
            bail!("give exactly one of --url URL or --archive FILE");
        }
        Ok(options)
    }
}

/// Where the checksum of the official archive is kept: `<hex>  <file name>` lines.
pub fn checksum_manifest(dest: &Path) -> PathBuf {
    dest.join("MURA-v1.1.sha256")
}

pub fn run(options: &Options) -> Result<()> {
    std::fs::create_dir_all(&options.dest)
        .with_context(|| format!("{}", options.dest.display()))?;
    let archive = match (&options.archive, &options.url) {
        (Some(archive), _) => archive.clone(),
        (None, Some(url)) => {
            let target = options.dest.join("MURA-v1.1.zip");
            if target.is_file() {
                eprintln!("{} already downloaded", target.display());
            } else {
                download(url, &target)?;
            }
            target
        }
        (None, None) => bail!("give --url URL or --archive FILE"),
    };
    verify_checksum(&archive, &checksum_manifest(&options.dest))?;
    let placed = extract_zip(&archive, &options.dest, options.max_bytes)?;
    for p in &placed {
        eprintln!("extracted {}", p.display());
    }
    let table = gan_data::read_mura(&options.dest, gan_data::Listing::Auto)
        .context("the archive does not hold a MURA-v1.1 dataset")?;
    println!(
        "{:<6} {:<9} {:>8} {:>8}",
        "split", "part", "label", "images"
    );
    for ((split, part, label), n) in table.counts() {
        println!("{split:<6} {part:<9} {label:>8} {n:>8}");
    }
    if !table.skipped.is_empty() {
        eprintln!(
            "{} listed entries were skipped; first: {}: {}",
            table.skipped.len(),
            table.skipped[0].path.display(),
            table.skipped[0].reason
        );
    }
    Ok(())
}

/// Compares the archive's SHA-256 with the manifest entry for its file name when there is one;
/// prints it otherwise, so it can be recorded.
pub fn verify_checksum(archive: &Path, manifest: &Path) -> Result<()> {
    eprintln!("computing SHA-256 of {}", archive.display());
    let actual = sha256_file(archive)?;
    let name = archive
        .file_name()
        .map(|n| n.to_string_lossy().into_owned())
        .unwrap_or_default();
    let expected = std::fs::read_to_string(manifest).ok().and_then(|text| {
        text.lines().find_map(|line| {
            let (hash, file) = line.split_once(char::is_whitespace)?;
            (file.trim().trim_start_matches('*') == name).then(|| hash.to_ascii_lowercase())
        })
    });
    match expected {
        Some(expected) if expected == actual => {
            eprintln!("sha256 {actual} matches {}", manifest.display());
            Ok(())
        }
        Some(expected) => bail!(
            "{}: sha256 is {actual}, but {} expects {expected}; the file is damaged or not the official archive",
            archive.display(),
            manifest.display()
        ),
        None => {
            println!(
                "sha256 {actual}  {name}  (no entry in {} to compare with)",
                manifest.display()
            );
            Ok(())
        }
    }
}
