//! The error type of gan-pipeline: each layer's error kept whole (as a source, so that callers
//! can still tell bad input from a fault), plus the pipeline's own.

use std::path::{Path, PathBuf};

#[derive(Debug, thiserror::Error)]
pub enum PipelineError {
    #[error("{0}")]
    Data(#[from] gan_data::DataError),
    #[error("{0}")]
    Model(#[from] gan_models::ModelError),
    #[error("{0}")]
    Train(#[from] gan_train::TrainError),
    #[error("{0}")]
    Metrics(#[from] gan_metrics::MetricsError),
    #[error("{0}")]
    Tensor(#[from] candle::Error),
    #[error("{path}: {source}")]
    Io {
        path: PathBuf,
        source: std::io::Error,
    },
    /// A file the pipeline reads that is not what it should be.
    #[error("{path}: {message}")]
    Input { path: PathBuf, message: String },
    #[error("cannot encode an image: {0}")]
    Image(#[from] image::ImageError),
    #[error("cannot write JSON: {0}")]
    Json(#[from] serde_json::Error),
}

pub type Result<T> = std::result::Result<T, PipelineError>;

/// `map_err(io(path))`: an I/O error naming the file it concerns.
pub(crate) fn io(path: &Path) -> impl FnOnce(std::io::Error) -> PipelineError + '_ {
    move |source| PipelineError::Io {
        path: path.to_path_buf(),
        source,
    }
}
