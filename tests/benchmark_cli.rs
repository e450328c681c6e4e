//! End-to-end: `xray-gan benchmark` through the real binary trains each chosen model with each
//! seed, writes every cell and the comparison files, and a second run reuses finished cells.

use std::path::Path;
use std::process::{Command, Output};

fn xray_gan() -> Command {
    Command::new(env!("CARGO_BIN_EXE_xray-gan"))
}

fn ok(out: Output) -> String {
    assert!(
        out.status.success(),
        "{}",
        String::from_utf8_lossy(&out.stderr)
    );
    String::from_utf8_lossy(&out.stdout).into_owned()
}

/// `benchmark` of `models` with `seeds` seeds of `epochs` epochs, at tiny settings.
fn benchmark(data: &Path, out: &Path, models: &str, seeds: &str, epochs: &str) -> Output {
    xray_gan()
        .arg("benchmark")
        .arg("--data")
        .arg(data)
        .arg("--out")
        .arg(out)
        .args(["--models", models, "--seeds", seeds, "--epochs", epochs])
        .args(["--image-size", "32", "--width", "8", "--no-self-attention"])
        .args([
            "--batch-size",
            "8",
            "--cache-dir",
            "none",
            "--device",
            "cpu",
        ])
        .output()
        .unwrap()
}

#[test]
fn benchmark_compares_models_over_seeds_and_resumes() {
    let data = tempfile::tempdir().unwrap();
    let out = tempfile::tempdir().unwrap();
    ok(xray_gan()
        .args(["synth", "--out"])
        .arg(data.path())
        .args([
            "--seed",
            "1",
            "--studies-per-part",
            "20",
            "--parts",
            "forearm",
        ])
        .args(["--size", "64"])
        .output()
        .unwrap());
    let stdout = ok(benchmark(
        data.path(),
        out.path(),
        "ganomaly,f-anogan",
        "2",
        "2",
    ));
    assert!(stdout.contains("| ganomaly | 2 |"), "{stdout}");

    for model in ["ganomaly", "f-anogan"] {
        for seed in 0..2 {
            let cell = out.path().join(model).join(format!("seed-{seed}"));
            for f in [
                "run/model.safetensors",
                "scores.csv",
                "eval/metrics.json",
                "eval/report.html",
                "cell.json",
            ] {
                assert!(cell.join(f).is_file(), "{model} seed {seed}: {f}");
            }
        }
    }
    for f in ["benchmark.md", "benchmark.json", "benchmark.html"] {
        assert!(out.path().join(f).is_file(), "{f}");
    }
    let json: serde_json::Value =
        serde_json::from_slice(&std::fs::read(out.path().join("benchmark.json")).unwrap()).unwrap();
    let models = json["models"].as_array().unwrap();
    assert_eq!(models.len(), 2);
    assert_eq!(models[0]["model"], "ganomaly");
    assert_eq!(models[1]["model"], "f-anogan");
    // each detector's primary statistic is its paper's anomaly score
    assert_eq!(models[0]["primary"], "latent");
    assert_eq!(models[1]["primary"], "izif");
    for m in models {
        assert_eq!(m["seeds"], serde_json::json!([0, 1]));
        assert_eq!(m["primary_auroc"]["n"], 2);
        assert!(m["primary_auroc"]["sd"].is_f64(), "{m}");
    }
    let rows = json["rows"].as_array().unwrap();
    let row = |model: &str, stat: &str| {
        rows.iter()
            .find(|r| r["model"] == model && r["statistic"] == stat)
            .unwrap_or_else(|| panic!("no row {model} {stat}"))
    };
    // each model's own score; the two seeds train different models
    let latent = row("ganomaly", "latent");
    assert_ne!(latent["aurocs"][0], latent["aurocs"][1], "{latent}");
    row("f-anogan", "izif");
    assert!(
        !rows
            .iter()
            .any(|r| r["model"] == "f-anogan" && r["statistic"] == "disc")
    );
    // study-level AUROC and per-kind AUROC are there for the synthetic MURA data
    assert_eq!(row("ganomaly", "l1")["study_auroc"]["n"], 2);
    let cells = json["cells"].as_array().unwrap();
    assert_eq!(cells.len(), 4);
    assert!(
        cells[0]["by_kind"]["hardware"]["latent"].is_f64(),
        "{}",
        cells[0]["by_kind"]
    );
    let html = std::fs::read_to_string(out.path().join("benchmark.html")).unwrap();
    assert!(html.contains("data:image/png;base64,") && html.contains("izif"));

    // a second run reads the finished cells back; a lost cell is computed again
    let kept = out.path().join("ganomaly/seed-0/cell.json");
    let before = std::fs::read(&kept).unwrap();
    let lost = out.path().join("f-anogan/seed-1/cell.json");
    std::fs::remove_file(&lost).unwrap();
    let second = benchmark(data.path(), out.path(), "ganomaly,f-anogan", "2", "2");
    let stderr = String::from_utf8_lossy(&second.stderr).into_owned();
    ok(second);
    assert_eq!(std::fs::read(&kept).unwrap(), before);
    assert_eq!(stderr.matches("done before").count(), 3, "{stderr}");
    assert!(lost.is_file());

    // a cell trained with other settings is not mixed into the table
    let other = benchmark(data.path(), out.path(), "ganomaly", "1", "3");
    assert_eq!(other.status.code(), Some(2));
    let stderr = String::from_utf8_lossy(&other.stderr);
    assert!(
        stderr.contains("ganomaly/seed-0/run was trained with other settings (epochs differ)"),
        "{stderr}"
    );

    // an unknown model is bad usage
    let bad = benchmark(data.path(), out.path(), "ganomaly,vae", "2", "2");
    assert_eq!(bad.status.code(), Some(2));
    assert!(
        String::from_utf8_lossy(&bad.stderr).contains("unknown detector \"vae\""),
        "{}",
        String::from_utf8_lossy(&bad.stderr)
    );
}
