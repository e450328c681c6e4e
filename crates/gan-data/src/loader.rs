//! Loading a sample table into memory: parallel decoding (rayon), a load report of skipped files,
//! and an on-disk cache so that later epochs and later runs decode nothing.
//!
//! Images are held quantised to 16 bits (half the memory of f32, far finer than 8-bit sources).
//! The cache is one file per (file list, sizes, mtimes, preprocessing) key, written atomically and
//! checked by a SHA-256 trailer; a damaged cache is ignored and rebuilt.

use std::fs;
use std::io::Write;
use std::path::{Path, PathBuf};
use std::time::UNIX_EPOCH;

use indicatif::{ProgressBar, ProgressStyle};
use rayon::prelude::*;
use sha2::{Digest, Sha256};

use crate::error::{DataError, Result};
use crate::preprocess::{Preprocess, load_model_input};
use crate::sample::{Sample, Skipped};

const CACHE_MAGIC: &[u8; 16] = b"XRAYGAN-CACHE-1\n";

/// How to load images.
#[derive(Debug, Clone, Default)]
pub struct LoadOptions {
    pub preprocess: Preprocess,
    /// Folder of the preprocessed-image cache; `None` disables it.
    pub cache_dir: Option<PathBuf>,
    /// Fail on the first unreadable image instead of skipping it.
    pub strict: bool,
    /// Show a progress bar while decoding.
    pub progress: bool,
}

/// What happened while loading.
#[derive(Debug, Clone, Default, PartialEq)]
pub struct LoadReport {
    /// Images asked for.
    pub requested: usize,
    /// Images decoded from their files in this load (0 when the cache served everything).
    pub decoded: usize,
    /// True when the images came from the cache.
    pub from_cache: bool,
    /// Files that could not be used, with the reason.
    pub skipped: Vec<Skipped>,
}

/// Preprocessed images in memory, in the order of `samples`.
#[derive(Debug, Clone)]
pub struct ImageSet {
    /// The samples that loaded (skipped ones are not here).
    pub samples: Vec<Sample>,
    size: usize,
    pixels: Vec<u16>,
    pub report: LoadReport,
}

impl ImageSet {
    pub fn len(&self) -> usize {
        self.samples.len()
    }

    pub fn is_empty(&self) -> bool {
        self.samples.is_empty()
    }

    /// Side S of every image.
    pub fn image_size(&self) -> usize {
        self.size
    }

    /// Writes image `index` (S·S values in [−1, 1]) into `out`.
    pub fn write_image(&self, index: usize, out: &mut [f32]) {
        let n = self.size * self.size;
        for (o, &q) in out.iter_mut().zip(&self.pixels[index * n..(index + 1) * n]) {
            *o = dequantise(q);
        }
    }

    /// Image `index` as S·S values in [−1, 1].
    pub fn image(&self, index: usize) -> Vec<f32> {
        let mut out = vec![0.0; self.size * self.size];
        self.write_image(index, &mut out);
        out
    }

    /// A new set holding the images at `indices`, in that order.
    pub fn select(&self, indices: &[usize]) -> ImageSet {
        let n = self.size * self.size;
        let mut pixels = Vec::with_capacity(indices.len() * n);
        for &i in indices {
            pixels.extend_from_slice(&self.pixels[i * n..(i + 1) * n]);
        }
        ImageSet {
            samples: indices.iter().map(|&i| self.samples[i].clone()).collect(),
            size: self.size,
            pixels,
            report: self.report.clone(),
        }
    }
}

fn quantise(v: f32) -> u16 {
    (((v.clamp(-1.0, 1.0) + 1.0) * 0.5) * 65535.0).round() as u16
}

fn dequantise(q: u16) -> f32 {
    q as f32 / 65535.0 * 2.0 - 1.0
}

/// One image's outcome, as computed or as cached.
enum Outcome {
    Loaded(Vec<u16>),
    Skipped(String),
}

