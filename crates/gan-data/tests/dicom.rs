//! DICOM input: pydicom's test files decoded as pydicom decodes them, recognised by content in
//! folder walks, refused with a clear error when broken, and written back by `write_dicom`.
//!
//! The expected numbers come from `tests/fixtures/dicom/reference.py` (pydicom 3.0.2 with numpy,
//! pylibjpeg, pylibjpeg-libjpeg, pylibjpeg-openjpeg), run in that folder. Its rule, in pydicom:
//!
//! ```python
//! def grey01(ds):
//!     raw = ds.pixel_array
//!     if raw.ndim == 3:  # RGB: Rec. 709 luma of the stored values
//!         return raw, None, raw @ [0.2126, 0.7152, 0.0722] / (2**ds.BitsStored - 1)
//!     modality = apply_modality_lut(raw, ds).astype("float64")
//!     if "WindowCenter" in ds or "VOILUTSequence" in ds:
//!         voi = apply_voi_lut(modality, ds, prefer_lut=True)
//!         # apply_windowing's output range (its y_min, y_max) mapped to [0, 1]
//!         signed = ds.PixelRepresentation == 1
//!         lo, hi = (-(2 ** (ds.BitsStored - 1)), 2 ** (ds.BitsStored - 1) - 1) if signed else (0, 2**ds.BitsStored - 1)
//!         if "RescaleSlope" in ds:
//!             lo, hi = lo * ds.RescaleSlope + ds.RescaleIntercept, hi * ds.RescaleSlope + ds.RescaleIntercept
//!         out = (voi - lo) / (hi - lo)
//!     else:  # min-max of the frame
//!         out = (modality - modality.min()) / (modality.max() - modality.min())
//!     if ds.PhotometricInterpretation == "MONOCHROME1":
//!         out = 1 - out
//!     return raw, modality, out
//! ```
//!
//! printed at (0, 0), the centre, the darkest and the brightest pixel (and, for RGB, the most
//! coloured one) as `(x, y): stored -> modality -> [0, 1]`.

use std::fs;
use std::path::{Path, PathBuf};

use dicom_core::value::DataSetSequence;
use dicom_core::{DataElement, PrimitiveValue, VR};
use dicom_dictionary_std::{tags, uids};
use dicom_object::InMemDicomObject;
use gan_data::{
    DataError, GreyImage, LoadOptions, decode_grey, decode_grey_bytes, has_dicom_preamble,
    load_images, read_image_folder, write_dicom,
};

fn fixture(name: &str) -> PathBuf {
    Path::new(env!("CARGO_MANIFEST_DIR"))
        .join("tests/fixtures/dicom")
        .join(name)
}

fn decode(name: &str) -> GreyImage {
    decode_grey(&fixture(name), u64::MAX).unwrap_or_else(|e| panic!("{e}"))
}

/// Asserts the decoded value at each `(x, y)` against pydicom's, within `tolerance`.
fn assert_pixels(image: &GreyImage, expected: &[((u32, u32), f32)], tolerance: f32) {
    for &((x, y), want) in expected {
        let got = image.get_pixel(x, y).0[0];
        assert!(
            (got - want).abs() <= tolerance,
            "({x}, {y}): decoded {got}, pydicom {want}"
        );
    }
}

fn assert_decode_error_names(result: gan_data::Result<GreyImage>, path: &Path, reason: &str) {
    match result {
        Err(e @ DataError::Decode { .. }) => {
            let message = e.to_string();
            assert!(
                message.contains(&path.display().to_string()) && message.contains(reason),
                "{message}"
            );
        }
        Err(e) => panic!("expected a decode error, got {e}"),
        Ok(_) => panic!("{} decoded", path.display()),
    }
}

