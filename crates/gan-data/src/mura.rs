//! MURA-v1.1 (Stanford musculoskeletal radiographs): reads the official CSVs, or walks the tree.
//!
//! Layout: `MURA-v1.1/{train,valid}/XR_<PART>/patientNNNNN/studyN_{positive,negative}/imageN.png`
//! plus `{train,valid}_image_paths.csv` (one path a line, starting with `MURA-v1.1/`) and
//! `{train,valid}_labeled_studies.csv` (`study_dir/,label`). The label belongs to the study and
//! every image of the study inherits it. When a labelled-studies CSV contradicts the study folder's
//! suffix, the CSV wins (it is the published ground truth) and a warning counts the disagreements.

use std::collections::HashMap;
use std::fs;
use std::path::{Path, PathBuf};

use serde::{Deserialize, Serialize};

use crate::dicom::{file_has_dicom_preamble, has_dicom_extension};
use crate::error::{DataError, Result};
use crate::sample::{Label, Sample, SampleTable, Skipped, relative};

/// The two splits of MURA.
pub const MURA_SPLITS: [&str; 2] = ["train", "valid"];

/// The seven body parts of MURA, as they appear after `XR_`.
pub const BODY_PARTS: [&str; 7] = [
    "ELBOW", "FINGER", "FOREARM", "HAND", "HUMERUS", "SHOULDER", "WRIST",
];

/// Name of the dataset folder inside the archive.
pub const MURA_DIR: &str = "MURA-v1.1";

/// Where the image list of a MURA split comes from.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Default, Serialize, Deserialize)]
#[serde(rename_all = "lowercase")]
pub enum Listing {
    /// The official CSVs where present, else the folder tree.
    #[default]
    Auto,
    /// The official CSVs only (an error when missing).
    Csv,
    /// The folder tree only.
    Walk,
}

/// Finds the MURA-v1.1 folder: `root` itself or `root/MURA-v1.1`.
pub fn find_mura_dir(root: &Path) -> Result<PathBuf> {
    if !root.is_dir() {
        return Err(DataError::layout(root, "no such folder"));
    }
    let nested = root.join(MURA_DIR);
    if nested.is_dir() {
        return Ok(nested);
    }
    if looks_like_mura(root) {
        return Ok(root.to_path_buf());
    }
    Err(DataError::layout(
        root,
        "not a MURA-v1.1 folder: expected MURA-v1.1/, or train/ and valid/ holding XR_<PART> folders",
    ))
}

/// True when `dir` holds MURA CSVs or a split folder with `XR_*` folders.
pub fn looks_like_mura(dir: &Path) -> bool {
    if dir.join(MURA_DIR).is_dir() {
        return true;
    }
    MURA_SPLITS.iter().any(|split| {
        dir.join(format!("{split}_image_paths.csv")).is_file()
            || fs::read_dir(dir.join(split))
                .map(|entries| {
                    entries.flatten().any(|e| {
                        e.file_name().to_string_lossy().starts_with("XR_") && e.path().is_dir()
                    })
                })
                .unwrap_or(false)
    })
}

/// Reads every image of a MURA-v1.1 dataset at `root` (the folder holding `MURA-v1.1/`, or that
/// folder itself). Entries whose file is missing or whose path does not fit the layout are skipped
/// and listed in [`SampleTable::skipped`].
pub fn read_mura(root: &Path, listing: Listing) -> Result<SampleTable> {
    let dir = find_mura_dir(root)?;
    let mut table = SampleTable {
        root: dir.clone(),
        ..Default::default()
    };
    let mut any_split = false;
    for split in MURA_SPLITS {
        let csv = dir.join(format!("{split}_image_paths.csv"));
        let use_csv = match listing {
            Listing::Csv => true,
            Listing::Walk => false,
            Listing::Auto => csv.is_file(),
        };
        let labels = read_labeled_studies(&dir.join(format!("{split}_labeled_studies.csv")))?;
        let before = table.samples.len() + table.skipped.len();
        if use_csv {
            read_split_csv(&dir, split, &csv, &labels, &mut table)?;
        } else if dir.join(split).is_dir() {
            walk_split(&dir, split, &labels, &mut table)?;
        }
        any_split |= table.samples.len() + table.skipped.len() > before;
    }
    if !any_split {
        return Err(DataError::layout(
            &dir,
            "no images found: expected train/ or valid/ with XR_<PART>/patient*/study*/image*.png",
        ));
    }
    table.samples.sort_by(|a, b| a.rel_path.cmp(&b.rel_path));
    let disagreements = table
        .samples
        .iter()
        .filter(|s| {
            s.study
                .as_deref()
                .and_then(label_from_study_name)
                .is_some_and(|l| l != s.label)
        })
        .count();
    if disagreements > 0 {
        tracing::warn!(
            "{}: {disagreements} images carry a CSV label that contradicts their study folder name; the CSV label is used",
            dir.display()
        );
    }
    Ok(table)
}

