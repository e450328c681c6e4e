//! Synthetic radiographs in the exact MURA-v1.1 layout, with its four CSVs and a side file
//! `synth_anomalies.csv` (path, part, label, kind) naming each image's abnormality.
//!
//! Each image is an X-ray projection of a limb drawn from bones and soft tissue (cortex brighter
//! than medulla, flared joint ends, carpals), posed and exposed differently per view, with
//! collimation margins, an L/R marker and detector noise. Abnormal studies carry one of four
//! abnormalities ([`AnomalyKind`]) in every view. The same seed gives the same bytes.

mod anatomy;
mod anomaly;
mod geometry;
mod render;

use std::fs;
use std::io::Write;
use std::path::{Path, PathBuf};

use indicatif::{ProgressBar, ProgressStyle};
use rand::rngs::StdRng;
use rand::seq::SliceRandom;
use rand::{Rng, SeedableRng};
use rayon::prelude::*;

pub use anomaly::{Anomaly, AnomalyKind};

use crate::batcher::mix;
use crate::error::{DataError, Result};
use crate::mura::{BODY_PARTS, MURA_DIR};
use crate::sample::Label;

/// What to generate.
#[derive(Debug, Clone, PartialEq)]
pub struct SynthConfig {
    pub seed: u64,
    /// Training studies per body part; the validation split gets half as many (at least 2).
    pub studies_per_part: usize,
    /// Body parts (MURA names, any case); empty means all seven.
    pub parts: Vec<String>,
    /// Image height in pixels (widths vary from 72 % to 100 % of it, as in MURA).
    pub size: u32,
    /// Share of abnormal studies in the training split (the validation split has half).
    pub train_abnormal_fraction: f64,
    /// The files' format.
    pub format: SynthFormat,
}

/// How the synthetic radiographs are stored.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Default)]
#[cfg_attr(feature = "clap", derive(clap::ValueEnum))]
pub enum SynthFormat {
    /// 8-bit greyscale PNG.
    #[default]
    Png,
    /// DICOM as a PACS exports it: CR, 12 bits stored, a window in the header, every third study
    /// MONOCHROME1 (stored inverted), so loading exercises the whole DICOM path.
    Dicom,
}

impl SynthFormat {
    fn extension(self) -> &'static str {
        match self {
            SynthFormat::Png => "png",
            SynthFormat::Dicom => "dcm",
        }
    }
}

/// Writes a rendered 8-bit image as 12-bit CR DICOM: stored = 16·v (+ 8), window centre 2048 and
/// width 4096 (so it decodes back to about v / 255), MONOCHROME1 stored inverted.
fn save_dicom(image: &image::GrayImage, path: &Path, monochrome1: bool) -> Result<()> {
    let pixels: Vec<u16> = image
        .as_raw()
        .iter()
        .map(|&v| {
            let stored = 16 * v as u16 + 8;
            if monochrome1 { 4095 - stored } else { stored }
        })
        .collect();
    crate::dicom::write_dicom(
        path,
        &pixels,
        image.width(),
        image.height(),
        12,
        monochrome1,
        Some((2048.0, 4096.0)),
    )
}

impl Default for SynthConfig {
    fn default() -> Self {
        SynthConfig {
            seed: 0,
            studies_per_part: 24,
            parts: Vec::new(),
            size: 256,
            train_abnormal_fraction: 0.35,
            format: SynthFormat::Png,
        }
    }
}

/// One generated image, as listed in `synth_anomalies.csv`.
#[derive(Debug, Clone, PartialEq)]
pub struct SynthImage {
    /// Path relative to the MURA folder (`train/XR_HAND/patient00001/study1_negative/image1.png`).
    pub rel_path: String,
    pub split: String,
    pub part: String,
    pub label: Label,
    pub kind: Option<AnomalyKind>,
    /// Pixels of this image the abnormality changed (0 for normal images).
    pub anomaly_pixels: usize,
    pub width: u32,
    pub height: u32,
}

/// What was written.
#[derive(Debug, Clone)]
pub struct SynthSummary {
    /// The MURA-v1.1 folder.
    pub mura_dir: PathBuf,
    pub images: Vec<SynthImage>,
}

/// One study to draw.
struct StudyPlan {
    split: &'static str,
    part: String,
    patient: usize,
    study: usize,
    kind: Option<AnomalyKind>,
    views: usize,
    seed: u64,
}

impl StudyPlan {
    fn dir(&self) -> String {
        let suffix = if self.kind.is_some() {
            "positive"
        } else {
            "negative"
        };
        format!(
            "{}/XR_{}/patient{:05}/study{}_{suffix}",
            self.split, self.part, self.patient, self.study
        )
    }
}

