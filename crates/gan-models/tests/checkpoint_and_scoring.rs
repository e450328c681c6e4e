//! Scoring is deterministic and sensible; save → load reproduces scores exactly; a checkpoint
//! that does not fit is refused with a precise message.

use candle::{DType, Device, Tensor};
use gan_models::detectors::{f_anogan, ganomaly};
use gan_models::{
    Adam, Detector, DetectorKind, ModelConfig, OptimiserConfig, Statistic, StepContext,
    read_checkpoint, read_checkpoint_metadata, save_checkpoint,
};

fn build(kind: DetectorKind, seed: u64) -> Box<dyn Detector> {
    kind.build(&tiny(), &serde_json::Value::Null, &Device::Cpu, seed)
        .unwrap()
}

/// One training step with fresh optimisers: moves weights, BatchNorm statistics and
/// spectral-norm vectors away from their initial values.
fn train_once(model: &dyn Detector, x: &Tensor) {
    let mut optimisers: Vec<Adam> = model
        .players()
        .iter()
        .map(|p| Adam::new(p.trainable_vars(), OptimiserConfig::default()).unwrap())
        .collect();
    let context = StepContext {
        epoch: 0,
        step: 4,
        epochs: 2,
        seed: 1,
        noise_sd: 0.0,
        device: Device::Cpu,
    };
    model.train_step(&mut optimisers, x, &context).unwrap();
}

fn tiny() -> ModelConfig {
    ModelConfig {
        image_size: 32,
        width: 8,
        latent: 16,
        ..ModelConfig::default()
    }
}

fn batch() -> Tensor {
    let values: Vec<f32> = (0..4 * 32 * 32)
        .map(|i| ((i * 37 % 101) as f32 / 50.0) - 1.0)
        .collect();
    Tensor::from_vec(values, (4, 1, 32, 32), &Device::Cpu).unwrap()
}

/// Asking for some statistics, in another order, gives those columns of the full score, bit for
/// bit, and nothing else.
#[test]
fn a_subset_of_statistics_is_the_same_columns_of_the_full_score() {
    for kind in DetectorKind::all() {
        let model = build(kind, 11);
        let x = batch();
        let full = model.score(&x).unwrap();
        let wanted: Vec<Statistic> = model
            .statistics()
            .iter()
            .rev()
            .step_by(2)
            .copied()
            .collect();
        let part = model.score_statistics(&x, &wanted).unwrap();
        assert_eq!(part.statistics, wanted, "{kind}");
        for (s, column) in wanted.iter().zip(&part.values) {
            assert_eq!(column.as_slice(), full.get(*s), "{kind} {s}");
        }
    }
}

