//! From scores.csv to metrics.json, figures and the HTML report.

use std::fs;

use gan_metrics::evaluate::with_derived_statistics;
use gan_metrics::plots::{histograms_png, losses_png, pr_png, roc_png};
use gan_metrics::report::{GalleryItem, ReportParts, render_html};
use gan_metrics::{EvalOptions, Metrics, ScoreRow, ScoreTable, ScoreWriter, evaluate};

fn row(split: &str, group: &str, study: &str, abnormal: bool, values: &[f64]) -> ScoreRow {
    ScoreRow {
        path: format!("{split}/{group}/{study}/{}.png", values[0]),
        split: split.into(),
        group: group.into(),
        patient: if study.is_empty() {
            String::new()
        } else {
            "patient1".into()
        },
        study: study.into(),
        abnormal,
        values: values.to_vec(),
    }
}

/// Two statistics: `good` separates, `reverse` runs the wrong way.
fn table() -> ScoreTable {
    let mut rows = Vec::new();
    for i in 0..10 {
        rows.push(row(
            "calib",
            "HAND",
            "",
            false,
            &[1.0 + i as f64 * 0.1, 5.0 + i as f64 * 0.1],
        ));
    }
    // HAND: study1 normal (2 images), study2 abnormal (2 images); WRIST: one normal, one abnormal study
    rows.push(row("valid", "HAND", "study1_negative", false, &[1.2, 5.5]));
    rows.push(row("valid", "HAND", "study1_negative", false, &[1.4, 5.6]));
    rows.push(row("valid", "HAND", "study2_positive", true, &[3.0, 4.0]));
    rows.push(row("valid", "HAND", "study2_positive", true, &[1.3, 4.5]));
    rows.push(row("valid", "WRIST", "study1_negative", false, &[1.1, 5.2]));
    rows.push(row("valid", "WRIST", "study2_positive", true, &[2.5, 4.2]));
    ScoreTable {
        statistics: vec!["good".into(), "reverse".into()],
        rows,
    }
}

#[test]
fn metrics_cover_images_studies_groups_and_headlines() {
    let (metrics, curves) = evaluate(&table(), &EvalOptions::default());
    assert_eq!(
        (metrics.n_normal, metrics.n_abnormal, metrics.n_calibration),
        (3, 3, 10)
    );
    assert_eq!(
        metrics.statistics,
        vec![
            "good",
            "reverse",
            "fused",
            "good_2s",
            "reverse_2s",
            "fused_2s"
        ]
    );
    // good: abnormal 3.0, 1.3, 2.5 vs normal 1.2, 1.4, 1.1 → 8 of 9 pairs ordered right
    let good = &metrics.image_level["good"];
    assert!((good.auroc.unwrap() - 8.0 / 9.0).abs() < 1e-12);
    // reverse is reported as measured: 0, never flipped to 1
    assert_eq!(metrics.image_level["reverse"].auroc, Some(0.0));
    // its two-sided version catches the abnormal images (far below the calibration median)
    assert!(metrics.image_level["reverse_2s"].auroc.unwrap() > 0.9);
    // study level: max over images of study2_positive is 3.0
    let study = &metrics.study_level["max"]["good"];
    assert_eq!((study.n_normal, study.n_abnormal), (2, 2));
    assert_eq!(study.auroc, Some(1.0));
    assert!(metrics.study_level["mean"]["good"].auroc.is_some());
    // groups: within HAND and within WRIST
    assert_eq!(metrics.by_group["WRIST"]["good"].auroc, Some(1.0));
    assert_eq!(metrics.by_group["HAND"]["good"].n_abnormal, 2);
    // the calibration threshold is the 95th percentile of calib scores (1.0 … 1.9 → 1.855)
    let calib = good.calibration_threshold.as_ref().unwrap();
    assert!((calib.threshold - 1.855).abs() < 1e-9);
    assert_eq!((calib.confusion.tp, calib.confusion.fp), (2, 0));
    assert_eq!(metrics.primary.statistic, "fused");
    assert!(metrics.best.auroc.unwrap() >= good.auroc.unwrap());
    assert_eq!(curves.roc["good"].first().unwrap().threshold, f64::INFINITY);
}

