//! DICOM radiographs: the first frame of a DICOM file as greyscale in [0, 1] (through dicom-rs),
//! recognising DICOM files by their content, and writing synthetic CR images as DICOM.
//!
//! The grey levels are the ones a viewer shows: the Modality LUT (Rescale Slope/Intercept), then the
//! first VOI LUT of the file, else its first Window Center/Width, else the min–max of the frame;
//! MONOCHROME1 is inverted so that bone is bright. RGB becomes Rec. 709 luma, as PNG/JPEG do.

use std::io::Read;
use std::path::Path;

use dicom_core::{DataElement, PrimitiveValue, Tag, VR};
use dicom_dictionary_std::{tags, uids};
use dicom_object::file::ReadPreamble;
use dicom_object::{DefaultDicomObject, FileMetaTableBuilder, InMemDicomObject, OpenFileOptions};
use dicom_pixeldata::{
    DecodedPixelData, PhotometricInterpretation, PixelDecoder, VoiLutFunction, WindowLevelTransform,
};
use dicom_transfer_syntax_registry::{TransferSyntaxIndex, TransferSyntaxRegistry};
use sha2::{Digest, Sha256};

use crate::error::{DataError, Result};
use crate::preprocess::GreyImage;

/// Length of the preamble that precedes the `DICM` marker of a DICOM file (PS3.10 §7.1).
const PREAMBLE_LEN: usize = 128;
const MARKER: &[u8; 4] = b"DICM";

/// True when `bytes` start like a DICOM file: a 128-byte preamble, then `DICM`.
pub fn has_dicom_preamble(bytes: &[u8]) -> bool {
    bytes.get(PREAMBLE_LEN..PREAMBLE_LEN + MARKER.len()) == Some(MARKER.as_slice())
}

/// True when the file at `path` starts like a DICOM file; reads only its first 132 bytes.
/// A file that cannot be read is not DICOM here (its decoding reports why).
pub(crate) fn file_has_dicom_preamble(path: &Path) -> bool {
    let mut head = [0u8; PREAMBLE_LEN + MARKER.len()];
    std::fs::File::open(path)
        .and_then(|mut f| f.read_exact(&mut head))
        .is_ok_and(|()| has_dicom_preamble(&head))
}

/// True for `.dcm` and `.dicom`, in any case.
pub(crate) fn has_dicom_extension(path: &Path) -> bool {
    path.extension()
        .map(|e| e.to_string_lossy().to_ascii_lowercase())
        .is_some_and(|e| matches!(e.as_str(), "dcm" | "dicom"))
}

/// Decodes the first frame of a DICOM file held in `bytes` (`path` names it in messages and in the
/// multi-frame warning). Refuses images of more than `max_pixels` (Rows × Columns) before the pixel
/// data is decoded. Every failure is a [`DataError::Decode`] or [`DataError::TooLarge`].
pub(crate) fn decode_dicom(bytes: &[u8], path: &Path, max_pixels: u64) -> Result<GreyImage> {
    // dicom-rs indexes and asserts on some malformed inputs the checks below do not foresee; such a
    // panic is this file's decoding error, not the end of a parallel load.
    std::panic::catch_unwind(|| decode_first_frame(bytes, path, max_pixels)).unwrap_or_else(
        |panic| {
            let reason = panic
                .downcast_ref::<&str>()
                .map(|s| s.to_string())
                .or_else(|| panic.downcast_ref::<String>().cloned())
                .unwrap_or_default();
            Err(decode_error(
                path,
                format!("malformed DICOM data stopped the decoder: {reason}"),
            ))
        },
    )
}

