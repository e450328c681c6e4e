//! The report as a person sees it: rendered by headless Chromium at 1300 px width, the page has
//! no horizontal scrollbar and every image loaded. Needs `chromium` (Debian's package; `.ci/run`
//! installs it and sets `XRAY_GAN_REQUIRE_BROWSER=1`, so CI cannot skip it); without one, and
//! without that variable, the test says so and passes.

use gan_metrics::plots::{histograms_png, roc_png};
use gan_metrics::report::{GalleryItem, ReportParts, render_html};
use gan_metrics::{EvalOptions, ScoreRow, ScoreTable, evaluate};

mod browser;

fn table() -> ScoreTable {
    let mut rows = Vec::new();
    for i in 0..40 {
        let (split, abnormal) = match i % 4 {
            0 => ("calib", false),
            1 | 2 => ("valid", i % 4 == 2),
            _ => ("valid", false),
        };
        rows.push(ScoreRow {
            path: format!("valid/XR_FOREARM/patient{i:05}/study1_negative/image{i}.png"),
            split: split.into(),
            group: if i % 2 == 0 { "HAND" } else { "FOREARM" }.into(),
            patient: format!("patient{i}"),
            study: format!("study{}", i / 2),
            abnormal,
            values: vec![
                i as f64 * 0.1 + f64::from(u8::from(abnormal)),
                (i % 7) as f64,
            ],
        });
    }
    ScoreTable {
        statistics: vec!["l1".into(), "l2".into()],
        rows,
    }
}

#[test]
fn the_report_fits_a_1300_px_window_and_every_image_loads() {
    let (metrics, curves) = evaluate(&table(), &EvalOptions::default());
    let aurocs = metrics
        .image_level
        .iter()
        .map(|(k, m)| (k.clone(), m.auroc))
        .collect();
    let roc = roc_png(&curves.roc, &aurocs).unwrap();
    let hist = histograms_png(&curves.distributions).unwrap();
    // gallery tiles as the pipeline makes them: three 64-px panels side by side
    let tile = {
        let img = image::RgbImage::from_fn(3 * 64 + 4, 64, |x, y| {
            image::Rgb([(x % 256) as u8, (y * 4) as u8, 90])
        });
        let mut png = Vec::new();
        img.write_to(&mut std::io::Cursor::new(&mut png), image::ImageFormat::Png)
            .unwrap();
        png
    };
    let item = |i: usize| GalleryItem {
        caption: format!(
            "valid/XR_FOREARM/patient{i:05}/study1_negative/a_very_long_file_name_without_spaces_{i}.png [abnormal] l1 = 0.1234"
        ),
        png: tile.clone(),
    };
    let parts = ReportParts {
        title: "xray-gan report: a/long/path/to/scores.csv".into(),
        figures: vec![("ROC curves".into(), roc), ("Scores".into(), hist)],
        most_anomalous: (0..8).map(item).collect(),
        least_anomalous: (8..16).map(item).collect(),
        notes: vec!["Run runs/a: autoencoder at 64×64.".into()],
    };
    let html = render_html(&metrics, &parts);
    let dir = tempfile::tempdir().unwrap();
    let page = dir.path().join("report.html");
    std::fs::write(&page, html).unwrap();
    let Some(verdict) = browser::check(&page) else {
        return;
    };
    assert!(verdict.overflow <= 0, "horizontal scrollbar: {verdict:?}");
    assert_eq!(verdict.images, 2 + 16, "{verdict:?}");
    assert_eq!(verdict.broken, 0, "{verdict:?}");
    assert_eq!(
        verdict.wide_captions, 0,
        "captions overflow their tiles: {verdict:?}"
    );
}