/// Loads `samples` with `options`: from the cache when it matches, else by decoding in parallel
/// (and then writing the cache). Unreadable files are skipped and reported, or fail under `strict`.
pub fn load_images(samples: &[Sample], options: &LoadOptions) -> Result<ImageSet> {
    let pre = &options.preprocess;
    if !(8..=4096).contains(&pre.size) {
        return Err(DataError::Config(format!(
            "image size must be between 8 and 4096, got {}",
            pre.size
        )));
    }
    let cache_file = options
        .cache_dir
        .as_ref()
        .map(|dir| dir.join(format!("{}.xgc", cache_key(samples, pre))));
    let cached = cache_file
        .as_deref()
        .and_then(|f| read_cache(f, samples.len(), pre.size as usize));
    let from_cache = cached.is_some();
    let outcomes = match cached {
        Some(outcomes) => outcomes,
        None => {
            let outcomes = decode_all(samples, options);
            if let Some(file) = &cache_file
                && let Err(e) = write_cache(file, &outcomes, pre.size as usize)
            {
                tracing::warn!("could not write the image cache: {e}");
            }
            outcomes
        }
    };

    let n = (pre.size * pre.size) as usize;
    let mut set = ImageSet {
        samples: Vec::new(),
        size: pre.size as usize,
        pixels: Vec::with_capacity(samples.len() * n),
        report: LoadReport {
            requested: samples.len(),
            decoded: if from_cache { 0 } else { samples.len() },
            from_cache,
            skipped: Vec::new(),
        },
    };
    for (sample, outcome) in samples.iter().zip(outcomes) {
        match outcome {
            Outcome::Loaded(pixels) => {
                set.pixels.extend_from_slice(&pixels);
                set.samples.push(sample.clone());
            }
            Outcome::Skipped(reason) => set.report.skipped.push(Skipped {
                path: sample.path.clone(),
                reason,
            }),
        }
    }
    if let Some(first) = set.report.skipped.first() {
        if options.strict {
            return Err(DataError::Strict(
                set.report.skipped.len(),
                samples.len(),
                format!("{}: {}", first.path.display(), first.reason),
            ));
        }
        tracing::warn!(
            "skipped {} of {} images that could not be read; first: {}: {}",
            set.report.skipped.len(),
            samples.len(),
            first.path.display(),
            first.reason
        );
    }
    Ok(set)
}

fn decode_all(samples: &[Sample], options: &LoadOptions) -> Vec<Outcome> {
    let bar = if options.progress {
        let bar = ProgressBar::new(samples.len() as u64);
        bar.set_style(
            ProgressStyle::with_template(
                "decoding {bar:30} {pos}/{len} images  {per_sec}  eta {eta}",
            )
            .unwrap_or_else(|_| ProgressStyle::default_bar()),
        );
        bar
    } else {
        ProgressBar::hidden()
    };
    let outcomes = samples
        .par_iter()
        .map(|s| {
            let outcome = match load_model_input(&s.path, &options.preprocess) {
                Ok(values) => Outcome::Loaded(values.into_iter().map(quantise).collect()),
                Err(e) => Outcome::Skipped(strip_path(&e.to_string(), &s.path)),
            };
            bar.inc(1);
            outcome
        })
        .collect();
    bar.finish_and_clear();
    outcomes
}

/// Error messages start with the path; the report holds the path apart.
fn strip_path(message: &str, path: &Path) -> String {
    let prefix = format!("{}: ", path.display());
    message.strip_prefix(&prefix).unwrap_or(message).to_string()
}