fn decode_first_frame(bytes: &[u8], path: &Path, max_pixels: u64) -> Result<GreyImage> {
    let fail = |message: String| decode_error(path, message);
    if !has_dicom_preamble(bytes) {
        return Err(fail(
            "not a DICOM file: no \"DICM\" marker after the 128-byte preamble".into(),
        ));
    }
    check_element_lengths(&bytes[PREAMBLE_LEN + MARKER.len()..]).map_err(&fail)?;
    let file = OpenFileOptions::new()
        .read_preamble(ReadPreamble::Never)
        .from_reader(&bytes[PREAMBLE_LEN..])
        .map_err(|e| fail(format!("cannot read DICOM: {}", with_causes(&e))))?;

    let ts_uid = file.meta().transfer_syntax();
    let Some(ts) = TransferSyntaxRegistry.get(ts_uid) else {
        return Err(fail(format!("unknown transfer syntax {ts_uid}")));
    };
    if !ts.can_decode_all() {
        return Err(fail(format!(
            "unsupported transfer syntax {} ({ts_uid}): no pure-Rust decoder for it is built in",
            ts.name()
        )));
    }

    let header = ImageHeader::read(&file).map_err(fail)?;
    if header.rows as u64 * header.columns as u64 > max_pixels {
        return Err(DataError::TooLarge {
            path: path.to_path_buf(),
            width: header.columns,
            height: header.rows,
            limit: max_pixels,
        });
    }
    if header.frames > 1 {
        tracing::warn!(
            "{}: DICOM file of {} frames, only the first is used",
            path.display(),
            header.frames
        );
    }

    let pixels = file
        .decode_pixel_data_frame(0)
        .map_err(|e| fail(format!("cannot decode pixel data: {}", with_causes(&e))))?;
    let values = match (
        pixels.samples_per_pixel(),
        pixels.photometric_interpretation(),
    ) {
        (1, pi) if pi.is_monochrome() => {
            let mut grey = value_of_interest(&pixels).map_err(&fail)?;
            if *pi == PhotometricInterpretation::Monochrome1 {
                grey.iter_mut().for_each(|v| *v = 1.0 - *v);
            }
            grey
        }
        (3, PhotometricInterpretation::Rgb) => luma(&pixels).map_err(&fail)?,
        (samples, pi) => {
            return Err(fail(format!(
                "unsupported photometric interpretation {pi} with {samples} samples per pixel"
            )));
        }
    };
    let values = values
        .into_iter()
        .map(|v| {
            if v.is_nan() {
                0.0
            } else {
                v.clamp(0.0, 1.0) as f32
            }
        })
        .collect();
    GreyImage::from_raw(pixels.columns(), pixels.rows(), values)
        .ok_or_else(|| fail("pixel data is shorter than Rows x Columns".into()))
}

/// The attributes checked before any pixel data is decoded.
struct ImageHeader {
    rows: u32,
    columns: u32,
    frames: u32,
}

impl ImageHeader {
    fn read(file: &DefaultDicomObject) -> std::result::Result<Self, String> {
        let rows = required(file, tags::ROWS, "Rows")?;
        let columns = required(file, tags::COLUMNS, "Columns")?;
        if rows == 0 || columns == 0 {
            return Err(format!("image of {columns}x{rows} pixels"));
        }
        let samples = optional(file, tags::SAMPLES_PER_PIXEL, "SamplesPerPixel")?.unwrap_or(1);
        if !matches!(samples, 1 | 3) {
            return Err(format!("{samples} samples per pixel (expected 1 or 3)"));
        }
        let bits_allocated = required(file, tags::BITS_ALLOCATED, "BitsAllocated")?;
        if !matches!(bits_allocated, 8 | 16) {
            return Err(format!(
                "{bits_allocated} bits allocated per sample (expected 8 or 16)"
            ));
        }
        let bits_stored =
            optional(file, tags::BITS_STORED, "BitsStored")?.unwrap_or(bits_allocated);
        if !(1..=bits_allocated).contains(&bits_stored) {
            return Err(format!(
                "{bits_stored} bits stored in {bits_allocated} allocated"
            ));
        }
        let frames = optional(file, tags::NUMBER_OF_FRAMES, "NumberOfFrames")?.unwrap_or(1);
        if frames == 0 {
            return Err("NumberOfFrames is 0".into());
        }
        if file.element_opt(tags::PIXEL_DATA).ok().flatten().is_none() {
            return Err("no PixelData element".into());
        }
        Ok(ImageHeader {
            rows,
            columns,
            frames,
        })
    }
}

fn required(file: &DefaultDicomObject, tag: Tag, name: &str) -> std::result::Result<u32, String> {
    optional(file, tag, name)?.ok_or_else(|| format!("no {name} element"))
}

fn optional(
    file: &DefaultDicomObject,
    tag: Tag,
    name: &str,
) -> std::result::Result<Option<u32>, String> {
    match file.element_opt(tag) {
        Ok(Some(element)) => element
            .to_int::<u32>()
            .map(Some)
            .map_err(|e| format!("{name}: {e}")),
        Ok(None) => Ok(None),
        Err(e) => Err(format!("{name}: {e}")),
    }
}

