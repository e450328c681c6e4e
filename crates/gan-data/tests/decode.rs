//! Decoding and preprocessing: bit depths, colour, fit modes, and bad files that must be skipped.

use std::fs;
use std::path::{Path, PathBuf};

use gan_data::{
    DataError, Fit, Label, LoadOptions, Preprocess, Sample, load_images, load_model_input,
};
use image::{ImageBuffer, Luma, Rgb};

fn pre(size: u32, fit: Fit) -> Preprocess {
    Preprocess {
        size,
        fit,
        ..Default::default()
    }
}

fn sample(path: &Path) -> Sample {
    Sample {
        path: path.to_path_buf(),
        rel_path: path.file_name().unwrap().to_string_lossy().into_owned(),
        split: "train".into(),
        group: "X".into(),
        patient: None,
        study: None,
        view: "v".into(),
        label: Label::Normal,
    }
}

#[test]
fn sixteen_bit_png_keeps_sixteen_bit_precision() {
    let dir = tempfile::tempdir().unwrap();
    let path = dir.path().join("deep.png");
    // left half 1000/65535, right half 65535: 1000 is not an 8-bit level (nearest is 4/255)
    let img = ImageBuffer::<Luma<u16>, _>::from_fn(32, 32, |x, _| {
        Luma([if x < 16 { 1000 } else { 65535 }])
    });
    img.save(&path).unwrap();
    let values = load_model_input(&path, &pre(32, Fit::CentreCrop)).unwrap();
    let expected_dark = 1000.0 / 65535.0 * 2.0 - 1.0; // −0.969482
    assert!((values[0] - expected_dark).abs() < 1e-5, "{}", values[0]);
    assert!((values[31] - 1.0).abs() < 1e-6);
    // 8-bit rounding would be off by 8.5e-4
    assert!((values[0] - (4.0 / 255.0 * 2.0 - 1.0)).abs() > 5e-4);
}

#[test]
fn rgb_jpeg_becomes_rec709_luma() {
    let dir = tempfile::tempdir().unwrap();
    let path = dir.path().join("red.jpg");
    ImageBuffer::<Rgb<u8>, _>::from_pixel(32, 32, Rgb([255, 0, 0]))
        .save(&path)
        .unwrap();
    let values = load_model_input(&path, &pre(16, Fit::CentreCrop)).unwrap();
    let expected = 0.2126 * 2.0 - 1.0; // luma of pure red on the [−1, 1] scale
    let mean = values.iter().sum::<f32>() / values.len() as f32;
    assert!(
        (mean - expected).abs() < 0.03,
        "mean {mean} expected {expected}"
    );
}

#[test]
fn centre_crop_and_letterbox_keep_the_aspect_ratio() {
    let dir = tempfile::tempdir().unwrap();
    let path = dir.path().join("wide.png");
    // 128×64, white in the left quarter only
    image::GrayImage::from_fn(128, 64, |x, _| Luma([if x < 32 { 255 } else { 0 }]))
        .save(&path)
        .unwrap();
    let crop = load_model_input(&path, &pre(32, Fit::CentreCrop)).unwrap();
    assert_eq!(crop.len(), 32 * 32);
    assert!(
        crop.iter().all(|&v| v < -0.95),
        "the centre crop holds no white"
    );
    let boxed = load_model_input(&path, &pre(32, Fit::Letterbox)).unwrap();
    // resized to 32×16, pasted at rows 8..24: rows above are padding, the left quarter is white
    assert!(boxed[2 * 32 + 2] < -0.99, "padding is black");
    assert!(
        boxed[16 * 32 + 2] > 0.95,
        "content keeps its left quarter white"
    );
    assert!(boxed[16 * 32 + 20] < -0.95);
}

#[test]
fn tiny_images_are_scaled_up() {
    let dir = tempfile::tempdir().unwrap();
    let path = dir.path().join("dot.png");
    image::GrayImage::from_pixel(1, 1, Luma([255]))
        .save(&path)
        .unwrap();
    let values = load_model_input(&path, &pre(16, Fit::CentreCrop)).unwrap();
    assert!(values.iter().all(|&v| (v - 1.0).abs() < 1e-6));
}

/// CRC-32 (IEEE) as PNG chunks need it.
fn crc32(bytes: &[u8]) -> u32 {
    let mut crc = 0xFFFF_FFFFu32;
    for &b in bytes {
        crc ^= b as u32;
        for _ in 0..8 {
            crc = if crc & 1 != 0 {
                (crc >> 1) ^ 0xEDB8_8320
            } else {
                crc >> 1
            };
        }
    }
    !crc
}

/// A valid small PNG whose header claims `w`×`h` pixels.
fn png_claiming(path: &Path, w: u32, h: u32) {
    let mut bytes = Vec::new();
    image::GrayImage::new(4, 4)
        .write_to(
            &mut std::io::Cursor::new(&mut bytes),
            image::ImageFormat::Png,
        )
        .unwrap();
    // IHDR data starts at byte 16 (8 signature + 4 length + 4 type)
    bytes[16..20].copy_from_slice(&w.to_be_bytes());
    bytes[20..24].copy_from_slice(&h.to_be_bytes());
    let crc = crc32(&bytes[12..29]);
    bytes[29..33].copy_from_slice(&crc.to_be_bytes());
    fs::write(path, bytes).unwrap();
}

#[test]
fn decompression_bombs_are_refused_before_decoding() {
    let dir = tempfile::tempdir().unwrap();
    let path = dir.path().join("bomb.png");
    png_claiming(&path, 60000, 60000);
    let err = load_model_input(&path, &Preprocess::default()).unwrap_err();
    assert!(
        matches!(
            err,
            DataError::TooLarge {
                width: 60000,
                height: 60000,
                ..
            }
        ),
        "{err}"
    );
    assert!(err.to_string().contains("bomb.png"));
}

