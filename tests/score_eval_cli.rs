//! End-to-end `xray-gan score` and `xray-gan eval` through the real binary.

use std::path::Path;
use std::process::Command;

#[path = "../crates/gan-metrics/tests/browser/mod.rs"]
mod browser;

fn xray_gan() -> Command {
    Command::new(env!("CARGO_BIN_EXE_xray-gan"))
}

fn ok(command: &mut Command) -> String {
    let out = command.output().unwrap();
    assert!(
        out.status.success(),
        "{}\n{}",
        String::from_utf8_lossy(&out.stdout),
        String::from_utf8_lossy(&out.stderr)
    );
    String::from_utf8_lossy(&out.stdout).into_owned()
}

fn trained_run(data: &Path, run: &Path) {
    trained_run_in(data, run, "png");
}

/// Synthetic data in `format` (png or dicom), and a tiny BiGAN trained on it.
fn trained_run_in(data: &Path, run: &Path, format: &str) {
    ok(xray_gan()
        .args(["synth", "--format", format])
        .args([
            "--seed",
            "5",
            "--studies-per-part",
            "12",
            "--parts",
            "hand,wrist",
            "--size",
            "48",
            "--out",
        ])
        .arg(data));
    ok(xray_gan()
        .args([
            "train",
            "--model",
            "bigan",
            "--image-size",
            "32",
            "--width",
            "8",
            "--batch-size",
            "8",
            "--epochs",
            "2",
            "--cache-dir",
            "none",
            "--data",
        ])
        .arg(data)
        .arg("--out")
        .arg(run));
}

