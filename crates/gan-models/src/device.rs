//! Choosing the compute device: `auto | cpu | cuda[:N]`.

use candle::Device;

use crate::error::{ModelError, Result};

/// Parses a device choice and opens it, logging what it chose ([`resolve_device`] says why).
/// `auto` is CUDA device 0 when this build has CUDA and a GPU opens, else the CPU. Asking for
/// CUDA from a CPU-only build says how to get a CUDA build.
pub fn select_device(choice: &str) -> Result<Device> {
    let (device, reason) = resolve_device(choice)?;
    if reason.contains("could not be opened") {
        tracing::warn!("{reason}");
    } else {
        tracing::info!("{reason}");
    }
    Ok(device)
}

/// [`select_device`] without the log: the device and a sentence saying what was chosen and why
/// (for `auto` on a CUDA build without a usable GPU, the error CUDA gave).
pub fn resolve_device(choice: &str) -> Result<(Device, String)> {
    let choice = choice.trim().to_ascii_lowercase();
    match choice.as_str() {
        "cpu" => Ok((Device::Cpu, "device: cpu (asked for)".into())),
        "auto" if !candle::utils::cuda_is_available() => Ok((
            Device::Cpu,
            "device auto: cpu (this build has no CUDA support; `--features cuda` adds it)".into(),
        )),
        "auto" => match Device::new_cuda(0) {
            Ok(device) => Ok((device, "device auto: cuda:0".into())),
            Err(e) => Ok((
                Device::Cpu,
                format!(
                    "device auto: cpu, because this CUDA build's GPU could not be opened (no \
                     GPU, no NVIDIA driver or libcuda, or a driver older than the CUDA the build \
                     needs): {e}"
                ),
            )),
        },
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
                .map(|device| (device, format!("device: cuda:{ordinal} (asked for)")))
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
