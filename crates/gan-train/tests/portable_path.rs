//! The portable path (what a GPU runs: candle's own convolutions, composite bias + LeakyReLU and
//! BatchNorm + ReLU, composite attention with candle_nn's softmax) against the fused CPU kernels,
//! for every registered detector, on the CPU: from the same seed and weights (kept there by a
//! learning rate of 0), six training steps (batch 2; SQUID's generator side and its
//! discriminator-only step; f-AnoGAN's critic, generator and encoder steps) and a scoring pass, with the kernels on and off ([`gan_models::kernels::portable_kernels`]).
//! Losses, every gradient every player's optimiser applies, every state variable afterwards (the
//! BatchNorm running statistics, spectral-norm vectors and SQUID's memory queue) and every
//! statistic must agree.
//!
//! Tolerance ([`RELATIVE`], [`ABSOLUTE`], [`VALUE_RELATIVE`]): each gradient and state tensor
//! agrees to 1e-2 of its norm plus 1e-4 of its player's largest tensor norm (L2), each loss and
//! score to 1e-3 relative (1e-5 absolute near zero). The two paths sum in other orders and
//! precisions (the fused kernels' per-channel sums are f64), so they differ by rounding; measured
//! here: losses within 1.2e-7 relative, state within 1.3e-6, and gradients within 3e-5 of a
//! player's scale on sums that cancel, except one step of Alpha-GAN's encoder whose whole
//! gradient moved by 2.3e-3 (an L1 loss's gradient is a sign, which rounding can flip at a
//! pixel). A wrong backward pass (a transposed weight gradient, a batch element dropped, a
//! missing running-statistics update) is off by the tensor's own size.
//!
//! Batch 2 on purpose: candle 0.9–0.11.0 computed wrong conv2d weight gradients on CUDA for
//! batches above one (fixed in 0.11.1, the pinned version); the same comparison on a GPU
//! (docs/performance.md, the GPU check) would catch a regression there.

use std::path::Path;

use candle::{Device, Tensor};
use gan_models::kernels::{fused_kernels_enabled, portable_kernels};
use gan_models::{Detector, DetectorKind};
use gan_train::{TrainConfig, Trainer};

mod common;
use common::ridge_images as images;

/// A tensor agrees when ‖a − b‖ ≤ RELATIVE·max(‖a‖, ‖b‖) + ABSOLUTE·(the player's largest
/// tensor norm); a loss or score when |a − b| ≤ VALUE_RELATIVE·max(|a|, |b|) + 1e-5.
const RELATIVE: f64 = 1e-2;
const ABSOLUTE: f64 = 1e-4;
const VALUE_RELATIVE: f64 = 1e-3;

struct Observed {
    players: Vec<String>,
    losses: Vec<(String, f32)>,
    gradients: Vec<(String, Tensor)>,
    /// The variables no optimiser updates: BatchNorm running statistics, spectral-norm vectors,
    /// SQUID's memory queue (the trainable ones do not move at learning rate 0).
    state: Vec<(String, Tensor)>,
    scores: Vec<(String, Vec<f32>)>,
}

fn config(kind: DetectorKind) -> TrainConfig {
    let mut config = common::config(kind, Path::new("unused"), 2, 5);
    config.batch_size = 2;
    config.instance_noise = 0.1;
    // the weights stay where the seed put them: every gradient, running statistic and score of
    // both paths comes from the same weights, so what differs is the path alone (with a
    // learning rate, Adam moves a weight by ±lr even for a gradient that is rounding noise, such
    // as a bias before a BatchNorm, and the paths drift apart by that)
    config.optimiser.learning_rate = 0.0;
    if kind.name() == "squid" {
        // a read of every memory slot: the top-k choice among near-equal similarities is a
        // discontinuity that rounding can tip (with the default 4 of 200, one step's
        // discriminator gradient moved by 2–5 %), and it is the same tensor code on every device
        config.settings = kind
            .with_assignments(&config.settings, &["memory_top_k=200".into()])
            .unwrap();
    }
    if kind.name() == "f-anogan" {
        // the second step is in the encoder phase
        config.settings = kind
            .with_assignments(&config.settings, &["gan_epochs=1".into()])
            .unwrap();
    }
    config
}