#[test]
fn fused_score_is_standardised_on_calibration_rows_only() {
    let derived = with_derived_statistics(&table());
    let fused = derived
        .statistics
        .iter()
        .position(|s| s == "fused")
        .unwrap();
    let calib: Vec<f64> = derived
        .rows
        .iter()
        .filter(|r| r.split == "calib")
        .map(|r| r.values[fused])
        .collect();
    let mean = calib.iter().sum::<f64>() / calib.len() as f64;
    assert!(
        mean.abs() < 1e-12,
        "calibration rows average to 0 after standardisation: {mean}"
    );
    // changing an evaluation label changes nothing in the fused values
    let mut relabelled = table();
    relabelled.rows[12].abnormal = !relabelled.rows[12].abnormal;
    let again = with_derived_statistics(&relabelled);
    let values = |t: &ScoreTable| t.rows.iter().map(|r| r.values[fused]).collect::<Vec<_>>();
    assert_eq!(values(&derived), values(&again));
}

/// A statistic that runs the wrong way cancels the good one in the one-sided fused mean; in the
/// fused two-sided statistic (the mean of |x − median| / MAD over the calibration rows) both add.
#[test]
fn fused_two_sided_adds_statistics_that_run_the_wrong_way() {
    let (metrics, _) = evaluate(&table(), &EvalOptions::default());
    let auroc = |s: &str| metrics.image_level[s].auroc.unwrap();
    assert!(auroc("fused_2s") > auroc("fused") + 0.2, "{metrics:?}");
    assert!(auroc("fused_2s") >= auroc("good"));
    // it is the mean of the two-sided columns, row by row
    let derived = with_derived_statistics(&table());
    let at = |name: &str| derived.statistics.iter().position(|s| s == name).unwrap();
    for r in &derived.rows {
        let mean = (r.values[at("good_2s")] + r.values[at("reverse_2s")]) / 2.0;
        assert!((r.values[at("fused_2s")] - mean).abs() < 1e-12);
    }
}

#[test]
fn one_class_only_and_empty_groups_are_marked_undefined() {
    let mut t = table();
    t.rows.retain(|r| !r.abnormal);
    let (metrics, _) = evaluate(&t, &EvalOptions::default());
    let m = &metrics.image_level["good"];
    assert_eq!(m.auroc, None);
    assert_eq!(m.auroc_ci, None);
    assert!(
        m.undefined
            .as_deref()
            .unwrap()
            .contains("no abnormal images")
    );
    let json = serde_json::to_value(&metrics).unwrap();
    assert!(json["image_level"]["good"]["auroc"].is_null());
    assert!(json["best"]["auroc"].is_null());
}

#[test]
fn metrics_json_round_trips_with_every_field() {
    let (metrics, _) = evaluate(&table(), &EvalOptions::default());
    let text = serde_json::to_string_pretty(&metrics).unwrap();
    let back: Metrics = serde_json::from_str(&text).unwrap();
    assert_eq!(back, metrics);
    let json: serde_json::Value = serde_json::from_str(&text).unwrap();
    for key in [
        "n_normal",
        "n_abnormal",
        "image_level",
        "study_level",
        "by_group",
        "primary",
        "best",
    ] {
        assert!(json.get(key).is_some(), "{key}");
    }
    for key in [
        "auroc",
        "auroc_ci",
        "ap",
        "youden",
        "sensitivity_at_95_specificity",
        "calibration_threshold",
    ] {
        assert!(json["image_level"]["good"].get(key).is_some(), "{key}");
    }
    assert!(
        json["image_level"]["good"]["calibration_threshold"]["confusion"]
            .get("fn")
            .is_some()
    );
    assert_eq!(json["primary"]["statistic"], "fused");
}

