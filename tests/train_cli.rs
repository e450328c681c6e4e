//! End-to-end `xray-gan train` through the real binary: a run folder with every file, resume, a
//! run killed with SIGKILL at random moments (checkpoint writes included) always leaves loadable
//! checkpoints and resumes to the end, a full disk during a checkpoint write loses nothing, and bad
//! input exits with a code and a message naming the problem.

use std::path::Path;
use std::process::{Command, Output};
use std::time::{Duration, Instant};

use candle::Device;
use gan_models::read_checkpoint;

fn xray_gan() -> Command {
    Command::new(env!("CARGO_BIN_EXE_xray-gan"))
}

fn synth(dir: &Path) {
    let out = xray_gan()
        .args(["synth", "--out"])
        .arg(dir)
        .args([
            "--seed",
            "3",
            "--studies-per-part",
            "20",
            "--parts",
            "forearm",
            "--size",
            "48",
        ])
        .output()
        .unwrap();
    assert!(
        out.status.success(),
        "{}",
        String::from_utf8_lossy(&out.stderr)
    );
}

/// Temporary data (synthesised), run and cache folders.
fn folders() -> (tempfile::TempDir, tempfile::TempDir, tempfile::TempDir) {
    let data = tempfile::tempdir().unwrap();
    synth(data.path());
    (
        data,
        tempfile::tempdir().unwrap(),
        tempfile::tempdir().unwrap(),
    )
}

fn train_command(data: &Path, run: &Path, cache: &Path, epochs: u64) -> Command {
    let mut c = xray_gan();
    c.args([
        "train",
        "--model",
        "alpha-gan",
        "--image-size",
        "32",
        "--width",
        "8",
        "--batch-size",
        "4",
        "--lr",
        "1e-3",
        "--seed",
        "1",
    ])
    .arg("--data")
    .arg(data)
    .arg("--out")
    .arg(run)
    .arg("--cache-dir")
    .arg(cache)
    .args(["--epochs", &epochs.to_string()]);
    c
}

fn ok(out: Output) -> String {
    assert!(
        out.status.success(),
        "{}\n{}",
        String::from_utf8_lossy(&out.stdout),
        String::from_utf8_lossy(&out.stderr)
    );
    String::from_utf8_lossy(&out.stdout).into_owned()
}

#[test]
fn train_writes_a_run_folder_and_resumes_to_more_epochs() {
    let (data, run, cache) = folders();
    let stdout = ok(train_command(data.path(), run.path(), cache.path(), 1)
        .args(["--set", "reconstruction_weight=2.5"])
        .output()
        .unwrap());
    assert!(stdout.contains("done: 1 epochs"), "{stdout}");
    let config: serde_json::Value =
        serde_json::from_slice(&std::fs::read(run.path().join("config.json")).unwrap()).unwrap();
    assert_eq!(config["kind"], "alpha-gan");
    assert_eq!(config["model"]["width"], 8);
    // the detector's settings, the one set and the rest at their defaults
    assert_eq!(config["settings"]["reconstruction_weight"], 2.5);
    // a resumed run keeps its settings and its precision; neither --set nor --precision changes them
    for (change, error) in [
        (
            ["--set", "reconstruction_weight=1"],
            "settings are fixed in",
        ),
        (
            ["--precision", "bf16"],
            "--precision bf16 cannot change a run being resumed",
        ),
    ] {
        let out = xray_gan()
            .args(["train", "--resume"])
            .args(change)
            .arg("--out")
            .arg(run.path())
            .output()
            .unwrap();
        assert_eq!(out.status.code(), Some(2));
        let stderr = String::from_utf8_lossy(&out.stderr);
        assert!(stderr.contains(error), "{stderr}");
    }
    let stdout = ok(xray_gan()
        .args([
            "train",
            "--resume",
            "--precision",
            "f32",
            "--epochs",
            "2",
            "--out",
        ])
        .arg(run.path())
        .output()
        .unwrap());
    assert!(stdout.contains("done: 2 epochs"), "{stdout}");
    let csv = std::fs::read_to_string(run.path().join("losses.csv")).unwrap();
    assert_eq!(csv.lines().count(), 3, "{csv}");
    assert!(run.path().join("samples/epoch-0001.png").is_file());
    read_checkpoint(&run.path().join("best.safetensors"), &Device::Cpu).unwrap();
}