fn observe(kind: DetectorKind, device: &Device) -> Observed {
    let mut trainer = Trainer::new(&config(kind), device).unwrap();
    let images = |b: usize, seed: u64| images(b, seed).to_device(device).unwrap();
    trainer.record_gradients(true);
    let mut losses = Vec::new();
    // five steps of epoch 0 (f-AnoGAN's generator steps once per five critic steps, SQUID's
    // generator side every second step), then one of epoch 1 (f-AnoGAN's encoder phase)
    for (epoch, step) in (0..5).map(|s| (0u64, s)).chain([(1, 5)]) {
        for (player, loss) in trainer.step(&images(2, 40 + step), epoch, step).unwrap() {
            losses.push((format!("step {step} {player}"), loss));
        }
    }
    let model: &dyn Detector = trainer.model.as_ref();
    let state = model
        .players()
        .iter()
        .flat_map(|p| {
            p.named_vars()
                .into_iter()
                .filter(|(n, _)| !gan_models::is_trainable(n))
                .map(|(n, v)| (format!("{}.{n}", p.name), v.as_tensor().copy().unwrap()))
        })
        .collect();
    let batch = model.score(&images(2, 77)).unwrap();
    let scores = batch
        .statistics
        .iter()
        .zip(batch.values)
        .map(|(s, v)| (s.name().to_string(), v))
        .collect();
    Observed {
        players: model.players().iter().map(|p| p.name.to_string()).collect(),
        losses,
        gradients: trainer.recorded_gradients(),
        state,
        scores,
    }
}

fn values(t: &Tensor) -> Vec<f32> {
    t.flatten_all().unwrap().to_vec1().unwrap()
}

fn norm(v: &[f32]) -> f64 {
    v.iter().map(|&x| (x as f64).powi(2)).sum::<f64>().sqrt()
}

/// ‖a − b‖ as a fraction of what the tolerance allows: [`RELATIVE`] of the larger norm plus
/// [`ABSOLUTE`] of `scale`, the largest tensor norm of the same player (≤ 1 passes). The
/// absolute part keeps a tensor whose true value is zero or nearly so, a sum of many
/// terms that cancel, from comparing rounding noise with rounding noise: the gradient of a
/// convolution's bias before a BatchNorm (which removes it), of the attention key's bias (a
/// constant added to every key leaves the softmax as it is), the per-channel sums over every
/// position of a batch (the fused kernels sum in f64, candle in f32).
fn excess(a: &Tensor, b: &Tensor, scale: f64) -> f64 {
    let (a, b) = (values(a), values(b));
    assert_eq!(a.len(), b.len());
    let diff: Vec<f32> = a.iter().zip(&b).map(|(x, y)| x - y).collect();
    let allowed = RELATIVE * norm(&a).max(norm(&b)) + ABSOLUTE * scale;
    if allowed == 0.0 {
        if norm(&diff) == 0.0 {
            0.0
        } else {
            f64::INFINITY
        }
    } else {
        norm(&diff) / allowed
    }
}

fn close(a: f32, b: f32) -> bool {
    let (a, b) = (a as f64, b as f64);
    (a - b).abs() <= VALUE_RELATIVE * a.abs().max(b.abs()) + 1e-5
}

