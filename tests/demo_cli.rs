//! End-to-end: `xray-gan demo --quick` through the real binary — every output file, the
//! metrics.json schema, and an Alpha-GAN that beats chance clearly on the synthetic data.

use std::process::Command;

#[test]
fn quick_demo_runs_end_to_end_and_detects() {
    let out = tempfile::tempdir().unwrap();
    let cache = tempfile::tempdir().unwrap();
    let result = Command::new(env!("CARGO_BIN_EXE_xray-gan"))
        .args(["demo", "--quick", "--device", "cpu", "--out"])
        .arg(out.path())
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

    assert!(
        out.path()
            .join("data/MURA-v1.1/synth_anomalies.csv")
            .is_file()
    );
    for model in ["alpha-gan", "bigan"] {
        let dir = out.path().join(model);
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
        for stat in ["l1", "l2", "fm_d3", "fm_d4", "fm_e", "disc", "fused"] {
            let m = &metrics["image_level"][stat];
            assert!(
                m["auroc"].is_number() && m["auroc_ci"].is_array() && m["ap"].is_number(),
                "{model} {stat}: {m}"
            );
        }
        assert_eq!(metrics["primary"]["statistic"], "fused");
        assert!(
            metrics["n_abnormal"].as_u64().unwrap() > 0
                && metrics["n_normal"].as_u64().unwrap() > 0
        );
    }
    let alpha: serde_json::Value = serde_json::from_slice(
        &std::fs::read(out.path().join("alpha-gan/eval/metrics.json")).unwrap(),
    )
    .unwrap();
    let best = alpha["best"]["auroc"].as_f64().unwrap();
    assert!(best > 0.6, "Alpha-GAN best AUROC {best}");
    let summary: serde_json::Value =
        serde_json::from_slice(&std::fs::read(out.path().join("demo-summary.json")).unwrap())
            .unwrap();
    assert_eq!(summary.as_array().unwrap().len(), 2);
    assert_eq!(summary[0]["by_kind"].as_array().unwrap().len(), 4);
}
