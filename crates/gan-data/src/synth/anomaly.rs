//! The four abnormalities of synthetic studies, defined in limb coordinates so that every view of
//! a study shows the same lesion. Sizes are given in pixels of a 256-pixel-high image and scale
//! with the image: a fracture line is 1–3 px wide, hardware covers 1–6 % of the image, a lytic
//! lesion is 2–5 % of the image height across (20–50 % of a shaft's width: read literally,
//! "2–5 % of a bone's width" would be under one pixel, invisible at any size we train on).

use std::fmt;
use std::str::FromStr;

use rand::Rng;
use serde::{Deserialize, Serialize};

use super::anatomy::Limb;

/// One pixel of a 256-pixel-high image, in normalised units (the image is 1 unit high).
pub const PX256: f32 = 1.0 / 256.0;

/// What is wrong in an abnormal synthetic study.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash, PartialOrd, Ord, Serialize, Deserialize)]
#[serde(rename_all = "lowercase")]
pub enum AnomalyKind {
    Fracture,
    Hardware,
    Lesion,
    Cast,
}

impl AnomalyKind {
    pub const ALL: [AnomalyKind; 4] = [
        AnomalyKind::Fracture,
        AnomalyKind::Hardware,
        AnomalyKind::Lesion,
        AnomalyKind::Cast,
    ];

    pub fn name(self) -> &'static str {
        match self {
            AnomalyKind::Fracture => "fracture",
            AnomalyKind::Hardware => "hardware",
            AnomalyKind::Lesion => "lesion",
            AnomalyKind::Cast => "cast",
        }
    }
}

impl fmt::Display for AnomalyKind {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str(self.name())
    }
}

impl FromStr for AnomalyKind {
    type Err = String;
    fn from_str(s: &str) -> Result<Self, String> {
        AnomalyKind::ALL
            .into_iter()
            .find(|k| k.name() == s)
            .ok_or_else(|| format!("unknown anomaly kind {s:?}"))
    }
}

/// An abnormality with its drawn parameters.
#[derive(Debug, Clone, PartialEq)]
pub enum Anomaly {
    /// A thin dark line across a bone; the distal fragment is shifted.
    Fracture {
        bone: usize,
        t: f32,
        /// Angle of the line away from perpendicular to the bone.
        obliquity: f32,
        width: f32,
        /// Fragment shift (lateral, axial) in the bone's frame.
        shift: (f32, f32),
    },
    /// A metal plate along a bone with screws across it.
    Hardware {
        bone: usize,
        t: f32,
        length: f32,
        width: f32,
        screws: usize,
        screw_width: f32,
        /// Lateral offset of the plate from the bone's axis.
        side: f32,
    },
    /// A dark round focus inside a bone.
    Lesion {
        bone: usize,
        t: f32,
        /// Offset from the axis as a fraction of the bone's radius.
        lateral: f32,
        radius: f32,
    },
    /// A plaster or fibreglass band around the limb.
    Cast {
        t0: f32,
        t1: f32,
        thickness: f32,
        weave: f32,
    },
}

impl Anomaly {
    pub fn kind(&self) -> AnomalyKind {
        match self {
            Anomaly::Fracture { .. } => AnomalyKind::Fracture,
            Anomaly::Hardware { .. } => AnomalyKind::Hardware,
            Anomaly::Lesion { .. } => AnomalyKind::Lesion,
            Anomaly::Cast { .. } => AnomalyKind::Cast,
        }
    }

    /// Draws the parameters of an abnormality of `kind` for `limb` in an image of width `aspect`.
    pub fn random(kind: AnomalyKind, limb: &Limb, aspect: f32, rng: &mut impl Rng) -> Anomaly {
        let (bone, t) = visible_site(limb, rng);
        match kind {
            AnomalyKind::Fracture => Anomaly::Fracture {
                bone,
                t,
                obliquity: rng.random_range(-0.6..0.6),
                width: rng.random_range(1.0..3.0) * PX256,
                shift: (
                    rng.random_range(1.0..4.0) * PX256 * if rng.random() { 1.0 } else { -1.0 },
                    rng.random_range(0.0..1.5) * PX256,
                ),
            },
            AnomalyKind::Hardware => {
                // Plate area as a fraction of the image, screws add a little on top.
                let area = rng.random_range(0.012..0.035) * aspect;
                let length: f32 = rng.random_range(0.25..0.5);
                let width = (area / length).clamp(6.0 * PX256, 24.0 * PX256);
                Anomaly::Hardware {
                    bone,
                    t,
                    length,
                    width,
                    screws: rng.random_range(3..7),
                    screw_width: rng.random_range(2.5..4.0) * PX256,
                    side: rng.random_range(-0.5..0.5) * limb.long_bones[bone].radius,
                }
            }
            AnomalyKind::Lesion => Anomaly::Lesion {
                bone,
                t,
                lateral: rng.random_range(-0.4..0.4),
                radius: rng.random_range(0.02..0.05) / 2.0,
            },
            AnomalyKind::Cast => {
                let t0 = rng.random_range(0.05..0.35);
                Anomaly::Cast {
                    t0,
                    t1: t0 + rng.random_range(0.4..0.6),
                    thickness: rng.random_range(0.018..0.035),
                    weave: rng.random_range(0.15..0.3),
                }
            }
        }
    }
}

/// A major bone and a position along it that lies inside the image (y in 0.18..0.82), well
/// away from its ends, drawn uniformly among all such positions.
fn visible_site(limb: &Limb, rng: &mut impl Rng) -> (usize, f32) {
    let sites: Vec<(usize, f32)> = limb
        .major
        .iter()
        .flat_map(|&bone| (0..=20).map(move |i| (bone, 0.2 + 0.6 * i as f32 / 20.0)))
        .filter(|&(bone, t)| (0.18..0.82).contains(&limb.long_bones[bone].point_at(t).y))
        .collect();
    if sites.is_empty() {
        return (limb.major.first().copied().unwrap_or(0), 0.5);
    }
    sites[rng.random_range(0..sites.len())]
}
