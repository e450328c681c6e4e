//! End-to-end `xray-gan train` through the real binary: a run folder with every file, resume, a
//! run killed with SIGKILL at random moments (checkpoint writes included) always leaves loadable
//! checkpoints and resumes to the end, and bad input exits with code 2 naming the problem.

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
    let data = tempfile::tempdir().unwrap();
    let run = tempfile::tempdir().unwrap();
    let cache = tempfile::tempdir().unwrap();
    synth(data.path());
    let stdout = ok(train_command(data.path(), run.path(), cache.path(), 1)
        .output()
        .unwrap());
    assert!(stdout.contains("done: 1 epochs"), "{stdout}");
    let config: serde_json::Value =
        serde_json::from_slice(&std::fs::read(run.path().join("config.json")).unwrap()).unwrap();
    assert_eq!(config["kind"], "alpha-gan");
    assert_eq!(config["model"]["width"], 8);
    let stdout = ok(xray_gan()
        .args(["train", "--resume", "--epochs", "2", "--out"])
        .arg(run.path())
        .output()
        .unwrap());
    assert!(stdout.contains("done: 2 epochs"), "{stdout}");
    let csv = std::fs::read_to_string(run.path().join("losses.csv")).unwrap();
    assert_eq!(csv.lines().count(), 3, "{csv}");
    assert!(run.path().join("samples/epoch-0001.png").is_file());
    read_checkpoint(&run.path().join("best.safetensors"), &Device::Cpu).unwrap();
}

#[test]
fn sigkill_at_random_moments_never_leaves_a_broken_checkpoint() {
    let data = tempfile::tempdir().unwrap();
    let run = tempfile::tempdir().unwrap();
    let cache = tempfile::tempdir().unwrap();
    synth(data.path());
    let epochs = 40;
    // delays spread over start-up, steps and the end-of-epoch writes
    let delays_ms = [1500u64, 2500, 2000, 3000, 1800, 2600];
    let mut first = true;
    for delay in delays_ms {
        let mut command = if first {
            train_command(data.path(), run.path(), cache.path(), epochs)
        } else {
            let mut c = xray_gan();
            c.args(["train", "--resume", "--out"]).arg(run.path());
            c
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
            std::thread::sleep(Duration::from_millis(10));
        }
        child.kill().unwrap(); // SIGKILL
        child.wait().unwrap();
        if run.path().join("checkpoints/latest.safetensors").exists() {
            first = false;
        }
        for entry in std::fs::read_dir(run.path().join("checkpoints"))
            .into_iter()
            .flatten()
        {
            let path = entry.unwrap().path();
            if path.extension().is_some_and(|e| e == "safetensors") {
                read_checkpoint(&path, &Device::Cpu)
                    .unwrap_or_else(|e| panic!("after a kill at {delay} ms: {e}"));
            }
        }
        for f in ["model.safetensors", "best.safetensors"] {
            if run.path().join(f).exists() {
                read_checkpoint(&run.path().join(f), &Device::Cpu).unwrap();
            }
        }
    }
    assert!(
        !first,
        "no checkpoint was ever written: the delays are too short for this machine"
    );
    // the rows of losses.csv are the epochs the last checkpoint holds; two more finish cleanly
    let done = std::fs::read_to_string(run.path().join("losses.csv"))
        .map(|t| t.lines().count() - 1)
        .unwrap_or(0);
    let target = (done + 2).to_string();
    let stdout = ok(xray_gan()
        .args(["train", "--resume", "--epochs", &target, "--out"])
        .arg(run.path())
        .output()
        .unwrap());
    assert!(
        stdout.contains(&format!("done: {target} epochs")),
        "{stdout}"
    );
    read_checkpoint(&run.path().join("model.safetensors"), &Device::Cpu).unwrap();
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
