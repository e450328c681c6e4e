//! `GanModel`: every detector behind one interface (build, players, reconstruct, score). A new
//! kind is a bundle module, a [`ModelKind`] variant and one arm per method here; the training
//! crate adds its step.

use candle::{Device, Tensor};

use crate::alpha_gan::AlphaGan;
use crate::bigan::BiGan;
use crate::config::{ModelConfig, ModelKind};
use crate::error::Result;
use crate::f_anogan::FAnogan;
use crate::ganomaly::Ganomaly;
use crate::networks::{Encoder, Generator};
use crate::player::Player;
use crate::score::{ScoreBatch, Statistic};

#[derive(Debug, Clone)]
#[allow(clippy::large_enum_variant)] // one model per run: boxing would only add indirection
pub enum GanModel {
    AlphaGan(AlphaGan),
    BiGan(BiGan),
    Ganomaly(Ganomaly),
    FAnogan(FAnogan),
}

impl GanModel {
    /// Builds a freshly initialised model; the same seed gives the same weights.
    pub fn new(kind: ModelKind, config: &ModelConfig, device: &Device, seed: u64) -> Result<Self> {
        config.validate()?;
        Ok(match kind {
            ModelKind::AlphaGan => GanModel::AlphaGan(AlphaGan::new(config, device, seed)?),
            ModelKind::Bigan => GanModel::BiGan(BiGan::new(config, device, seed)?),
            ModelKind::Ganomaly => GanModel::Ganomaly(Ganomaly::new(config, device, seed)?),
            ModelKind::FAnogan => GanModel::FAnogan(FAnogan::new(config, device, seed)?),
        })
    }

    pub fn kind(&self) -> ModelKind {
        match self {
            GanModel::AlphaGan(_) => ModelKind::AlphaGan,
            GanModel::BiGan(_) => ModelKind::Bigan,
            GanModel::Ganomaly(_) => ModelKind::Ganomaly,
            GanModel::FAnogan(_) => ModelKind::FAnogan,
        }
    }

    pub fn config(&self) -> &ModelConfig {
        match self {
            GanModel::AlphaGan(m) => &m.config,
            GanModel::BiGan(m) => &m.config,
            GanModel::Ganomaly(m) => &m.config,
            GanModel::FAnogan(m) => &m.config,
        }
    }

    pub fn players(&self) -> &[Player] {
        match self {
            GanModel::AlphaGan(m) => &m.players,
            GanModel::BiGan(m) => &m.players,
            GanModel::Ganomaly(m) => &m.players,
            GanModel::FAnogan(m) => &m.players,
        }
    }

    /// The player called `name`, if this model has one.
    pub fn player(&self, name: &str) -> Option<&Player> {
        self.players().iter().find(|p| p.name == name)
    }

    /// x̂ = G(E(x)) with E's mean code (the code itself for the deterministic encoders).
    pub fn reconstruct(&self, x: &Tensor, train: bool) -> Result<Tensor> {
        let code = self.encoder().forward_t(x, train)?.mean;
        Ok(self.generator().forward_t(&code, train)?)
    }

    /// The network that maps an image to its code (GANomaly's first encoder).
    pub fn encoder(&self) -> &Encoder {
        match self {
            GanModel::AlphaGan(m) => &m.encoder,
            GanModel::BiGan(m) => &m.encoder,
            GanModel::Ganomaly(m) => &m.encoder,
            GanModel::FAnogan(m) => &m.encoder,
        }
    }

    /// Every statistic for a batch `(B, C, S, S)`, in eval mode: the same input always gives the
    /// same numbers.
    pub fn score(&self, x: &Tensor) -> Result<ScoreBatch> {
        Ok(match self {
            GanModel::AlphaGan(m) => m.score(x)?,
            GanModel::BiGan(m) => m.score(x)?,
            GanModel::Ganomaly(m) => m.score(x)?,
            GanModel::FAnogan(m) => m.score(x)?,
        })
    }

    /// The statistics [`GanModel::score`] computes, in its order.
    pub fn statistics(&self) -> &'static [Statistic] {
        match self {
            GanModel::AlphaGan(_) => &AlphaGan::STATISTICS,
            GanModel::BiGan(_) => &BiGan::STATISTICS,
            GanModel::Ganomaly(_) => &Ganomaly::STATISTICS,
            GanModel::FAnogan(_) => &FAnogan::STATISTICS,
        }
    }

    /// The network that maps a latent code to an image (GANomaly's decoder).
    pub fn generator(&self) -> &Generator {
        match self {
            GanModel::AlphaGan(m) => &m.generator,
            GanModel::BiGan(m) => &m.generator,
            GanModel::Ganomaly(m) => &m.generator,
            GanModel::FAnogan(m) => &m.generator,
        }
    }
}