/// Resolves the part list: MURA names in upper case, all seven when empty.
pub fn resolve_parts(parts: &[String]) -> Result<Vec<String>> {
    if parts.is_empty() {
        return Ok(BODY_PARTS.iter().map(|p| p.to_string()).collect());
    }
    parts
        .iter()
        .map(|p| {
            let up = p.trim().trim_start_matches("XR_").to_ascii_uppercase();
            if BODY_PARTS.contains(&up.as_str()) {
                Ok(up)
            } else {
                Err(DataError::Config(format!(
                    "unknown body part {p:?}; expected one of {}",
                    BODY_PARTS.join(", ").to_lowercase()
                )))
            }
        })
        .collect()
}

fn plan_studies(config: &SynthConfig, parts: &[String]) -> Vec<StudyPlan> {
    let mut rng = StdRng::seed_from_u64(mix(config.seed, 1, 0));
    let mut plans = Vec::new();
    let mut patient = 0;
    for (split, count, fraction) in [
        (
            "train",
            config.studies_per_part,
            config.train_abnormal_fraction,
        ),
        ("valid", (config.studies_per_part / 2).max(2), 0.5),
    ] {
        for part in parts {
            let abnormal = ((count as f64 * fraction).round() as usize).min(count);
            // abnormal studies cycle through the kinds so each kind is equally represented
            let mut kinds: Vec<Option<AnomalyKind>> = (0..count)
                .map(|i| (i < abnormal).then(|| AnomalyKind::ALL[i % AnomalyKind::ALL.len()]))
                .collect();
            kinds.shuffle(&mut rng);
            let mut study_of_patient = 0;
            for kind in kinds {
                // about one patient in four has a second study
                if study_of_patient == 0 || study_of_patient >= 2 || rng.random_bool(0.75) {
                    patient += 1;
                    study_of_patient = 0;
                }
                study_of_patient += 1;
                plans.push(StudyPlan {
                    split,
                    part: part.clone(),
                    patient,
                    study: study_of_patient,
                    kind,
                    views: rng.random_range(1..=3),
                    seed: rng.random(),
                });
            }
        }
    }
    plans
}

/// Draws one view of a study: the image and its record.
fn draw_view(
    plan: &StudyPlan,
    view: usize,
    size: u32,
    format: SynthFormat,
) -> (image::GrayImage, SynthImage) {
    let mut study_rng = StdRng::seed_from_u64(plan.seed);
    let build = anatomy::Build::random(&mut study_rng);
    let mut rng = StdRng::seed_from_u64(mix(plan.seed, view as u64 + 1, 2));
    let aspect: f32 = rng.random_range(0.72..1.0);
    let width = ((size as f32 * aspect).round() as u32).max(1);
    let aspect = width as f32 / size as f32;
    let limb = anatomy::build_limb(&plan.part, build, view, aspect);
    // drawn from the study generator, after the build, so every view has the same abnormality
    let anomaly = plan
        .kind
        .map(|k| Anomaly::random(k, &limb, aspect, &mut study_rng));
    let acquisition = render::Acquisition::random(&mut rng);
    let rendered = render::render(&limb, anomaly.as_ref(), &acquisition, width, size, &mut rng);
    let record = SynthImage {
        rel_path: format!("{}/image{}.{}", plan.dir(), view + 1, format.extension()),
        split: plan.split.to_string(),
        part: plan.part.clone(),
        label: if plan.kind.is_some() {
            Label::Abnormal
        } else {
            Label::Normal
        },
        kind: plan.kind,
        anomaly_pixels: rendered.anomaly_pixels,
        width,
        height: size,
    };
    (rendered.image, record)
}

/// Renders one image of `part` in memory (no files): for tests and for looking at the generator.
pub fn render_example(
    part: &str,
    kind: Option<AnomalyKind>,
    seed: u64,
    view: usize,
    size: u32,
) -> (image::GrayImage, SynthImage) {
    let plan = StudyPlan {
        split: "train",
        part: part.to_ascii_uppercase(),
        patient: 1,
        study: 1,
        kind,
        views: view + 1,
        seed,
    };
    draw_view(&plan, view, size, SynthFormat::Png)
}