#[test]
fn scoring_twice_gives_identical_numbers_and_valid_ranges() {
    for kind in DetectorKind::all() {
        let model = build(kind, 11);
        let x = batch();
        let a = model.score(&x).unwrap();
        let b = model.score(&x).unwrap();
        assert_eq!(a.values, b.values, "{kind}");
        assert_eq!(a.statistics, model.statistics(), "{kind}");
        assert_eq!(a.values.len(), model.statistics().len());
        for (s, column) in a.statistics.iter().zip(&a.values) {
            assert_eq!(column.len(), 4);
            assert!(
                column.iter().all(|v| v.is_finite() && *v >= 0.0),
                "{kind} {s:?}: {column:?}"
            );
        }
        assert!(a.get(Statistic::DISC).iter().all(|v| *v <= 1.0));
        // the four GANs have the reconstruction statistics; the paper's own score comes first
        if matches!(kind.name(), "alpha-gan" | "bigan" | "ganomaly" | "f-anogan") {
            for s in [
                Statistic::L1,
                Statistic::L2,
                Statistic::L1_TOP1,
                Statistic::DSSIM,
            ] {
                assert_eq!(a.get(s).len(), 4, "{kind} {s:?}");
            }
        }
        // the primary statistic is the paper's score, computed, or the fused one
        let primary = model.primary_statistic();
        assert!(
            primary == gan_models::FUSED_TWO_SIDED || a.get(Statistic::new(primary)).len() == 4,
            "{kind}: primary {primary}"
        );
        match kind.name() {
            "ganomaly" => {
                assert_eq!(a.statistics[0], ganomaly::LATENT);
                assert_eq!(primary, "latent");
            }
            "f-anogan" => {
                assert_eq!(a.statistics[0], f_anogan::IZIF);
                assert_eq!(primary, "izif");
                assert!(
                    a.get(Statistic::DISC).is_empty(),
                    "a critic is no classifier"
                );
                for ((izif, l2), fm) in a
                    .get(f_anogan::IZIF)
                    .iter()
                    .zip(a.get(Statistic::L2))
                    .zip(a.get(Statistic::FM_D4))
                {
                    assert!((izif - (l2 + fm)).abs() < 1e-5, "izif = l2 + fm_d4");
                }
            }
            "alpha-gan" | "bigan" => {
                assert_eq!(a.statistics[0], Statistic::L1);
                assert_eq!(primary, gan_models::FUSED_TWO_SIDED);
            }
            _ => {}
        }
        let per_image_mean = |t: &Tensor| -> Vec<f32> {
            t.flatten_from(1)
                .unwrap()
                .mean(1)
                .unwrap()
                .to_vec1()
                .unwrap()
        };
        let mean_square = per_image_mean(&a.residual.sqr().unwrap());
        if kind.name() == "autoencoder-u" {
            // its map is the confidence-weighted residual: its mean square is the primary
            let primary = a.get(gan_models::detectors::autoencoder_u::L2_U);
            for (m, u) in mean_square.iter().zip(primary) {
                assert!((m - u).abs() <= 1e-5 * u.max(1e-3), "{m} vs l2_u {u}");
            }
            assert_ne!(mean_square.as_slice(), a.get(Statistic::L2));
        } else {
            // l1 and l2 are the mean and mean square of the residual map
            for (r, l1) in per_image_mean(&a.residual).iter().zip(a.get(Statistic::L1)) {
                assert!((r - l1).abs() < 1e-5);
            }
            assert_eq!(mean_square.as_slice(), a.get(Statistic::L2));
        }
        assert_eq!(a.residual.dims(), &[4, 1, 32, 32]);
        // the top 1 % of the smoothed residual is at least its mean, and here well above it
        for (top, l1) in a.get(Statistic::L1_TOP1).iter().zip(a.get(Statistic::L1)) {
            assert!(top >= l1, "{kind}: l1_top1 {top} below l1 {l1}");
        }
        // scoring (eval mode) leaves BatchNorm statistics and spectral-norm state untouched
        let before: Vec<Vec<f32>> = model
            .players()
            .iter()
            .flat_map(|p| p.named_vars())
            .map(|(_, v)| v.flatten_all().unwrap().to_vec1().unwrap())
            .collect();
        model.score(&x).unwrap();
        let after: Vec<Vec<f32>> = model
            .players()
            .iter()
            .flat_map(|p| p.named_vars())
            .map(|(_, v)| v.flatten_all().unwrap().to_vec1().unwrap())
            .collect();
        assert_eq!(before, after);
    }
}

#[test]
fn save_then_load_reproduces_scores_exactly() {
    let dir = tempfile::tempdir().unwrap();
    for kind in DetectorKind::all() {
        let model = build(kind, 21);
        let x = batch();
        train_once(model.as_ref(), &x);
        let path = dir.path().join(format!("{kind}.safetensors"));
        let extra = vec![(
            "optim.step".to_string(),
            Tensor::new(&[7.0f32], &Device::Cpu).unwrap(),
        )];
        save_checkpoint(
            &path,
            model.as_ref(),
            &extra,
            &[("note".into(), "hello".into())],
        )
        .unwrap();
        let checkpoint = read_checkpoint(&path, &Device::Cpu).unwrap();
        assert_eq!(checkpoint.kind, kind);
        assert_eq!(checkpoint.config, tiny());
        assert_eq!(checkpoint.metadata["note"], "hello");
        assert!(checkpoint.tensors.contains_key("optim.step"));
        assert_eq!(checkpoint.settings, model.settings());
        // the header alone gives the same metadata
        assert_eq!(
            read_checkpoint_metadata(&path).unwrap(),
            checkpoint.metadata
        );
        let loaded = checkpoint.detector(&Device::Cpu).unwrap();
        assert_eq!(
            model.score(&x).unwrap().values,
            loaded.score(&x).unwrap().values,
            "{kind}"
        );
        // a differently seeded model scores differently until it loads the checkpoint
        let other = build(kind, 99);
        assert_ne!(
            model.score(&x).unwrap().values,
            other.score(&x).unwrap().values
        );
        other.load_checkpoint(&checkpoint).unwrap();
        assert_eq!(
            model.score(&x).unwrap().values,
            other.score(&x).unwrap().values
        );
    }
}

