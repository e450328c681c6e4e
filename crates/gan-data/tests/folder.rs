//! Image folders `ROOT/<split>/<class>/*`: labels from the normal class, clear errors.

use std::fs;
use std::path::Path;

use gan_data::{DatasetFormat, DatasetSpec, Label, open_dataset, read_image_folder};

fn write_png(path: &Path, value: u8) {
    fs::create_dir_all(path.parent().unwrap()).unwrap();
    image::GrayImage::from_pixel(20, 16, image::Luma([value]))
        .save(path)
        .unwrap();
}

fn folder_dataset(root: &Path) {
    write_png(&root.join("train/NORMAL/a.png"), 10);
    write_png(&root.join("train/NORMAL/b.PNG"), 20);
    write_png(&root.join("test/NORMAL/c.png"), 30);
    write_png(&root.join("test/PNEUMONIA/d.png"), 40);
    write_png(&root.join("test/PNEUMONIA/e.png"), 50);
    fs::write(root.join("test/PNEUMONIA/notes.txt"), "not an image").unwrap();
}

#[test]
fn classes_become_labels_and_groups() {
    let dir = tempfile::tempdir().unwrap();
    folder_dataset(dir.path());
    let table = read_image_folder(dir.path(), "NORMAL").unwrap();
    assert_eq!(table.len(), 5);
    assert_eq!(table.skipped.len(), 1);
    assert!(table.skipped[0].path.ends_with("notes.txt"));
    let train = table.clone().split("train");
    assert_eq!(train.len(), 2);
    assert!(
        train
            .samples
            .iter()
            .all(|s| s.label == Label::Normal && s.group == "NORMAL")
    );
    let test = table.split("test");
    let abnormal: Vec<_> = test
        .samples
        .iter()
        .filter(|s| s.label == Label::Abnormal)
        .collect();
    assert_eq!(abnormal.len(), 2);
    assert!(
        abnormal
            .iter()
            .all(|s| s.group == "PNEUMONIA" && s.patient.is_none())
    );
    assert_eq!(abnormal[0].rel_path, "test/PNEUMONIA/d.png");
}

#[test]
fn auto_format_detects_folders_and_needs_a_normal_class() {
    let dir = tempfile::tempdir().unwrap();
    folder_dataset(dir.path());
    assert_eq!(
        DatasetFormat::Auto.resolve(dir.path()),
        DatasetFormat::Folder
    );
    let spec = DatasetSpec {
        format: DatasetFormat::Auto,
        normal_class: None,
    };
    let err = open_dataset(dir.path(), &spec).unwrap_err();
    assert!(err.to_string().contains("--normal-class"), "{err}");
    let spec = DatasetSpec {
        format: DatasetFormat::Auto,
        normal_class: Some("NORMAL".into()),
    };
    assert_eq!(open_dataset(dir.path(), &spec).unwrap().len(), 5);
}

#[test]
fn unknown_normal_class_and_empty_folder_are_errors() {
    let dir = tempfile::tempdir().unwrap();
    folder_dataset(dir.path());
    let err = read_image_folder(dir.path(), "HEALTHY")
        .unwrap_err()
        .to_string();
    assert!(
        err.contains("HEALTHY") && err.contains("NORMAL, PNEUMONIA"),
        "{err}"
    );
    let empty = tempfile::tempdir().unwrap();
    let err = read_image_folder(empty.path(), "NORMAL")
        .unwrap_err()
        .to_string();
    assert!(err.contains("no class folders"), "{err}");
}

#[cfg(unix)]
#[test]
fn non_utf8_names_load_and_links_that_are_not_files_are_skipped_and_counted() {
    use std::ffi::OsStr;
    use std::os::unix::ffi::OsStrExt;
    use std::os::unix::fs::symlink;

    let dir = tempfile::tempdir().unwrap();
    folder_dataset(dir.path());
    let normal = dir.path().join("train/NORMAL");
    // a Latin-1 file name (0xE9 = é), not valid UTF-8
    let latin1 = normal.join(OsStr::from_bytes(b"caf\xe9.png"));
    write_png(&latin1, 99);
    // a link to itself (ELOOP), a dangling link, and a link to the folder above (a loop a
    // recursive walk would never leave)
    symlink("loop.png", normal.join("loop.png")).unwrap();
    symlink("nowhere.png", normal.join("dangling.png")).unwrap();
    symlink("..", normal.join("up")).unwrap();
    let table = read_image_folder(dir.path(), "NORMAL").unwrap();
    // the five images plus the Latin-1 one; the folder link is a folder and is not descended
    assert_eq!(table.len(), 6);
    let sample = table
        .samples
        .iter()
        .find(|s| s.path == latin1)
        .expect("the non-UTF-8 file is listed under its exact path");
    // its name in CSV outputs is the lossy UTF-8 form
    assert_eq!(sample.rel_path, "train/NORMAL/caf\u{FFFD}.png");
    let skipped: Vec<_> = table
        .skipped
        .iter()
        .filter(|s| s.reason.contains("not a regular file"))
        .map(|s| s.path.file_name().unwrap().to_string_lossy().into_owned())
        .collect();
    assert_eq!(skipped, ["dangling.png", "loop.png"]);
    // and it decodes
    let options = gan_data::LoadOptions::default();
    let images = gan_data::load_images(std::slice::from_ref(sample), &options).unwrap();
    assert_eq!(images.len(), 1);
}
