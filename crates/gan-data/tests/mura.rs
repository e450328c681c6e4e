//! Parsing MURA-v1.1 trees: counts match what the generator wrote, CSV and tree walk agree,
//! broken listings are skipped and counted, wrong layouts are errors naming the path.

use std::collections::BTreeMap;
use std::fs;

use gan_data::synth::{SynthConfig, write_synthetic_mura};
use gan_data::{DataError, Label, Listing, read_mura};

fn small_config() -> SynthConfig {
    SynthConfig {
        seed: 3,
        studies_per_part: 6,
        parts: vec!["hand".into(), "Shoulder".into()],
        size: 48,
        ..Default::default()
    }
}

#[test]
fn parser_reads_back_exactly_what_synth_wrote() {
    let dir = tempfile::tempdir().unwrap();
    let summary = write_synthetic_mura(dir.path(), &small_config(), false).unwrap();
    let table = read_mura(dir.path(), Listing::Auto).unwrap();
    assert!(table.skipped.is_empty(), "{:?}", table.skipped);

    let mut expected = BTreeMap::new();
    for image in &summary.images {
        *expected
            .entry((image.split.clone(), image.part.clone(), image.label))
            .or_insert(0) += 1;
    }
    let parsed: BTreeMap<_, _> = table.counts().into_iter().collect();
    assert_eq!(parsed, expected);
    assert_eq!(table.len(), summary.images.len());
    // both splits, both parts, both labels are present
    assert_eq!(
        table.splits(),
        vec!["train".to_string(), "valid".to_string()]
    );
    assert_eq!(parsed.len(), 8);

    // every image inherits its study's label, and the paths are the generator's
    let mut generated: Vec<_> = summary
        .images
        .iter()
        .map(|i| (i.rel_path.clone(), i.label))
        .collect();
    generated.sort();
    let read: Vec<_> = table
        .samples
        .iter()
        .map(|s| (s.rel_path.clone(), s.label))
        .collect();
    assert_eq!(read, generated);
    let s = &table.samples[0];
    assert!(s.patient.as_deref().unwrap().starts_with("patient"));
    assert!(s.study.as_deref().unwrap().starts_with("study"));
    assert!(s.view.starts_with("image"));
    assert!(s.path.is_file());
}

#[test]
fn csv_listing_and_tree_walk_agree() {
    let dir = tempfile::tempdir().unwrap();
    write_synthetic_mura(dir.path(), &small_config(), false).unwrap();
    let csv = read_mura(dir.path(), Listing::Csv).unwrap();
    let walk = read_mura(dir.path(), Listing::Walk).unwrap();
    assert_eq!(csv.samples, walk.samples);
    // the MURA folder itself can be given too
    let inner = read_mura(&dir.path().join("MURA-v1.1"), Listing::Auto).unwrap();
    assert_eq!(inner.samples, csv.samples);
}

#[test]
fn filters_select_split_part_and_label() {
    let dir = tempfile::tempdir().unwrap();
    write_synthetic_mura(dir.path(), &small_config(), false).unwrap();
    let table = read_mura(dir.path(), Listing::Auto).unwrap();
    let all = table.len();
    let train_normal_hand = table
        .clone()
        .split("train")
        .groups(&["HAND".into()])
        .label(Label::Normal);
    assert!(!train_normal_hand.is_empty());
    assert!(train_normal_hand.len() < all);
    assert!(
        train_normal_hand
            .samples
            .iter()
            .all(|s| s.split == "train" && s.group == "HAND" && s.label == Label::Normal)
    );
}

#[test]
fn missing_files_and_malformed_rows_are_skipped_and_counted() {
    let dir = tempfile::tempdir().unwrap();
    write_synthetic_mura(dir.path(), &small_config(), false).unwrap();
    let mura = dir.path().join("MURA-v1.1");
    let before = read_mura(dir.path(), Listing::Csv).unwrap().len();
    let csv = mura.join("train_image_paths.csv");
    let mut text = fs::read_to_string(&csv).unwrap();
    text.push_str("MURA-v1.1/train/XR_HAND/patient99999/study1_negative/image1.png\n");
    text.push_str("this is not a path\n");
    fs::write(&csv, text).unwrap();
    let table = read_mura(dir.path(), Listing::Csv).unwrap();
    assert_eq!(table.len(), before);
    assert_eq!(table.skipped.len(), 2);
    assert!(
        table.skipped[0].reason.contains("missing"),
        "{:?}",
        table.skipped
    );
    assert!(table.skipped[1].reason.contains("train_image_paths.csv"));
}

#[test]
fn labeled_studies_csv_wins_over_folder_suffix() {
    let dir = tempfile::tempdir().unwrap();
    write_synthetic_mura(dir.path(), &small_config(), false).unwrap();
    let csv = dir.path().join("MURA-v1.1/valid_labeled_studies.csv");
    let text = fs::read_to_string(&csv).unwrap();
    let first = text.lines().next().unwrap().to_string();
    let (study, label) = first.rsplit_once(',').unwrap();
    let flipped = if label == "1" { "0" } else { "1" };
    fs::write(
        &csv,
        text.replacen(&first, &format!("{study},{flipped}"), 1),
    )
    .unwrap();
    let table = read_mura(dir.path(), Listing::Auto).unwrap();
    let study_rel = study.trim_start_matches("MURA-v1.1/");
    let images: Vec<_> = table
        .samples
        .iter()
        .filter(|s| s.rel_path.starts_with(study_rel))
        .collect();
    assert!(!images.is_empty());
    assert!(
        images
            .iter()
            .all(|s| s.label.as_u8().to_string() == flipped)
    );
}

#[test]
fn wrong_layouts_are_errors_that_name_the_path() {
    let dir = tempfile::tempdir().unwrap();
    let missing = dir.path().join("nope");
    let err = read_mura(&missing, Listing::Auto).unwrap_err();
    assert!(matches!(err, DataError::Layout { .. }));
    assert!(err.to_string().contains("nope"), "{err}");

    fs::create_dir_all(dir.path().join("random/stuff")).unwrap();
    let err = read_mura(&dir.path().join("random"), Listing::Auto).unwrap_err();
    assert!(err.to_string().contains("not a MURA-v1.1 folder"), "{err}");

    // a MURA folder with no images at all
    fs::create_dir_all(dir.path().join("empty/MURA-v1.1/train/XR_HAND")).unwrap();
    let err = read_mura(&dir.path().join("empty"), Listing::Auto).unwrap_err();
    assert!(err.to_string().contains("no images found"), "{err}");

    // a malformed labelled-studies CSV names the file and the line
    let bad = dir.path().join("bad/MURA-v1.1");
    fs::create_dir_all(bad.join("train/XR_HAND/patient00001/study1_negative")).unwrap();
    fs::write(
        bad.join("train_labeled_studies.csv"),
        "MURA-v1.1/train/XR_HAND/patient00001/study1_negative/,maybe\n",
    )
    .unwrap();
    let err = read_mura(&dir.path().join("bad"), Listing::Auto).unwrap_err();
    let msg = err.to_string();
    assert!(
        msg.contains("train_labeled_studies.csv") && msg.contains("line 1"),
        "{msg}"
    );
}