/// The monochrome frame after the Modality LUT and the VOI LUT (or window, or min–max), in [0, 1].
fn value_of_interest(pixels: &DecodedPixelData) -> std::result::Result<Vec<f64>, String> {
    let error = |e: dicom_pixeldata::Error| with_causes(&e);
    // dicom-rs applies the Modality LUT (Rescale Slope/Intercept) and nothing else here
    let modality: Vec<f64> = pixels.to_vec_frame(0).map_err(error)?;
    if let Some(lut) = pixels
        .voi_lut_sequence()
        .map_err(error)?
        .and_then(|s| s.first())
    {
        // the table's entries span its declared depth, or fewer bits when its largest entry needs
        // fewer: Agfa CR declares 16 for 12-bit tables (dicom-rs's `effective_bits_stored`)
        let largest = lut.data.iter().copied().max().unwrap_or(0);
        let needed = u16::BITS - largest.leading_zeros();
        let bits = match needed {
            0 => u32::from(lut.bits_stored),
            n => n.min(u32::from(lut.bits_stored)),
        };
        let full_scale = ((1u64 << bits) - 1).max(1) as f64;
        let last = lut.data.len() as i64 - 1;
        return Ok(modality
            .iter()
            .map(|&m| {
                let index = (m.round() as i64 - i64::from(lut.min_pixel_value)).clamp(0, last);
                f64::from(lut.data[index as usize]) / full_scale
            })
            .collect());
    }
    if let Some(window) = pixels.window().map_err(error)?.and_then(|w| w.first()) {
        let function = pixels
            .voi_lut_function()
            .map_err(error)?
            .and_then(|f| f.first().copied())
            .unwrap_or(VoiLutFunction::Linear);
        let transform = WindowLevelTransform::new(function, *window);
        return Ok(modality.iter().map(|&m| transform.apply(m, 1.0)).collect());
    }
    let (low, high) = modality
        .iter()
        .fold((f64::INFINITY, f64::NEG_INFINITY), |(lo, hi), &m| {
            (lo.min(m), hi.max(m))
        });
    let range = high - low;
    Ok(modality
        .iter()
        .map(|&m| if range > 0.0 { (m - low) / range } else { 0.0 })
        .collect())
}

/// Rec. 709 luma of an RGB frame, its stored values scaled by the largest one Bits Stored allows.
fn luma(pixels: &DecodedPixelData) -> std::result::Result<Vec<f64>, String> {
    let rgb: Vec<f64> = pixels.to_vec_frame(0).map_err(|e| with_causes(&e))?;
    let full_scale = ((1u64 << pixels.bits_stored()) - 1) as f64;
    Ok(rgb
        .chunks_exact(3)
        .map(|p| (0.2126 * p[0] + 0.7152 * p[1] + 0.0722 * p[2]) / full_scale)
        .collect())
}

/// Walks the element headers of a DICOM file (`data`: what follows the `DICM` marker) as dicom-rs
/// reads them and refuses one that claims more bytes than the file has left, before dicom-rs
/// reads it: dicom-rs allocates an element's claimed length before it reads, so a damaged or
/// hostile header claiming gigabytes cost that much memory for a moment. Reads nothing past the
/// headers; a deflated data set is left to dicom-rs (its lengths are inside the compressed
/// stream).
fn check_element_lengths(data: &[u8]) -> std::result::Result<(), String> {
    // the file meta group is always explicit VR little endian
    let (meta_end, syntax) = walk_elements(data, 0, Encoding::ExplicitLittle, true)?;
    let encoding = match syntax.as_deref().map(|s| s.trim_end_matches(['\0', ' '])) {
        Some(uids::IMPLICIT_VR_LITTLE_ENDIAN) => Encoding::ImplicitLittle,
        // retired from the standard, still in old archives (and pydicom's samples)
        Some("1.2.840.10008.1.2.2") => Encoding::ExplicitBig,
        Some(uids::DEFLATED_EXPLICIT_VR_LITTLE_ENDIAN) => return Ok(()),
        _ => Encoding::ExplicitLittle,
    };
    walk_elements(data, meta_end, encoding, false).map(|_| ())
}

#[derive(Clone, Copy, PartialEq)]
enum Encoding {
    ExplicitLittle,
    ExplicitBig,
    ImplicitLittle,
}

