//! Writes one sheet of synthetic radiographs (rows: body parts; columns: normal, then each
//! abnormality) so a person can check that they look like radiographs.
//!
//! `cargo run --release -p gan-data --example synth_gallery -- gallery.png [size] [seed]`

use gan_data::BODY_PARTS;
use gan_data::synth::{AnomalyKind, render_example};
use image::{GrayImage, imageops};

fn main() -> Result<(), Box<dyn std::error::Error>> {
    let mut args = std::env::args().skip(1);
    let out = args.next().unwrap_or_else(|| "synth-gallery.png".into());
    let size: u32 = args.next().map(|s| s.parse()).transpose()?.unwrap_or(256);
    let seed: u64 = args.next().map(|s| s.parse()).transpose()?.unwrap_or(7);
    let kinds: Vec<Option<AnomalyKind>> = std::iter::once(None)
        .chain(AnomalyKind::ALL.into_iter().map(Some))
        .collect();
    let mut sheet = GrayImage::new(size * kinds.len() as u32, size * BODY_PARTS.len() as u32);
    for (row, part) in BODY_PARTS.iter().enumerate() {
        for (col, kind) in kinds.iter().enumerate() {
            let (image, _) = render_example(part, *kind, seed + row as u64, col % 3, size);
            imageops::replace(
                &mut sheet,
                &image,
                (col as u32 * size).into(),
                (row as u32 * size).into(),
            );
        }
    }
    sheet.save(&out)?;
    println!(
        "{out}: rows {}, columns normal + {:?}",
        BODY_PARTS.join(" "),
        AnomalyKind::ALL
    );
    Ok(())
}