/// `study1_positive` → abnormal, `study1_negative` → normal.
fn label_from_study_name(study: &str) -> Option<Label> {
    if study.ends_with("_positive") {
        Some(Label::Abnormal)
    } else if study.ends_with("_negative") {
        Some(Label::Normal)
    } else {
        None
    }
}

/// Study labels from `{split}_labeled_studies.csv`, keyed by the study path relative to the MURA
/// folder (`train/XR_WRIST/patient00001/study1_positive`). Empty when the file is absent.
fn read_labeled_studies(csv_path: &Path) -> Result<HashMap<String, Label>> {
    let mut labels = HashMap::new();
    if !csv_path.is_file() {
        return Ok(labels);
    }
    let mut reader = csv::ReaderBuilder::new()
        .has_headers(false)
        .flexible(true)
        .from_path(csv_path)
        .map_err(|e| csv_error(csv_path, 0, e))?;
    for (i, record) in reader.records().enumerate() {
        let line = i as u64 + 1;
        let record = record.map_err(|e| csv_error(csv_path, line, e))?;
        let (Some(study), Some(label)) = (record.get(0), record.get(1)) else {
            return Err(DataError::Csv {
                path: csv_path.to_path_buf(),
                line,
                message: "expected `study_dir/,label`".into(),
            });
        };
        let label = match label.trim() {
            "0" => Label::Normal,
            "1" => Label::Abnormal,
            other => {
                return Err(DataError::Csv {
                    path: csv_path.to_path_buf(),
                    line,
                    message: format!("label must be 0 or 1, found {other:?}"),
                });
            }
        };
        labels.insert(strip_mura_prefix(study.trim().trim_end_matches('/')), label);
    }
    Ok(labels)
}

fn csv_error(path: &Path, line: u64, e: csv::Error) -> DataError {
    DataError::Csv {
        path: path.to_path_buf(),
        line: e.position().map(|p| p.line()).unwrap_or(line),
        message: e.to_string(),
    }
}

/// Drops a leading `MURA-v1.1/` (or whatever the folder was called) so paths are relative to it.
fn strip_mura_prefix(path: &str) -> String {
    let path = path.trim_start_matches("./");
    match path.split_once('/') {
        Some((first, rest)) if !MURA_SPLITS.contains(&first) => rest.to_string(),
        _ => path.to_string(),
    }
}

fn read_split_csv(
    dir: &Path,
    split: &str,
    csv_path: &Path,
    labels: &HashMap<String, Label>,
    table: &mut SampleTable,
) -> Result<()> {
    let text = fs::read(csv_path).map_err(|e| DataError::io(csv_path, e))?;
    let text = String::from_utf8_lossy(&text);
    for (i, line) in text.lines().enumerate() {
        let line = line.trim().trim_end_matches(',');
        if line.is_empty() {
            continue;
        }
        let rel = strip_mura_prefix(line);
        let path = dir.join(&rel);
        let skip = |reason: String| Skipped {
            path: path.clone(),
            reason: format!("{}, line {}: {reason}", csv_path.display(), i + 1),
        };
        match sample_from_rel(dir, &rel, split, labels) {
            Err(reason) => table.skipped.push(skip(reason)),
            Ok(_) if !path.is_file() => table.skipped.push(skip("listed file is missing".into())),
            Ok(sample) => table.samples.push(sample),
        }
    }
    Ok(())
}

