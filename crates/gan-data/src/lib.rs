//! # gan-data: radiographs in, tensors out
//!
//! - [`read_mura`] and [`read_image_folder`] turn a dataset folder into a [`SampleTable`]
//!   (one row per image: split, body part or class, patient, study, view, label);
//!   [`open_dataset`] picks between them.
//! - [`load_images`] decodes in parallel (PNG/JPEG, 8/16-bit grey or RGB, and DICOM: rescale,
//!   window, MONOCHROME1, uncompressed, RLE, JPEG, JPEG 2000) to S×S images in [−1, 1], skipping
//!   and reporting unreadable files, and caches the result on disk; [`write_dicom`] writes a CR
//!   image as DICOM.
//! - [`hold_out_calibration`] sets aside normal validation studies; [`Batcher`] yields `(B,1,S,S)`
//!   tensors, shuffled and augmented ([`Augmentation`]) per epoch from a seed.
//! - [`read_manifest_flag`] reads a flag column of a dataset's `manifest.csv` (FracAtlas's
//!   `hardware`).
//! - [`synth`] writes synthetic radiographs in the MURA layout: the data of demos and tests.

mod augment;
mod batcher;
mod dataset;
mod dicom;
mod error;
mod folder;
mod loader;
mod manifest;
mod mura;
mod preprocess;
mod sample;
mod split;
pub mod synth;

pub use augment::Augmentation;
pub use batcher::{Batch, Batcher, mix};
pub use dataset::{DatasetFormat, DatasetSpec, open_dataset};
pub use dicom::{has_dicom_preamble, write_dicom};
pub use error::{DataError, Result};
pub use folder::read_image_folder;
pub use loader::{
    ImageSet, LoadOptions, LoadReport, link_or_copy_atomically, load_images,
    remove_stale_temporaries, write_atomically,
};
pub use manifest::read_manifest_flag;
pub use mura::{
    BODY_PARTS, Listing, MURA_DIR, MURA_SPLITS, find_mura_dir, is_image_file, looks_like_mura,
    read_mura,
};
pub use preprocess::{
    Fit, GreyImage, Preprocess, decode_grey, decode_grey_bytes, load_model_input, to_model_input,
};
pub use sample::{Label, Sample, SampleTable, Skipped};
pub use split::hold_out_calibration;
