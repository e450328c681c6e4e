//! The sample table: one row per image, whatever layout it came from.

use std::fmt;
use std::path::{Path, PathBuf};

use serde::{Deserialize, Serialize};

/// Ground truth of an image. In MURA it is the label of the image's study.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash, PartialOrd, Ord, Serialize, Deserialize)]
#[serde(rename_all = "lowercase")]
pub enum Label {
    Normal,
    Abnormal,
}

impl Label {
    /// 0 for normal, 1 for abnormal, as written in `scores.csv`.
    pub fn as_u8(self) -> u8 {
        match self {
            Label::Normal => 0,
            Label::Abnormal => 1,
        }
    }
}

impl fmt::Display for Label {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str(match self {
            Label::Normal => "normal",
            Label::Abnormal => "abnormal",
        })
    }
}

/// One radiograph and what is known about it.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
pub struct Sample {
    /// Where the file is (the dataset root joined with `rel_path`).
    pub path: PathBuf,
    /// The path relative to the dataset root, with `/` separators: stable across machines.
    pub rel_path: String,
    /// `train`, `valid`, or a folder dataset's split name.
    pub split: String,
    /// MURA body part (`SHOULDER`, ...) or the image's class folder.
    pub group: String,
    /// MURA patient folder (`patient00001`); `None` for image folders.
    pub patient: Option<String>,
    /// MURA study folder (`study1_positive`); `None` for image folders.
    pub study: Option<String>,
    /// File stem (`image1`): the view within a study.
    pub view: String,
    pub label: Label,
}

impl Sample {
    /// A key unique to the image's study (patient + study), or to the image when there is none.
    pub fn study_key(&self) -> String {
        match (&self.patient, &self.study) {
            (Some(p), Some(s)) => format!("{}/{p}/{s}", self.group),
            _ => self.rel_path.clone(),
        }
    }
}

/// A file that was left out, and why.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
pub struct Skipped {
    pub path: PathBuf,
    pub reason: String,
}

/// All images of a dataset, plus the entries that could not be used.
#[derive(Debug, Clone, Default)]
pub struct SampleTable {
    pub root: PathBuf,
    pub samples: Vec<Sample>,
    /// Entries of the listing that were skipped (missing files, malformed rows), with the reason.
    pub skipped: Vec<Skipped>,
}

impl SampleTable {
    pub fn len(&self) -> usize {
        self.samples.len()
    }

    pub fn is_empty(&self) -> bool {
        self.samples.is_empty()
    }

    /// Keeps the samples for which `keep` is true (skipped entries are kept as they are).
    pub fn filter(mut self, keep: impl Fn(&Sample) -> bool) -> Self {
        self.samples.retain(|s| keep(s));
        self
    }

    /// Keeps one split.
    pub fn split(self, split: &str) -> Self {
        self.filter(|s| s.split == split)
    }

    /// Keeps the given groups (body parts or classes), compared without case; empty keeps all.
    pub fn groups(self, groups: &[String]) -> Self {
        if groups.is_empty() {
            return self;
        }
        self.filter(|s| groups.iter().any(|g| g.eq_ignore_ascii_case(&s.group)))
    }

    /// Keeps one label.
    pub fn label(self, label: Label) -> Self {
        self.filter(|s| s.label == label)
    }

    /// Number of samples per (split, group, label), sorted: what `fetch-data` and `synth` print.
    pub fn counts(&self) -> Vec<((String, String, Label), usize)> {
        let mut map = std::collections::BTreeMap::new();
        for s in &self.samples {
            *map.entry((s.split.clone(), s.group.clone(), s.label))
                .or_insert(0) += 1;
        }
        map.into_iter().collect()
    }

    /// The distinct split names, sorted.
    pub fn splits(&self) -> Vec<String> {
        let mut v: Vec<String> = self.samples.iter().map(|s| s.split.clone()).collect();
        v.sort();
        v.dedup();
        v
    }
}

/// `path` relative to `root` with `/` separators (lossy for non-UTF-8 names).
pub(crate) fn relative(root: &Path, path: &Path) -> String {
    let rel = path.strip_prefix(root).unwrap_or(path);
    rel.components()
        .map(|c| c.as_os_str().to_string_lossy())
        .collect::<Vec<_>>()
        .join("/")
}
