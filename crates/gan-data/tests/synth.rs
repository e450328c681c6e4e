//! The synthetic radiograph generator: reproducible, MURA-shaped, realistic abnormality sizes.

use std::collections::BTreeMap;

use gan_data::synth::{
    AnomalyKind, SynthConfig, SynthFormat, read_anomaly_kinds, render_example, write_synthetic_mura,
};
use gan_data::{BODY_PARTS, Label, decode_grey, has_dicom_preamble};

#[test]
fn abnormality_sizes_are_realistic() {
    for (p, part) in BODY_PARTS.iter().enumerate() {
        for seed in 0..4u64 {
            let seed = seed * 31 + p as u64;
            let (image, record) = render_example(part, Some(AnomalyKind::Hardware), seed, 0, 256);
            let area = record.anomaly_pixels as f64 / (image.width() * image.height()) as f64;
            assert!(
                (0.01..=0.06).contains(&area),
                "{part} seed {seed}: hardware covers {area:.4}"
            );

            let (_, fracture) = render_example(part, Some(AnomalyKind::Fracture), seed, 0, 256);
            // a line 1–3 px wide across a bone at most ~45 px wide (with obliquity and fragment offset)
            assert!(
                fracture.anomaly_pixels > 0,
                "{part} seed {seed}: fracture not drawn"
            );
            assert!(
                fracture.anomaly_pixels <= 3 * 60,
                "{part} seed {seed}: fracture covers {}",
                fracture.anomaly_pixels
            );

            let (_, lesion) = render_example(part, Some(AnomalyKind::Lesion), seed, 0, 256);
            // diameter 2–5 % of 256 px = 5–13 px: at most π·6.5² ≈ 133 px
            assert!(
                lesion.anomaly_pixels > 0 && lesion.anomaly_pixels <= 140,
                "{part} seed {seed}: lesion covers {}",
                lesion.anomaly_pixels
            );

            let (normal, none) = render_example(part, None, seed, 0, 256);
            assert_eq!(none.anomaly_pixels, 0);
            assert_eq!(none.label, Label::Normal);
            // the abnormal image differs from the normal one of the same person and posture
            let (abnormal, _) = render_example(part, Some(AnomalyKind::Cast), seed, 0, 256);
            assert_ne!(normal.as_raw(), abnormal.as_raw());
        }
    }
}

#[test]
fn images_look_like_radiographs_in_their_statistics() {
    // dark background, bright bone, full use of the grey range
    let (image, _) = render_example("FOREARM", None, 1, 0, 128);
    let mut values: Vec<u8> = image.as_raw().clone();
    values.sort_unstable();
    let pct = |q: f64| values[((values.len() - 1) as f64 * q) as usize];
    assert!(pct(0.05) < 60, "background should be dark: {}", pct(0.05));
    assert!(pct(0.99) > 170, "bone should be bright: {}", pct(0.99));
    assert!(image.width() < image.height() || image.width() == image.height());
}

#[test]
fn same_seed_same_bytes_other_seed_other_images() {
    let a = tempfile::tempdir().unwrap();
    let b = tempfile::tempdir().unwrap();
    let c = tempfile::tempdir().unwrap();
    let config = SynthConfig {
        seed: 12,
        studies_per_part: 2,
        parts: vec!["elbow".into()],
        size: 64,
        ..Default::default()
    };
    let sa = write_synthetic_mura(a.path(), &config, false).unwrap();
    let sb = write_synthetic_mura(b.path(), &config, false).unwrap();
    assert_eq!(sa.images, sb.images);
    for image in &sa.images {
        let fa = std::fs::read(sa.mura_dir.join(&image.rel_path)).unwrap();
        let fb = std::fs::read(sb.mura_dir.join(&image.rel_path)).unwrap();
        assert_eq!(fa, fb, "{}", image.rel_path);
    }
    let sc = write_synthetic_mura(c.path(), &SynthConfig { seed: 13, ..config }, false).unwrap();
    let first = &sc.images[0];
    let other = std::fs::read(sc.mura_dir.join(&first.rel_path)).unwrap();
    assert!(
        sa.images
            .iter()
            .all(|i| std::fs::read(sa.mura_dir.join(&i.rel_path)).unwrap() != other)
    );
}

