//! Anomaly maps as pictures: an image, its reconstruction and the residual overlaid in red, side
//! by side (the report's gallery, `predict --maps`).

use image::{Rgb, RgbImage};

use crate::error::Result;

/// Image | reconstruction | image with the residual in red, as one PNG.
pub(crate) fn triptych(
    input: &[f32],
    recon: &[f32],
    residual: &[f32],
    s: usize,
) -> Result<Vec<u8>> {
    let grey = |v: f32| ((v.clamp(-1.0, 1.0) + 1.0) * 127.5) as u8;
    let peak = residual.iter().copied().fold(1e-6f32, f32::max);
    let mut img = RgbImage::new(3 * s as u32 + 4, s as u32);
    for y in 0..s {
        for x in 0..s {
            let i = y * s + x;
            let g = grey(input[i]);
            img.put_pixel(x as u32, y as u32, Rgb([g, g, g]));
            let r = grey(recon[i]);
            img.put_pixel((s + 2 + x) as u32, y as u32, Rgb([r, r, r]));
            let a = (residual[i] / peak).clamp(0.0, 1.0);
            let blend = |c: f32, t: f32| (c * (1.0 - a) + t * a) as u8;
            img.put_pixel(
                (2 * s + 4 + x) as u32,
                y as u32,
                Rgb([
                    blend(g as f32, 255.0),
                    blend(g as f32, 0.0),
                    blend(g as f32, 0.0),
                ]),
            );
        }
    }
    let mut png = Vec::new();
    img.write_to(&mut std::io::Cursor::new(&mut png), image::ImageFormat::Png)?;
    Ok(png)
}
