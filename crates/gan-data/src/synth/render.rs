//! Turns a limb (and an abnormality) into a radiograph: X-ray attenuation through flesh, cortex and
//! medulla, then exposure, collimation, an L/R marker and detector noise.

use image::{GrayImage, Luma};
use rand::Rng;
use rand_distr::{Distribution, Normal};

use super::anatomy::Limb;
use super::anomaly::{Anomaly, PX256};
use super::geometry::{V2, chord, segment_coords, segment_distance, texture, v2};

/// Attenuation per unit of projected thickness.
const MU_FLESH: f32 = 1.8;
const MU_CORTEX: f32 = 16.0;
const MU_MEDULLA: f32 = 5.0;
const MU_CAST: f32 = 6.0;

/// How one image was taken: posture and exposure, drawn per image.
#[derive(Debug, Clone)]
pub struct Acquisition {
    pub rotation: f32,
    pub shift: V2,
    pub scale: f32,
    pub gain: f32,
    pub gamma: f32,
    pub noise: f32,
    /// Collimated margins (left, top, right, bottom) as fractions; zero for none.
    pub collimation: [f32; 4],
    pub collimation_level: f32,
    /// `Some(true)` for an "L" marker, `Some(false)` for "R".
    pub marker_left: Option<bool>,
    pub marker_corner: usize,
    pub texture_seed: u32,
}

impl Acquisition {
    pub fn random(rng: &mut impl Rng) -> Self {
        let collimated = rng.random_bool(0.7);
        let mut margin = || {
            if collimated {
                rng.random_range(0.0..0.1)
            } else {
                0.0
            }
        };
        let collimation = [margin(), margin(), margin(), margin()];
        Acquisition {
            rotation: rng.random_range(-0.2..0.2),
            shift: v2(rng.random_range(-0.04..0.04), rng.random_range(-0.03..0.03)),
            scale: rng.random_range(0.92..1.08),
            gain: rng.random_range(0.85..1.2),
            gamma: rng.random_range(0.8..1.25),
            noise: rng.random_range(0.008..0.03),
            collimation,
            collimation_level: rng.random_range(0.7..0.95),
            marker_left: if rng.random_bool(0.85) {
                Some(rng.random())
            } else {
                None
            },
            marker_corner: rng.random_range(0..4),
            texture_seed: rng.random(),
        }
    }
}

/// A rendered image and how many of its pixels the abnormality touches.
pub struct Rendered {
    pub image: GrayImage,
    pub anomaly_pixels: usize,
}

/// Renders `limb` as a `width`×`height` 8-bit radiograph.
pub fn render(
    limb: &Limb,
    anomaly: Option<&Anomaly>,
    acq: &Acquisition,
    width: u32,
    height: u32,
    rng: &mut impl Rng,
) -> Rendered {
    let h = height as f32;
    let aspect = width as f32 / h;
    let centre = v2(aspect / 2.0, 0.5);
    let noise = Normal::new(0.0, acq.noise).unwrap_or_else(|_| Normal::new(0.0, 0.01).unwrap());
    let mut image = GrayImage::new(width, height);
    let mut anomaly_pixels = 0;
    let [cl, ct, cr, cb] = acq.collimation;
    for py in 0..height {
        for px in 0..width {
            let p = v2((px as f32 + 0.5) / h, (py as f32 + 0.5) / h);
            // image point → limb point: undo shift, scale and rotation about the centre
            let q = ((p - centre - acq.shift) * (1.0 / acq.scale)).rotate(-acq.rotation) + centre;
            let (attenuation, metal, touched) = attenuation_at(limb, anomaly, q, acq.texture_seed);
            anomaly_pixels += touched as usize;
            let mut value = 1.0 - (-attenuation * acq.gain).exp();
            value = value.clamp(0.0, 1.0).powf(acq.gamma) * 0.92 + 0.03;
            if metal {
                value = 0.97 + 0.02 * texture(q, 400.0, acq.texture_seed);
            }
            let (fx, fy) = (p.x / aspect, p.y);
            if fx < cl || fy < ct || fx > 1.0 - cr || fy > 1.0 - cb {
                value = acq.collimation_level + 0.03 * texture(p, 6.0, acq.texture_seed ^ 7);
            }
            if let Some(left) = acq.marker_left
                && on_marker(fx, fy, aspect, left, acq.marker_corner)
            {
                value = 0.98;
            }
            value += noise.sample(rng) * (0.5 + value);
            image.put_pixel(
                px,
                py,
                Luma([(value.clamp(0.0, 1.0) * 255.0).round() as u8]),
            );
        }
    }
    Rendered {
        image,
        anomaly_pixels,
    }
}