#[test]
fn monochrome1_cr_is_rescaled_windowed_and_inverted() {
    // CR_monochrome1_6154 16x16: rescale 0.684/200, window 1600/2800, MONOCHROME1
    //   (x 0, y 0): stored 1994 modality 1563.9 -> 0.5127203
    //   (x 8, y 8): stored 2515 modality 1920.26 -> 0.3854019
    //   (x 1, y 15): stored 2802 modality 2116.57 -> 0.3152669
    let image = decode("CR_monochrome1_6154.dcm");
    assert_eq!(image.dimensions(), (16, 16));
    assert_pixels(
        &image,
        &[
            ((0, 0), 0.512_720_3),
            ((8, 8), 0.385_401_9),
            ((1, 15), 0.315_266_9),
        ],
        1e-5,
    );
    // inverted: the lowest stored value (1994, at the origin) is the brightest pixel
    let brightest = image.pixels().map(|p| p.0[0]).fold(0.0, f32::max);
    assert_eq!(brightest, image.get_pixel(0, 0).0[0]);
}

#[test]
fn ct_rescale_intercept_then_min_max_without_a_window() {
    // CT_small 128x128: signed, rescale 1/-1024, no window
    //   (x 0, y 0): stored 175 modality -849 -> 0.0227824
    //   (x 64, y 64): stored 1928 modality 904 -> 0.8725158
    //   (x 118, y 5): stored 128 modality -896 -> 0.0000000
    //   (x 61, y 64): stored 2191 modality 1167 -> 1.0000000
    let image = decode("CT_small.dcm");
    assert_eq!(image.dimensions(), (128, 128));
    assert_pixels(
        &image,
        &[
            ((0, 0), 0.022_782_4),
            ((64, 64), 0.872_515_8),
            ((118, 5), 0.0),
            ((61, 64), 1.0),
        ],
        1e-5,
    );
}

/// MR_small 64x64: signed 16-bit, window 600/1600, no rescale
///   (x 0, y 0): stored 905 modality 905 -> 0.6910569
///   (x 32, y 32): stored 182 modality 182 -> 0.2388993
///   (x 38, y 57): stored 127 modality 127 -> 0.2045028
///   (x 9, y 0): stored 2145 modality 2145 -> 1.0000000 (above the window)
const MR_SMALL: [((u32, u32), f32); 4] = [
    ((0, 0), 0.691_056_9),
    ((32, 32), 0.238_899_3),
    ((38, 57), 0.204_502_8),
    ((9, 0), 1.0),
];

#[test]
fn mr_window_center_and_width_are_applied() {
    let image = decode("MR_small.dcm");
    assert_eq!(image.dimensions(), (64, 64));
    assert_pixels(&image, &MR_SMALL, 1e-5);
}

#[test]
fn big_endian_and_rle_decode_to_the_little_endian_pixels() {
    let little = decode("MR_small.dcm");
    for name in ["MR_small_bigendian.dcm", "MR_small_RLE.dcm"] {
        let other = decode(name);
        assert_pixels(&other, &MR_SMALL, 1e-5);
        assert_eq!(other.as_raw(), little.as_raw(), "{name}");
    }
}

#[test]
fn jpeg2000_decodes_with_the_pure_rust_openjpeg() {
    // JPEG2000 256x1024 (width x height): signed 16-bit, no window, min-max
    //   (x 0, y 0): stored 0 modality 0 -> 0.1090909
    //   (x 128, y 512): stored 7 modality 7 -> 0.1345455
    //   (x 254, y 464): stored -30 modality -30 -> 0.0000000
    //   (x 143, y 423): stored 245 modality 245 -> 1.0000000
    let image = decode("JPEG2000.dcm");
    assert_eq!(image.dimensions(), (256, 1024));
    assert_pixels(
        &image,
        &[
            ((0, 0), 0.109_090_9),
            ((128, 512), 0.134_545_5),
            ((254, 464), 0.0),
            ((143, 423), 1.0),
        ],
        1e-5,
    );
}

