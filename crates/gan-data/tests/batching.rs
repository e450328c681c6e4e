//! Batches, augmentation and the calibration hold-out.

use candle::Device;
use gan_data::synth::{SynthConfig, write_synthetic_mura};
use gan_data::{
    Augmentation, Batcher, ImageSet, Label, Listing, LoadOptions, Preprocess, hold_out_calibration,
    load_images, read_mura,
};
use rand::SeedableRng;
use rand::rngs::StdRng;

fn image_set() -> (tempfile::TempDir, ImageSet) {
    let dir = tempfile::tempdir().unwrap();
    let config = SynthConfig {
        seed: 9,
        studies_per_part: 8,
        parts: vec!["finger".into()],
        size: 48,
        ..Default::default()
    };
    write_synthetic_mura(dir.path(), &config, false).unwrap();
    let table = read_mura(dir.path(), Listing::Auto).unwrap();
    let options = LoadOptions {
        preprocess: Preprocess {
            size: 32,
            ..Default::default()
        },
        ..Default::default()
    };
    let set = load_images(&table.samples, &options).unwrap();
    (dir, set)
}

#[test]
fn eval_batches_are_the_images_in_order_untouched() {
    let (_dir, set) = image_set();
    let batcher = Batcher::new(&set, 4, &Device::Cpu);
    let mut seen = 0;
    for batch in batcher.eval_batches() {
        let batch = batch.unwrap();
        let (b, c, h, w) = batch.images.dims4().unwrap();
        assert_eq!((c, h, w), (1, 32, 32));
        assert_eq!(b, batch.indices.len());
        let values: Vec<f32> = batch.images.flatten_all().unwrap().to_vec1().unwrap();
        for (k, &i) in batch.indices.iter().enumerate() {
            assert_eq!(i, seen + k);
            assert_eq!(&values[k * 1024..(k + 1) * 1024], set.image(i).as_slice());
        }
        seen += b;
    }
    assert_eq!(
        seen,
        set.len(),
        "every image once, a last partial batch included"
    );
}

#[test]
fn training_epochs_are_shuffled_reproducibly_and_augmented() {
    let (_dir, set) = image_set();
    let batcher = Batcher::new(&set, 4, &Device::Cpu);
    assert_eq!(batcher.epoch_order(1, 0), batcher.epoch_order(1, 0));
    assert_ne!(batcher.epoch_order(1, 0), batcher.epoch_order(1, 1));
    assert_ne!(batcher.epoch_order(1, 0), batcher.epoch_order(2, 0));
    let aug = Augmentation::default();
    let collect = |seed| -> Vec<Vec<f32>> {
        batcher
            .train_epoch(seed, 3, &aug)
            .map(|b| b.unwrap().images.flatten_all().unwrap().to_vec1().unwrap())
            .collect()
    };
    let a = collect(1);
    assert_eq!(a.len(), set.len() / 4, "full batches only");
    assert_eq!(a, collect(1), "same seed, same batches");
    assert_ne!(a, collect(2));
    // augmented images differ from the stored ones
    let batch = batcher.train_epoch(1, 3, &aug).next().unwrap().unwrap();
    let values: Vec<f32> = batch.images.flatten_all().unwrap().to_vec1().unwrap();
    assert_ne!(&values[..1024], set.image(batch.indices[0]).as_slice());
    // without augmentation they are the stored ones
    let plain = batcher
        .train_epoch(1, 3, &Augmentation::none())
        .next()
        .unwrap()
        .unwrap();
    let values: Vec<f32> = plain.images.flatten_all().unwrap().to_vec1().unwrap();
    assert_eq!(&values[..1024], set.image(plain.indices[0]).as_slice());
}

#[test]
fn augmentation_is_reproducible_bounded_and_off_when_none() {
    let size = 16;
    let image: Vec<f32> = (0..size * size)
        .map(|i| (i % size) as f32 / size as f32 * 2.0 - 1.0)
        .collect();
    let aug = Augmentation {
        flip_probability: 1.0,
        ..Augmentation::default()
    };
    let a = aug.apply(&image, size, &mut StdRng::seed_from_u64(4));
    let b = aug.apply(&image, size, &mut StdRng::seed_from_u64(4));
    assert_eq!(a, b);
    assert!(a.iter().all(|v| (-1.0..=1.0).contains(v)));
    // a certain flip turns a left-to-right ramp into a right-to-left one
    assert!(a[8 * size + 1] > a[8 * size + size - 2]);
    assert_eq!(
        Augmentation::none().apply(&image, size, &mut StdRng::seed_from_u64(4)),
        image
    );
}

#[test]
fn calibration_hold_out_is_deterministic_and_keeps_studies_together() {
    let (_dir, set) = image_set();
    let normal: Vec<_> = set
        .samples
        .iter()
        .filter(|s| s.label == Label::Normal)
        .cloned()
        .collect();
    let (train, calib) = hold_out_calibration(&normal, 0.3, 42);
    assert_eq!(train.len() + calib.len(), normal.len());
    assert!(!calib.is_empty() && !train.is_empty());
    assert_eq!(
        hold_out_calibration(&normal, 0.3, 42),
        (train.clone(), calib.clone())
    );
    let calib_studies: std::collections::HashSet<_> =
        calib.iter().map(|&i| normal[i].study_key()).collect();
    assert!(
        train
            .iter()
            .all(|&i| !calib_studies.contains(&normal[i].study_key()))
    );
    // the choice of a study does not depend on which other samples are present
    let (_, calib_half) = hold_out_calibration(&normal[..normal.len() / 2], 0.3, 42);
    let expected: Vec<_> = calib
        .iter()
        .copied()
        .filter(|&i| i < normal.len() / 2)
        .collect();
    assert_eq!(calib_half, expected);
}
