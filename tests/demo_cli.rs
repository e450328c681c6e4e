//! End-to-end: `xray-gan demo --quick` through the real binary — every output file and the
//! metrics.json schema; and (not reached yet, so ignored) a leading detector whose primary
//! statistic beats chance clearly.

use std::path::Path;
use std::process::Command;

/// Runs the quick demo into `out` and checks every output file and the metrics.json schema.
fn quick_demo(out: &Path) {
    let cache = tempfile::tempdir().unwrap();
    let result = Command::new(env!("CARGO_BIN_EXE_xray-gan"))
        .args(["demo", "--quick", "--device", "cpu", "--out"])
        .arg(out)
        .env("XDG_CACHE_HOME", cache.path())
        .output()
        .unwrap();
    let stdout = String::from_utf8_lossy(&result.stdout);
    assert!(
        result.status.success(),
        "{stdout}\n{}",
        String::from_utf8_lossy(&result.stderr)
    );
    assert!(
        stdout.contains("| statistic |") && stdout.contains("hardware"),
        "{stdout}"
    );
    assert!(out.join("data/MURA-v1.1/synth_anomalies.csv").is_file());
    for model in ["autoencoder-u", "alpha-gan", "bigan"] {
        let dir = out.join(model);
        for f in [
            "run/config.json",
            "run/losses.csv",
            "run/model.safetensors",
            "run/best.safetensors",
            "scores.csv",
            "eval/metrics.json",
            "eval/roc.png",
            "eval/pr.png",
            "eval/histograms.png",
            "eval/losses.png",
            "eval/report.html",
        ] {
            assert!(dir.join(f).is_file(), "{model}/{f}");
        }
        let metrics: serde_json::Value =
            serde_json::from_slice(&std::fs::read(dir.join("eval/metrics.json")).unwrap()).unwrap();
        for key in [
            "n_normal",
            "n_abnormal",
            "image_level",
            "study_level",
            "by_group",
            "primary",
            "best",
        ] {
            assert!(
                metrics.get(key).is_some(),
                "{model}: metrics.json lacks {key}"
            );
        }
        let statistics: &[&str] = if model == "autoencoder-u" {
            &["l2_u", "l2", "l1", "l1_top1", "dssim", "fused", "fused_2s"]
        } else {
            &[
                "l1", "l2", "fm_d3", "fm_d4", "fm_e", "disc", "fused", "fused_2s",
            ]
        };
        for stat in statistics {
            let m = &metrics["image_level"][stat];
            assert!(
                m["auroc"].is_number() && m["auroc_ci"].is_array() && m["ap"].is_number(),
                "{model} {stat}: {m}"
            );
        }
        let primary = if model == "autoencoder-u" {
            "l2_u"
        } else {
            "fused_2s"
        };
        assert_eq!(metrics["primary"]["statistic"], primary);
        assert!(
            metrics["n_abnormal"].as_u64().unwrap() > 0
                && metrics["n_normal"].as_u64().unwrap() > 0
        );
    }
    let summary: serde_json::Value =
        serde_json::from_slice(&std::fs::read(out.join("demo-summary.json")).unwrap()).unwrap();
    // the autoencoder-u leads the summary
    assert_eq!(summary.as_array().unwrap().len(), 3);
    assert_eq!(summary[0]["model"], "autoencoder-u");
    assert_eq!(summary[0]["by_kind"].as_array().unwrap().len(), 4);
}

#[test]
fn quick_demo_runs_end_to_end() {
    let out = tempfile::tempdir().unwrap();
    quick_demo(out.path());
}

#[test]
// The quick demo has 43 normal and 40 abnormal validation images, so one statistic's AUROC has
// a null standard deviation of about 0.064; the assertion is on the primary statistic of the
// detector the demo leads with (fixed before labels), not on the best of 25 near-chance ones.
// Measured: the autoencoder-u's l2_u gives 0.615 in the quick demo on session 7's machine (the
// plain autoencoder's l2 gave 0.484; 0.604 ± 0.008 over three seeds in the full benchmark): it
// passes here, by less than a quarter of that sd, and results differ across machines, so it
// stays ignored until a detector clears the bar with room.
#[ignore = "issue 16: the leading primary clears 0.6 by 0.015 on one machine (autoencoder-u l2_u 0.615), too little to hold across machines; run with --ignored"]
fn quick_demo_leading_detector_primary_beats_chance() {
    let out = tempfile::tempdir().unwrap();
    quick_demo(out.path());
    let summary: serde_json::Value =
        serde_json::from_slice(&std::fs::read(out.path().join("demo-summary.json")).unwrap())
            .unwrap();
    let leading = &summary[0];
    assert_eq!(leading["model"], "autoencoder-u");
    let primary = leading["metrics"]["primary"]["auroc"].as_f64().unwrap();
    assert!(primary > 0.6, "autoencoder-u primary AUROC {primary}");
}
