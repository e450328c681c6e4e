//! `xray-gan synth`: writes synthetic radiographs in the MURA-v1.1 layout.

use std::path::PathBuf;

use anyhow::Result;
use clap::Args;
use gan_data::synth::{SynthConfig, SynthFormat, write_synthetic_mura};
use gan_data::{Label, Listing, read_mura};

#[derive(Debug, Args)]
pub struct SynthArgs {
    /// Folder to write into; the dataset lands in OUT/MURA-v1.1.
    #[arg(long)]
    out: PathBuf,
    /// Seed of the generator: the same seed writes the same bytes.
    #[arg(long, default_value_t = 0)]
    seed: u64,
    /// Training studies per body part (the validation split gets half as many).
    #[arg(long, default_value_t = 24)]
    studies_per_part: usize,
    /// Body parts, comma separated (elbow, finger, forearm, hand, humerus, shoulder, wrist); all by default.
    #[arg(long, value_delimiter = ',')]
    parts: Vec<String>,
    /// Image height in pixels.
    #[arg(long, default_value_t = 256)]
    size: u32,
    /// File format: PNG, or DICOM as a PACS exports it (CR, 12-bit, windowed, some MONOCHROME1).
    #[arg(long, value_enum, default_value = "png")]
    format: SynthFormat,
}

pub fn run(args: SynthArgs) -> Result<()> {
    let config = SynthConfig {
        seed: args.seed,
        studies_per_part: args.studies_per_part,
        parts: args.parts,
        size: args.size,
        format: args.format,
        ..Default::default()
    };
    let summary = write_synthetic_mura(&args.out, &config, true)?;
    // read it back as any MURA dataset, so what is printed is what training will see
    let table = read_mura(&summary.mura_dir, Listing::Csv)?;
    println!(
        "wrote {} radiographs to {}",
        table.len(),
        summary.mura_dir.display()
    );
    println!(
        "{:<6} {:<9} {:>7} {:>9}",
        "split", "part", "normal", "abnormal"
    );
    let counts = table.counts();
    let mut rows = std::collections::BTreeMap::<(String, String), [usize; 2]>::new();
    for ((split, part, label), n) in counts {
        rows.entry((split, part)).or_default()[label.as_u8() as usize] += n;
    }
    for ((split, part), [normal, abnormal]) in rows {
        println!("{split:<6} {part:<9} {normal:>7} {abnormal:>9}");
    }
    let abnormal = table
        .samples
        .iter()
        .filter(|s| s.label == Label::Abnormal)
        .count();
    println!(
        "abnormality of each image: {}",
        summary.mura_dir.join("synth_anomalies.csv").display()
    );
    tracing::debug!("{abnormal} abnormal images");
    Ok(())
}