/// Every checkpoint in the run folder loads.
fn assert_checkpoints_load(run: &Path, when: &str) {
    let listed = std::fs::read_dir(run.join("checkpoints"))
        .into_iter()
        .flatten()
        .map(|e| e.unwrap().path());
    let top = ["model.safetensors", "best.safetensors"].map(|f| run.join(f));
    for path in listed.chain(top) {
        if path.extension().is_some_and(|e| e == "safetensors") && path.exists() {
            read_checkpoint(&path, &Device::Cpu)
                .unwrap_or_else(|e| panic!("{when}: {}: {e}", path.display()));
        }
    }
}

/// `train --resume` for `more` epochs runs to the end and its final checkpoint loads.
fn resume_to_the_end(run: &Path, more: usize, when: &str) {
    let target = (epochs_done(run) + more).to_string();
    let stdout = ok(xray_gan()
        .args(["train", "--resume", "--epochs", &target, "--out"])
        .arg(run)
        .output()
        .unwrap());
    assert!(
        stdout.contains(&format!("done: {target} epochs")),
        "{when}: {stdout}"
    );
    read_checkpoint(&run.join("model.safetensors"), &Device::Cpu)
        .unwrap_or_else(|e| panic!("{when}: the final checkpoint: {e}"));
}

/// Epochs the run folder's losses.csv records (one row each).
fn epochs_done(run: &Path) -> usize {
    std::fs::read_to_string(run.join("losses.csv"))
        .map(|t| t.lines().count().saturating_sub(1))
        .unwrap_or(0)
}

#[test]
fn sigkill_at_random_moments_never_leaves_a_broken_checkpoint() {
    let (data, run, cache) = folders();
    // 20 kills at pseudo-random moments from 50 ms to 1.5 s after start: start-up, data loading,
    // steps and the end-of-epoch writes (an epoch of this tiny run takes ~0.15 s, most of it
    // writing the 6.5 MB checkpoint twice). After every kill, `--resume` must run to the end.
    let mut state = 0x2545_F491_4F6C_DD1Du64;
    let mut started_once = false;
    for trial in 1..=20 {
        state ^= state << 13;
        state ^= state >> 7;
        state ^= state << 17;
        let delay = 50 + state % 1450;
        let target = (epochs_done(run.path()) + 3).to_string();
        let mut command = if started_once {
            let mut c = xray_gan();
            c.args(["train", "--resume", "--epochs", &target, "--out"])
                .arg(run.path());
            c
        } else {
            train_command(data.path(), run.path(), cache.path(), 3)
        };
        let mut child = command
            .stdout(std::process::Stdio::null())
            .stderr(std::process::Stdio::null())
            .spawn()
            .unwrap();
        let started = Instant::now();
        while started.elapsed() < Duration::from_millis(delay) {
            if child.try_wait().unwrap().is_some() {
                break;
            }
            std::thread::sleep(Duration::from_millis(5));
        }
        child.kill().unwrap(); // SIGKILL
        child.wait().unwrap();
        let when = format!("trial {trial}, killed after {delay} ms");
        assert_checkpoints_load(run.path(), &when);
        if !run.path().join("config.json").exists() {
            continue; // killed before the run folder was written: nothing to resume
        }
        started_once = true;
        resume_to_the_end(run.path(), 1, &when);
    }
    assert!(started_once, "no run ever started");
}

/// Temporary files (`.NAME.PID.tmp`) in the run folder or its checkpoints folder.
fn temporary_files(run: &Path) -> Vec<std::path::PathBuf> {
    [run.to_path_buf(), run.join("checkpoints")]
        .iter()
        .flat_map(|d| std::fs::read_dir(d).into_iter().flatten())
        .map(|e| e.unwrap().path())
        .filter(|p| p.extension().is_some_and(|e| e == "tmp"))
        .collect()
}