#[test]
fn score_then_eval_writes_every_output() {
    let data = tempfile::tempdir().unwrap();
    let run = tempfile::tempdir().unwrap();
    let out = tempfile::tempdir().unwrap();
    trained_run(data.path(), run.path());
    let scores = out.path().join("scores.csv");
    let stdout = score(run.path(), &scores);
    assert!(stdout.contains("valid images"), "{stdout}");
    let text = std::fs::read_to_string(&scores).unwrap();
    let mut lines = text.lines();
    assert_eq!(
        lines.next().unwrap(),
        "path,split,group,patient,study,label,l1,l2,fm_d3,fm_d4,fm_e,disc,l1_top1,l1_top1_wide,dssim,dssim_top1"
    );
    let rows: Vec<Vec<&str>> = lines.map(|l| l.split(',').collect()).collect();
    assert!(rows.iter().any(|r| r[1] == "calib" && r[5] == "0"));
    assert!(rows.iter().any(|r| r[1] == "valid" && r[5] == "1"));
    assert!(rows.iter().all(|r| r[2] == "HAND" || r[2] == "WRIST"));
    assert!(
        rows.iter()
            .filter(|r| r[1] == "valid")
            .all(|r| r[3].starts_with("patient") && r[4].starts_with("study"))
    );
    // scoring is deterministic
    let again = out.path().join("again.csv");
    score(run.path(), &again);
    assert_eq!(std::fs::read_to_string(&again).unwrap(), text);

    let eval = out.path().join("eval");
    let stdout = eval_with_run(&scores, &eval, run.path());
    assert!(stdout.contains("primary fused_2s AUROC"), "{stdout}");
    // a headline the scores do not have is bad usage naming the file, not a silent substitute
    let typo = xray_gan()
        .arg("eval")
        .arg("--scores")
        .arg(&scores)
        .arg("--out")
        .arg(out.path().join("eval-typo"))
        .args(["--primary", "izfi"])
        .output()
        .unwrap();
    let stderr = String::from_utf8_lossy(&typo.stderr);
    assert_eq!(typo.status.code(), Some(2), "{stderr}");
    assert!(
        stderr.contains("scores.csv") && stderr.contains("has no statistic \"izfi\""),
        "{stderr}"
    );
    for f in [
        "metrics.json",
        "roc.png",
        "pr.png",
        "histograms.png",
        "losses.png",
        "report.html",
    ] {
        assert!(eval.join(f).is_file(), "{f}");
    }
    let metrics: serde_json::Value =
        serde_json::from_slice(&std::fs::read(eval.join("metrics.json")).unwrap()).unwrap();
    assert!(metrics["image_level"]["l1"]["auroc"].is_number());
    assert!(metrics["by_group"]["HAND"].is_object() && metrics["study_level"]["max"].is_object());
    let html = std::fs::read_to_string(eval.join("report.html")).unwrap();
    assert!(html.contains("Most anomalous images"));
    assert!(
        html.split("src=\"")
            .skip(1)
            .all(|s| s.starts_with("data:image/png;base64,"))
    );
    // beside scores.csv, what produced it: the best weights and their digest
    let record: serde_json::Value =
        serde_json::from_slice(&std::fs::read(out.path().join("scores.provenance.json")).unwrap())
            .unwrap();
    assert!(
        record["weights"]
            .as_str()
            .unwrap()
            .ends_with("best.safetensors"),
        "{record}"
    );
    assert_eq!(record["weights_sha256"].as_str().unwrap().len(), 64);
    assert_eq!(record["split"], "valid");

    // `score --latest`, then eval: the gallery uses the latest weights, not `best` (which is
    // damaged here on purpose: reloading it would fail)
    let latest = out.path().join("latest.csv");
    ok(xray_gan()
        .args(["score", "--latest", "--run"])
        .arg(run.path())
        .arg("--out")
        .arg(&latest));
    // replaced, not written in place: best.safetensors is a hard link to the model.safetensors
    // of its epoch, which would be damaged with it
    let best = run.path().join("best.safetensors");
    std::fs::remove_file(&best).unwrap();
    std::fs::write(&best, b"damaged").unwrap();
    let eval_latest = out.path().join("eval-latest");
    eval_with_run(&latest, &eval_latest, run.path());
    let html = std::fs::read_to_string(eval_latest.join("report.html")).unwrap();
    assert!(
        html.contains("model.safetensors"),
        "the report names the weights used"
    );
    assert!(html.contains("Most anomalous images"));
    // the run folder moved after scoring: its file of the recorded name is used (the tempdir
    // guard then finds nothing to remove at the old place, which it allows)
    let moved = out.path().join("moved-run");
    std::fs::rename(run.path(), &moved).unwrap();
    let eval_moved = out.path().join("eval-moved");
    eval_with_run(&latest, &eval_moved, &moved);
    let html = std::fs::read_to_string(eval_moved.join("report.html")).unwrap();
    assert!(
        html.contains("moved-run/model.safetensors"),
        "the moved run's weights are named"
    );
}

#[test]
fn bad_scores_files_exit_with_code_2() {
    let dir = tempfile::tempdir().unwrap();
    let bad = dir.path().join("scores.csv");
    std::fs::write(&bad, "path,split,label,l1\nx,valid,1,0.3\n").unwrap();
    let out = xray_gan()
        .arg("eval")
        .arg("--scores")
        .arg(&bad)
        .arg("--out")
        .arg(dir.path().join("e"))
        .output()
        .unwrap();
    assert_eq!(out.status.code(), Some(2));
    assert!(String::from_utf8_lossy(&out.stderr).contains("scores.csv, line 1"));
    let out = xray_gan()
        .arg("score")
        .arg("--run")
        .arg(dir.path())
        .arg("--out")
        .arg(dir.path().join("s.csv"))
        .output()
        .unwrap();
    assert_ne!(out.status.code(), Some(0));
    assert!(String::from_utf8_lossy(&out.stderr).contains("config.json"));
}