#[test]
fn rgb_becomes_rec709_luma() {
    // SC_rgb_decompressed 256x256: 8-bit RGB, pydicom's decoding of SC_rgb_jpeg.dcm saved
    // uncompressed (derive.py)
    //   (x 0, y 0): stored [244, 244, 244] -> 0.9568627
    //   (x 128, y 128): stored [244, 244, 244] -> 0.9568627
    //   (x 79, y 29): stored [150, 134, 134] -> 0.5388298
    //   (x 48, y 46): stored [249, 252, 252] -> 0.9857341
    //   (x 79, y 28): stored [182, 165, 169] -> 0.6623647
    let image = decode("SC_rgb_decompressed.dcm");
    assert_eq!(image.dimensions(), (256, 256));
    assert_pixels(
        &image,
        &[
            ((0, 0), 0.956_862_7),
            ((128, 128), 0.956_862_7),
            ((79, 29), 0.538_829_8),
            ((48, 46), 0.985_734_1),
            ((79, 28), 0.662_364_7),
        ],
        1e-5,
    );
}

#[test]
fn jpeg_baseline_decodes_and_its_rgb_coded_colour_is_converted_twice() {
    // SC_rgb_jpeg_explicit_vr: JPEG Baseline, 3 components coded as RGB (the file says RGB, and
    // pydicom/libjpeg decode the background as (244, 244, 244)). Its Adobe marker is cut short, so
    // jpeg-decoder (dicom-rs's JPEG codec) takes the components for YCbCr and converts them to RGB:
    // (244, 244, 244) becomes (255, 121, 255), luma 0.6242 instead of pydicom's 0.9569. This pins
    // that known difference. Grey JPEGs have one component and no colour conversion, and colour
    // JPEGs labelled YBR_FULL_422, as DICOM asks of JPEG Baseline, are converted once, correctly.
    let image = decode("SC_rgb_jpeg_explicit_vr.dcm");
    assert_eq!(image.dimensions(), (256, 256));
    let converted_twice = (0.2126 * 255.0 + 0.7152 * 121.0 + 0.0722 * 255.0) / 255.0;
    // 2/255: JPEG decoders are not bit-exact (inverse DCT rounding)
    assert_pixels(
        &image,
        &[((0, 0), converted_twice), ((128, 128), converted_twice)],
        2.0 / 255.0,
    );
}

#[test]
fn implicit_vr_data_set_under_an_explicit_vr_syntax_is_a_decode_error() {
    // pydicom reads the original SC_rgb_jpeg.dcm by guessing the VR encoding; dicom-rs does not
    // (read as explicit VR, the bytes of a length become an unknown VR, read as UN, and the
    // next four a garbage length: refused by the header check before dicom-rs would allocate it)
    let path = fixture("SC_rgb_jpeg.dcm");
    assert_decode_error_names(
        decode_grey(&path, u64::MAX),
        &path,
        "element (0008,0008) claims",
    );
}

#[test]
fn transfer_syntax_without_a_decoder_is_refused_by_name() {
    // JPEG-LS needs CharLS, a C library, which is not built in
    let bytes = edited_mr_small(|o| {
        o.meta_mut().transfer_syntax = uids::JPEGLS_LOSSLESS.to_string();
        o.meta_mut().update_information_group_length();
    });
    let path = Path::new("jpeg-ls.dcm");
    assert_decode_error_names(
        decode_grey_bytes(&bytes, path, u64::MAX),
        path,
        "unsupported transfer syntax JPEG-LS Lossless",
    );
}

#[test]
fn twelve_bit_jpeg_extended_is_a_decode_error() {
    // 12-bit JPEG, which dicom-rs's JPEG codec (jpeg-decoder) does not decode; this file's SOS
    // parameters are also invalid (pydicom's notes), and neither libjpeg nor GDCM decodes it
    let path = fixture("JPEG-lossy.dcm");
    assert_decode_error_names(decode_grey(&path, u64::MAX), &path, "pixel data");
}

