//! `GanModel`: either detector behind one interface (build, players, reconstruct, score).

use candle::{Device, Tensor};

use crate::alpha_gan::AlphaGan;
use crate::bigan::BiGan;
use crate::config::{ModelConfig, ModelKind};
use crate::error::Result;
use crate::player::Player;
use crate::score::ScoreBatch;

#[derive(Debug, Clone)]
#[allow(clippy::large_enum_variant)] // one model per run: boxing would only add indirection
pub enum GanModel {
    AlphaGan(AlphaGan),
    BiGan(BiGan),
}

impl GanModel {
    /// Builds a freshly initialised model; the same seed gives the same weights.
    pub fn new(kind: ModelKind, config: &ModelConfig, device: &Device, seed: u64) -> Result<Self> {
        config.validate()?;
        Ok(match kind {
            ModelKind::AlphaGan => GanModel::AlphaGan(AlphaGan::new(config, device, seed)?),
            ModelKind::Bigan => GanModel::BiGan(BiGan::new(config, device, seed)?),
        })
    }

    pub fn kind(&self) -> ModelKind {
        match self {
            GanModel::AlphaGan(_) => ModelKind::AlphaGan,
            GanModel::BiGan(_) => ModelKind::Bigan,
        }
    }

    pub fn config(&self) -> &ModelConfig {
        match self {
            GanModel::AlphaGan(m) => &m.config,
            GanModel::BiGan(m) => &m.config,
        }
    }

    pub fn players(&self) -> &[Player] {
        match self {
            GanModel::AlphaGan(m) => &m.players,
            GanModel::BiGan(m) => &m.players,
        }
    }

    /// The player called `name`, if this model has one.
    pub fn player(&self, name: &str) -> Option<&Player> {
        self.players().iter().find(|p| p.name == name)
    }

    /// x̂ = G(E(x)) with E's mean code.
    pub fn reconstruct(&self, x: &Tensor, train: bool) -> Result<Tensor> {
        Ok(match self {
            GanModel::AlphaGan(m) => m.reconstruct(x, train)?,
            GanModel::BiGan(m) => m.reconstruct(x, train)?,
        })
    }

    /// Every statistic for a batch `(B, C, S, S)`, in eval mode: the same input always gives the
    /// same numbers.
    pub fn score(&self, x: &Tensor) -> Result<ScoreBatch> {
        Ok(match self {
            GanModel::AlphaGan(m) => m.score(x)?,
            GanModel::BiGan(m) => m.score(x)?,
        })
    }
}