/// Hex SHA-256 of the file list with each file's size and mtime, and the preprocessing.
fn cache_key(samples: &[Sample], pre: &Preprocess) -> String {
    let mut hasher = Sha256::new();
    hasher.update(CACHE_MAGIC);
    hasher.update(serde_json::to_vec(pre).unwrap_or_default());
    for s in samples {
        hasher.update(s.path.as_os_str().as_encoded_bytes());
        hasher.update([0]);
        match fs::metadata(&s.path) {
            Ok(meta) => {
                hasher.update(meta.len().to_le_bytes());
                let mtime = meta
                    .modified()
                    .ok()
                    .and_then(|t| t.duration_since(UNIX_EPOCH).ok())
                    .map(|d| d.as_nanos())
                    .unwrap_or(0);
                hasher.update(mtime.to_le_bytes());
            }
            Err(_) => hasher.update(b"missing"),
        }
    }
    let digest = hasher.finalize();
    digest.iter().take(16).map(|b| format!("{b:02x}")).collect()
}

fn write_cache(file: &Path, outcomes: &[Outcome], size: usize) -> Result<()> {
    let dir = file.parent().unwrap_or(Path::new("."));
    fs::create_dir_all(dir).map_err(|e| DataError::io(dir, e))?;
    let mut body = Vec::with_capacity(outcomes.len() * (size * size * 2 + 1) + 32);
    body.extend_from_slice(CACHE_MAGIC);
    body.extend_from_slice(&(size as u32).to_le_bytes());
    body.extend_from_slice(&(outcomes.len() as u64).to_le_bytes());
    for outcome in outcomes {
        match outcome {
            Outcome::Loaded(pixels) => {
                body.push(1);
                for p in pixels {
                    body.extend_from_slice(&p.to_le_bytes());
                }
            }
            Outcome::Skipped(reason) => {
                body.push(0);
                body.extend_from_slice(&(reason.len() as u32).to_le_bytes());
                body.extend_from_slice(reason.as_bytes());
            }
        }
    }
    let digest = Sha256::digest(&body);
    body.extend_from_slice(&digest);
    write_atomically(file, &body)
}

/// Reads a cache file; `None` when absent, damaged or not for these images.
fn read_cache(file: &Path, count: usize, size: usize) -> Option<Vec<Outcome>> {
    let data = fs::read(file).ok()?;
    if data.len() < CACHE_MAGIC.len() + 12 + 32 {
        return None;
    }
    let (body, digest) = data.split_at(data.len() - 32);
    if Sha256::digest(body).as_slice() != digest {
        tracing::warn!("{}: damaged image cache ignored", file.display());
        return None;
    }
    let mut rest = body.strip_prefix(CACHE_MAGIC.as_slice())?;
    let mut take = |n: usize| -> Option<&[u8]> {
        let (head, tail) = rest.split_at_checked(n)?;
        rest = tail;
        Some(head)
    };
    let cached_size = u32::from_le_bytes(take(4)?.try_into().ok()?) as usize;
    let cached_count = u64::from_le_bytes(take(8)?.try_into().ok()?) as usize;
    if cached_size != size || cached_count != count {
        return None;
    }
    let mut outcomes = Vec::with_capacity(count);
    for _ in 0..count {
        let outcome = match take(1)?[0] {
            1 => Outcome::Loaded(
                take(size * size * 2)?
                    .chunks_exact(2)
                    .map(|b| u16::from_le_bytes([b[0], b[1]]))
                    .collect(),
            ),
            _ => {
                let len = u32::from_le_bytes(take(4)?.try_into().ok()?) as usize;
                Outcome::Skipped(String::from_utf8_lossy(take(len)?).into_owned())
            }
        };
        outcomes.push(outcome);
    }
    Some(outcomes)
}

/// Ends the name of the temporary file [`write_atomically`] writes first (`.NAME.PID.tmp`).
const TEMPORARY_SUFFIX: &str = ".tmp";