#[test]
fn scores_csv_round_trips_and_bad_files_are_named_errors() {
    let dir = tempfile::tempdir().unwrap();
    let path = dir.path().join("scores.csv");
    let t = table();
    let mut w = ScoreWriter::create(&path, &["good", "reverse"]).unwrap();
    for r in &t.rows {
        w.write(r).unwrap();
    }
    w.finish().unwrap();
    assert_eq!(ScoreTable::read(&path).unwrap(), t);
    assert!(!dir.path().join("scores.csv.partial").exists());

    let bad = dir.path().join("bad.csv");
    fs::write(&bad, "path,split,group,label,l1\nx,valid,HAND,1,0.5\n").unwrap();
    let err = ScoreTable::read(&bad).unwrap_err().to_string();
    assert!(
        err.contains("bad.csv") && err.contains("line 1") && err.contains("patient"),
        "{err}"
    );
    fs::write(
        &bad,
        "path,split,group,patient,study,label,l1\nx,valid,HAND,,,1,NaN\n",
    )
    .unwrap();
    let err = ScoreTable::read(&bad).unwrap_err().to_string();
    assert!(
        err.contains("line 2") && err.contains("l1") && err.contains("finite"),
        "{err}"
    );
    fs::write(
        &bad,
        "path,split,group,patient,study,label,l1\nx,valid,HAND,,,2,0.1\n",
    )
    .unwrap();
    assert!(
        ScoreTable::read(&bad)
            .unwrap_err()
            .to_string()
            .contains("label must be 0 or 1")
    );
    assert!(
        ScoreTable::read(&dir.path().join("missing.csv"))
            .unwrap_err()
            .to_string()
            .contains("missing.csv")
    );
}

fn png_size(bytes: &[u8]) -> (u32, u32) {
    let img = image::load_from_memory_with_format(bytes, image::ImageFormat::Png).unwrap();
    (img.width(), img.height())
}

#[test]
fn figures_are_png_of_the_expected_size_and_the_report_is_self_contained() {
    let (metrics, curves) = evaluate(&table(), &EvalOptions::default());
    let aurocs = metrics
        .image_level
        .iter()
        .map(|(k, m)| (k.clone(), m.auroc))
        .collect();
    let aps = metrics
        .image_level
        .iter()
        .map(|(k, m)| (k.clone(), m.ap))
        .collect();
    let roc = roc_png(&curves.roc, &aurocs).unwrap();
    assert_eq!(png_size(&roc), (900, 700));
    assert_eq!(png_size(&pr_png(&curves.pr, &aps).unwrap()), (900, 700));
    let hist = histograms_png(&curves.distributions).unwrap();
    assert_eq!(png_size(&hist), (1200, 600), "5 statistics: 2 rows of 4");
    let losses = losses_png(
        "epoch,step,encoder_loss,calibration_l1,images_per_s\n0,10,1.5,0.4,30\n1,20,1.2,0.3,31\n",
    )
    .unwrap();
    assert_eq!(png_size(&losses), (900, 500));
    // the figure is not blank
    let img = image::load_from_memory(&roc).unwrap().to_rgb8();
    assert!(img.pixels().filter(|p| p.0 != [255, 255, 255]).count() > 5000);

    let parts = ReportParts {
        title: "xray-gan report <test>".into(),
        figures: vec![("ROC".into(), roc), ("Histograms".into(), hist)],
        most_anomalous: vec![GalleryItem {
            caption: "valid/HAND/x.png".into(),
            png: losses,
        }],
        least_anomalous: Vec::new(),
        notes: vec!["model alpha-gan".into()],
    };
    let html = render_html(&metrics, &parts);
    assert!(html.contains("&lt;test&gt;"), "titles are escaped");
    assert!(html.contains("(best, exploratory)") && html.contains("(primary)"));
    let srcs: Vec<&str> = html.split("src=\"").skip(1).collect();
    assert_eq!(srcs.len(), 3);
    assert!(
        srcs.iter().all(|s| s.starts_with("data:image/png;base64,")),
        "only embedded images"
    );
    assert!(
        !html.contains("http://") && !html.contains("https://"),
        "no network needed"
    );
}