/// A header that claims gigabytes is refused by its length before dicom-rs reads it (dicom-rs
/// allocates an element's claimed length first: the malformed sample above cost about 1.2 GB for
/// a moment before this check), in the data set and inside encapsulated pixel data.
#[test]
fn a_header_claiming_more_than_the_file_holds_is_refused_before_it_is_read() {
    for (name, marker) in [
        // MR_small: explicit VR little endian, PixelData (7FE0,0010) OW with a 32-bit length
        (
            "MR_small.dcm",
            &[0xE0u8, 0x7F, 0x10, 0x00, b'O', b'W', 0, 0][..],
        ),
        // JPEG2000: encapsulated; the basic offset table item (FFFE,E000) after PixelData
        ("JPEG2000.dcm", &[0xFE, 0xFF, 0x00, 0xE0][..]),
    ] {
        let mut bytes = fs::read(fixture(name)).unwrap();
        let at = bytes
            .windows(marker.len())
            .position(|w| w == marker)
            .unwrap_or_else(|| panic!("{name}: marker not found"));
        let length_at = at + if marker.len() == 8 { 8 } else { 4 };
        bytes[length_at..length_at + 4].copy_from_slice(&0x7FFF_FFF0u32.to_le_bytes());
        let path = Path::new("pacs/huge-claim.dcm");
        assert_decode_error_names(
            decode_grey_bytes(&bytes, path, u64::MAX),
            path,
            "claims 2147483632 bytes",
        );
    }
}

#[test]
fn truncated_copies_are_decode_errors_naming_the_file() {
    let bytes = fs::read(fixture("CT_small.dcm")).unwrap();
    assert!(has_dicom_preamble(&bytes) && !has_dicom_preamble(&bytes[..131]));
    let path = Path::new("scans/truncated.dcm");
    // every cut inside the header, then through the pixel data
    let cuts = (0..2000).chain((2000..bytes.len()).step_by(997));
    for cut in cuts {
        match decode_grey_bytes(&bytes[..cut], path, u64::MAX) {
            Err(e @ DataError::Decode { .. }) => {
                assert!(e.to_string().contains("scans/truncated.dcm"), "{e}")
            }
            Err(e) => panic!("cut at {cut}: expected a decode error, got {e}"),
            Ok(_) => panic!("cut at {cut} of {} bytes decoded", bytes.len()),
        }
    }
}

#[test]
fn non_dicom_content_named_dcm_is_a_decode_error() {
    let dir = tempfile::tempdir().unwrap();
    let path = dir.path().join("notes.dcm");
    fs::write(&path, "this is a text file, not a radiograph").unwrap();
    assert_decode_error_names(decode_grey(&path, u64::MAX), &path, "not a DICOM file");
}

/// MR_small with `edit` applied, as the bytes of a DICOM file.
fn edited_mr_small(edit: impl FnOnce(&mut dicom_object::DefaultDicomObject)) -> Vec<u8> {
    let mut object = dicom_object::open_file(fixture("MR_small.dcm")).unwrap();
    edit(&mut object);
    let mut bytes = Vec::new();
    object.write_all(&mut bytes).unwrap();
    bytes
}

#[test]
fn missing_pixel_data_and_zero_rows_are_decode_errors() {
    let path = Path::new("edited.dcm");
    let no_pixels = edited_mr_small(|o| {
        o.remove_element(tags::PIXEL_DATA);
    });
    assert_decode_error_names(
        decode_grey_bytes(&no_pixels, path, u64::MAX),
        path,
        "no PixelData",
    );
    let zero_rows = edited_mr_small(|o| {
        o.put(DataElement::new(
            tags::ROWS,
            VR::US,
            PrimitiveValue::from(0u16),
        ));
    });
    assert_decode_error_names(
        decode_grey_bytes(&zero_rows, path, u64::MAX),
        path,
        "64x0 pixels",
    );
    let one_bit = edited_mr_small(|o| {
        o.put(DataElement::new(
            tags::BITS_ALLOCATED,
            VR::US,
            PrimitiveValue::from(1u16),
        ));
    });
    assert_decode_error_names(
        decode_grey_bytes(&one_bit, path, u64::MAX),
        path,
        "1 bits allocated",
    );
}

