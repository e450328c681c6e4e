//! Anatomy of each MURA body part as bones and soft tissue, in normalised coordinates: the image
//! is 1 unit high, x grows to the right, y downwards. Sizes vary per person, posture per view.

use rand::Rng;

use super::geometry::{V2, chord, segment_coords, v2};

/// A long bone: a tube with a bright cortex, a darker medulla and flared ends.
#[derive(Debug, Clone)]
pub struct LongBone {
    pub a: V2,
    pub b: V2,
    /// Shaft radius.
    pub radius: f32,
    /// How much wider the ends are than the shaft (0 = not at all).
    pub flare: f32,
    /// Medulla radius as a fraction of the outer radius.
    pub medulla: f32,
}

impl LongBone {
    /// Outer radius at position `t` along the bone (ends flare like metaphyses).
    pub fn radius_at(&self, t: f32) -> f32 {
        let t = t.clamp(0.0, 1.0);
        let bump = (-(t / 0.13).powi(2)).exp() + (-((1.0 - t) / 0.13).powi(2)).exp();
        self.radius * (1.0 + self.flare * bump)
    }

    /// Projected (cortex, medulla) thickness at `p`.
    pub fn thickness(&self, p: V2) -> (f32, f32) {
        let (t, d) = segment_coords(p, self.a, self.b);
        let r = self.radius_at(t);
        if d >= r {
            return (0.0, 0.0);
        }
        let outer = chord(r, d);
        // The cortex thins towards the ends, where bone is mostly trabecular.
        let end = (t.min(1.0 - t) / 0.15).clamp(0.0, 1.0);
        let inner_frac = self.medulla + (1.0 - end) * (0.92 - self.medulla);
        let inner = chord(r * inner_frac, d);
        (outer - inner, inner)
    }

    pub fn point_at(&self, t: f32) -> V2 {
        self.a + (self.b - self.a) * t
    }

    pub fn axis(&self) -> V2 {
        (self.b - self.a).unit()
    }

    pub fn length(&self) -> f32 {
        (self.b - self.a).len()
    }
}

/// A small round bone (carpal, humeral head, glenoid): an ellipsoid seen from above.
#[derive(Debug, Clone)]
pub struct RoundBone {
    pub centre: V2,
    pub radii: V2,
    pub angle: f32,
}

impl RoundBone {
    /// Projected (cortex, medulla) thickness at `p`.
    pub fn thickness(&self, p: V2) -> (f32, f32) {
        let q = (p - self.centre).rotate(-self.angle);
        let rho = ((q.x / self.radii.x).powi(2) + (q.y / self.radii.y).powi(2)).sqrt();
        let depth = self.radii.x.min(self.radii.y);
        let outer = chord(1.0, rho) * depth;
        let inner = chord(0.8, rho) * depth;
        (outer - inner, inner)
    }
}

/// A soft-tissue segment: a capsule of flesh around bones.
#[derive(Debug, Clone)]
pub struct Flesh {
    pub a: V2,
    pub b: V2,
    pub radius: f32,
}

impl Flesh {
    pub fn thickness(&self, p: V2) -> f32 {
        let (_, d) = segment_coords(p, self.a, self.b);
        chord(self.radius, d)
    }
}

/// Everything of one body part in one posture.
#[derive(Debug, Clone, Default)]
pub struct Limb {
    pub long_bones: Vec<LongBone>,
    pub round_bones: Vec<RoundBone>,
    /// Soft tissue; the first entry is the limb's main envelope (where a cast goes).
    pub flesh: Vec<Flesh>,
    /// Indices of long bones large enough to carry a fracture, a plate or a lesion.
    pub major: Vec<usize>,
}

/// Per-person proportions, fixed for a study.
#[derive(Debug, Clone, Copy)]
pub struct Build {
    pub bone_scale: f32,
    pub flesh_scale: f32,
    pub length_scale: f32,
}

impl Build {
    pub fn random(rng: &mut impl Rng) -> Self {
        Build {
            bone_scale: rng.random_range(0.85..1.15),
            flesh_scale: rng.random_range(0.8..1.25),
            length_scale: rng.random_range(0.92..1.08),
        }
    }
}

impl Limb {
    fn bone(&mut self, a: V2, b: V2, radius: f32, flare: f32, major: bool) {
        if major {
            self.major.push(self.long_bones.len());
        }
        self.long_bones.push(LongBone {
            a,
            b,
            radius,
            flare,
            medulla: 0.62,
        });
    }

    fn flesh(&mut self, a: V2, b: V2, radius: f32) {
        self.flesh.push(Flesh { a, b, radius });
    }

    fn round(&mut self, centre: V2, rx: f32, ry: f32, angle: f32) {
        self.round_bones.push(RoundBone {
            centre,
            radii: v2(rx, ry),
            angle,
        });
    }
}