#[test]
fn side_file_names_each_image_and_kinds_are_balanced() {
    let dir = tempfile::tempdir().unwrap();
    let config = SynthConfig {
        seed: 1,
        studies_per_part: 16,
        parts: vec!["humerus".into()],
        size: 32,
        ..Default::default()
    };
    let summary = write_synthetic_mura(dir.path(), &config, false).unwrap();
    let kinds = read_anomaly_kinds(&summary.mura_dir.join("synth_anomalies.csv")).unwrap();
    assert_eq!(kinds.len(), summary.images.len());
    let mut per_kind: BTreeMap<AnomalyKind, usize> = BTreeMap::new();
    for image in &summary.images {
        assert_eq!(kinds[&image.rel_path], image.kind);
        assert_eq!(image.kind.is_some(), image.label == Label::Abnormal);
        assert!(image.rel_path.contains(if image.kind.is_some() {
            "_positive/"
        } else {
            "_negative/"
        }));
        if let Some(k) = image.kind {
            *per_kind.entry(k).or_default() += 1;
        }
    }
    assert_eq!(per_kind.len(), 4, "every kind appears: {per_kind:?}");
}

#[test]
fn refuses_to_overwrite_and_rejects_bad_settings() {
    let dir = tempfile::tempdir().unwrap();
    let config = SynthConfig {
        studies_per_part: 1,
        parts: vec!["hand".into()],
        size: 32,
        ..Default::default()
    };
    write_synthetic_mura(dir.path(), &config, false).unwrap();
    let err = write_synthetic_mura(dir.path(), &config, false)
        .unwrap_err()
        .to_string();
    assert!(
        err.contains("MURA-v1.1") && err.contains("already exists"),
        "{err}"
    );
    let bad = SynthConfig {
        parts: vec!["knee".into()],
        ..config.clone()
    };
    let err = write_synthetic_mura(tempfile::tempdir().unwrap().path(), &bad, false)
        .unwrap_err()
        .to_string();
    assert!(err.contains("knee"), "{err}");
    let bad = SynthConfig { size: 8, ..config };
    assert!(write_synthetic_mura(tempfile::tempdir().unwrap().path(), &bad, false).is_err());
}

/// The DICOM version of the synthetic data decodes to the PNG version's pixels (12 bits stored,
/// windowed back to within half a grey level), MONOCHROME1 studies included.
#[test]
fn dicom_synthetic_data_decodes_to_the_png_pixels() {
    let (png, dcm) = (tempfile::tempdir().unwrap(), tempfile::tempdir().unwrap());
    let config = SynthConfig {
        seed: 2,
        studies_per_part: 4,
        parts: vec!["hand".into()],
        size: 40,
        ..Default::default()
    };
    let a = write_synthetic_mura(png.path(), &config, false).unwrap();
    let dicom = SynthConfig {
        format: SynthFormat::Dicom,
        ..config
    };
    let b = write_synthetic_mura(dcm.path(), &dicom, false).unwrap();
    assert_eq!(a.images.len(), b.images.len());
    let mut monochrome1 = 0;
    for (x, y) in a.images.iter().zip(&b.images) {
        assert!(y.rel_path.ends_with(".dcm"), "{}", y.rel_path);
        let bytes = std::fs::read(b.mura_dir.join(&y.rel_path)).unwrap();
        assert!(has_dicom_preamble(&bytes));
        monochrome1 += usize::from(bytes.windows(11).any(|w| w == b"MONOCHROME1"));
        let p = decode_grey(&a.mura_dir.join(&x.rel_path), u64::MAX).unwrap();
        let d = decode_grey(&b.mura_dir.join(&y.rel_path), u64::MAX).unwrap();
        assert_eq!(p.dimensions(), d.dimensions());
        let worst = p
            .as_raw()
            .iter()
            .zip(d.as_raw())
            .map(|(u, v)| (u - v).abs())
            .fold(0f32, f32::max);
        assert!(worst < 0.6 / 255.0, "{}: {worst}", y.rel_path);
    }
    assert!(monochrome1 > 0, "some studies are MONOCHROME1");
}
