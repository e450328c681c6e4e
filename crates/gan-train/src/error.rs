//! The error type of gan-train.

use std::path::PathBuf;

#[derive(Debug, thiserror::Error)]
pub enum TrainError {
    #[error(transparent)]
    Data(#[from] gan_data::DataError),
    #[error(transparent)]
    Model(#[from] gan_models::ModelError),
    #[error(transparent)]
    Tensor(#[from] candle::Error),
    #[error("{path}: {source}")]
    Io {
        path: PathBuf,
        #[source]
        source: std::io::Error,
    },
    #[error("invalid training setting: {0}")]
    Config(String),
    #[error(
        "{player} loss became {value} at step {step} (epoch {epoch}); stopped, the last good checkpoint is kept"
    )]
    NonFinite {
        player: String,
        value: f32,
        step: u64,
        epoch: u64,
    },
    #[error("{path}: {message}")]
    Run { path: PathBuf, message: String },
}

impl TrainError {
    pub(crate) fn io(path: impl Into<PathBuf>, source: std::io::Error) -> Self {
        TrainError::Io {
            path: path.into(),
            source,
        }
    }
}

pub type Result<T> = std::result::Result<T, TrainError>;
