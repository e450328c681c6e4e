//! Small 2-D geometry for drawing radiographs: points, capsules (long bones, soft tissue),
//! ellipsoids (carpal bones, humeral head), projected thicknesses and value noise.

use std::ops::{Add, Mul, Sub};

#[derive(Debug, Clone, Copy, PartialEq)]
pub struct V2 {
    pub x: f32,
    pub y: f32,
}

pub const fn v2(x: f32, y: f32) -> V2 {
    V2 { x, y }
}

impl Add for V2 {
    type Output = V2;
    fn add(self, o: V2) -> V2 {
        v2(self.x + o.x, self.y + o.y)
    }
}

impl Sub for V2 {
    type Output = V2;
    fn sub(self, o: V2) -> V2 {
        v2(self.x - o.x, self.y - o.y)
    }
}

impl Mul<f32> for V2 {
    type Output = V2;
    fn mul(self, k: f32) -> V2 {
        v2(self.x * k, self.y * k)
    }
}

impl V2 {
    pub fn dot(self, o: V2) -> f32 {
        self.x * o.x + self.y * o.y
    }

    pub fn len(self) -> f32 {
        self.dot(self).sqrt()
    }

    pub fn unit(self) -> V2 {
        let l = self.len().max(1e-9);
        self * (1.0 / l)
    }

    /// Rotated 90° counter-clockwise.
    pub fn perp(self) -> V2 {
        v2(-self.y, self.x)
    }

    pub fn rotate(self, angle: f32) -> V2 {
        let (s, c) = angle.sin_cos();
        v2(c * self.x - s * self.y, s * self.x + c * self.y)
    }
}

/// A segment from `a` to `b`: position of `p` along it (t, unclamped) and distance to the
/// clamped closest point.
pub fn segment_coords(p: V2, a: V2, b: V2) -> (f32, f32) {
    let ab = b - a;
    let t = (p - a).dot(ab) / ab.dot(ab).max(1e-12);
    let closest = a + ab * t.clamp(0.0, 1.0);
    (t, (p - closest).len())
}

/// Length of a chord through a cylinder (or sphere) of radius `r` at distance `d` from its axis:
/// the projected thickness an X-ray beam crosses.
pub fn chord(r: f32, d: f32) -> f32 {
    if d >= r {
        0.0
    } else {
        2.0 * (r * r - d * d).sqrt()
    }
}

/// Distance from `p` to the line through `a` and `b`, ignoring the segment's ends.
pub fn segment_distance(p: V2, a: V2, b: V2) -> f32 {
    segment_coords(p, a, b).1
}

/// Lattice hash to [0, 1).
fn hash(ix: i32, iy: i32, seed: u32) -> f32 {
    let mut h = (ix as u32).wrapping_mul(0x8DA6_B343)
        ^ (iy as u32).wrapping_mul(0xD816_3841)
        ^ seed.wrapping_mul(0xCB1A_B31F);
    h ^= h >> 13;
    h = h.wrapping_mul(0x5BD1_E995);
    h ^= h >> 15;
    (h & 0x00FF_FFFF) as f32 / 16_777_216.0
}

/// Smooth value noise in [0, 1] with features about `1/frequency` apart.
pub fn value_noise(p: V2, frequency: f32, seed: u32) -> f32 {
    let (x, y) = (p.x * frequency, p.y * frequency);
    let (ix, iy) = (x.floor() as i32, y.floor() as i32);
    let (fx, fy) = (x - ix as f32, y - iy as f32);
    let (sx, sy) = (fx * fx * (3.0 - 2.0 * fx), fy * fy * (3.0 - 2.0 * fy));
    let a = hash(ix, iy, seed);
    let b = hash(ix + 1, iy, seed);
    let c = hash(ix, iy + 1, seed);
    let d = hash(ix + 1, iy + 1, seed);
    let top = a + (b - a) * sx;
    let bottom = c + (d - c) * sx;
    top + (bottom - top) * sy
}

/// Two octaves of value noise, centred on 0, roughly in [−0.5, 0.5].
pub fn texture(p: V2, frequency: f32, seed: u32) -> f32 {
    0.65 * value_noise(p, frequency, seed) + 0.35 * value_noise(p, frequency * 2.3, seed ^ 0x9E37)
        - 0.5
}
