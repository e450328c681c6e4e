//! The shapes of the networks: one serde struct that every detector's networks are built from,
//! with the seed experiment's settings as its `Default`.

use serde::{Deserialize, Serialize};

use crate::error::{ModelError, Result};

/// Shapes and options of the networks (SPEC §2).
#[derive(Debug, Clone, Copy, PartialEq, Serialize, Deserialize)]
pub struct ModelConfig {
    /// Image side S: a power of two from 32 to 256.
    pub image_size: usize,
    pub channels: usize,
    /// Latent size z.
    pub latent: usize,
    /// Base width w.
    pub width: usize,
    pub leaky_slope: f64,
    pub spectral_norm: bool,
    pub self_attention: bool,
}

impl Default for ModelConfig {
    fn default() -> Self {
        Self::seed_64()
    }
}

impl ModelConfig {
    /// The seed experiment at 64×64, one channel.
    pub fn seed_64() -> Self {
        ModelConfig {
            image_size: 64,
            channels: 1,
            latent: 128,
            width: 64,
            leaky_slope: 0.1,
            spectral_norm: true,
            self_attention: true,
        }
    }

    /// A narrow model that trains in minutes on a laptop CPU.
    pub fn cpu_demo() -> Self {
        ModelConfig {
            width: 16,
            ..Self::seed_64()
        }
    }

    pub fn validate(&self) -> Result<()> {
        if !(32..=256).contains(&self.image_size) || !self.image_size.is_power_of_two() {
            return Err(ModelError::Config(format!(
                "image size must be a power of two from 32 to 256, got {}",
                self.image_size
            )));
        }
        if self.width < 8 || !self.width.is_multiple_of(8) {
            return Err(ModelError::Config(format!(
                "width must be a multiple of 8, at least 8, got {}",
                self.width
            )));
        }
        if self.latent == 0 || self.channels == 0 {
            return Err(ModelError::Config(
                "latent size and channels must be positive".into(),
            ));
        }
        Ok(())
    }

    /// Number of stride-2 stages between 4×4 and S×S.
    pub fn stages(&self) -> usize {
        self.image_size.trailing_zeros() as usize - 2
    }

    /// Channels of the generator's stages from 4×4 upwards: 8w, 4w, 2w, w, then w again for
    /// larger images. The trunk uses the same list reversed.
    pub fn stage_channels(&self) -> Vec<usize> {
        (0..self.stages())
            .map(|i| ((8 * self.width) >> i).max(self.width))
            .collect()
    }
}