/// Writes a synthetic MURA-v1.1 dataset under `out/MURA-v1.1`. The tree is built in a temporary
/// folder beside it and renamed at the end, so an interrupted run leaves no half dataset; an
/// existing `MURA-v1.1` folder is never overwritten.
pub fn write_synthetic_mura(
    out: &Path,
    config: &SynthConfig,
    progress: bool,
) -> Result<SynthSummary> {
    if !(32..=2048).contains(&config.size) {
        return Err(DataError::Config(format!(
            "synthetic image size must be between 32 and 2048 pixels, got {}",
            config.size
        )));
    }
    if config.studies_per_part == 0 {
        return Err(DataError::Config(
            "--studies-per-part must be at least 1".into(),
        ));
    }
    let parts = resolve_parts(&config.parts)?;
    let mura_dir = out.join(MURA_DIR);
    if mura_dir.exists() {
        return Err(DataError::layout(
            &mura_dir,
            "already exists; remove it or choose another output folder",
        ));
    }
    let staging = out.join(format!(".{MURA_DIR}.partial"));
    if staging.exists() {
        fs::remove_dir_all(&staging).map_err(|e| DataError::io(&staging, e))?;
    }
    fs::create_dir_all(&staging).map_err(|e| DataError::io(&staging, e))?;

    let plans = plan_studies(config, &parts);
    let jobs: Vec<(usize, usize)> = plans
        .iter()
        .enumerate()
        .flat_map(|(i, p)| (0..p.views).map(move |v| (i, v)))
        .collect();
    let bar = if progress {
        ProgressBar::new(jobs.len() as u64).with_style(
            ProgressStyle::with_template(
                "synthesising {bar:30} {pos}/{len} radiographs  eta {eta}",
            )
            .unwrap_or_else(|_| ProgressStyle::default_bar()),
        )
    } else {
        ProgressBar::hidden()
    };
    let images: Vec<SynthImage> = jobs
        .par_iter()
        .map(|&(i, view)| {
            let (image, record) = draw_view(&plans[i], view, config.size, config.format);
            let path = staging.join(&record.rel_path);
            if let Some(dir) = path.parent() {
                fs::create_dir_all(dir).map_err(|e| DataError::io(dir, e))?;
            }
            match config.format {
                SynthFormat::Png => image
                    .save(&path)
                    .map_err(|e| DataError::io(&path, std::io::Error::other(e)))?,
                SynthFormat::Dicom => save_dicom(&image, &path, i % 3 == 2)?,
            }
            bar.inc(1);
            Ok(record)
        })
        .collect::<Result<_>>()?;
    bar.finish_and_clear();

    write_csvs(&staging, &plans, &images)?;
    fs::rename(&staging, &mura_dir).map_err(|e| DataError::io(&mura_dir, e))?;
    Ok(SynthSummary { mura_dir, images })
}

fn write_csvs(dir: &Path, plans: &[StudyPlan], images: &[SynthImage]) -> Result<()> {
    for split in ["train", "valid"] {
        let mut paths = String::new();
        for image in images.iter().filter(|i| i.split == split) {
            paths.push_str(&format!("{MURA_DIR}/{}\n", image.rel_path));
        }
        write_text(&dir.join(format!("{split}_image_paths.csv")), &paths)?;
        let mut studies = String::new();
        for plan in plans.iter().filter(|p| p.split == split) {
            let label = u8::from(plan.kind.is_some());
            studies.push_str(&format!("{MURA_DIR}/{}/,{label}\n", plan.dir()));
        }
        write_text(&dir.join(format!("{split}_labeled_studies.csv")), &studies)?;
    }
    let mut side = String::from("path,part,label,kind\n");
    for image in images {
        let kind = image.kind.map(|k| k.name()).unwrap_or("none");
        side.push_str(&format!(
            "{},{},{},{kind}\n",
            image.rel_path,
            image.part,
            image.label.as_u8()
        ));
    }
    write_text(&dir.join("synth_anomalies.csv"), &side)
}

fn write_text(path: &Path, text: &str) -> Result<()> {
    let mut f = fs::File::create(path).map_err(|e| DataError::io(path, e))?;
    f.write_all(text.as_bytes())
        .map_err(|e| DataError::io(path, e))
}

/// Each image's anomaly kind by relative path (`None` for normal images).
pub type AnomalyKinds = std::collections::HashMap<String, Option<AnomalyKind>>;

/// Reads `synth_anomalies.csv`: relative path → anomaly kind (`None` for normal images).
pub fn read_anomaly_kinds(csv_path: &Path) -> Result<AnomalyKinds> {
    let mut reader = csv::Reader::from_path(csv_path).map_err(|e| DataError::Csv {
        path: csv_path.to_path_buf(),
        line: 0,
        message: e.to_string(),
    })?;
    let mut map = std::collections::HashMap::new();
    for (i, row) in reader.records().enumerate() {
        let row = row.map_err(|e| DataError::Csv {
            path: csv_path.to_path_buf(),
            line: i as u64 + 2,
            message: e.to_string(),
        })?;
        let (Some(path), Some(kind)) = (row.get(0), row.get(3)) else {
            return Err(DataError::Csv {
                path: csv_path.to_path_buf(),
                line: i as u64 + 2,
                message: "expected path,part,label,kind".into(),
            });
        };
        let kind = match kind {
            "none" => None,
            k => Some(k.parse().map_err(|message| DataError::Csv {
                path: csv_path.to_path_buf(),
                line: i as u64 + 2,
                message,
            })?),
        };
        map.insert(path.to_string(), kind);
    }
    Ok(map)
}
