//! The error type of gan-data: every variant names the file or folder it is about.

use std::path::PathBuf;

/// Everything that can go wrong while reading, decoding, caching or writing radiographs.
#[derive(Debug, thiserror::Error)]
pub enum DataError {
    #[error("{path}: {source}")]
    Io {
        path: PathBuf,
        #[source]
        source: std::io::Error,
    },
    #[error("{path}: {message}")]
    Layout { path: PathBuf, message: String },
    #[error("{path}, line {line}: {message}")]
    Csv {
        path: PathBuf,
        line: u64,
        message: String,
    },
    #[error("{path}: cannot decode image: {message}")]
    Decode { path: PathBuf, message: String },
    #[error("{path}: image is {width}x{height} pixels, above the limit of {limit} pixels")]
    TooLarge {
        path: PathBuf,
        width: u32,
        height: u32,
        limit: u64,
    },
    #[error("{0} of {1} images could not be loaded (strict mode); first: {2}")]
    Strict(usize, usize, String),
    #[error("invalid setting: {0}")]
    Config(String),
    #[error(transparent)]
    Tensor(#[from] candle::Error),
}

impl DataError {
    pub(crate) fn io(path: impl Into<PathBuf>, source: std::io::Error) -> Self {
        DataError::Io {
            path: path.into(),
            source,
        }
    }

    pub(crate) fn layout(path: impl Into<PathBuf>, message: impl Into<String>) -> Self {
        DataError::Layout {
            path: path.into(),
            message: message.into(),
        }
    }
}

/// Result alias of gan-data.
pub type Result<T> = std::result::Result<T, DataError>;
