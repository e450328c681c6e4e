//! Safe zip extraction: every entry is checked before anything is written. Entries with absolute
//! paths, `..` components or links are refused, as is an archive whose declared or actual
//! uncompressed size passes a limit (zip bombs). Files land in a staging folder inside the
//! destination and are moved into place only when everything was extracted.

use std::fs;
use std::io::{self, Read};
use std::path::{Component, Path, PathBuf};

use anyhow::{Context, Result, bail};

/// Why an archive entry is refused, before anything is written.
fn check_entry_name(name: &str) -> Result<PathBuf> {
    let path = Path::new(name);
    if name.starts_with('/') || name.starts_with('\\') || path.is_absolute() || name.contains(':') {
        bail!("entry {name:?} has an absolute path");
    }
    let mut clean = PathBuf::new();
    for component in path.components() {
        match component {
            Component::Normal(part) => clean.push(part),
            Component::CurDir => {}
            Component::ParentDir => bail!("entry {name:?} has a `..` component"),
            Component::RootDir | Component::Prefix(_) => {
                bail!("entry {name:?} has an absolute path")
            }
        }
    }
    if clean.as_os_str().is_empty() {
        bail!("entry {name:?} has an empty path");
    }
    Ok(clean)
}

/// Extracts `archive` into `dest`, refusing unsafe archives whole. Returns the top-level names
/// that were placed in `dest`.
pub fn extract_zip(archive: &Path, dest: &Path, max_bytes: u64) -> Result<Vec<PathBuf>> {
    let file = fs::File::open(archive).with_context(|| format!("{}", archive.display()))?;
    let mut zip = zip::ZipArchive::new(file)
        .with_context(|| format!("{}: not a zip archive", archive.display()))?;

    // 1. check every entry first
    let mut declared = 0u64;
    let mut entries = Vec::with_capacity(zip.len());
    for i in 0..zip.len() {
        let entry = zip.by_index_raw(i)?;
        let name = entry.name()?.into_owned();
        let path =
            check_entry_name(&name).with_context(|| format!("{}: refused", archive.display()))?;
        if entry.is_symlink() {
            bail!("{}: refused: entry {name:?} is a link", archive.display());
        }
        declared = declared.saturating_add(entry.size());
        if declared > max_bytes {
            bail!(
                "{}: refused: uncompressed size passes the limit of {max_bytes} bytes",
                archive.display()
            );
        }
        entries.push((path, entry.is_dir()));
    }

    // 2. extract into a staging folder, counting real bytes (declared sizes can lie)
    fs::create_dir_all(dest).with_context(|| format!("{}", dest.display()))?;
    let staging = dest.join(".extracting");
    if staging.exists() {
        fs::remove_dir_all(&staging).with_context(|| format!("{}", staging.display()))?;
    }
    let result = (|| -> Result<()> {
        let mut written = 0u64;
        for (i, (path, is_dir)) in entries.iter().enumerate() {
            let target = staging.join(path);
            if *is_dir {
                fs::create_dir_all(&target).with_context(|| format!("{}", target.display()))?;
                continue;
            }
            if let Some(parent) = target.parent() {
                fs::create_dir_all(parent).with_context(|| format!("{}", parent.display()))?;
            }
            let mut entry = zip.by_index(i)?;
            let mut out =
                fs::File::create(&target).with_context(|| format!("{}", target.display()))?;
            let budget = max_bytes - written;
            let n = io::copy(&mut (&mut entry).take(budget + 1), &mut out)
                .with_context(|| format!("{}: extracting {}", archive.display(), path.display()))?;
            written += n;
            if n > budget {
                bail!(
                    "{}: refused: uncompressed size passes the limit of {max_bytes} bytes",
                    archive.display()
                );
            }
        }
        Ok(())
    })();
    if let Err(e) = result {
        let _ = fs::remove_dir_all(&staging);
        return Err(e);
    }

    // 3. move the top-level entries into place, never over existing ones
    let tops: Vec<_> = fs::read_dir(&staging)?.collect::<io::Result<_>>()?;
    if let Some(clash) = tops
        .iter()
        .map(|e| dest.join(e.file_name()))
        .find(|t| t.exists())
    {
        let _ = fs::remove_dir_all(&staging);
        bail!("{} already exists; remove it first", clash.display());
    }
    let mut placed = Vec::new();
    for entry in tops {
        let target = dest.join(entry.file_name());
        fs::rename(entry.path(), &target).with_context(|| format!("{}", target.display()))?;
        placed.push(target);
    }
    fs::remove_dir_all(&staging).ok();
    placed.sort();
    Ok(placed)
}
