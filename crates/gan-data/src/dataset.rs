//! Opening a dataset whatever its layout: MURA-v1.1 or an image folder, chosen or detected.

use std::path::Path;

use serde::{Deserialize, Serialize};

use crate::error::{DataError, Result};
use crate::folder::read_image_folder;
use crate::mura::{Listing, looks_like_mura, read_mura};
use crate::sample::SampleTable;

/// The on-disk layout of a dataset.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Default, Serialize, Deserialize)]
#[cfg_attr(feature = "clap", derive(clap::ValueEnum))]
#[serde(rename_all = "lowercase")]
pub enum DatasetFormat {
    /// MURA when the folder looks like MURA-v1.1, else an image folder.
    #[default]
    Auto,
    /// MURA-v1.1.
    Mura,
    /// `ROOT/<split>/<class>/*`.
    Folder,
}

/// Where a dataset is and how to read it.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
pub struct DatasetSpec {
    pub format: DatasetFormat,
    /// Class folder holding the normal images (image folders only).
    pub normal_class: Option<String>,
}

impl DatasetFormat {
    /// Resolves `Auto` by looking at the folder.
    pub fn resolve(self, root: &Path) -> DatasetFormat {
        match self {
            DatasetFormat::Auto if looks_like_mura(root) => DatasetFormat::Mura,
            DatasetFormat::Auto => DatasetFormat::Folder,
            other => other,
        }
    }
}

/// Reads the sample table of the dataset at `root`.
pub fn open_dataset(root: &Path, spec: &DatasetSpec) -> Result<SampleTable> {
    let table = match spec.format.resolve(root) {
        DatasetFormat::Mura => read_mura(root, Listing::Auto)?,
        _ => {
            let normal = spec.normal_class.as_deref().ok_or_else(|| {
                DataError::layout(
                    root,
                    "an image folder needs the name of its normal class (--normal-class)",
                )
            })?;
            read_image_folder(root, normal)?
        }
    };
    // entries left out before decoding (missing or malformed CSV rows, non-image files, links
    // that are not files) are counted here; undecodable images are counted by the loader
    if let Some(first) = table.skipped.first() {
        tracing::warn!(
            "{}: left out {} listed entries; first: {}: {}",
            root.display(),
            table.skipped.len(),
            first.path.display(),
            first.reason
        );
    }
    Ok(table)
}