/// Builds a sample from a path relative to the MURA folder, or says why it does not fit.
fn sample_from_rel(
    dir: &Path,
    rel: &str,
    split: &str,
    labels: &HashMap<String, Label>,
) -> std::result::Result<Sample, String> {
    let parts: Vec<&str> = rel.split('/').collect();
    let [s, part, patient, study, file] = parts.as_slice() else {
        return Err(format!(
            "expected {split}/XR_<PART>/patient*/study*/image*, found {rel:?}"
        ));
    };
    if *s != split {
        return Err(format!("path is not in split {split}: {rel:?}"));
    }
    let Some(group) = part.strip_prefix("XR_") else {
        return Err(format!("body-part folder must start with XR_: {part:?}"));
    };
    let study_rel = format!("{split}/{part}/{patient}/{study}");
    let label = labels
        .get(&study_rel)
        .copied()
        .or_else(|| label_from_study_name(study))
        .ok_or_else(|| format!("no label for study {study_rel:?}"))?;
    let view = Path::new(file)
        .file_stem()
        .map(|s| s.to_string_lossy().into_owned())
        .unwrap_or_default();
    Ok(Sample {
        path: dir.join(rel),
        rel_path: rel.to_string(),
        split: split.to_string(),
        group: group.to_string(),
        patient: Some(patient.to_string()),
        study: Some(study.to_string()),
        view,
        label,
    })
}

/// Sorted entries of a folder (files and folders), skipping hidden names.
pub(crate) fn sorted_entries(dir: &Path) -> Result<Vec<PathBuf>> {
    let mut entries: Vec<PathBuf> = fs::read_dir(dir)
        .map_err(|e| DataError::io(dir, e))?
        .filter_map(|e| e.ok())
        .filter(|e| !e.file_name().to_string_lossy().starts_with('.'))
        .map(|e| e.path())
        .collect();
    entries.sort();
    Ok(entries)
}

/// An entry of a study or class folder as an image to read, or `None`: a folder is passed over,
/// anything else is added to `skipped` with its reason. A file is an image by its extension
/// (`.png`, `.jpg`, `.jpeg`, `.dcm`, `.dicom`) or, whatever its name, by a DICOM preamble (its
/// first 132 bytes are read): PACS exports are often named by UID (`1.2.840.…`) or carry no
/// extension. Walks have a fixed depth, so a symbolic link that loops cannot recurse: it, a
/// dangling link and special files are skipped and counted.
pub(crate) fn image_or_skip(entry: PathBuf, skipped: &mut Vec<Skipped>) -> Option<PathBuf> {
    let reason = if entry.is_file() {
        if is_image_file(&entry) {
            return Some(entry);
        }
        "not a .png/.jpg/.jpeg/.dcm file or DICOM"
    } else if entry.is_dir() {
        return None;
    } else {
        "not a regular file (a dangling or looping symbolic link, or a special file)"
    };
    skipped.push(Skipped {
        path: entry,
        reason: reason.into(),
    });
    None
}

/// True for a file xray-gan reads as an image: by its extension (`.png`, `.jpg`, `.jpeg`, `.dcm`,
/// `.dicom`, any case) or, whatever its name, by a DICOM preamble in its first 132 bytes.
pub fn is_image_file(path: &Path) -> bool {
    has_image_extension(path) || file_has_dicom_preamble(path)
}

/// True for `.png`, `.jpg`, `.jpeg`, `.dcm` and `.dicom`, in any case.
fn has_image_extension(path: &Path) -> bool {
    has_dicom_extension(path)
        || path
            .extension()
            .map(|e| e.to_string_lossy().to_ascii_lowercase())
            .is_some_and(|e| matches!(e.as_str(), "png" | "jpg" | "jpeg"))
}

fn walk_split(
    dir: &Path,
    split: &str,
    labels: &HashMap<String, Label>,
    table: &mut SampleTable,
) -> Result<()> {
    for part in sorted_entries(&dir.join(split))? {
        if !part.is_dir() {
            continue;
        }
        for patient in sorted_entries(&part)?.into_iter().filter(|p| p.is_dir()) {
            for study in sorted_entries(&patient)?.into_iter().filter(|p| p.is_dir()) {
                for entry in sorted_entries(&study)? {
                    let Some(file) = image_or_skip(entry, &mut table.skipped) else {
                        continue;
                    };
                    let rel = relative(dir, &file);
                    match sample_from_rel(dir, &rel, split, labels) {
                        Ok(sample) => table.samples.push(sample),
                        Err(reason) => table.skipped.push(Skipped { path: file, reason }),
                    }
                }
            }
        }
    }
    Ok(())
}
