//! Training-time augmentation of preprocessed S×S images: flip, small rotation, crop (zoom),
//! brightness and contrast. Deterministic for a given random generator; never used in evaluation.

use rand::Rng;
use serde::{Deserialize, Serialize};

/// Augmentation ranges. `Augmentation::none()` changes nothing.
#[derive(Debug, Clone, Copy, PartialEq, Serialize, Deserialize)]
pub struct Augmentation {
    /// Probability of a left-right flip.
    pub flip_probability: f32,
    /// Rotation drawn uniformly in ±this many degrees.
    pub max_rotation_deg: f32,
    /// Random crop: zoom drawn in [1, 1 + this] with a random offset inside the image.
    pub max_zoom: f32,
    /// Brightness shift drawn in ±this (on the [−1, 1] scale).
    pub brightness: f32,
    /// Contrast factor drawn in [1 − this, 1 + this].
    pub contrast: f32,
}

impl Default for Augmentation {
    /// Mild settings suited to radiographs.
    fn default() -> Self {
        Augmentation {
            flip_probability: 0.5,
            max_rotation_deg: 5.0,
            max_zoom: 0.1,
            brightness: 0.05,
            contrast: 0.1,
        }
    }
}

impl Augmentation {
    /// No augmentation at all.
    pub fn none() -> Self {
        Augmentation {
            flip_probability: 0.0,
            max_rotation_deg: 0.0,
            max_zoom: 0.0,
            brightness: 0.0,
            contrast: 0.0,
        }
    }

    /// True when `apply` would return its input unchanged.
    pub fn is_identity(&self) -> bool {
        *self == Self::none()
    }

    /// Returns an augmented copy of the `size`×`size` image `pixels` (values in [−1, 1]).
    pub fn apply(&self, pixels: &[f32], size: usize, rng: &mut impl Rng) -> Vec<f32> {
        if self.is_identity() {
            return pixels.to_vec();
        }
        // Draw every parameter first, in a fixed order, so results depend on the generator only.
        let flip = rng.random::<f32>() < self.flip_probability;
        let angle = symmetric(rng, self.max_rotation_deg).to_radians();
        let zoom = 1.0 + rng.random::<f32>() * self.max_zoom;
        let slack = 1.0 - 1.0 / zoom; // fraction of the image the crop can move in
        let shift_x = symmetric(rng, 0.5) * slack;
        let shift_y = symmetric(rng, 0.5) * slack;
        let brightness = symmetric(rng, self.brightness);
        let contrast = 1.0 + symmetric(rng, self.contrast);

        let n = size as f32;
        let c = (n - 1.0) / 2.0;
        let (sin, cos) = angle.sin_cos();
        let mut out = vec![0.0; size * size];
        for y in 0..size {
            for x in 0..size {
                // Output pixel → source pixel: undo zoom and shift, then rotate about the centre.
                let mut u = (x as f32 - c) / zoom + shift_x * n;
                let v = (y as f32 - c) / zoom + shift_y * n;
                if flip {
                    u = -u;
                }
                let sx = cos * u - sin * v + c;
                let sy = sin * u + cos * v + c;
                let value = bilinear(pixels, size, sx, sy);
                out[y * size + x] = ((value + brightness) * contrast).clamp(-1.0, 1.0);
            }
        }
        out
    }
}

fn symmetric(rng: &mut impl Rng, half_width: f32) -> f32 {
    (rng.random::<f32>() * 2.0 - 1.0) * half_width
}

/// Bilinear sample with edge clamping.
fn bilinear(pixels: &[f32], size: usize, x: f32, y: f32) -> f32 {
    let max = (size - 1) as f32;
    let x = x.clamp(0.0, max);
    let y = y.clamp(0.0, max);
    let (x0, y0) = (x.floor() as usize, y.floor() as usize);
    let (x1, y1) = ((x0 + 1).min(size - 1), (y0 + 1).min(size - 1));
    let (fx, fy) = (x - x0 as f32, y - y0 as f32);
    let at = |xx: usize, yy: usize| pixels[yy * size + xx];
    let top = at(x0, y0) * (1.0 - fx) + at(x1, y0) * fx;
    let bottom = at(x0, y1) * (1.0 - fx) + at(x1, y1) * fx;
    top * (1.0 - fy) + bottom * fy
}
