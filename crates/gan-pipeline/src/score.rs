//! Scoring: every image of a dataset's evaluation split and the run's normal validation images
//! (split `calib`), in batches streamed into `scores.csv`.

use std::path::{Path, PathBuf};

use gan_data::{
    Batcher, DatasetFormat, DatasetSpec, ImageSet, LoadOptions, Sample, load_images, open_dataset,
};
use gan_metrics::{CALIBRATION_SPLIT, ScoreRow, ScoreWriter};
use gan_models::Detector;
use gan_models::kernels::{Precision, with_precision};
use gan_train::{
    RunFolder, TrainConfig, TrainError, WhichWeights, load_training_data, preprocess_of,
};
use indicatif::{ProgressBar, ProgressStyle};

use serde::{Deserialize, Serialize};

use crate::error::Result;

/// What produced a `scores.csv`: the run, the weights (and their content digest) and the data,
/// written beside it as `<name>.provenance.json` ([`ScoredWith::path_for`]), so that evaluation
/// draws the gallery with the weights and images that gave the scores (`score --latest`,
/// `score --data` elsewhere), not with whatever the run's `best` is now.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
pub struct ScoredWith {
    pub run: PathBuf,
    pub weights: PathBuf,
    /// The checkpoint's `content_sha256`, to notice weights overwritten since (a resumed run).
    pub weights_sha256: Option<String>,
    /// The dataset root that `scores.csv`'s paths are relative to.
    pub data: PathBuf,
    pub format: DatasetFormat,
    pub split: String,
}

impl ScoredWith {
    /// `scores.csv` → `scores.provenance.json`.
    pub fn path_for(scores: &Path) -> PathBuf {
        scores.with_extension("provenance.json")
    }

    /// The record beside `scores`, if there is one; a damaged record is an error naming it.
    pub fn read(scores: &Path) -> Result<Option<ScoredWith>> {
        let path = Self::path_for(scores);
        let text = match std::fs::read_to_string(&path) {
            Ok(text) => text,
            Err(e) if e.kind() == std::io::ErrorKind::NotFound => return Ok(None),
            Err(e) => return Err(crate::error::io(&path)(e)),
        };
        serde_json::from_str(&text)
            .map(Some)
            .map_err(|e| crate::PipelineError::Input {
                path,
                message: format!("is not a scores provenance record: {e}"),
            })
    }

    fn write(&self, scores: &Path) -> Result<()> {
        let json = serde_json::to_vec_pretty(self)?;
        gan_data::write_atomically(&Self::path_for(scores), &json)?;
        Ok(())
    }
}

/// What [`score_run`] scored.
#[derive(Debug, Clone)]
pub struct ScoreSummary {
    /// The evaluation split scored.
    pub split: String,
    pub images: usize,
    pub calibration_images: usize,
    /// The weights used.
    pub weights: PathBuf,
}

/// Scores `images` in batches and writes one row per image.
pub(crate) fn score_set(
    model: &dyn Detector,
    images: &ImageSet,
    split: Option<&str>,
    batch_size: usize,
    device: &candle::Device,
    out: &mut ScoreWriter,
    bar: &ProgressBar,
) -> Result<()> {
    for batch in Batcher::new(images, batch_size, device).eval_batches() {
        let batch = batch?;
        let scores = model.score(&batch.images)?;
        for (k, &i) in batch.indices.iter().enumerate() {
            let s: &Sample = &images.samples[i];
            out.write(&ScoreRow {
                path: s.rel_path.clone(),
                split: split.unwrap_or(&s.split).to_string(),
                group: s.group.clone(),
                patient: s.patient.clone().unwrap_or_default(),
                study: s.study.clone().unwrap_or_default(),
                abnormal: s.label.as_u8() == 1,
                values: scores
                    .values
                    .iter()
                    .map(|column| column[k] as f64)
                    .collect(),
            })?;
        }
        bar.inc(batch.indices.len() as u64);
    }
    Ok(())
}