#[test]
fn checkpoints_that_do_not_fit_are_refused_precisely() {
    let dir = tempfile::tempdir().unwrap();
    let alpha = build("alpha-gan".parse().unwrap(), 1);
    let path = dir.path().join("alpha.safetensors");
    save_checkpoint(&path, alpha.as_ref(), &[], &[]).unwrap();
    let checkpoint = read_checkpoint(&path, &Device::Cpu).unwrap();

    let bigan = build("bigan".parse().unwrap(), 1);
    let err = bigan.load_checkpoint(&checkpoint).unwrap_err().to_string();
    assert!(
        err.contains("alpha.safetensors")
            && err.contains("holds a alpha-gan model, expected bigan"),
        "{err}"
    );

    let bigger = alpha
        .kind()
        .build(
            &ModelConfig {
                image_size: 64,
                ..tiny()
            },
            &serde_json::Value::Null,
            &Device::Cpu,
            1,
        )
        .unwrap();
    let err = bigger.load_checkpoint(&checkpoint).unwrap_err().to_string();
    assert!(
        err.contains("configuration differs") && err.contains("\"image_size\":32"),
        "{err}"
    );

    // a tensor of the wrong shape under the right config: named precisely
    let mut tampered = read_checkpoint(&path, &Device::Cpu).unwrap();
    tampered.tensors.insert(
        "generator.output.bias".into(),
        Tensor::zeros(3, DType::F32, &Device::Cpu).unwrap(),
    );
    tampered.tensors.remove("encoder.mean.weight");
    let err = alpha.load_checkpoint(&tampered).unwrap_err().to_string();
    assert!(
        err.contains("tensor generator.output.bias has shape [3], expected [1]"),
        "{err}"
    );
    assert!(err.contains("missing tensor encoder.mean.weight"), "{err}");

    // truncated file
    let bytes = std::fs::read(&path).unwrap();
    let cut = dir.path().join("cut.safetensors");
    std::fs::write(&cut, &bytes[..bytes.len() / 2]).unwrap();
    let err = read_checkpoint(&cut, &Device::Cpu).unwrap_err().to_string();
    assert!(
        err.contains("cut.safetensors") && err.contains("not a readable safetensors file"),
        "{err}"
    );

    // one weight byte flipped: the checksum catches it
    let mut edited = bytes.clone();
    let last = edited.len() - 3;
    edited[last] ^= 0x40;
    let bad = dir.path().join("edited.safetensors");
    std::fs::write(&bad, &edited).unwrap();
    let err = read_checkpoint(&bad, &Device::Cpu).unwrap_err().to_string();
    assert!(err.contains("damaged or edited"), "{err}");

    // not a checkpoint at all
    let text = dir.path().join("notes.safetensors");
    std::fs::write(&text, "hello").unwrap();
    assert!(read_checkpoint(&text, &Device::Cpu).is_err());
}

#[test]
fn a_detector_s_settings_travel_with_its_checkpoint() {
    let dir = tempfile::tempdir().unwrap();
    let kind: DetectorKind = "ganomaly".parse().unwrap();
    let settings = kind
        .with_assignments(&kind.default_settings(), &["contextual_weight=7".into()])
        .unwrap();
    let model = kind.build(&tiny(), &settings, &Device::Cpu, 3).unwrap();
    let path = dir.path().join("g.safetensors");
    save_checkpoint(&path, model.as_ref(), &[], &[]).unwrap();
    let checkpoint = read_checkpoint(&path, &Device::Cpu).unwrap();
    assert_eq!(checkpoint.settings["contextual_weight"], 7.0);
    assert_eq!(
        checkpoint.detector(&Device::Cpu).unwrap().settings(),
        settings
    );
}

#[test]
fn a_header_that_claims_more_than_the_file_holds_is_refused_without_reading_it() {
    let dir = tempfile::tempdir().unwrap();
    let path = dir.path().join("huge.safetensors");
    let mut bytes = (u64::MAX / 2).to_le_bytes().to_vec();
    bytes.extend_from_slice(b"{}");
    std::fs::write(&path, &bytes).unwrap();
    let err = read_checkpoint_metadata(&path).unwrap_err().to_string();
    assert!(
        err.contains("huge.safetensors") && err.contains("claims"),
        "{err}"
    );
}