/// Builds the bones of `part` (a MURA body part name) for a person and a view (0 = frontal,
/// 1 = lateral, 2 = oblique), centred in an image of width `aspect`.
pub fn build_limb(part: &str, build: Build, view: usize, aspect: f32) -> Limb {
    let cx = aspect / 2.0;
    let b = build.bone_scale;
    let f = build.flesh_scale;
    let l = build.length_scale;
    // Lateral and oblique views bring paired bones together.
    let spread = [1.0, 0.35, 0.65][view % 3];
    let bend = [0.0, 0.35, 0.15][view % 3];
    let mut limb = Limb::default();
    match part {
        "HUMERUS" => {
            limb.bone(v2(cx, -0.15), v2(cx + 0.02, 0.93 * l), 0.05 * b, 0.9, true);
            limb.flesh(v2(cx, -0.2), v2(cx + 0.01, 1.2), 0.19 * f);
            // distal condyles and the top of the forearm at the bottom edge
            limb.round(v2(cx + 0.02, 0.95 * l), 0.09 * b, 0.04 * b, 0.0);
        }
        "FOREARM" => {
            let gap = 0.055 * spread;
            limb.bone(
                v2(cx - gap, 0.02),
                v2(cx - gap * 1.2, 0.98),
                0.032 * b,
                0.8,
                true,
            );
            limb.bone(
                v2(cx + gap, 0.0),
                v2(cx + gap * 0.8, 0.96),
                0.027 * b,
                0.7,
                true,
            );
            limb.flesh(v2(cx, -0.2), v2(cx, 1.2), 0.15 * f);
        }
        "ELBOW" => {
            let joint = v2(cx, 0.48);
            limb.bone(
                v2(cx - 0.03, -0.2),
                joint - v2(0.0, 0.045),
                0.05 * b,
                1.0,
                true,
            );
            let dir = v2(0.0, 1.0).rotate(-bend * 1.4);
            let gap = 0.04 * spread;
            let start = joint + v2(0.0, 0.04);
            let across = dir.perp() * gap;
            limb.bone(
                start - across,
                start - across + dir * 0.7 * l,
                0.03 * b,
                0.7,
                true,
            );
            limb.bone(
                start + across,
                start + across + dir * 0.7 * l,
                0.028 * b,
                0.9,
                true,
            );
            limb.flesh(v2(cx - 0.03, -0.2), joint, 0.17 * f);
            limb.flesh(joint, joint + dir * 0.8, 0.14 * f);
        }
        "SHOULDER" => {
            let head = v2(cx - 0.03, 0.36);
            limb.round(head, 0.12 * b, 0.13 * b, 0.3);
            limb.bone(
                head + v2(0.03, 0.08),
                v2(cx + 0.08, 1.2),
                0.06 * b,
                0.3,
                true,
            );
            // glenoid and scapular body, clavicle, acromion
            limb.round(v2(cx - 0.2, 0.38), 0.05 * b, 0.12 * b, -0.2);
            limb.bone(
                v2(cx - 0.22, 0.45),
                v2(cx - 0.32, 1.1),
                0.06 * b,
                0.4,
                false,
            );
            limb.bone(
                v2(-0.1, 0.12 + bend * 0.1),
                v2(cx + 0.12, 0.16),
                0.032 * b,
                0.5,
                true,
            );
            limb.flesh(v2(cx - 0.1, 0.3), v2(cx + 0.05, 1.3), 0.3 * f);
            limb.flesh(v2(-0.3, 0.3), v2(cx - 0.1, 0.35), 0.35 * f);
        }
        "WRIST" | "HAND" => {
            let hand = part == "HAND";
            // wrist images show the distal forearm; hand images the fingers
            let (top, carpal_y) = if hand { (-0.3, 0.18) } else { (-0.1, 0.48) };
            let gap = 0.05 * spread;
            limb.bone(
                v2(cx - gap, top),
                v2(cx - gap, carpal_y - 0.06),
                0.034 * b,
                0.9,
                true,
            );
            limb.bone(
                v2(cx + gap * 1.3, top),
                v2(cx + gap * 1.2, carpal_y - 0.05),
                0.025 * b,
                0.6,
                true,
            );
            for row in 0..2 {
                for i in 0..4 {
                    let x = cx + (i as f32 - 1.5) * 0.045 * (0.6 + 0.4 * spread);
                    let y = carpal_y + row as f32 * 0.05;
                    limb.round(v2(x, y), 0.022 * b, 0.019 * b, i as f32 * 0.4);
                }
            }
            let base = carpal_y + 0.09;
            let meta_len = 0.22 * l;
            for i in 0..5 {
                let fan = (i as f32 - 2.0) * 0.12 * (0.5 + 0.5 * spread);
                let dir = v2(0.0, 1.0).rotate(-fan);
                let start = v2(cx + (i as f32 - 2.0) * 0.035, base);
                let (len, r) = if i == 0 { (0.7, 0.018) } else { (1.0, 0.016) };
                let end = start + dir * meta_len * len;
                limb.bone(start, end, r * b, 0.5, i == 2);
                if hand {
                    let mut p = end + dir * 0.015;
                    for (k, seg) in [0.13f32, 0.08, 0.055].iter().enumerate() {
                        if i == 0 && k == 2 {
                            break;
                        }
                        let q = p + dir * (*seg * l);
                        limb.bone(p, q, (0.013 - 0.002 * k as f32) * b, 0.5, false);
                        p = q + dir * 0.014;
                    }
                    limb.flesh(start, p, 0.03 * f);
                }
            }
            // the limb's main envelope first: a cast goes around it
            limb.flesh.insert(
                0,
                Flesh {
                    a: v2(cx, top),
                    b: v2(cx, base + meta_len * 0.8),
                    radius: 0.14 * f,
                },
            );
        }
        // FINGER and anything unknown: one finger with its metacarpal head
        _ => {
            let dir = v2(0.0, 1.0).rotate(-bend * 0.3);
            let mut p = v2(cx, -0.2);
            let segments = [
                (0.3f32, 0.05f32, true),
                (0.34, 0.042, true),
                (0.2, 0.037, true),
                (0.14, 0.032, false),
            ];
            for (len, r, major) in segments {
                let q = p + dir * len * l;
                limb.bone(p, q, r * b, 0.45, major);
                p = q + dir * 0.035;
            }
            limb.flesh(v2(cx, -0.3), p - dir * 0.04, 0.1 * f);
        }
    }
    limb
}
