//! Stable BCE on logits against reference values, and device selection.

use candle::{Device, Tensor};
use gan_models::loss::{bce_with_logits, bce_with_logits_to};
use gan_models::{resolve_device, select_device};

#[test]
fn stable_bce_matches_pytorch_on_extreme_logits() {
    // Reference (PyTorch 2.x):
    //   torch.nn.functional.binary_cross_entropy_with_logits(
    //       torch.tensor([100., -100., 0.]), torch.tensor([1., 0., 1.]))  → 0.231049 (= ln 2 / 3)
    let logits = Tensor::new(&[100.0f32, -100.0, 0.0], &Device::Cpu).unwrap();
    let targets = Tensor::new(&[1.0f32, 0.0, 1.0], &Device::Cpu).unwrap();
    let loss: f32 = bce_with_logits(&logits, &targets)
        .unwrap()
        .to_scalar()
        .unwrap();
    assert!((loss - 0.231_049).abs() < 1e-6, "{loss}");
    //   binary_cross_entropy_with_logits(torch.tensor([100., -100.]), torch.tensor([0., 1.])) → 100.0
    let wrong = Tensor::new(&[100.0f32, -100.0], &Device::Cpu).unwrap();
    let targets = Tensor::new(&[0.0f32, 1.0], &Device::Cpu).unwrap();
    let loss: f32 = bce_with_logits(&wrong, &targets)
        .unwrap()
        .to_scalar()
        .unwrap();
    assert!((loss - 100.0).abs() < 1e-4, "{loss}");
    // Moderate logits against target 1: −mean(log σ(x)), evaluated in Python:
    //   s = lambda x: 1 / (1 + math.exp(-x)); (-math.log(s(2)) - math.log(s(-1))) / 2 → 0.7200948
    let mid = Tensor::new(&[2.0f32, -1.0], &Device::Cpu).unwrap();
    let loss: f32 = bce_with_logits_to(&mid, 1.0).unwrap().to_scalar().unwrap();
    assert!((loss - 0.720_094_8).abs() < 1e-5, "{loss}");
}

#[test]
fn device_choices() {
    assert!(matches!(select_device("cpu").unwrap(), Device::Cpu));
    // what `auto` chose, and the sentence that says why
    let (device, reason) = resolve_device("auto").unwrap();
    if candle::utils::cuda_is_available() {
        // a CUDA build: the GPU, or the CPU with CUDA's own error named
        match device {
            Device::Cuda(_) => assert_eq!(reason, "device auto: cuda:0"),
            _ => assert!(reason.contains("could not be opened"), "{reason}"),
        }
    } else {
        assert!(matches!(device, Device::Cpu));
        assert!(reason.contains("no CUDA support"), "{reason}");
        assert!(matches!(select_device("AUTO").unwrap(), Device::Cpu));
    }
    let err = select_device("gpu").unwrap_err().to_string();
    assert!(err.contains("auto, cpu, cuda or cuda:N"), "{err}");
    if !candle::utils::cuda_is_available() {
        let err = select_device("cuda:0").unwrap_err().to_string();
        assert!(err.contains("--features cuda"), "{err}");
    }
}