/// The header walk of [`check_element_lengths`] from `start`: with `meta_only`, stops after the
/// file meta group (group 2) and returns where it ended and the transfer syntax UID it names.
/// Sequences and items are walked into (their elements are checked too); the fragments of
/// encapsulated pixel data are skipped.
fn walk_elements(
    data: &[u8],
    start: usize,
    encoding: Encoding,
    meta_only: bool,
) -> std::result::Result<(usize, Option<String>), String> {
    use dicom_core::dictionary::DataDictionary;
    let u16_at = |p: usize| -> Option<u16> {
        let b: [u8; 2] = data.get(p..p + 2)?.try_into().ok()?;
        Some(match encoding {
            Encoding::ExplicitBig if !meta_only => u16::from_be_bytes(b),
            _ => u16::from_le_bytes(b),
        })
    };
    let u32_at = |p: usize| -> Option<u32> {
        let b: [u8; 4] = data.get(p..p + 4)?.try_into().ok()?;
        Some(match encoding {
            Encoding::ExplicitBig if !meta_only => u32::from_be_bytes(b),
            _ => u32::from_le_bytes(b),
        })
    };
    let mut p = start;
    let mut syntax = None;
    let mut encapsulated = false;
    // a header needs 8 bytes; a shorter rest is a truncation that dicom-rs reports
    while let (Some(group), Some(element)) = (u16_at(p), u16_at(p + 2)) {
        let tag = Tag(group, element);
        if meta_only && group != 0x0002 {
            break;
        }
        let Some(header_len) = u32_at(p + 4) else {
            break;
        };
        if group == 0xFFFE {
            // item (E000) or a delimiter (E00D, E0DD): 8 bytes, then the item's content
            p += 8;
            if element == 0xE0DD {
                encapsulated = false;
            } else if element == 0xE000 && header_len != u32::MAX {
                let remaining = data.len().saturating_sub(p);
                if header_len as usize > remaining {
                    return Err(format!(
                        "damaged DICOM: an item claims {header_len} bytes, but only {remaining} remain"
                    ));
                }
                if encapsulated {
                    p += header_len as usize; // a fragment of compressed pixel data
                }
            }
            continue;
        }
        let explicit = encoding != Encoding::ImplicitLittle || meta_only;
        let (vr, header, length) = if explicit {
            let Some(vr_bytes) = data.get(p + 4..p + 6) else {
                break;
            };
            // an unknown VR is read as UN (a 32-bit length), as dicom-rs reads it
            let vr = std::str::from_utf8(vr_bytes)
                .ok()
                .and_then(|s| s.parse::<VR>().ok())
                .unwrap_or(VR::UN);
            let long = matches!(
                vr,
                VR::OB
                    | VR::OD
                    | VR::OF
                    | VR::OL
                    | VR::OV
                    | VR::OW
                    | VR::SQ
                    | VR::SV
                    | VR::UC
                    | VR::UN
                    | VR::UR
                    | VR::UT
                    | VR::UV
            );
            if long {
                let Some(length) = u32_at(p + 8) else {
                    break;
                };
                (Some(vr), 12, length)
            } else {
                let Some(length) = u16_at(p + 6) else {
                    break;
                };
                (Some(vr), 8, u32::from(length))
            }
        } else {
            let vr = dicom_dictionary_std::StandardDataDictionary
                .by_tag(tag)
                .map(|entry| entry.vr.relaxed());
            (vr, 8, header_len)
        };
        p += header;
        if length == u32::MAX {
            // undefined length: a sequence, or encapsulated pixel data, whose items follow
            encapsulated = tag == tags::PIXEL_DATA;
            continue;
        }
        let remaining = data.len().saturating_sub(p);
        if length as usize > remaining {
            return Err(format!(
                "damaged DICOM: element {tag} claims {length} bytes, but only {remaining} remain \
                 in the file"
            ));
        }
        if tag == tags::TRANSFER_SYNTAX_UID {
            syntax = data
                .get(p..p + length as usize)
                .map(|b| String::from_utf8_lossy(b).into_owned());
        }
        if vr != Some(VR::SQ) {
            p += length as usize; // a value; a sequence's items are walked into
        }
    }
    Ok((p, syntax))
}

fn decode_error(path: &Path, message: String) -> DataError {
    DataError::Decode {
        path: path.to_path_buf(),
        message,
    }
}

/// An error with its chain of causes (dicom-rs's top-level messages alone rarely say why).
fn with_causes(error: &dyn std::error::Error) -> String {
    let mut message = error.to_string();
    let mut source = error.source();
    while let Some(cause) = source {
        message.push_str(": ");
        message.push_str(&cause.to_string());
        source = cause.source();
    }
    message
}

