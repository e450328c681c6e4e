//! Any bytes, as a checkpoint file: reading it fails with an error naming the file, or gives a
//! checkpoint whose checksum matched; building its detector from it fails cleanly or succeeds.
#![no_main]

use std::sync::OnceLock;

use candle::Device;
use gan_models::read_checkpoint;
use libfuzzer_sys::fuzz_target;

fn scratch() -> &'static tempfile::TempDir {
    static DIR: OnceLock<tempfile::TempDir> = OnceLock::new();
    DIR.get_or_init(|| tempfile::tempdir().expect("temporary folder"))
}

fuzz_target!(|bytes: &[u8]| {
    let path = scratch().path().join("model.safetensors");
    std::fs::write(&path, bytes).expect("write the input");
    match read_checkpoint(&path, &Device::Cpu) {
        Err(e) => assert!(e.to_string().contains("model.safetensors"), "{e}"),
        Ok(checkpoint) => {
            // only small configurations: a valid header may ask for a huge model
            if checkpoint.config.validate().is_ok() && checkpoint.config.width <= 16 {
                let _ = checkpoint.detector(&Device::Cpu);
            }
        }
    }
});
