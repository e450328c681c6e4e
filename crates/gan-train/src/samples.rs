//! Sample sheets (inputs | reconstructions | G(z) for a fixed z) and the diversity measure behind
//! the mode-collapse warning.

use std::path::Path;

use candle::Tensor;
use gan_data::ImageSet;
use gan_models::Detector;
use image::{GrayImage, Luma};

use crate::error::{Result, TrainError};

/// Mean L1 distance between pairs of images `(N, S·S)`.
fn mean_pairwise_l1(images: &[Vec<f32>]) -> f64 {
    let mut total = 0.0;
    let mut pairs = 0usize;
    for i in 0..images.len() {
        for j in i + 1..images.len() {
            let d: f64 = images[i]
                .iter()
                .zip(&images[j])
                .map(|(a, b)| (a - b).abs() as f64)
                .sum();
            total += d / images[i].len() as f64;
            pairs += 1;
        }
    }
    if pairs == 0 {
        0.0
    } else {
        total / pairs as f64
    }
}

fn rows(t: &Tensor) -> Result<Vec<Vec<f32>>> {
    Ok(t.flatten_from(1)?.to_vec2::<f32>()?)
}

/// Diversity of generated images relative to real ones (1 ≈ as varied as real images; near 0:
/// every z gives the same picture, the generator has collapsed).
pub fn sample_diversity(generated: &Tensor, real: &ImageSet) -> Result<f64> {
    let n = generated.dim(0)?.min(real.len());
    let real_images: Vec<Vec<f32>> = (0..n).map(|i| real.image(i)).collect();
    let real_div = mean_pairwise_l1(&real_images);
    let gen_div = mean_pairwise_l1(&rows(generated)?);
    Ok(if real_div > 0.0 {
        gen_div / real_div
    } else {
        0.0
    })
}

/// Writes a PNG with up to three rows: real images, the detector's reconstructions of them (x̂
/// of its scores) and, for a detector that generates, its generated images.
pub fn write_sample_sheet(
    path: &Path,
    model: &dyn Detector,
    real: &ImageSet,
    generated: Option<&Tensor>,
) -> Result<()> {
    let n = generated
        .map_or(Ok(8), |g| g.dim(0))?
        .min(real.len())
        .max(1);
    let s = real.image_size();
    let cpu = candle::Device::Cpu;
    let device = model.players().first().map_or(&cpu, |p| p.device());
    let inputs: Vec<f32> = (0..n.min(real.len())).flat_map(|i| real.image(i)).collect();
    let count = inputs.len() / (s * s);
    let x = Tensor::from_vec(inputs, (count, 1, s, s), device)?;
    let reconstructed = model.score(&x)?.reconstruction;
    let mut sheet_rows = vec![rows(&x)?, rows(&reconstructed)?];
    if let Some(generated) = generated {
        sheet_rows.push(rows(generated)?);
    }
    let gap = 2u32;
    let cols = sheet_rows.iter().map(|r| r.len()).max().unwrap_or(1) as u32;
    let side = s as u32;
    let mut sheet = GrayImage::from_pixel(
        cols * (side + gap) + gap,
        sheet_rows.len() as u32 * (side + gap) + gap,
        Luma([40]),
    );
    for (r, images) in sheet_rows.iter().enumerate() {
        for (c, pixels) in images.iter().enumerate() {
            let (ox, oy) = (gap + c as u32 * (side + gap), gap + r as u32 * (side + gap));
            for (k, v) in pixels.iter().enumerate() {
                let value = ((v.clamp(-1.0, 1.0) + 1.0) * 127.5).round() as u8;
                sheet.put_pixel(ox + (k % s) as u32, oy + (k / s) as u32, Luma([value]));
            }
        }
    }
    let mut bytes = Vec::new();
    sheet
        .write_to(
            &mut std::io::Cursor::new(&mut bytes),
            image::ImageFormat::Png,
        )
        .map_err(|e| TrainError::Run {
            path: path.to_path_buf(),
            message: e.to_string(),
        })?;
    gan_data::write_atomically(path, &bytes)?;
    Ok(())
}