#[test]
fn sigkill_during_a_checkpoint_write_leaves_the_previous_checkpoint_intact() {
    let (data, run, cache) = folders();
    ok(train_command(data.path(), run.path(), cache.path(), 1)
        .output()
        .unwrap());
    // Watch for a checkpoint's temporary file and kill the moment one exists: the write is then
    // under way. The file it replaces must still hold a complete checkpoint.
    let mut caught = 0;
    for _attempt in 0..10 {
        let target = (epochs_done(run.path()) + 20).to_string();
        let mut child = xray_gan()
            .args(["train", "--resume", "--epochs", &target, "--out"])
            .arg(run.path())
            .stdout(std::process::Stdio::null())
            .stderr(std::process::Stdio::null())
            .spawn()
            .unwrap();
        let started = Instant::now();
        let mut writing = Vec::new();
        while writing.is_empty() && started.elapsed() < Duration::from_secs(20) {
            if child.try_wait().unwrap().is_some() {
                break;
            }
            writing = temporary_files(run.path())
                .into_iter()
                .filter(|p| p.to_string_lossy().contains(".safetensors."))
                .collect();
        }
        child.kill().unwrap();
        child.wait().unwrap();
        if writing.is_empty() {
            continue;
        }
        caught += 1;
        for tmp in &writing {
            // `.latest.safetensors.1234.tmp` replaces `latest.safetensors`
            let name = tmp.file_name().unwrap().to_string_lossy();
            let target = name
                .trim_start_matches('.')
                .split(".safetensors")
                .next()
                .unwrap();
            let replaced = tmp.with_file_name(format!("{target}.safetensors"));
            if replaced.exists() {
                read_checkpoint(&replaced, &Device::Cpu).unwrap_or_else(|e| {
                    panic!(
                        "{} broken by a kill during its write: {e}",
                        replaced.display()
                    )
                });
            }
        }
        assert_checkpoints_load(run.path(), "after a kill during a checkpoint write");
        if caught >= 3 {
            break;
        }
    }
    assert!(
        caught > 0,
        "no kill landed during a checkpoint write in 10 tries"
    );
    // a later run finishes and removes the temporary files killed runs left (one is planted, in
    // case the last kill landed just after its rename)
    std::fs::write(
        run.path()
            .join("checkpoints/.latest.safetensors.4000000.tmp"),
        b"partial",
    )
    .unwrap();
    resume_to_the_end(run.path(), 1, "after the kills during writes");
    assert_eq!(
        temporary_files(run.path()),
        Vec::<std::path::PathBuf>::new()
    );
}

/// The bytes of every file under `dir`, by relative path.
fn snapshot(dir: &Path) -> std::collections::BTreeMap<String, Vec<u8>> {
    let mut files = std::collections::BTreeMap::new();
    let mut stack = vec![dir.to_path_buf()];
    while let Some(d) = stack.pop() {
        for entry in std::fs::read_dir(&d).unwrap() {
            let path = entry.unwrap().path();
            if path.is_dir() {
                stack.push(path);
            } else {
                let rel = path
                    .strip_prefix(dir)
                    .unwrap()
                    .to_string_lossy()
                    .into_owned();
                files.insert(rel, std::fs::read(&path).unwrap());
            }
        }
    }
    files
}

#[cfg(unix)]
#[test]
fn a_full_disk_during_a_checkpoint_write_fails_clearly_and_loses_nothing() {
    let (data, run, cache) = folders();
    ok(train_command(data.path(), run.path(), cache.path(), 1)
        .output()
        .unwrap());
    let checkpoints_before: std::collections::BTreeMap<_, _> = snapshot(run.path())
        .into_iter()
        .filter(|(name, _)| name.ends_with(".safetensors"))
        .collect();
    let checkpoint_size = checkpoints_before.values().map(Vec::len).max().unwrap();
    // A file-size limit below one checkpoint: the next checkpoint write fails with EFBIG
    // ("File too large") as a full disk fails with ENOSPC. SIGXFSZ is ignored so the write
    // returns the error instead of killing the process.
    let blocks = checkpoint_size / 1024 / 2;
    let out = Command::new("bash")
        .arg("-c")
        .arg(format!(
            "trap '' XFSZ; ulimit -f {blocks}; exec \"$0\" \"$@\""
        ))
        .arg(env!("CARGO_BIN_EXE_xray-gan"))
        .args(["train", "--resume", "--epochs", "2", "--out"])
        .arg(run.path())
        .output()
        .unwrap();
    let stderr = String::from_utf8_lossy(&out.stderr);
    assert_eq!(out.status.code(), Some(1), "{stderr}");
    assert!(stderr.contains("File too large"), "{stderr}");
    assert!(stderr.contains(".safetensors"), "names the file: {stderr}");
    // every checkpoint from before is byte for byte as it was, and no temporary file is left
    let after = snapshot(run.path());
    for (name, bytes) in &checkpoints_before {
        assert!(after.get(name) == Some(bytes), "{name} changed or vanished");
    }
    assert!(
        after.keys().all(|name| !name.ends_with(".tmp")),
        "temporary files left: {:?}",
        after.keys().collect::<Vec<_>>()
    );
    assert_checkpoints_load(run.path(), "after the failed write");
    // with space again, the run resumes and finishes
    let stdout = ok(xray_gan()
        .args(["train", "--resume", "--epochs", "2", "--out"])
        .arg(run.path())
        .output()
        .unwrap());
    assert!(stdout.contains("done: 2 epochs"), "{stdout}");
}

