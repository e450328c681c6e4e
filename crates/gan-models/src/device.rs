//! Choosing the compute device: `auto | cpu | cuda[:N]`.

use candle::Device;

use crate::error::{ModelError, Result};

/// Parses a device choice and opens it. `auto` is CUDA device 0 when this build has CUDA and a GPU
/// is present, else the CPU. Asking for CUDA from a CPU-only build says how to get a CUDA build.
pub fn select_device(choice: &str) -> Result<Device> {
    let choice = choice.trim().to_ascii_lowercase();
    match choice.as_str() {
        "cpu" => Ok(Device::Cpu),
        "auto" => Ok(Device::cuda_if_available(0).unwrap_or(Device::Cpu)),
        _ => {
            let ordinal = match choice.strip_prefix("cuda") {
                Some("") => 0,
                Some(rest) => rest
                    .strip_prefix(':')
                    .and_then(|n| n.parse::<usize>().ok())
                    .ok_or_else(|| bad_choice(&choice))?,
                None => return Err(bad_choice(&choice)),
            };
            if !candle::utils::cuda_is_available() {
                return Err(ModelError::Device(format!(
                    "device {choice:?} asked for, but this build has no CUDA support; rebuild with \
                     `cargo build --release --features cuda` (needs nvcc), or use --device cpu"
                )));
            }
            Device::new_cuda(ordinal)
                .map_err(|e| ModelError::Device(format!("cannot open CUDA device {ordinal}: {e}")))
        }
    }
}

fn bad_choice(choice: &str) -> ModelError {
    ModelError::Device(format!(
        "unknown device {choice:?}; expected auto, cpu, cuda or cuda:N"
    ))
}

/// A short name for logs and reports.
pub fn device_name(device: &Device) -> String {
    match device {
        Device::Cpu => "cpu".into(),
        Device::Cuda(_) => "cuda".into(),
        Device::Metal(_) => "metal".into(),
    }
}