/// Scores the evaluation split `split` (default: `valid` for MURA, `test` for image folders) of
/// `data` (default: the dataset the run trained on), and the run's calibration images, with the
/// chosen weights of `run`, into `out_path`.
pub fn score_run(
    run: &Path,
    data: Option<&Path>,
    out_path: &Path,
    split: Option<&str>,
    which: WhichWeights,
    device: &candle::Device,
    batch_size: usize,
) -> Result<ScoreSummary> {
    let folder = RunFolder::new(run);
    let (mut config, model, weights) = folder.load_model(which, device)?;
    tracing::info!("scoring with {}", weights.display());
    let calibration = load_training_data(&config, true)?.calibration;
    if let Some(data) = data {
        config.data.root = data.to_path_buf();
    }
    let spec = DatasetSpec {
        format: config.data.format,
        normal_class: config.data.normal_class.clone(),
    };
    let table = open_dataset(&config.data.root, &spec)?;
    let split = split.map(String::from).unwrap_or_else(|| {
        match config.data.format.resolve(&config.data.root) {
            DatasetFormat::Mura => "valid".into(),
            _ => "test".into(),
        }
    });
    let available = table.splits();
    let table = table.split(&split).groups(&config.data.parts);
    if table.is_empty() {
        return Err(TrainError::Config(format!(
            "{}: no images in split {split:?} (splits found: {})",
            config.data.root.display(),
            available.join(", ")
        ))
        .into());
    }
    let options = LoadOptions {
        preprocess: preprocess_of(&config),
        cache_dir: config.data.cache_dir.clone(),
        strict: config.data.strict,
        progress: true,
    };
    let images = load_images(&table.samples, &options)?;
    let names: Vec<&str> = model.statistics().iter().map(|s| s.name()).collect();
    let mut out = ScoreWriter::create(out_path, &names)?;
    let bar = ProgressBar::new((images.len() + calibration.len()) as u64).with_style(
        ProgressStyle::with_template("scoring {bar:30} {pos}/{len} images  {per_sec}  eta {eta}")
            .unwrap_or_else(|_| ProgressStyle::default_bar()),
    );
    with_precision(scoring_precision(&config, device), || {
        score_set(
            model.as_ref(),
            &calibration,
            Some(CALIBRATION_SPLIT),
            batch_size,
            device,
            &mut out,
            &bar,
        )?;
        score_set(
            model.as_ref(),
            &images,
            None,
            batch_size,
            device,
            &mut out,
            &bar,
        )
    })?;
    bar.finish_and_clear();
    out.finish()?;
    let digest = gan_models::read_checkpoint_metadata(&weights)?
        .get("content_sha256")
        .cloned();
    ScoredWith {
        run: run.to_path_buf(),
        weights: weights.clone(),
        weights_sha256: digest,
        data: config.data.root.clone(),
        format: config.data.format,
        split: split.clone(),
    }
    .write(out_path)?;
    Ok(ScoreSummary {
        split,
        images: images.len(),
        calibration_images: calibration.len(),
        weights,
    })
}

/// The number format to score a run in: the one it trained with (`config.json`'s `precision`),
/// or f32, with a warning that says why, where this machine or `device` cannot run that one (a
/// bf16 run scored on a CPU without AVX512-BF16 or on a GPU).
pub(crate) fn scoring_precision(config: &TrainConfig, device: &candle::Device) -> Precision {
    match config.precision.check(device) {
        Ok(()) => config.precision,
        Err(why) => {
            tracing::warn!(
                "the run trained with {} products; scoring with f32 ones: {why}",
                config.precision
            );
            Precision::F32
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    /// A run scores in the precision it trained with where this machine can run it, else in
    /// f32 (f32 runs always in f32).
    #[test]
    fn a_bf16_run_scores_in_bf16_only_where_it_can() {
        let cpu = candle::Device::Cpu;
        let mut config = TrainConfig::new("autoencoder".parse().unwrap(), PathBuf::from("data"));
        assert_eq!(scoring_precision(&config, &cpu), Precision::F32);
        config.precision = Precision::Bf16;
        let expected = match Precision::Bf16.check(&cpu) {
            Ok(()) => Precision::Bf16,
            Err(_) => Precision::F32,
        };
        assert_eq!(scoring_precision(&config, &cpu), expected);
    }
}