#[test]
fn eval_with_one_class_says_auroc_is_undefined_and_nan_scores_are_refused() {
    let dir = tempfile::tempdir().unwrap();
    let scores = dir.path().join("scores.csv");
    let mut text = String::from("path,split,group,patient,study,label,l1\n");
    for i in 0..6 {
        text.push_str(&format!("n{i}.png,valid,HAND,p{i},s{i},0,0.{i}\n"));
    }
    std::fs::write(&scores, &text).unwrap();
    let out = eval(&scores, &dir.path().join("e"));
    let stderr = String::from_utf8_lossy(&out.stderr);
    assert!(out.status.success(), "{stderr}");
    let metrics: serde_json::Value =
        serde_json::from_slice(&std::fs::read(dir.path().join("e/metrics.json")).unwrap()).unwrap();
    let text = metrics.to_string();
    // no AUROC is invented: every auroc is null and a reason is given
    assert!(!text.contains("\"auroc\":0.5"), "{text}");
    assert!(text.contains("\"auroc\":null"), "{text}");
    assert!(text.contains("undefined"), "{text}");

    text_with_nan(&scores);
    let out = eval(&scores, &dir.path().join("e2"));
    let stderr = String::from_utf8_lossy(&out.stderr);
    assert_eq!(out.status.code(), Some(2), "{stderr}");
    assert!(
        stderr.contains("line 3") && stderr.contains("l1"),
        "{stderr}"
    );
}

fn text_with_nan(path: &std::path::Path) {
    std::fs::write(
        path,
        "path,split,group,patient,study,label,l1\na.png,valid,HAND,p,s,0,0.1\nb.png,valid,HAND,p,s,1,NaN\n",
    )
    .unwrap();
}

/// `xray-gan score --run RUN --out OUT`, which must succeed; its stdout.
fn score(run: &Path, out: &Path) -> String {
    ok(xray_gan()
        .arg("score")
        .arg("--run")
        .arg(run)
        .arg("--out")
        .arg(out))
}

/// `xray-gan eval --scores SCORES --out OUT --run RUN`, which must succeed; its stdout.
fn eval_with_run(scores: &Path, out: &Path, run: &Path) -> String {
    ok(xray_gan()
        .arg("eval")
        .arg("--scores")
        .arg(scores)
        .arg("--out")
        .arg(out)
        .arg("--run")
        .arg(run))
}

fn eval(scores: &std::path::Path, out: &std::path::Path) -> std::process::Output {
    xray_gan()
        .arg("eval")
        .arg("--scores")
        .arg(scores)
        .arg("--out")
        .arg(out)
        .output()
        .unwrap()
}