/// Removes the temporary files that [`write_atomically`] calls of other processes left in `dir`
/// (a process killed mid-write cannot remove its own); returns how many. Call it only on a folder
/// no other process is writing to.
pub fn remove_stale_temporaries(dir: &Path) -> usize {
    let own = format!(".{}{TEMPORARY_SUFFIX}", std::process::id());
    let mut removed = 0;
    for entry in fs::read_dir(dir).into_iter().flatten().flatten() {
        let name = entry.file_name().to_string_lossy().into_owned();
        let stale =
            name.starts_with('.') && name.ends_with(TEMPORARY_SUFFIX) && !name.ends_with(&own);
        if stale && fs::remove_file(entry.path()).is_ok() {
            removed += 1;
        }
    }
    removed
}

/// Makes `path` hold what `source` holds, atomically, without writing the bytes again when it
/// can: a hard link to `source` (a new name for the same file) under a temporary name, then
/// renamed over `path`; where the file system has no hard links, a synced copy. Files written by
/// [`write_atomically`] are replaced, never changed in place, so a later write of either name
/// leaves the other as it was.
pub fn link_or_copy_atomically(source: &Path, path: &Path) -> Result<()> {
    replace_atomically(path, |tmp| {
        let _ = fs::remove_file(tmp);
        if fs::hard_link(source, tmp).is_err() {
            fs::copy(source, tmp)?;
            fs::File::open(tmp)?.sync_all()?;
        }
        Ok(())
    })
}

/// Writes `bytes` to `path` through a temporary file in the same folder, synced, then renamed, so
/// that `path` holds either its old content or the new one, never a part.
pub fn write_atomically(path: &Path, bytes: &[u8]) -> Result<()> {
    replace_atomically(path, |tmp| {
        let mut f = fs::File::create(tmp)?;
        f.write_all(bytes)?;
        f.sync_all()
    })
}

/// Has `make` write the new content of `path` to a temporary name in the same folder, then
/// renames it over `path` and syncs the folder; on any error the temporary file is removed and
/// `path` is as it was.
fn replace_atomically(path: &Path, make: impl FnOnce(&Path) -> std::io::Result<()>) -> Result<()> {
    let dir = path
        .parent()
        .filter(|d| !d.as_os_str().is_empty())
        .unwrap_or(Path::new("."));
    let name = path
        .file_name()
        .map(|n| n.to_string_lossy().into_owned())
        .unwrap_or_default();
    let tmp = dir.join(format!(".{name}.{}{TEMPORARY_SUFFIX}", std::process::id()));
    let result = make(&tmp).and_then(|()| {
        fs::rename(&tmp, path)?;
        if let Ok(d) = fs::File::open(dir) {
            let _ = d.sync_all();
        }
        Ok(())
    });
    result.map_err(|e| {
        let _ = fs::remove_file(&tmp);
        DataError::io(path, e)
    })
}

#[cfg(test)]
mod tests {
    use super::{link_or_copy_atomically, write_atomically};

    #[test]
    fn a_linked_copy_keeps_its_content_when_the_source_is_written_again() {
        let dir = tempfile::tempdir().unwrap();
        let (epoch, latest) = (dir.path().join("epoch-0001"), dir.path().join("latest"));
        write_atomically(&latest, b"old").unwrap();
        write_atomically(&epoch, b"first epoch").unwrap();
        link_or_copy_atomically(&epoch, &latest).unwrap();
        assert_eq!(std::fs::read(&latest).unwrap(), b"first epoch");
        // the next epoch writes a new file under the old name: the link keeps the old bytes
        write_atomically(&epoch, b"second epoch").unwrap();
        assert_eq!(std::fs::read(&latest).unwrap(), b"first epoch");
        // and no temporary file is left behind
        let names: Vec<_> = std::fs::read_dir(dir.path())
            .unwrap()
            .map(|e| e.unwrap().file_name())
            .collect();
        assert_eq!(names.len(), 2, "{names:?}");
        // a missing source is an error naming the destination, and leaves it as it was
        let err = link_or_copy_atomically(&dir.path().join("missing"), &latest).unwrap_err();
        assert!(err.to_string().contains("latest"), "{err}");
        assert_eq!(std::fs::read(&latest).unwrap(), b"first epoch");
    }
}