#[test]
fn an_output_folder_that_cannot_be_created_is_named() {
    let data = tempfile::tempdir().unwrap();
    let cache = tempfile::tempdir().unwrap();
    synth(data.path());
    // a regular file where a folder should be: the same for root, which ignores permissions
    let file = data.path().join("not-a-folder");
    std::fs::write(&file, "x").unwrap();
    let out = train_command(data.path(), &file.join("run"), cache.path(), 1)
        .output()
        .unwrap();
    let stderr = String::from_utf8_lossy(&out.stderr);
    assert_eq!(out.status.code(), Some(1), "{stderr}");
    assert!(
        stderr.contains("not-a-folder/run") && stderr.contains("Not a directory"),
        "{stderr}"
    );
    assert_eq!(
        stderr.matches("Not a directory").count(),
        1,
        "said once: {stderr}"
    );
    let out = xray_gan()
        .args(["synth", "--studies-per-part", "2", "--out"])
        .arg(file.join("data"))
        .output()
        .unwrap();
    let stderr = String::from_utf8_lossy(&out.stderr);
    assert_eq!(out.status.code(), Some(1), "{stderr}");
    assert!(stderr.contains("not-a-folder/data"), "{stderr}");
    assert_eq!(
        std::fs::read_to_string(&file).unwrap(),
        "x",
        "the file is untouched"
    );
}

#[test]
fn unreadable_images_are_skipped_counted_and_named_or_stop_a_strict_run() {
    let dir = tempfile::tempdir().unwrap();
    let normal = dir.path().join("data/train/NORMAL");
    std::fs::create_dir_all(&normal).unwrap();
    std::fs::create_dir_all(dir.path().join("data/train/ABNORMAL")).unwrap();
    for i in 0..12u8 {
        image::GrayImage::from_fn(24, 24, |x, y| image::Luma([(x * 9 + y * 3) as u8 ^ i]))
            .save(normal.join(format!("img{i:02}.png")))
            .unwrap();
    }
    std::fs::write(normal.join("zz-empty.png"), b"").unwrap();
    std::fs::write(normal.join("zz-text.png"), b"I am not a picture").unwrap();
    std::fs::write(normal.join("notes.txt"), b"not an image").unwrap();
    let train = |strict: bool| {
        let mut c = xray_gan();
        c.args([
            "train",
            "--model",
            "bigan",
            "--normal-class",
            "NORMAL",
            "--image-size",
            "32",
        ])
        .args([
            "--width",
            "8",
            "--batch-size",
            "4",
            "--epochs",
            "1",
            "--cache-dir",
            "none",
        ])
        .arg("--data")
        .arg(dir.path().join("data"))
        .arg("--out")
        .arg(dir.path().join(if strict { "strict" } else { "run" }));
        if strict {
            c.arg("--strict");
        }
        c.output().unwrap()
    };
    let out = train(false);
    let stderr = String::from_utf8_lossy(&out.stderr);
    assert!(out.status.success(), "{stderr}");
    // the listing's skip (a non-image file) and the loader's (two unreadable PNGs), each counted
    // and the first named
    assert!(
        stderr.contains("left out 1 listed entries") && stderr.contains("notes.txt"),
        "{stderr}"
    );
    assert!(
        stderr.contains("skipped 2 of 14 images") && stderr.contains("zz-empty.png"),
        "{stderr}"
    );
    let out = train(true);
    let stderr = String::from_utf8_lossy(&out.stderr);
    assert_eq!(out.status.code(), Some(2), "{stderr}");
    assert!(stderr.contains("zz-empty.png"), "{stderr}");
}

