//! fetch-data: unsafe archives are refused whole and write nothing outside the destination; a good
//! archive extracts, verifies and parses; an interrupted download continues where it stopped.

use std::fs;
use std::io::{BufRead, BufReader, Write};
use std::net::TcpListener;
use std::path::Path;

use xtask::download::{check_url, download, sha256_file};
use xtask::extract::extract_zip;
use xtask::fetch_data::{Options, run, verify_checksum};
use zip::write::SimpleFileOptions;

type Writer = zip::ZipWriter<fs::File>;
/// Adds entries to an archive under construction.
type Build = Box<dyn FnOnce(&mut Writer)>;

fn zip_with(path: &Path, build: impl FnOnce(&mut zip::ZipWriter<fs::File>)) {
    let mut writer = zip::ZipWriter::new(fs::File::create(path).unwrap());
    build(&mut writer);
    writer.finish().unwrap();
}

fn file(writer: &mut zip::ZipWriter<fs::File>, name: &str, bytes: &[u8]) {
    writer
        .start_file(name, SimpleFileOptions::default())
        .unwrap();
    writer.write_all(bytes).unwrap();
}

/// Everything under `dir`, relative, sorted.
fn tree(dir: &Path) -> Vec<String> {
    let mut out = Vec::new();
    let mut stack = vec![dir.to_path_buf()];
    while let Some(d) = stack.pop() {
        for e in fs::read_dir(&d).unwrap() {
            let p = e.unwrap().path();
            out.push(p.strip_prefix(dir).unwrap().to_string_lossy().into_owned());
            if p.is_dir() && !p.is_symlink() {
                stack.push(p);
            }
        }
    }
    out.sort();
    out
}

#[test]
fn unsafe_archives_are_refused_and_write_nothing() {
    let cases: Vec<(&str, Build, &str)> = vec![
        (
            "dotdot",
            Box::new(|w| {
                file(w, "ok.txt", b"fine");
                file(w, "../evil.txt", b"x")
            }),
            "`..`",
        ),
        (
            "absolute",
            Box::new(|w| {
                file(w, "ok.txt", b"fine");
                file(w, "/tmp/xray-gan-evil.txt", b"x")
            }),
            "absolute",
        ),
        (
            "nested-dotdot",
            Box::new(|w| file(w, "MURA-v1.1/../../evil.txt", b"x")),
            "`..`",
        ),
        (
            "symlink",
            Box::new(|w| {
                file(w, "ok.txt", b"fine");
                w.add_symlink("link", "/etc", SimpleFileOptions::default())
                    .unwrap()
            }),
            "link",
        ),
        (
            "bomb",
            Box::new(|w| file(w, "zeros.bin", &vec![0u8; 200_000])),
            "limit",
        ),
    ];
    for (name, build, why) in cases {
        let outer = tempfile::tempdir().unwrap();
        let archive = outer.path().join(format!("{name}.zip"));
        zip_with(&archive, build);
        let dest = outer.path().join("dest");
        fs::create_dir(&dest).unwrap();
        let before = tree(outer.path());
        let err = extract_zip(&archive, &dest, 100_000).unwrap_err();
        assert!(format!("{err:#}").contains(why), "{name}: {err:#}");
        assert_eq!(tree(outer.path()), before, "{name}: something was written");
        assert!(!Path::new("/tmp/xray-gan-evil.txt").exists());
    }
}

#[test]
fn a_good_archive_extracts_verifies_and_parses() {
    let work = tempfile::tempdir().unwrap();
    let synth = work.path().join("synth");
    let config = gan_data::synth::SynthConfig {
        studies_per_part: 2,
        parts: vec!["hand".into()],
        size: 32,
        ..Default::default()
    };
    let summary = gan_data::synth::write_synthetic_mura(&synth, &config, false).unwrap();
    let archive = work.path().join("MURA-v1.1.zip");
    zip_with(&archive, |w| {
        for rel in [
            "train_image_paths.csv",
            "train_labeled_studies.csv",
            "valid_image_paths.csv",
            "valid_labeled_studies.csv",
        ] {
            file(
                w,
                &format!("MURA-v1.1/{rel}"),
                &fs::read(summary.mura_dir.join(rel)).unwrap(),
            );
        }
        for image in &summary.images {
            file(
                w,
                &format!("MURA-v1.1/{}", image.rel_path),
                &fs::read(summary.mura_dir.join(&image.rel_path)).unwrap(),
            );
        }
    });
    let dest = work.path().join("data");
    fs::create_dir(&dest).unwrap();

    // a manifest that disagrees stops before extraction
    fs::write(
        dest.join("MURA-v1.1.sha256"),
        format!("{}  MURA-v1.1.zip\n", "0".repeat(64)),
    )
    .unwrap();
    let options = Options::parse(&[
        "--archive".into(),
        archive.display().to_string(),
        "--dest".into(),
        dest.display().to_string(),
    ])
    .unwrap();
    let err = run(&options).unwrap_err();
    assert!(format!("{err:#}").contains("sha256 is"), "{err:#}");
    assert!(!dest.join("MURA-v1.1").exists());

    // the right checksum: extracted and readable
    fs::write(
        dest.join("MURA-v1.1.sha256"),
        format!("{}  MURA-v1.1.zip\n", sha256_file(&archive).unwrap()),
    )
    .unwrap();
    run(&options).unwrap();
    let table = gan_data::read_mura(&dest, gan_data::Listing::Csv).unwrap();
    assert_eq!(table.len(), summary.images.len());
    assert!(!dest.join(".extracting").exists());
    // extracting again does not overwrite
    let err = run(&options).unwrap_err();
    assert!(format!("{err:#}").contains("already exists"), "{err:#}");
}

