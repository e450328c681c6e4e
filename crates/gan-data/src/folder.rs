//! Image folders: `ROOT/<split>/<class>/*.{png,jpg,jpeg,dcm,dicom}` and DICOM files of any name, one
//! class named as the normal one.

use std::path::Path;

use crate::error::{DataError, Result};
use crate::mura::{image_or_skip, sorted_entries};
use crate::sample::{Label, Sample, SampleTable, relative};

/// Reads every image under `root/<split>/<class>/`. Images of `normal_class` are labelled normal,
/// every other class abnormal. Files that are neither named as images nor DICOM by content are
/// skipped and listed.
pub fn read_image_folder(root: &Path, normal_class: &str) -> Result<SampleTable> {
    if !root.is_dir() {
        return Err(DataError::layout(root, "no such folder"));
    }
    let mut table = SampleTable {
        root: root.to_path_buf(),
        ..Default::default()
    };
    let mut classes = std::collections::BTreeSet::new();
    for split_dir in sorted_entries(root)?.into_iter().filter(|p| p.is_dir()) {
        let split = file_name(&split_dir);
        for class_dir in sorted_entries(&split_dir)?
            .into_iter()
            .filter(|p| p.is_dir())
        {
            let class = file_name(&class_dir);
            classes.insert(class.clone());
            let label = if class == normal_class {
                Label::Normal
            } else {
                Label::Abnormal
            };
            for entry in sorted_entries(&class_dir)? {
                let Some(file) = image_or_skip(entry, &mut table.skipped) else {
                    continue;
                };
                let view = file
                    .file_stem()
                    .map(|s| s.to_string_lossy().into_owned())
                    .unwrap_or_default();
                table.samples.push(Sample {
                    rel_path: relative(root, &file),
                    path: file,
                    split: split.clone(),
                    group: class.clone(),
                    patient: None,
                    study: None,
                    view,
                    label,
                });
            }
        }
    }
    if classes.is_empty() {
        return Err(DataError::layout(
            root,
            "no class folders found: expected ROOT/<split>/<class>/*.png",
        ));
    }
    if !classes.contains(normal_class) {
        let found: Vec<_> = classes.into_iter().collect();
        return Err(DataError::layout(
            root,
            format!(
                "normal class {normal_class:?} not found; classes found: {}",
                found.join(", ")
            ),
        ));
    }
    Ok(table)
}

fn file_name(path: &Path) -> String {
    path.file_name()
        .map(|n| n.to_string_lossy().into_owned())
        .unwrap_or_default()
}