/// `predict` on a folder of images no label was given for: the threshold comes from the run
/// (written by `train`), every statistic equals what `score` gives for the same image, an
/// unreadable file is a counted skip, and the maps and the ranking page are written.
#[test]
fn predict_flags_new_images_at_the_runs_threshold_with_the_scores_of_score() {
    let data = tempfile::tempdir().unwrap();
    let run = tempfile::tempdir().unwrap();
    let out = tempfile::tempdir().unwrap();
    trained_run(data.path(), run.path());
    assert!(run.path().join("calibration_scores.csv").is_file());
    let scores = out.path().join("scores.csv");
    score(run.path(), &scores);
    let broken = out.path().join("extra");
    std::fs::create_dir_all(&broken).unwrap();
    std::fs::write(broken.join("broken.png"), b"not a png").unwrap();
    let predictions = out.path().join("predictions");
    let stdout = ok(xray_gan()
        .arg("predict")
        .arg("--run")
        .arg(run.path())
        .arg("--out")
        .arg(&predictions)
        .arg("--maps")
        .arg(data.path().join("MURA-v1.1/valid"))
        .arg(&broken));
    assert!(stdout.contains("1 skipped"), "{stdout}");

    let read = |path: &Path| {
        let mut reader = csv::Reader::from_path(path).unwrap();
        let header: Vec<String> = reader.headers().unwrap().iter().map(String::from).collect();
        let rows: Vec<Vec<String>> = reader
            .records()
            .map(|r| r.unwrap().iter().map(String::from).collect())
            .collect();
        (header, rows)
    };
    let (score_header, score_rows) = read(&scores);
    let (header, rows) = read(&predictions.join("predictions.csv"));
    let statistics = &score_header[6..];
    assert_eq!(&header[1..1 + statistics.len()], statistics);
    assert_eq!(
        &header[1 + statistics.len()..],
        ["primary_statistic", "primary", "percentile", "flagged"]
    );
    let valid: Vec<&Vec<String>> = score_rows.iter().filter(|r| r[1] == "valid").collect();
    assert!(!rows.is_empty());
    assert_eq!(rows.len(), valid.len());
    let mut flagged = 0;
    for row in &rows {
        let scored = valid
            .iter()
            .find(|r| row[0].ends_with(r[0].as_str()))
            .unwrap_or_else(|| panic!("{} is not among the scored images", row[0]));
        for (k, statistic) in statistics.iter().enumerate() {
            let (a, b): (f64, f64) = (row[1 + k].parse().unwrap(), scored[6 + k].parse().unwrap());
            assert!(
                (a - b).abs() <= 1e-5 * b.abs().max(1e-3),
                "{statistic}: predict {a}, score {b}"
            );
        }
        let n = statistics.len();
        assert_eq!(row[1 + n], "fused_2s");
        let percentile: f64 = row[3 + n].parse().unwrap();
        assert!((0.0..=100.0).contains(&percentile));
        flagged += usize::from(row[4 + n] == "1");
    }
    // abnormal images are half of the valid split: some, not all, exceed the 95th percentile
    // of the normal ones (at chance, about 5 % would)
    assert!(flagged < rows.len(), "{flagged} of {}", rows.len());
    let maps = std::fs::read_dir(predictions.join("maps")).unwrap().count();
    assert_eq!(maps, rows.len());
    let html = std::fs::read_to_string(predictions.join("predictions.html")).unwrap();
    assert!(
        html.contains("flagged") && html.contains("broken.png"),
        "{html}"
    );
    // as a person sees it at 1300 px: no sideways scrolling, every map loaded
    if let Some(verdict) = browser::check(&predictions.join("predictions.html")) {
        assert!(verdict.overflow <= 0, "horizontal scrollbar: {verdict:?}");
        assert_eq!(
            verdict.scrolling_tables, 0,
            "the ranking scrolls sideways: {verdict:?}"
        );
        assert_eq!(verdict.images as usize, maps, "{verdict:?}");
        assert_eq!(verdict.broken, 0, "{verdict:?}");
    }
}

/// A dataset stored as DICOM (CR, 12-bit, windowed, some MONOCHROME1) trains, scores and
/// predicts like PNG, and a DICOM file without an extension, as PACS exports name them, is found
/// by its preamble.
#[test]
fn a_dicom_dataset_trains_scores_and_predicts() {
    let data = tempfile::tempdir().unwrap();
    let run = tempfile::tempdir().unwrap();
    let out = tempfile::tempdir().unwrap();
    trained_run_in(data.path(), run.path(), "dicom");
    let scores = out.path().join("scores.csv");
    score(run.path(), &scores);
    let text = std::fs::read_to_string(&scores).unwrap();
    assert!(text.lines().skip(1).all(|l| l.contains(".dcm,")), "{text}");
    assert!(text.lines().count() > 10);
    // one file renamed as a PACS would export it: no extension
    let study = std::fs::read_dir(data.path().join("MURA-v1.1/valid/XR_HAND"))
        .unwrap()
        .flatten()
        .next()
        .unwrap()
        .path();
    let dcm = walk_first_dcm(&study);
    let new = out.path().join("new");
    std::fs::create_dir_all(&new).unwrap();
    std::fs::copy(&dcm, new.join("1.2.840.113619.2.55.3")).unwrap();
    std::fs::copy(&dcm, new.join("IMG0001")).unwrap();
    let stdout = ok(xray_gan()
        .arg("predict")
        .arg("--run")
        .arg(run.path())
        .arg("--out")
        .arg(out.path().join("p"))
        .arg(&new));
    assert!(stdout.starts_with("2 images scored"), "{stdout}");
    let predictions = std::fs::read_to_string(out.path().join("p/predictions.csv")).unwrap();
    let rows: Vec<&str> = predictions.lines().skip(1).collect();
    // the same file twice: the same scores
    let values = |row: &str| row.split(',').skip(1).map(String::from).collect::<Vec<_>>();
    assert_eq!(values(rows[0]), values(rows[1]));
}

