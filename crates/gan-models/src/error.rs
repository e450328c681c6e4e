//! The error type of gan-models.

use std::path::PathBuf;

#[derive(Debug, thiserror::Error)]
pub enum ModelError {
    #[error("invalid model configuration: {0}")]
    Config(String),
    #[error("invalid detector setting: {0}")]
    Settings(String),
    #[error("{0}")]
    Device(String),
    #[error("{path}: {message}")]
    Checkpoint { path: PathBuf, message: String },
    #[error(transparent)]
    Tensor(#[from] candle::Error),
    #[error(transparent)]
    Data(#[from] gan_data::DataError),
}

pub type Result<T> = std::result::Result<T, ModelError>;
