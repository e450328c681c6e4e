//! Streaming download with a progress bar that continues a partial file (HTTP Range), and
//! SHA-256 of files. Plain `http://` is refused except to loopback addresses (used by tests).

use std::fs;
use std::io::{Read, Write};
use std::path::Path;

use anyhow::{Context, Result, bail};
use indicatif::{ProgressBar, ProgressStyle};
use sha2::{Digest, Sha256};

/// Refuses URLs that are neither HTTPS nor plain HTTP to a loopback host.
pub fn check_url(url: &str) -> Result<()> {
    if url.starts_with("https://") {
        return Ok(());
    }
    if let Some(rest) = url.strip_prefix("http://") {
        let host = rest.split(['/', '?']).next().unwrap_or("");
        let host = host.rsplit_once(':').map(|(h, _)| h).unwrap_or(host);
        if matches!(host, "127.0.0.1" | "localhost" | "[::1]") {
            return Ok(());
        }
        bail!("refusing plain http:// to {host}: use https://");
    }
    bail!("unsupported URL {url:?}: expected https://");
}

/// Downloads `url` to `dest`, through `dest` + `.part`, continuing that file when it exists.
/// The finished file is renamed into place, so `dest` is never a partial download.
pub fn download(url: &str, dest: &Path) -> Result<()> {
    check_url(url)?;
    let part = dest.with_extension(
        dest.extension()
            .map(|e| format!("{}.part", e.to_string_lossy()))
            .unwrap_or_else(|| "part".into()),
    );
    let have = fs::metadata(&part).map(|m| m.len()).unwrap_or(0);
    let mut request = ureq::get(url);
    if have > 0 {
        request = request.header("Range", format!("bytes={have}-"));
    }
    let mut response = request.call().with_context(|| format!("GET {url}"))?;
    let status = response.status().as_u16();
    let resuming = have > 0 && status == 206;
    let length: Option<u64> = response
        .headers()
        .get("content-length")
        .and_then(|v| v.to_str().ok())
        .and_then(|v| v.parse().ok());
    let mut file = fs::OpenOptions::new()
        .create(true)
        .write(true)
        .append(resuming)
        .truncate(!resuming)
        .open(&part)
        .with_context(|| format!("{}", part.display()))?;
    let start = if resuming { have } else { 0 };
    let bar = ProgressBar::new(length.map(|l| l + start).unwrap_or(0));
    bar.set_style(
        ProgressStyle::with_template(
            "downloading {bar:30} {bytes}/{total_bytes}  {bytes_per_sec}  eta {eta}",
        )
        .unwrap_or_else(|_| ProgressStyle::default_bar()),
    );
    bar.set_position(start);
    if resuming {
        eprintln!("continuing {} from byte {have}", part.display());
    }
    let mut reader = response.body_mut().as_reader();
    let mut buffer = vec![0u8; 1 << 16];
    loop {
        let n = reader
            .read(&mut buffer)
            .with_context(|| format!("reading {url}"))?;
        if n == 0 {
            break;
        }
        file.write_all(&buffer[..n])
            .with_context(|| format!("{}", part.display()))?;
        bar.inc(n as u64);
    }
    file.sync_all()?;
    bar.finish_and_clear();
    if let Some(length) = length {
        let got = fs::metadata(&part)?.len();
        if got != start + length {
            bail!(
                "{}: download ended at {got} of {} bytes; run again to continue",
                part.display(),
                start + length
            );
        }
    }
    fs::rename(&part, dest).with_context(|| format!("{}", dest.display()))?;
    Ok(())
}

/// Hex SHA-256 of a file, streamed.
pub fn sha256_file(path: &Path) -> Result<String> {
    let mut file = fs::File::open(path).with_context(|| format!("{}", path.display()))?;
    let mut hasher = Sha256::new();
    let mut buffer = vec![0u8; 1 << 16];
    loop {
        let n = file.read(&mut buffer)?;
        if n == 0 {
            break;
        }
        hasher.update(&buffer[..n]);
    }
    Ok(hasher
        .finalize()
        .iter()
        .map(|b| format!("{b:02x}"))
        .collect())
}