fn bad_and_good_files(dir: &Path) -> Vec<PathBuf> {
    let good = dir.join("good.png");
    image::GrayImage::from_pixel(8, 8, Luma([128]))
        .save(&good)
        .unwrap();
    let good_jpg = dir.join("good.jpg");
    image::GrayImage::from_pixel(8, 8, Luma([64]))
        .save(&good_jpg)
        .unwrap();
    let empty = dir.join("empty.png");
    fs::write(&empty, b"").unwrap();
    let truncated = dir.join("truncated.png");
    let bytes = fs::read(&good).unwrap();
    fs::write(&truncated, &bytes[..bytes.len() / 2]).unwrap();
    let text = dir.join("text.png");
    fs::write(&text, "hello, I am not a picture").unwrap();
    let corrupt_jpeg = dir.join("corrupt.jpg");
    let mut junk = vec![0xFF, 0xD8, 0xFF, 0xE0];
    junk.extend((0..200u32).map(|i| (i * 37 % 251) as u8));
    fs::write(&corrupt_jpeg, junk).unwrap();
    let missing = dir.join("missing.png");
    vec![
        good,
        empty,
        truncated,
        text,
        corrupt_jpeg,
        good_jpg,
        missing,
    ]
}

#[test]
fn unreadable_files_are_skipped_and_counted() {
    let dir = tempfile::tempdir().unwrap();
    let files = bad_and_good_files(dir.path());
    let samples: Vec<Sample> = files.iter().map(|p| sample(p)).collect();
    let options = LoadOptions {
        preprocess: pre(8, Fit::CentreCrop),
        ..Default::default()
    };
    let set = load_images(&samples, &options).unwrap();
    assert_eq!(set.len(), 2);
    assert_eq!(set.samples[0].path, files[0]);
    assert_eq!(set.samples[1].path, files[5]);
    assert_eq!(set.report.requested, 7);
    assert_eq!(set.report.skipped.len(), 5);
    let reason = |name: &str| {
        set.report
            .skipped
            .iter()
            .find(|s| s.path.ends_with(name))
            .unwrap()
            .reason
            .clone()
    };
    assert!(reason("empty.png").contains("empty"));
    assert!(
        reason("missing.png").contains("No such file"),
        "{}",
        reason("missing.png")
    );
    assert!(
        reason("text.png").contains("decode"),
        "{}",
        reason("text.png")
    );
    // the good images are intact
    assert!((set.image(0)[0] - (128.0 / 255.0 * 2.0 - 1.0)).abs() < 1e-4);
}

#[test]
fn strict_mode_fails_on_the_first_bad_file_and_names_it() {
    let dir = tempfile::tempdir().unwrap();
    let files = bad_and_good_files(dir.path());
    let samples: Vec<Sample> = files.iter().map(|p| sample(p)).collect();
    let options = LoadOptions {
        preprocess: pre(8, Fit::CentreCrop),
        strict: true,
        ..Default::default()
    };
    let err = load_images(&samples, &options).unwrap_err().to_string();
    assert!(err.contains("5 of 7") && err.contains("empty.png"), "{err}");
}

fn chunk(out: &mut Vec<u8>, kind: &[u8; 4], data: &[u8]) {
    out.extend((data.len() as u32).to_be_bytes());
    let start = out.len();
    out.extend(kind);
    out.extend(data);
    let crc = crc32(&out[start..]);
    out.extend(crc.to_be_bytes());
}

/// A 4×2 palette PNG (colour type 3): left half palette entry 0 (dark red), right half entry 1
/// (white). The image crate cannot write palette PNGs, so the chunks are built here.
fn palette_png(path: &Path) {
    let mut png = b"\x89PNG\r\n\x1a\n".to_vec();
    let mut ihdr = Vec::new();
    ihdr.extend(4u32.to_be_bytes());
    ihdr.extend(2u32.to_be_bytes());
    ihdr.extend([8, 3, 0, 0, 0]); // bit depth 8, palette, deflate, no filter, no interlace
    chunk(&mut png, b"IHDR", &ihdr);
    chunk(&mut png, b"PLTE", &[128, 0, 0, 255, 255, 255]);
    // two scanlines: filter byte 0, then palette indices
    let raw = [0u8, 0, 0, 1, 1, 0, 0, 0, 1, 1];
    let mut zlib = vec![0x78, 0x01, 0x01];
    zlib.extend((raw.len() as u16).to_le_bytes());
    zlib.extend((!(raw.len() as u16)).to_le_bytes());
    zlib.extend(raw);
    let (mut a, mut b) = (1u32, 0u32);
    for &byte in &raw {
        a = (a + byte as u32) % 65521;
        b = (b + a) % 65521;
    }
    zlib.extend(((b << 16) | a).to_be_bytes());
    chunk(&mut png, b"IDAT", &zlib);
    chunk(&mut png, b"IEND", &[]);
    fs::write(path, png).unwrap();
}

#[test]
fn palette_png_becomes_the_luma_of_its_colours() {
    let dir = tempfile::tempdir().unwrap();
    let path = dir.path().join("palette.png");
    palette_png(&path);
    let values = load_model_input(&path, &pre(4, Fit::Letterbox)).unwrap();
    assert_eq!(values.len(), 16);
    // the middle rows of the letterboxed 4×4: dark red on the left, white on the right
    let red = (0.2126f32 * 128.0 / 255.0) * 2.0 - 1.0;
    let row = &values[4..8];
    assert!((row[0] - red).abs() < 0.02, "{row:?}");
    assert!((row[3] - 1.0).abs() < 0.02, "{row:?}");
}
