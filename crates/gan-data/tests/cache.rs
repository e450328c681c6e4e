//! The preprocessed-image cache: a second load decodes nothing and gives the same pixels; a
//! changed file, other preprocessing or a damaged cache file cause a fresh decode.

use std::fs;

use gan_data::synth::{SynthConfig, write_synthetic_mura};
use gan_data::{Fit, Listing, LoadOptions, Preprocess, load_images, read_mura};

#[test]
fn second_load_comes_from_the_cache() {
    let data = tempfile::tempdir().unwrap();
    let cache = tempfile::tempdir().unwrap();
    let config = SynthConfig {
        seed: 5,
        studies_per_part: 3,
        parts: vec!["wrist".into()],
        size: 64,
        ..Default::default()
    };
    write_synthetic_mura(data.path(), &config, false).unwrap();
    let table = read_mura(data.path(), Listing::Auto).unwrap();
    let options = LoadOptions {
        preprocess: Preprocess {
            size: 32,
            fit: Fit::CentreCrop,
            ..Default::default()
        },
        cache_dir: Some(cache.path().to_path_buf()),
        ..Default::default()
    };
    let first = load_images(&table.samples, &options).unwrap();
    assert_eq!(first.report.decoded, table.len());
    assert!(!first.report.from_cache);

    let second = load_images(&table.samples, &options).unwrap();
    assert_eq!(second.report.decoded, 0, "the second load must not decode");
    assert!(second.report.from_cache);
    assert_eq!(second.samples, first.samples);
    for i in 0..first.len() {
        assert_eq!(first.image(i), second.image(i));
    }

    // other preprocessing: another cache entry
    let other = LoadOptions {
        preprocess: Preprocess {
            size: 32,
            fit: Fit::Letterbox,
            ..Default::default()
        },
        ..options.clone()
    };
    assert_eq!(
        load_images(&table.samples, &other).unwrap().report.decoded,
        table.len()
    );

    // a file that changed (size and mtime): decoded again
    let victim = &table.samples[0].path;
    image::GrayImage::new(10, 10).save(victim).unwrap();
    let third = load_images(&table.samples, &options).unwrap();
    assert_eq!(third.report.decoded, table.len());
    assert!(third.image(0).iter().all(|&v| v == -1.0));

    // a damaged cache file is ignored and rebuilt
    for entry in fs::read_dir(cache.path()).unwrap() {
        let path = entry.unwrap().path();
        let mut bytes = fs::read(&path).unwrap();
        let mid = bytes.len() / 2;
        bytes[mid] ^= 0xFF;
        fs::write(&path, bytes).unwrap();
    }
    let fourth = load_images(&table.samples, &options).unwrap();
    assert_eq!(fourth.report.decoded, table.len());
    assert_eq!(fourth.image(0), third.image(0));
}