fn walk_first_dcm(dir: &Path) -> std::path::PathBuf {
    let mut entries: Vec<_> = std::fs::read_dir(dir)
        .unwrap()
        .flatten()
        .map(|e| e.path())
        .collect();
    entries.sort();
    for e in entries {
        if e.is_dir() {
            return walk_first_dcm(&e);
        }
        if e.extension().is_some_and(|x| x == "dcm") {
            return e;
        }
    }
    panic!("no .dcm under {}", dir.display());
}

/// DICOM files no one here wrote (pydicom's test files: CR MONOCHROME1, CT and MR with rescale
/// and windows, big endian, RLE, JPEG 2000, RGB), named as PACS exports name them (UIDs, no
/// extension), in an image-folder dataset: they train, score and predict; the 12-bit lossy JPEG
/// no pure-Rust decoder reads is a counted skip that names the file.
#[test]
fn pydicom_sample_files_in_an_image_folder_train_score_and_predict() {
    let fixtures = Path::new(env!("CARGO_MANIFEST_DIR")).join("../gan-data/tests/fixtures/dicom");
    let readable = [
        "CR_monochrome1_6154.dcm",
        "CT_small.dcm",
        "MR_small.dcm",
        "MR_small_RLE.dcm",
        "MR_small_bigendian.dcm",
        "JPEG2000.dcm",
        "SC_rgb_decompressed.dcm",
    ];
    let data = tempfile::tempdir().unwrap();
    let root = data.path();
    let mut n = 0;
    let mut put = |folder: &str, name: &str| {
        let dir = root.join(folder);
        std::fs::create_dir_all(&dir).unwrap();
        n += 1;
        std::fs::copy(
            fixtures.join(name),
            dir.join(format!("1.2.826.0.1.3680043.{n}")),
        )
        .unwrap();
    };
    for copy in 0..3 {
        for name in readable {
            put("train/NORMAL", name);
            if copy == 0 {
                put("test/NORMAL", name);
                put("test/ABNORMAL", name);
            }
        }
    }
    put("train/NORMAL", "JPEG-lossy.dcm");
    let run = tempfile::tempdir().unwrap();
    let train = xray_gan()
        .args(["train", "--model", "autoencoder-u", "--format", "folder"])
        .args([
            "--normal-class",
            "NORMAL",
            "--image-size",
            "32",
            "--width",
            "8",
        ])
        .args([
            "--batch-size",
            "4",
            "--epochs",
            "1",
            "--cache-dir",
            "none",
            "--data",
        ])
        .arg(root)
        .arg("--out")
        .arg(run.path())
        .output()
        .unwrap();
    let stderr = String::from_utf8_lossy(&train.stderr);
    assert!(train.status.success(), "{stderr}");
    // the 36th file written, the last
    assert!(
        stderr.contains("skipped 1 of") && stderr.contains("1.2.826.0.1.3680043.36: "),
        "the unreadable file is named with its reason: {stderr}"
    );
    let scores = run.path().join("scores.csv");
    score(run.path(), &scores);
    let text = std::fs::read_to_string(&scores).unwrap();
    let test_rows = text.lines().filter(|l| l.contains(",test,")).count();
    assert_eq!(test_rows, 2 * readable.len(), "{text}");
    let stdout = ok(xray_gan()
        .arg("predict")
        .arg("--run")
        .arg(run.path())
        .arg("--out")
        .arg(run.path().join("predicted"))
        .arg(root.join("test")));
    assert!(
        stdout.starts_with(&format!("{} images scored", 2 * readable.len())),
        "{stdout}"
    );
}