fn compare_tensors(
    kind: &str,
    path: &str,
    what: &str,
    fused: &[(String, Tensor)],
    portable: &[(String, Tensor)],
) {
    let names = |v: &[(String, Tensor)]| v.iter().map(|(n, _)| n.clone()).collect::<Vec<_>>();
    assert_eq!(names(fused), names(portable), "{kind}: the same {what}");
    let player = |name: &str| name.split('.').next().unwrap_or_default().to_string();
    let mut largest = std::collections::BTreeMap::<String, f64>::new();
    for (name, t) in fused {
        let n = norm(&values(t));
        let entry = largest.entry(player(name)).or_default();
        *entry = entry.max(n);
    }
    let mut worst = (0.0f64, String::new());
    for ((name, a), (_, b)) in fused.iter().zip(portable) {
        assert_eq!(a.dims(), b.dims(), "{kind}: {what} {name}");
        let d = excess(a, b, largest[&player(name)]);
        if d > worst.0 {
            worst = (d, name.clone());
        }
    }
    eprintln!(
        "{kind}, {path}: largest {what} difference {:.2} of the tolerance ({})",
        worst.0, worst.1
    );
    assert!(
        worst.0 <= 1.0,
        "{kind}: {what} {} differs by {:.1} times the tolerance between the fused kernels and \
         the {path}",
        worst.1,
        worst.0
    );
}

#[test]
fn the_portable_path_trains_and_scores_like_the_fused_kernels_for_every_detector() {
    assert!(
        fused_kernels_enabled(),
        "run without XRAY_GAN_KERNELS=portable: this test compares the two paths"
    );
    for kind in DetectorKind::all() {
        let fused = observe(kind, &Device::Cpu);
        let portable = portable_kernels(|| observe(kind, &Device::Cpu));
        agree(kind.name(), "portable path", &fused, &portable);
    }
}

/// The same comparison between the fused CPU kernels and a GPU: runs in a CUDA build on a
/// machine with a GPU (the GPU check of docs/performance.md); elsewhere it says it skipped, or
/// fails when `XRAY_GAN_REQUIRE_CUDA` is set.
#[test]
fn the_cuda_path_trains_and_scores_like_the_fused_cpu_kernels_for_every_detector() {
    let gpu = match gan_models::resolve_device("cuda") {
        Ok((device, _)) => device,
        Err(e) => {
            assert!(
                std::env::var_os("XRAY_GAN_REQUIRE_CUDA").is_none(),
                "XRAY_GAN_REQUIRE_CUDA is set, but no GPU: {e}"
            );
            eprintln!("no CUDA device ({e}): the CPU vs CUDA comparison is skipped");
            return;
        }
    };
    for kind in DetectorKind::all() {
        let cpu = observe(kind, &Device::Cpu);
        let cuda = observe(kind, &gpu);
        agree(kind.name(), "CUDA path", &cpu, &cuda);
    }
}

/// Asserts that `other` (a path named `path`) trained and scored like the fused CPU kernels.
fn agree(name: &str, path: &str, fused: &Observed, other: &Observed) {
    assert!(!fused.losses.is_empty(), "{name}: no losses");
    assert_eq!(fused.losses.len(), other.losses.len(), "{name}: losses");
    for ((player, a), (_, b)) in fused.losses.iter().zip(&other.losses) {
        assert!(
            close(*a, *b),
            "{name}: loss {player}: fused {a}, {path} {b}"
        );
    }

    // every player applied gradients, and the two paths applied the same ones
    for player in &fused.players {
        assert!(
            fused
                .gradients
                .iter()
                .any(|(n, _)| n.starts_with(&format!("{player}."))),
            "{name}: no gradient reached {player}"
        );
    }
    compare_tensors(name, path, "gradient", &fused.gradients, &other.gradients);
    compare_tensors(name, path, "state variable", &fused.state, &other.state);

    // the switch took effect: summed in other orders, some result is not bit-identical
    let bits = |o: &Observed| -> Vec<u32> {
        o.gradients
            .iter()
            .flat_map(|(_, t)| values(t))
            .map(f32::to_bits)
            .collect()
    };
    assert_ne!(
        bits(fused),
        bits(other),
        "{name}: the {path} gave bit-identical gradients: it ran the same kernels"
    );

    assert_eq!(fused.scores.len(), other.scores.len(), "{name}: statistics");
    for ((statistic, a), (_, b)) in fused.scores.iter().zip(&other.scores) {
        for (x, y) in a.iter().zip(b) {
            assert!(close(*x, *y), "{name}: {statistic}: fused {x}, {path} {y}");
        }
    }
}