#[test]
fn pixel_limit_is_checked_before_decoding() {
    let path = fixture("CT_small.dcm");
    let err = decode_grey(&path, 128 * 128 - 1).unwrap_err();
    assert!(
        matches!(
            err,
            DataError::TooLarge {
                width: 128,
                height: 128,
                ..
            }
        ),
        "{err}"
    );
    assert!(decode_grey(&path, 128 * 128).is_ok());
}

#[test]
fn multi_frame_files_give_their_first_frame() {
    let bytes = edited_mr_small(|o| {
        let first = o.element(tags::PIXEL_DATA).unwrap().uint16_slice().unwrap();
        // a second frame, all black
        let mut two = first.to_vec();
        two.extend(std::iter::repeat_n(0u16, first.len()));
        o.put(DataElement::new(
            tags::PIXEL_DATA,
            VR::OW,
            PrimitiveValue::U16(two.into()),
        ));
        o.put(DataElement::new(
            tags::NUMBER_OF_FRAMES,
            VR::IS,
            PrimitiveValue::from("2"),
        ));
    });
    let image = decode_grey_bytes(&bytes, Path::new("two-frames.dcm"), u64::MAX).unwrap();
    assert_eq!(image.dimensions(), (64, 64));
    assert_pixels(&image, &MR_SMALL, 1e-5);
}

#[test]
fn voi_lut_sequence_wins_over_the_window() {
    // an 8-bit LUT that inverts 0..=255; MR_small's values run from 127 to 2145, so 127 maps to
    // entry 127 (= 128) and everything from 255 up to the last entry (0)
    let bytes = edited_mr_small(|o| {
        let item = InMemDicomObject::from_element_iter([
            DataElement::new(
                tags::LUT_DESCRIPTOR,
                VR::US,
                PrimitiveValue::U16([256, 0, 8].into_iter().collect()),
            ),
            DataElement::new(
                tags::LUT_DATA,
                VR::OW,
                PrimitiveValue::U16((0..=255u16).rev().collect()),
            ),
        ]);
        o.put(DataElement::new(
            tags::VOILUT_SEQUENCE,
            VR::SQ,
            DataSetSequence::from(vec![item]),
        ));
    });
    let image = decode_grey_bytes(&bytes, Path::new("lut.dcm"), u64::MAX).unwrap();
    // (38, 57) stores 127, (32, 32) 182, (0, 0) 905
    assert_pixels(
        &image,
        &[
            ((38, 57), 128.0 / 255.0),
            ((32, 32), 73.0 / 255.0),
            ((0, 0), 0.0),
        ],
        1e-6,
    );
}

fn write_png(path: &Path) {
    fs::create_dir_all(path.parent().unwrap()).unwrap();
    image::GrayImage::from_pixel(20, 16, image::Luma([40]))
        .save(path)
        .unwrap();
}

fn copy_fixture(name: &str, to: &Path) {
    fs::create_dir_all(to.parent().unwrap()).unwrap();
    fs::copy(fixture(name), to).unwrap();
}