/// Total attenuation at limb point `q`, whether metal is there, and whether the abnormality
/// changed anything at `q`.
fn attenuation_at(limb: &Limb, anomaly: Option<&Anomaly>, q: V2, seed: u32) -> (f32, bool, bool) {
    let flesh = limb
        .flesh
        .iter()
        .map(|f| f.thickness(q))
        .fold(0.0f32, f32::max);
    let mottle = 1.0 + 0.15 * texture(q, 12.0, seed);
    let mut total = MU_FLESH * flesh * mottle;
    let trabecular = 1.0 + 0.5 * texture(q, 90.0, seed ^ 0x51);
    let mut touched = false;
    for (i, bone) in limb.long_bones.iter().enumerate() {
        let mut point = q;
        let mut factor = 1.0;
        match anomaly {
            Some(Anomaly::Fracture {
                bone: b,
                t,
                obliquity,
                width,
                shift,
            }) if *b == i => {
                let axis = bone.axis();
                let at = bone.point_at(*t);
                let normal = axis.rotate(*obliquity);
                let s = (q - at).dot(normal);
                if s.abs() < width / 2.0 {
                    if bone.thickness(q).0 > 0.0 {
                        touched = true;
                    }
                    continue;
                }
                if s > 0.0 {
                    point = q - (axis.perp() * shift.0 + axis * shift.1);
                }
            }
            Some(Anomaly::Lesion {
                bone: b,
                t,
                lateral,
                radius,
            }) if *b == i => {
                let at = bone.point_at(*t) + bone.axis().perp() * (lateral * bone.radius);
                let d = (q - at).len();
                if d < *radius {
                    let edge = (1.0 - d / radius).clamp(0.0, 1.0);
                    factor = 1.0 - 0.8 * (edge * 3.0).min(1.0);
                    if bone.thickness(q).0 > 0.0 {
                        touched = true;
                    }
                }
            }
            _ => {}
        }
        let (cortex, medulla) = bone.thickness(point);
        total += factor * (MU_CORTEX * cortex + MU_MEDULLA * medulla * trabecular);
    }
    for bone in &limb.round_bones {
        let (cortex, medulla) = bone.thickness(q);
        total += MU_CORTEX * cortex + MU_MEDULLA * medulla * trabecular;
    }
    let mut metal = false;
    match anomaly {
        Some(Anomaly::Hardware {
            bone,
            t,
            length,
            width,
            screws,
            screw_width,
            side,
        }) => {
            let b = &limb.long_bones[*bone];
            let axis = b.axis();
            let centre = b.point_at(*t) + axis.perp() * *side;
            let rel = q - centre;
            let (u, v) = (rel.dot(axis), rel.dot(axis.perp()));
            let on_plate = u.abs() < length / 2.0 && (v).abs() < width / 2.0;
            let reach = b.radius_at(*t) * 1.2;
            let on_screw = (0..*screws).any(|k| {
                let uk = -length / 2.0 + length * (k as f32 + 0.5) / *screws as f32;
                (u - uk).abs() < screw_width / 2.0 && (v + side).abs() < reach
            });
            metal = on_plate || on_screw;
            touched |= metal;
        }
        Some(Anomaly::Cast {
            t0,
            t1,
            thickness,
            weave,
        }) => {
            if let Some(f) = limb.flesh.first() {
                let (t, d) = segment_coords(q, f.a, f.b);
                let fade = ((t - t0).min(t1 - t) / 0.02).clamp(0.0, 1.0);
                if fade > 0.0 {
                    let outer = f.radius + thickness;
                    let shell = chord(outer, d) - chord(f.radius + 0.004, d);
                    if shell > 0.0 {
                        let period = 7.0 * PX256;
                        let k = std::f32::consts::TAU / period;
                        let w = (k * (q.x + q.y)).sin() * (k * (q.x - q.y)).sin();
                        total += MU_CAST * shell * fade * (1.0 + weave * w);
                        touched = true;
                    }
                }
            }
        }
        _ => {}
    }
    (total, metal, touched)
}

/// True where the lead letter of the side marker is drawn.
fn on_marker(fx: f32, fy: f32, aspect: f32, left: bool, corner: usize) -> bool {
    let size = 0.07;
    let (ox, oy) = match corner {
        0 => (0.12, 0.12),
        1 => (0.88 - size / aspect, 0.12),
        2 => (0.12, 0.88 - size),
        _ => (0.88 - size / aspect, 0.88 - size),
    };
    // letter coordinates in [0, 1]²
    let p = v2((fx - ox) * aspect / size, (fy - oy) / size);
    if !(-0.2..1.2).contains(&p.x) || !(-0.2..1.2).contains(&p.y) {
        return false;
    }
    let stroke = 0.11;
    let segs: &[(V2, V2)] = if left {
        &[(v2(0.2, 0.0), v2(0.2, 1.0)), (v2(0.2, 1.0), v2(0.8, 1.0))]
    } else {
        &[
            (v2(0.2, 0.0), v2(0.2, 1.0)),
            (v2(0.2, 0.0), v2(0.65, 0.0)),
            (v2(0.65, 0.0), v2(0.8, 0.25)),
            (v2(0.8, 0.25), v2(0.65, 0.5)),
            (v2(0.65, 0.5), v2(0.2, 0.5)),
            (v2(0.45, 0.5), v2(0.85, 1.0)),
        ]
    };
    segs.iter()
        .any(|(a, b)| segment_distance(p, *a, *b) < stroke)
}