#[test]
fn bad_input_exits_with_code_2_and_names_the_problem() {
    let run = tempfile::tempdir().unwrap();
    let missing = run.path().join("no-such-data");
    let out = xray_gan()
        .args(["train", "--model", "bigan", "--data"])
        .arg(&missing)
        .arg("--out")
        .arg(run.path().join("r"))
        .output()
        .unwrap();
    assert_eq!(out.status.code(), Some(2));
    let stderr = String::from_utf8_lossy(&out.stderr);
    assert!(stderr.contains("no-such-data"), "{stderr}");

    // an empty folder, and a folder dataset whose normal class has no images
    let empty = run.path().join("empty-data");
    std::fs::create_dir(&empty).unwrap();
    let only_abnormal = run.path().join("only-abnormal");
    std::fs::create_dir_all(only_abnormal.join("train/NORMAL")).unwrap();
    std::fs::create_dir_all(only_abnormal.join("train/FRACTURE")).unwrap();
    image::GrayImage::new(8, 8)
        .save(only_abnormal.join("train/FRACTURE/a.png"))
        .unwrap();
    for (data, expected) in [(&empty, "empty-data"), (&only_abnormal, "no normal images")] {
        let out = xray_gan()
            .args([
                "train",
                "--model",
                "alpha-gan",
                "--normal-class",
                "NORMAL",
                "--data",
            ])
            .arg(data)
            .arg("--out")
            .arg(run.path().join("r2"))
            .output()
            .unwrap();
        let stderr = String::from_utf8_lossy(&out.stderr);
        assert_eq!(out.status.code(), Some(2), "{stderr}");
        assert!(stderr.contains(expected), "{stderr}");
    }

    let out = xray_gan()
        .args(["train", "--resume", "--out"])
        .arg(run.path().join("empty"))
        .output()
        .unwrap();
    assert_ne!(out.status.code(), Some(0));
    assert!(String::from_utf8_lossy(&out.stderr).contains("config.json"));

    let out = xray_gan()
        .args(["train", "--out"])
        .arg(run.path())
        .output()
        .unwrap();
    assert_eq!(out.status.code(), Some(2));
    assert!(String::from_utf8_lossy(&out.stderr).contains("--data and --model are required"));

    // a detector setting that does not exist, or a value of the wrong type or range, is bad
    // usage naming the key and listing the detector's settings, before any data is read
    for (set, expected) in [
        ("wcon=3", "unknown setting \"wcon\""),
        ("contextual_weight=lots", "invalid type"),
        ("latent_weight=-1", "latent_weight must be"),
    ] {
        let out = xray_gan()
            .args(["train", "--model", "ganomaly", "--set", set, "--data"])
            .arg(&missing)
            .arg("--out")
            .arg(run.path().join("r3"))
            .output()
            .unwrap();
        let stderr = String::from_utf8_lossy(&out.stderr);
        assert_eq!(out.status.code(), Some(2), "{set}: {stderr}");
        assert!(stderr.contains(expected), "{set}: {stderr}");
        assert!(
            stderr.contains("contextual_weight (default 50.0)"),
            "{stderr}"
        );
        assert!(
            !run.path().join("r3").exists(),
            "{set}: a run folder was made"
        );
    }
    let out = xray_gan().arg("detectors").output().unwrap();
    let listing = String::from_utf8_lossy(&out.stdout);
    assert!(out.status.success());
    for name in [
        "alpha-gan",
        "bigan",
        "ganomaly",
        "f-anogan",
        "--set gan_epochs=null",
    ] {
        assert!(listing.contains(name), "{name}: {listing}");
    }

    let out = xray_gan()
        .args([
            "train",
            "--model",
            "alpha-gan",
            "--device",
            "cuda:0",
            "--data",
        ])
        .arg(run.path())
        .arg("--out")
        .arg(run.path().join("x"))
        .output()
        .unwrap();
    if !candle::utils::cuda_is_available() {
        assert_eq!(out.status.code(), Some(2));
        assert!(String::from_utf8_lossy(&out.stderr).contains("--features cuda"));
    }
}
