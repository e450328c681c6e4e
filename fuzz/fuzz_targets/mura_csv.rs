//! Any bytes, as MURA's `train_image_paths.csv` and `train_labeled_studies.csv` (the input is split
//! at its first NUL byte): parsing gives a table or an error naming the CSV; every listed image
//! either becomes a sample or a counted skip.
#![no_main]

use std::sync::OnceLock;

use gan_data::{Listing, read_mura};
use libfuzzer_sys::fuzz_target;

fn root() -> &'static tempfile::TempDir {
    static DIR: OnceLock<tempfile::TempDir> = OnceLock::new();
    DIR.get_or_init(|| {
        let dir = tempfile::tempdir().expect("temporary folder");
        let study = dir
            .path()
            .join("train/XR_HAND/patient00001/study1_positive");
        std::fs::create_dir_all(&study).expect("folders");
        std::fs::write(study.join("image1.png"), b"not decoded here").expect("file");
        std::fs::create_dir_all(dir.path().join("valid")).expect("folders");
        std::fs::write(dir.path().join("valid_image_paths.csv"), b"").expect("file");
        dir
    })
}

fuzz_target!(|bytes: &[u8]| {
    let root = root().path();
    let (paths, labels) = match bytes.iter().position(|&b| b == 0) {
        Some(i) => (&bytes[..i], &bytes[i + 1..]),
        None => (bytes, &[][..]),
    };
    std::fs::write(root.join("train_image_paths.csv"), paths).expect("write");
    std::fs::write(root.join("train_labeled_studies.csv"), labels).expect("write");
    match read_mura(root, Listing::Csv) {
        Ok(table) => {
            // every non-empty line of the listing is a sample or a counted skip
            let lines = String::from_utf8_lossy(paths)
                .lines()
                .filter(|l| !l.trim().trim_end_matches(',').is_empty())
                .count();
            assert_eq!(table.samples.len() + table.skipped.len(), lines);
            for sample in &table.samples {
                assert!(sample.path.starts_with(root), "{}", sample.path.display());
            }
        }
        // a CSV error names the CSV; an empty listing names the folder
        Err(e) => assert!(e.to_string().contains(&*root.to_string_lossy()), "{e}"),
    }
});
