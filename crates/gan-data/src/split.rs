//! The normal validation ("calibration") split: a deterministic fraction of normal training
//! studies held out for model selection and thresholds. Whole studies move together, so no
//! patient's study is on both sides.

use sha2::{Digest, Sha256};

use crate::sample::Sample;

/// Indices of `samples` for training and for calibration: a study goes to calibration when a hash
/// of (seed, study key) falls below `fraction`. The choice depends on the study alone, not on the
/// order or the number of samples.
pub fn hold_out_calibration(
    samples: &[Sample],
    fraction: f64,
    seed: u64,
) -> (Vec<usize>, Vec<usize>) {
    let mut train = Vec::new();
    let mut calib = Vec::new();
    for (i, s) in samples.iter().enumerate() {
        let mut hasher = Sha256::new();
        hasher.update(seed.to_le_bytes());
        hasher.update(s.study_key().as_bytes());
        let digest = hasher.finalize();
        let mut head = [0u8; 8];
        head.copy_from_slice(&digest[..8]);
        let unit = u64::from_le_bytes(head) as f64 / u64::MAX as f64;
        if unit < fraction {
            calib.push(i);
        } else {
            train.push(i);
        }
    }
    (train, calib)
}
