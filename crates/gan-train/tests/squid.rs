//! SQUID: its memory queue fills with the step's patch features and never trains, reading it
//! keeps `memory_top_k` slots, every generator-side network learns, and it lowers its
//! reconstruction error through the generic training loop.

use candle::{Device, Tensor};
use gan_models::detectors::squid::{Squid, SquidSettings, split_patches, stitch_patches};
use gan_models::{Adam, Detector, Register, StepContext, is_trainable};
use gan_train::load_training_data;

mod common;
use common::{first_images, kind, weights};

/// A SQUID detector of the tiny shapes with its optimisers, outside the training loop.
fn squid() -> (Squid, Vec<Adam>) {
    let model = Squid::build(
        &common::tiny_model(),
        SquidSettings::default(),
        &Device::Cpu,
        3,
    )
    .unwrap();
    let optimisers = model
        .players
        .iter()
        .map(|p| Adam::new(p.trainable_vars(), Squid::optimiser()).unwrap())
        .collect();
    (model, optimisers)
}

fn context(step: u64) -> StepContext {
    StepContext {
        epoch: 0,
        step,
        epochs: 1,
        seed: 3,
        noise_sd: 0.0,
        device: Device::Cpu,
    }
}

#[test]
fn patches_split_and_stitch_back_row_major() {
    let x = Tensor::arange(0f32, 2.0 * 16.0, &Device::Cpu)
        .unwrap()
        .reshape((2, 1, 4, 4))
        .unwrap();
    let patches = split_patches(&x).unwrap();
    assert_eq!(patches.dims(), &[8, 1, 2, 2]);
    // image 0's top-right patch (row 1) holds columns 2–3 of rows 0–1
    let top_right: Vec<f32> = patches
        .get(1)
        .unwrap()
        .flatten_all()
        .unwrap()
        .to_vec1()
        .unwrap();
    assert_eq!(top_right, vec![2.0, 3.0, 6.0, 7.0]);
    let back = stitch_patches(&patches).unwrap();
    let diff = (back - &x).unwrap().abs().unwrap().sum_all().unwrap();
    assert_eq!(diff.to_scalar::<f32>().unwrap(), 0.0);
}

#[test]
fn a_step_writes_its_features_into_the_memory_queue_and_trains_every_other_network() {
    let data = common::dataset(5);
    let c = common::config(kind("squid"), data.path(), 1, 3);
    let images = load_training_data(&c, false).unwrap();
    let (model, mut optimisers) = squid();
    let slots = model.settings.memory_slots;
    let queue_before: Vec<f32> = model
        .inpaint
        .memory()
        .flatten_all()
        .unwrap()
        .to_vec1()
        .unwrap();
    // the queue is state: no optimiser holds it
    let inpaint = &model.players[1];
    assert!(
        inpaint
            .named_vars()
            .iter()
            .any(|(n, _)| n.ends_with("memory_queue"))
    );
    assert!(
        inpaint
            .trainable_vars()
            .iter()
            .all(|(n, _)| !n.ends_with("memory_queue"))
    );
    let before = weights(&model);
    let x = first_images(&images.calibration, 4);
    // step 0 trains the generator side too (critic_every = 2)
    let losses = model.train_step(&mut optimisers, &x, &context(0)).unwrap();
    assert_eq!(
        losses.iter().map(|(p, _)| *p).collect::<Vec<_>>(),
        ["discriminator", "generator"]
    );
    let queue: Vec<f32> = model
        .inpaint
        .memory()
        .flatten_all()
        .unwrap()
        .to_vec1()
        .unwrap();
    let d = queue.len() / (4 * slots);
    // per position, the first 4 slots now hold this batch's queries (ReLU outputs: ≥ 0), the
    // rest are untouched
    for position in 0..4 {
        let at = |slot: usize| position * slots * d + slot * d;
        for slot in 0..4 {
            let stored = &queue[at(slot)..at(slot) + d];
            assert_ne!(
                stored,
                &queue_before[at(slot)..at(slot) + d],
                "position {position} slot {slot}"
            );
            assert!(stored.iter().all(|v| *v >= 0.0));
        }
        assert_eq!(&queue[at(4)..at(slots)], &queue_before[at(4)..at(slots)]);
    }
    let after = weights(&model);
    for player in ["encoder", "inpaint", "student", "teacher", "discriminator"] {
        let unchanged: Vec<&str> = before
            .iter()
            .zip(&after)
            .filter(|((n, a), (_, b))| {
                n.starts_with(player)
                    && is_trainable(n)
                    // the self-attention's output scale γ starts at 0, so its query, key and
                    // value get no gradient in the first step
                    && !n.contains(".attention")
                    && a == b
            })
            .map(|((n, _), _)| n.as_str())
            .collect();
        assert!(unchanged.is_empty(), "{player}: unchanged {unchanged:?}");
    }
    // step 1 trains only the discriminator
    let before = weights(&model);
    model.train_step(&mut optimisers, &x, &context(1)).unwrap();
    let after = weights(&model);
    let moved = |player: &str| {
        before
            .iter()
            .zip(&after)
            .any(|((n, a), (_, b))| n.starts_with(player) && is_trainable(n) && a != b)
    };
    assert!(moved("discriminator") && !moved("student") && !moved("encoder"));
}

#[test]
fn squid_lowers_its_reconstruction_error_and_scores_with_its_discriminator() {
    let run = tempfile::tempdir().unwrap();
    let measured = common::train_and_measure_calibration_l1(kind("squid"), 12, run.path());
    let (before, after) = (measured.before, measured.after);
    assert!(after < 0.5 * before, "calibration L1 {before} → {after}");
    let (_, model, _) = gan_train::RunFolder::new(run.path())
        .load_model(gan_train::WhichWeights::Best, &Device::Cpu)
        .unwrap();
    let x = first_images(&measured.images.calibration, 4);
    let scores = model.score(&x).unwrap();
    assert_eq!(model.primary_statistic(), "squid");
    assert_eq!(scores.statistics[0].name(), "squid");
}

#[test]
fn the_squid_score_is_the_discriminators_cross_entropy_for_calling_the_reconstruction_real() {
    let (model, _) = squid();
    let x = Tensor::rand(-1f32, 1.0, (3, 1, 32, 32), &Device::Cpu).unwrap();
    let scores = model.score(&x).unwrap();
    let x_hat = model.reconstruct(&x).unwrap();
    let logit: Vec<f32> = model
        .discriminator
        .forward_t(&x_hat, false)
        .unwrap()
        .logit
        .to_vec1()
        .unwrap();
    for (s, l) in scores.values[0].iter().zip(&logit) {
        let want = -(1.0 / (1.0 + (-l).exp())).ln();
        assert!(
            (s - want).abs() < 1e-5 && *s >= 0.0,
            "{s} vs −ln σ({l}) = {want}"
        );
    }
    // eval mode: the same images score the same
    assert_eq!(model.score(&x).unwrap().values, scores.values);
}
