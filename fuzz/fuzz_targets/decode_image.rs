//! Any bytes, as a PNG or JPEG file: decoding either fails with an error or gives an image that
//! preprocesses to finite values in [−1, 1]; never a panic, never an unbounded allocation (the
//! pixel limit is checked from the header before decoding).
#![no_main]

use std::path::Path;

use gan_data::{Fit, Preprocess, decode_grey_bytes, to_model_input};
use libfuzzer_sys::fuzz_target;

fuzz_target!(|bytes: &[u8]| {
    // a 16-megapixel limit keeps each run fast; the real default is larger
    let Ok(image) = decode_grey_bytes(bytes, Path::new("fuzz.png"), 16 << 20) else {
        return;
    };
    for fit in [Fit::CentreCrop, Fit::Letterbox] {
        let pre = Preprocess {
            size: 16,
            fit,
            ..Preprocess::default()
        };
        let values = to_model_input(&image, &pre);
        assert_eq!(values.len(), 16 * 16);
        assert!(
            values
                .iter()
                .all(|v| v.is_finite() && (-1.0..=1.0).contains(v))
        );
    }
});
