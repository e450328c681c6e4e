//! Decoding and preprocessing: any PNG/JPEG (8/16-bit grey, RGB) or DICOM file to an S×S luma image
//! in [−1, 1].

use std::path::Path;

use image::{ImageBuffer, ImageReader, Luma};
use serde::{Deserialize, Serialize};

use crate::dicom::{decode_dicom, has_dicom_extension, has_dicom_preamble};
use crate::error::{DataError, Result};

/// How a non-square image is made square.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Default, Serialize, Deserialize)]
#[cfg_attr(feature = "clap", derive(clap::ValueEnum))]
#[serde(rename_all = "lowercase")]
pub enum Fit {
    /// Scale the short side to S and keep the centre.
    #[default]
    CentreCrop,
    /// Scale the long side to S and pad with black (−1).
    Letterbox,
}

/// Preprocessing parameters; they are part of the cache key.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Serialize, Deserialize)]
pub struct Preprocess {
    /// Output side S in pixels.
    pub size: u32,
    pub fit: Fit,
    /// Images with more pixels than this are refused before decoding (decompression-bomb guard).
    pub max_pixels: u64,
}

impl Default for Preprocess {
    fn default() -> Self {
        Preprocess {
            size: 64,
            fit: Fit::CentreCrop,
            max_pixels: 100_000_000,
        }
    }
}

/// A decoded greyscale image with values in [0, 1].
pub type GreyImage = ImageBuffer<Luma<f32>, Vec<f32>>;

/// Reads the file at `path` as greyscale in [0, 1]: 16-bit stays 16-bit precise, RGB becomes luma
/// (Rec. 709 weights, as the `image` crate computes it). Refuses images above `max_pixels`.
/// A DICOM file (recognised by its `DICM` preamble, or named `.dcm`/`.dicom`) gives its first frame
/// as a viewer shows it: rescaled, then through its VOI LUT or window (else min–max), MONOCHROME1
/// inverted.
pub fn decode_grey(path: &Path, max_pixels: u64) -> Result<GreyImage> {
    let bytes = std::fs::read(path).map_err(|e| DataError::io(path, e))?;
    decode_grey_bytes(&bytes, path, max_pixels)
}

/// As [`decode_grey`], from bytes already in memory (`path` is only used in messages).
pub fn decode_grey_bytes(bytes: &[u8], path: &Path, max_pixels: u64) -> Result<GreyImage> {
    let decode_err = |e: image::ImageError| DataError::Decode {
        path: path.to_path_buf(),
        message: e.to_string(),
    };
    if bytes.is_empty() {
        return Err(DataError::Decode {
            path: path.to_path_buf(),
            message: "file is empty".into(),
        });
    }
    if has_dicom_preamble(bytes) || has_dicom_extension(path) {
        return decode_dicom(bytes, path, max_pixels);
    }
    let reader = || {
        ImageReader::new(std::io::Cursor::new(bytes))
            .with_guessed_format()
            .map_err(|e| DataError::io(path, e))
    };
    let (width, height) = reader()?.into_dimensions().map_err(decode_err)?;
    if width as u64 * height as u64 > max_pixels {
        return Err(DataError::TooLarge {
            path: path.to_path_buf(),
            width,
            height,
            limit: max_pixels,
        });
    }
    let mut reader = reader()?;
    let mut limits = image::Limits::default();
    limits.max_image_width = Some(width);
    limits.max_image_height = Some(height);
    reader.limits(limits);
    let image = reader.decode().map_err(decode_err)?;
    let rgba = image.to_rgba32f();
    let alpha_matters = image.color().has_alpha();
    let grey = GreyImage::from_fn(width, height, |x, y| {
        let [r, g, b, a] = rgba.get_pixel(x, y).0;
        let luma = 0.2126 * r + 0.7152 * g + 0.0722 * b;
        Luma([if alpha_matters { luma * a } else { luma }.clamp(0.0, 1.0)])
    });
    Ok(grey)
}

/// Resizes a greyscale image to S×S (aspect kept by `fit`) and maps [0, 1] to [−1, 1].
/// Returns S·S values, row-major.
pub fn to_model_input(image: &GreyImage, pre: &Preprocess) -> Vec<f32> {
    let s = pre.size;
    let (w, h) = image.dimensions();
    let square = match pre.fit {
        Fit::CentreCrop => {
            let side = w.min(h).max(1);
            let crop = image::imageops::crop_imm(image, (w - side) / 2, (h - side) / 2, side, side)
                .to_image();
            resize(&crop, s, s)
        }
        Fit::Letterbox => {
            let long = w.max(h).max(1) as f64;
            let nw = ((w as f64 * s as f64 / long).round() as u32).clamp(1, s);
            let nh = ((h as f64 * s as f64 / long).round() as u32).clamp(1, s);
            let inner = resize(image, nw, nh);
            let mut canvas = GreyImage::new(s, s);
            image::imageops::replace(
                &mut canvas,
                &inner,
                ((s - nw) / 2).into(),
                ((s - nh) / 2).into(),
            );
            canvas
        }
    };
    square
        .into_raw()
        .into_iter()
        .map(|v| v * 2.0 - 1.0)
        .collect()
}

fn resize(image: &GreyImage, w: u32, h: u32) -> GreyImage {
    if image.dimensions() == (w, h) {
        return image.clone();
    }
    image::imageops::resize(image, w, h, image::imageops::FilterType::Triangle)
}

/// Decodes and preprocesses one file: what the loader runs per image.
pub fn load_model_input(path: &Path, pre: &Preprocess) -> Result<Vec<f32>> {
    Ok(to_model_input(&decode_grey(path, pre.max_pixels)?, pre))
}