#[test]
fn checksum_without_manifest_is_printed_not_failed() {
    let dir = tempfile::tempdir().unwrap();
    let f = dir.path().join("a.zip");
    fs::write(&f, b"abc").unwrap();
    verify_checksum(&f, &dir.path().join("none.sha256")).unwrap();
    // sha256("abc"), FIPS 180-2 test vector
    assert_eq!(
        sha256_file(&f).unwrap(),
        "ba7816bf8f01cfea414140de5dae2223b00361a396177a9cb410ff61f20015ad"
    );
}

#[test]
fn plain_http_is_refused_except_to_loopback() {
    assert!(check_url("https://example.org/MURA.zip").is_ok());
    assert!(check_url("http://127.0.0.1:8080/MURA.zip").is_ok());
    assert!(check_url("http://localhost/x").is_ok());
    assert!(check_url("http://example.org/MURA.zip").is_err());
    assert!(check_url("ftp://example.org/MURA.zip").is_err());
}

/// Serves `body` on 127.0.0.1: the first request gets the full length announced but only `cut`
/// bytes before the connection drops; later requests honour `Range: bytes=N-` with a 206.
fn flaky_server(body: Vec<u8>, cut: usize) -> (String, std::thread::JoinHandle<Vec<String>>) {
    let listener = TcpListener::bind("127.0.0.1:0").unwrap();
    let url = format!("http://{}/MURA-v1.1.zip", listener.local_addr().unwrap());
    let handle = std::thread::spawn(move || {
        let mut ranges = Vec::new();
        for (i, stream) in listener.incoming().take(2).enumerate() {
            let mut stream = stream.unwrap();
            let mut reader = BufReader::new(stream.try_clone().unwrap());
            let mut start = 0usize;
            loop {
                let mut line = String::new();
                reader.read_line(&mut line).unwrap();
                if line.trim().is_empty() {
                    break;
                }
                if let Some(v) = line.to_ascii_lowercase().strip_prefix("range: bytes=") {
                    start = v.trim().trim_end_matches('-').parse().unwrap();
                    ranges.push(line.trim().to_string());
                }
            }
            if i == 0 {
                write!(
                    stream,
                    "HTTP/1.1 200 OK\r\nContent-Length: {}\r\n\r\n",
                    body.len()
                )
                .unwrap();
                stream.write_all(&body[..cut]).unwrap();
            } else {
                write!(stream, "HTTP/1.1 206 Partial Content\r\nContent-Length: {}\r\nContent-Range: bytes {}-{}/{}\r\n\r\n",
                    body.len() - start, start, body.len() - 1, body.len()).unwrap();
                stream.write_all(&body[start..]).unwrap();
            }
            stream.flush().unwrap();
            // the reader holds a clone of the socket: shut it down so the client sees the end
            stream.shutdown(std::net::Shutdown::Both).unwrap();
        }
        ranges
    });
    (url, handle)
}

#[test]
fn an_interrupted_download_continues_and_verifies() {
    let body: Vec<u8> = (0..300_000u32).map(|i| (i * 7 % 256) as u8).collect();
    let (url, server) = flaky_server(body.clone(), 120_000);
    let dir = tempfile::tempdir().unwrap();
    let dest = dir.path().join("MURA-v1.1.zip");
    assert!(
        download(&url, &dest).is_err(),
        "the first attempt is cut off"
    );
    assert!(!dest.exists(), "no partial file under the final name");
    let part = dir.path().join("MURA-v1.1.zip.part");
    let kept = fs::metadata(&part).unwrap().len();
    assert!(kept > 0 && kept < body.len() as u64);
    download(&url, &dest).unwrap();
    assert_eq!(fs::read(&dest).unwrap(), body);
    let ranges = server.join().unwrap();
    assert_eq!(ranges.len(), 1);
    assert_eq!(
        ranges[0].to_ascii_lowercase(),
        format!("range: bytes={kept}-")
    );
}