#[test]
fn folder_walk_finds_dicom_by_extension_and_by_content() {
    let dir = tempfile::tempdir().unwrap();
    let root = dir.path();
    write_png(&root.join("train/NORMAL/a.png"));
    copy_fixture("CR_monochrome1_6154.dcm", &root.join("train/NORMAL/b.DCM"));
    // PACS exports: no extension, or a UID for a name
    copy_fixture("MR_small.dcm", &root.join("train/NORMAL/IM000001"));
    copy_fixture(
        "CT_small.dcm",
        &root.join("test/FRACTURE/1.2.840.113619.2.55"),
    );
    copy_fixture("MR_small_RLE.dcm", &root.join("test/NORMAL/c.dicom"));
    fs::write(
        root.join("test/FRACTURE/README"),
        "not an image, no extension",
    )
    .unwrap();
    let table = read_image_folder(root, "NORMAL").unwrap();
    let mut found: Vec<_> = table.samples.iter().map(|s| s.rel_path.as_str()).collect();
    found.sort();
    assert_eq!(
        found,
        [
            "test/FRACTURE/1.2.840.113619.2.55",
            "test/NORMAL/c.dicom",
            "train/NORMAL/IM000001",
            "train/NORMAL/a.png",
            "train/NORMAL/b.DCM",
        ]
    );
    assert_eq!(table.skipped.len(), 1);
    assert!(table.skipped[0].path.ends_with("README"));
    assert_eq!(
        table.skipped[0].reason,
        "not a .png/.jpg/.jpeg/.dcm file or DICOM"
    );
    let images = load_images(&table.samples, &LoadOptions::default()).unwrap();
    assert_eq!(images.len(), 5);
}

#[test]
fn mura_walk_finds_extension_less_dicom() {
    let dir = tempfile::tempdir().unwrap();
    let study = dir
        .path()
        .join("MURA-v1.1/train/XR_HAND/patient00001/study1_negative");
    write_png(&study.join("image1.png"));
    copy_fixture("CR_monochrome1_6154.dcm", &study.join("image2"));
    write_png(
        &dir.path()
            .join("MURA-v1.1/valid/XR_HAND/patient00002/study1_positive/image1.png"),
    );
    let table = gan_data::read_mura(dir.path(), gan_data::Listing::Walk).unwrap();
    let views: Vec<_> = table.samples.iter().map(|s| s.view.as_str()).collect();
    assert!(views.contains(&"image2"), "{views:?}");
    assert_eq!(table.len(), 3);
}

#[test]
fn written_dicom_round_trips_through_the_decoder() {
    let dir = tempfile::tempdir().unwrap();
    let path = dir.path().join("study1/image1.dcm");
    fs::create_dir_all(path.parent().unwrap()).unwrap();
    // a 12-bit ramp, 7 wide and 3 high: values 0, 100, ..., 2000
    let pixels: Vec<u16> = (0..21).map(|i| i * 100).collect();
    write_dicom(&path, &pixels, 7, 3, 12, false, None).unwrap();
    let bytes = fs::read(&path).unwrap();
    assert!(has_dicom_preamble(&bytes));
    let image = decode_grey(&path, u64::MAX).unwrap();
    assert_eq!(image.dimensions(), (7, 3));
    // no window: min-max, so value v is v / 2000
    for (i, v) in image.as_raw().iter().enumerate() {
        assert!((v - i as f32 / 20.0).abs() < 1e-6, "{i}: {v}");
    }

    // MONOCHROME1 with a window 1000/1001: LINEAR maps 500..=1500 onto 0..=1, then inverts
    write_dicom(&path, &pixels, 7, 3, 12, true, Some((1000.5, 1001.0))).unwrap();
    let image = decode_grey(&path, u64::MAX).unwrap();
    let grey = |i: u32| image.get_pixel(i % 7, i / 7).0[0];
    assert_eq!(grey(0), 1.0); // 0, below the window, is white once inverted
    assert!((grey(10) - 0.5).abs() < 1e-6, "{}", grey(10)); // 1000
    assert_eq!(grey(20), 0.0); // 2000

    // the same path gets the same UIDs, so the same bytes
    write_dicom(&path, &pixels, 7, 3, 12, true, Some((1000.5, 1001.0))).unwrap();
    let again = fs::read(&path).unwrap();
    write_dicom(&path, &pixels, 7, 3, 12, true, Some((1000.5, 1001.0))).unwrap();
    assert_eq!(fs::read(&path).unwrap(), again);

    // values must fit the stored bits, and fill the image
    assert!(write_dicom(&path, &[4096], 1, 1, 12, false, None).is_err());
    assert!(write_dicom(&path, &pixels, 7, 2, 12, false, None).is_err());
}