/// Writes `pixels` (row-major, `width`×`height`, each below 2^`bits_stored`) as a single-frame
/// CR image in Explicit VR Little Endian: MONOCHROME1 when `monochrome1` (the stored values are
/// then written as given: the caller stores the inverted image), with `window` as its Window
/// Center/Width when given. The study, series and instance UIDs are derived from the path, so the
/// same path always gets the same UIDs and images of one folder share a study.
pub fn write_dicom(
    path: &Path,
    pixels: &[u16],
    width: u32,
    height: u32,
    bits_stored: u16,
    monochrome1: bool,
    window: Option<(f64, f64)>,
) -> Result<()> {
    let (Ok(rows), Ok(columns)) = (u16::try_from(height), u16::try_from(width)) else {
        return Err(DataError::Config(format!(
            "{}: a DICOM image is at most 65535x65535 pixels, not {width}x{height}",
            path.display()
        )));
    };
    if rows == 0 || columns == 0 || pixels.len() != width as usize * height as usize {
        return Err(DataError::Config(format!(
            "{}: {} pixels do not make a {width}x{height} image",
            path.display(),
            pixels.len()
        )));
    }
    if !(1..=16).contains(&bits_stored) || pixels.iter().any(|&p| u32::from(p) >> bits_stored != 0)
    {
        return Err(DataError::Config(format!(
            "{}: pixel values must fit in {bits_stored} stored bits (1 to 16)",
            path.display()
        )));
    }
    if let Some((center, width)) = window
        && !(center.is_finite() && width.is_finite() && width >= 1.0)
    {
        return Err(DataError::Config(format!(
            "{}: window center {center} and width {width} must be finite, the width at least 1",
            path.display()
        )));
    }
    let folder = path.parent().unwrap_or(Path::new(""));
    let study = uid_from("study", folder);
    let series = uid_from("series", folder);
    let instance = uid_from("instance", path);
    let photometric = if monochrome1 {
        "MONOCHROME1"
    } else {
        "MONOCHROME2"
    };
    let text = |tag, vr, value: &str| DataElement::new(tag, vr, PrimitiveValue::from(value));
    let short = |tag, value: u16| DataElement::new(tag, VR::US, PrimitiveValue::from(value));
    let mut object = InMemDicomObject::from_element_iter([
        text(
            tags::SOP_CLASS_UID,
            VR::UI,
            uids::COMPUTED_RADIOGRAPHY_IMAGE_STORAGE,
        ),
        text(tags::SOP_INSTANCE_UID, VR::UI, &instance),
        text(tags::STUDY_INSTANCE_UID, VR::UI, &study),
        text(tags::SERIES_INSTANCE_UID, VR::UI, &series),
        text(tags::MODALITY, VR::CS, "CR"),
        text(tags::PATIENT_NAME, VR::PN, "SYNTHETIC"),
        text(tags::PATIENT_ID, VR::LO, "SYNTHETIC"),
        short(tags::SAMPLES_PER_PIXEL, 1),
        text(tags::PHOTOMETRIC_INTERPRETATION, VR::CS, photometric),
        short(tags::ROWS, rows),
        short(tags::COLUMNS, columns),
        short(tags::BITS_ALLOCATED, 16),
        short(tags::BITS_STORED, bits_stored),
        short(tags::HIGH_BIT, bits_stored - 1),
        short(tags::PIXEL_REPRESENTATION, 0),
        DataElement::new(
            tags::PIXEL_DATA,
            VR::OW,
            PrimitiveValue::U16(pixels.iter().copied().collect()),
        ),
    ]);
    if let Some((center, width)) = window {
        object.put(text(tags::WINDOW_CENTER, VR::DS, &decimal_string(center)));
        object.put(text(tags::WINDOW_WIDTH, VR::DS, &decimal_string(width)));
    }
    let write_error = |message: String| DataError::io(path, std::io::Error::other(message));
    let file = object
        .with_meta(FileMetaTableBuilder::new().transfer_syntax(uids::EXPLICIT_VR_LITTLE_ENDIAN))
        .map_err(|e| write_error(with_causes(&e)))?;
    let mut bytes = Vec::new();
    file.write_all(&mut bytes)
        .map_err(|e| write_error(with_causes(&e)))?;
    std::fs::write(path, bytes).map_err(|e| DataError::io(path, e))
}

/// A Decimal String (DS, at most 16 characters): six decimals at most, trailing zeros dropped.
fn decimal_string(value: f64) -> String {
    let fixed = format!("{value:.6}");
    let trimmed = fixed.trim_end_matches('0').trim_end_matches('.');
    trimmed.chars().take(16).collect()
}

/// A UID under the `2.25` root (a UUID as a decimal number, PS3.5 §B.2): 128 bits of the SHA-256
/// of `role` and `path`.
fn uid_from(role: &str, path: &Path) -> String {
    let digest = Sha256::new()
        .chain_update(role.as_bytes())
        .chain_update([0])
        .chain_update(path.as_os_str().as_encoded_bytes())
        .finalize();
    let mut high = [0u8; 16];
    high.copy_from_slice(&digest[..16]);
    format!("2.25.{}", u128::from_be_bytes(high))
}
