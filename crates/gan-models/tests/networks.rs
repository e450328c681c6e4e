//! Networks: parameter counts equal the PyTorch reference, shapes per image size, gradients reach
//! every parameter of every player, a frozen network passes gradients through without computing
//! its own, spectral norm and self-attention behave as specified.

use candle::{DType, Device, Tensor, Var};
use candle_nn::{VarBuilder, VarMap};
use gan_models::blocks::{Conv, ConvSpec, SelfAttention};
use gan_models::detectors::alpha_gan::AlphaGan;
use gan_models::detectors::bigan::BiGan;
use gan_models::loss::{bce_with_logits_to, l1};
use gan_models::{Detector, DetectorKind, ModelConfig, Register};

fn kind(name: &str) -> DetectorKind {
    name.parse().unwrap()
}

fn build(
    kind: DetectorKind,
    config: &ModelConfig,
    seed: u64,
) -> gan_models::Result<Box<dyn Detector>> {
    kind.build(config, &serde_json::Value::Null, &Device::Cpu, seed)
}

fn tiny(size: usize) -> ModelConfig {
    ModelConfig {
        image_size: size,
        width: 8,
        latent: 16,
        ..ModelConfig::default()
    }
}

fn counts(kind: DetectorKind, config: &ModelConfig) -> Vec<(&'static str, usize)> {
    let model = build(kind, config, 0).unwrap();
    model
        .players()
        .iter()
        .map(|p| (p.name, p.parameter_count()))
        .collect()
}

#[test]
fn parameter_counts_equal_the_pytorch_reference() {
    // Reference: the same architecture in PyTorch (1 channel, z 128), counted with
    // sum(p.numel() for p in net.parameters()); BatchNorm running statistics and spectral-norm
    // u/v vectors are buffers, not parameters (SPEC §2).
    let seed = ModelConfig::seed_64();
    assert_eq!(
        counts(kind("alpha-gan"), &seed),
        vec![
            ("encoder", 5_262_466),
            ("generator", 3_830_835),
            ("discriminator", 3_173_251),
            ("code_discriminator", 10_369)
        ]
    );
    assert_eq!(
        counts(kind("bigan"), &seed),
        vec![
            ("encoder", 4_213_762),
            ("generator", 3_830_835),
            ("discriminator", 9_788_803)
        ]
    );
    let narrow = ModelConfig { width: 16, ..seed };
    assert_eq!(
        counts(kind("alpha-gan"), &narrow),
        vec![
            ("encoder", 722_914),
            ("generator", 436_815),
            ("discriminator", 200_419),
            ("code_discriminator", 10_369)
        ]
    );
}

#[test]
fn shapes_for_64_128_and_256_pixels() {
    for size in [32, 64, 128, 256] {
        let config = tiny(size);
        let m = AlphaGan::build(&config, Default::default(), &Device::Cpu, 1).unwrap();
        let x = Tensor::zeros((2, 1, size, size), DType::F32, &Device::Cpu).unwrap();
        let code = m.encoder.forward_t(&x, false).unwrap();
        assert_eq!(code.mean.dims(), &[2, 16]);
        assert_eq!(code.sd.as_ref().unwrap().dims(), &[2, 16]);
        assert_eq!(code.features.x4.dims(), &[2, 64, 4, 4]);
        assert_eq!(code.features.x3.dims(), &[2, 32, 8, 8]);
        let image = m.generator.forward_t(&code.mean, false).unwrap();
        assert_eq!(image.dims(), &[2, 1, size, size]);
        let d = m.discriminator.forward_t(&image, false).unwrap();
        assert_eq!(d.logit.dims(), &[2]);
        assert_eq!(
            m.code_discriminator.forward(&code.mean).unwrap().dims(),
            &[2]
        );
    }
    let b = BiGan::build(&tiny(64), Default::default(), &Device::Cpu, 1).unwrap();
    let x = Tensor::zeros((3, 1, 64, 64), DType::F32, &Device::Cpu).unwrap();
    let z = Tensor::zeros((3, 16), DType::F32, &Device::Cpu).unwrap();
    assert_eq!(
        b.discriminator
            .forward_t(&x, &z, false)
            .unwrap()
            .logit
            .dims(),
        &[3]
    );
    assert!(build(kind("bigan"), &tiny(48), 1).is_err());
}

/// Sets every self-attention γ to 0.5: at γ = 0 (the initial value) no gradient reaches the
/// query/key/value convolutions, by construction.
fn open_attention(model: &dyn Detector) {
    for p in model.players() {
        for (name, var) in p.named_vars() {
            if name.ends_with("gamma") {
                var.set(&Tensor::new(&[0.5f32], &Device::Cpu).unwrap())
                    .unwrap();
            }
        }
    }
}

fn assert_every_parameter_has_gradient(model: &dyn Detector, grads: &candle::backprop::GradStore) {
    let mut checked = 0;
    for p in model.players() {
        for (name, var) in p.trainable_vars() {
            // The key convolution's bias adds q_i·b to every entry of row i of the attention
            // energies; softmax over that row ignores a constant, so its gradient is exactly zero
            // (in PyTorch too). It is kept because the reference architecture has it.
            if name.ends_with("key.bias") {
                continue;
            }
            let grad = grads
                .get(var.as_tensor())
                .unwrap_or_else(|| panic!("no gradient for {name}"));
            let size: f32 = grad.abs().unwrap().sum_all().unwrap().to_scalar().unwrap();
            assert!(size > 0.0, "zero gradient for {name}");
            checked += 1;
        }
        for (name, var) in p.named_vars() {
            if !gan_models::is_trainable(&name) {
                assert!(
                    grads.get(var.as_tensor()).is_none(),
                    "state {name} must get no gradient"
                );
            }
        }
    }
    assert!(checked > 40);
}

/// The largest absolute difference between two tensors of one shape.
fn max_abs_diff(a: &Tensor, b: &Tensor) -> f32 {
    (a - b)
        .unwrap()
        .abs()
        .unwrap()
        .max_all()
        .unwrap()
        .to_scalar()
        .unwrap()
}

fn batch(b: usize, size: usize, seed: u32) -> Tensor {
    let values: Vec<f32> = (0..b * size * size)
        .map(|i| (((i as u32).wrapping_mul(2_654_435_761) ^ seed) % 2000) as f32 / 1000.0 - 1.0)
        .collect();
    Tensor::from_vec(values, (b, 1, size, size), &Device::Cpu).unwrap()
}

#[test]
fn gradients_reach_every_parameter_of_every_alpha_gan_player() {
    let m = AlphaGan::build(&tiny(32), Default::default(), &Device::Cpu, 2).unwrap();
    let model: &dyn Detector = &m;
    open_attention(model);
    let x = batch(4, 32, 1);
    let code = m.encoder.forward_t(&x, true).unwrap();
    let eps = Tensor::ones((4, 16), DType::F32, &Device::Cpu).unwrap();
    let z_hat = code.sample(&eps).unwrap();
    let x_hat = m.generator.forward_t(&z_hat, true).unwrap();
    let z = batch(4, 4, 7).reshape((4, 16)).unwrap();
    let x_gen = m.generator.forward_t(&z, true).unwrap();
    let loss = (l1(&x, &x_hat).unwrap()
        + bce_with_logits_to(&m.discriminator.forward_t(&x, true).unwrap().logit, 1.0).unwrap()
        + bce_with_logits_to(&m.discriminator.forward_t(&x_hat, true).unwrap().logit, 0.0)
            .unwrap()
        + bce_with_logits_to(&m.discriminator.forward_t(&x_gen, true).unwrap().logit, 0.0)
            .unwrap()
        + bce_with_logits_to(&m.code_discriminator.forward(&z_hat).unwrap(), 0.0).unwrap()
        + bce_with_logits_to(&m.code_discriminator.forward(&z).unwrap(), 1.0).unwrap())
    .unwrap();
    assert_every_parameter_has_gradient(model, &loss.backward().unwrap());
}

#[test]
fn gradients_reach_every_parameter_of_every_bigan_player() {
    let m = BiGan::build(&tiny(32), Default::default(), &Device::Cpu, 3).unwrap();
    let model: &dyn Detector = &m;
    open_attention(model);
    let x = batch(4, 32, 2);
    let z = batch(4, 4, 9).reshape((4, 16)).unwrap();
    let code = m.encoder.forward_t(&x, true).unwrap();
    let x_gen = m.generator.forward_t(&z, true).unwrap();
    let loss = (bce_with_logits_to(
        &m.discriminator
            .forward_t(&x, &code.mean, true)
            .unwrap()
            .logit,
        1.0,
    )
    .unwrap()
        + bce_with_logits_to(
            &m.discriminator.forward_t(&x_gen, &z, true).unwrap().logit,
            0.0,
        )
        .unwrap())
    .unwrap();
    assert_every_parameter_has_gradient(model, &loss.backward().unwrap());
}

/// Largest singular value by power iteration in f64, independent of the layer's own estimate.
fn top_singular_value(rows: usize, cols: usize, w: &[f32]) -> f64 {
    let mut v = vec![1.0f64; cols];
    let mut sigma = 0.0;
    for _ in 0..500 {
        let u: Vec<f64> = (0..rows)
            .map(|r| (0..cols).map(|c| w[r * cols + c] as f64 * v[c]).sum())
            .collect();
        let un = u.iter().map(|x| x * x).sum::<f64>().sqrt();
        let vt: Vec<f64> = (0..cols)
            .map(|c| (0..rows).map(|r| w[r * cols + c] as f64 * u[r] / un).sum())
            .collect();
        sigma = vt.iter().map(|x| x * x).sum::<f64>().sqrt();
        v = vt.iter().map(|x| x / sigma).collect();
    }
    sigma
}

#[test]
fn spectral_norm_converges_to_the_largest_singular_value() {
    for transposed in [false, true] {
        let vars = VarMap::new();
        let vb = VarBuilder::from_varmap(&vars, DType::F32, &Device::Cpu);
        let conv = if transposed {
            Conv::conv_transpose2d(6, 4, ConvSpec::DOWN_UP, true, vb.pp("c")).unwrap()
        } else {
            Conv::conv2d(6, 4, ConvSpec::DOWN_UP, true, vb.pp("c")).unwrap()
        };
        let x = Tensor::ones((1, 6, 8, 8), DType::F32, &Device::Cpu).unwrap();
        // deterministic weights (candle's own initialiser cannot be seeded), then enough power
        // iterations to converge whatever the gap between the top two singular values
        let weight =
            Var::from_tensor(&vars.data().lock().unwrap()["c.weight"].as_tensor().clone()).unwrap();
        let n = weight.elem_count();
        let values: Vec<f32> = (0..n)
            .map(|i| ((i * 7919 % 1009) as f32 / 1009.0 - 0.5) * 0.1)
            .collect();
        weight
            .set(&Tensor::from_vec(values, weight.shape(), &Device::Cpu).unwrap())
            .unwrap();
        for _ in 0..200 {
            conv.forward_t(&x, true).unwrap();
        }
        let w = conv.weight();
        // the matrix PyTorch uses: output channels × the rest
        let m = if transposed {
            w.transpose(0, 1).unwrap().contiguous().unwrap()
        } else {
            w.clone()
        };
        let rows = 4;
        let values: Vec<f32> = m.flatten_all().unwrap().to_vec1().unwrap();
        let reference = top_singular_value(rows, values.len() / rows, &values);
        let estimate = conv.spectral_norm().unwrap().sigma_of(w).unwrap() as f64;
        assert!(
            (estimate - reference).abs() / reference < 1e-3,
            "transposed {transposed}: {estimate} vs {reference}"
        );
        // the weight the layer uses has largest singular value ≈ 1
        let normalised: Vec<f32> = values.iter().map(|v| v / estimate as f32).collect();
        let top = top_singular_value(rows, values.len() / rows, &normalised);
        assert!((top - 1.0).abs() < 1e-3, "{top}");
        // evaluation does not move the estimate
        conv.forward_t(&x, false).unwrap();
        assert_eq!(
            conv.spectral_norm().unwrap().sigma_of(w).unwrap() as f64,
            estimate
        );
    }
}

#[test]
fn self_attention_with_zero_gamma_is_the_identity() {
    let vars = VarMap::new();
    let vb = VarBuilder::from_varmap(&vars, DType::F32, &Device::Cpu);
    let attention = SelfAttention::new(16, vb.pp("a")).unwrap();
    let x = batch(2, 8, 3).repeat((1, 16, 1, 1)).unwrap();
    let y = attention.forward_t(&x, true).unwrap();
    assert_eq!(max_abs_diff(&y, &x), 0.0);
    // and with γ ≠ 0 it is not
    let gamma = Var::from_tensor(
        &vars
            .get(
                1,
                "a.gamma",
                candle_nn::Init::Const(0.0),
                DType::F32,
                &Device::Cpu,
            )
            .unwrap(),
    )
    .unwrap();
    gamma
        .set(&Tensor::new(&[1.0f32], &Device::Cpu).unwrap())
        .unwrap();
    let y = attention.forward_t(&x, true).unwrap();
    assert!(max_abs_diff(&y, &x) > 0.0);
}

#[test]
fn the_same_seed_gives_the_same_weights() {
    let a = build(kind("alpha-gan"), &tiny(32), 5).unwrap();
    let b = build(kind("alpha-gan"), &tiny(32), 5).unwrap();
    let c = build(kind("alpha-gan"), &tiny(32), 6).unwrap();
    let weights = |m: &dyn Detector| -> Vec<f32> {
        m.players()
            .iter()
            .flat_map(|p| p.named_vars())
            .flat_map(|(_, v)| v.flatten_all().unwrap().to_vec1::<f32>().unwrap())
            .collect()
    };
    assert_eq!(weights(a.as_ref()), weights(b.as_ref()));
    assert_ne!(weights(a.as_ref()), weights(c.as_ref()));
}

#[test]
fn fused_softmax_matches_the_composite_one_and_its_gradient() {
    let x = batch(3, 8, 5).reshape((3, 8, 8)).unwrap();
    let var = Var::from_tensor(&(x * 4.0).unwrap()).unwrap();
    let weights = batch(3, 8, 9).reshape((3, 8, 8)).unwrap();
    let fused = gan_models::kernels::softmax_last_dim(var.as_tensor()).unwrap();
    let composite = candle_nn::ops::softmax(var.as_tensor(), candle::D::Minus1).unwrap();
    assert!(max_abs_diff(&fused, &composite) < 1e-6);
    let g1 = fused
        .mul(&weights)
        .unwrap()
        .sum_all()
        .unwrap()
        .backward()
        .unwrap();
    let g2 = composite
        .mul(&weights)
        .unwrap()
        .sum_all()
        .unwrap()
        .backward()
        .unwrap();
    let (g1, g2) = (
        g1.get(var.as_tensor()).unwrap(),
        g2.get(var.as_tensor()).unwrap(),
    );
    assert!(
        max_abs_diff(g1, g2) < 1e-6,
        "gradients differ by {}",
        max_abs_diff(g1, g2)
    );
    assert!(
        g1.abs()
            .unwrap()
            .sum_all()
            .unwrap()
            .to_scalar::<f32>()
            .unwrap()
            > 0.0
    );
}

#[test]
fn a_frozen_network_passes_the_same_gradient_through_and_computes_none_for_its_weights() {
    // The generator between an encoder's code and the loss, and the discriminator between an
    // image and the loss: frozen, each must give its input the same gradient as when trained,
    // and leave its convolution and bias weights without a gradient.
    // A training-mode pass moves spectral norm's estimate and BatchNorm's running statistics,
    // so each way runs on its own copy of the same model.
    let model = || {
        let model = AlphaGan::build(&tiny(32), Default::default(), &Device::Cpu, 3).unwrap();
        open_attention(&model);
        model
    };
    let models = [model(), model()];
    let z = Var::from_tensor(&batch(4, 4, 5).reshape((4, 16)).unwrap()).unwrap();
    let x = Var::from_tensor(&batch(4, 32, 6)).unwrap();
    let through = |frozen: bool| {
        let m = &models[frozen as usize];
        let run = |f: &dyn Fn() -> candle::Result<Tensor>| match frozen {
            true => gan_models::blocks::frozen(f),
            false => f(),
        };
        let image = run(&|| m.generator.forward_t(z.as_tensor(), true)).unwrap();
        let realism = run(&|| Ok(m.discriminator.forward_t(x.as_tensor(), true)?.logit)).unwrap();
        let loss = (image.sqr().unwrap().mean_all().unwrap()
            + bce_with_logits_to(&realism, 1.0).unwrap())
        .unwrap();
        loss.backward().unwrap()
    };
    let (trained, frozen) = (through(false), through(true));
    for input in [&z, &x] {
        let a = trained.get(input.as_tensor()).unwrap();
        let b = frozen.get(input.as_tensor()).unwrap();
        let diff = max_abs_diff(a, b);
        assert!(diff < 1e-6, "input gradient differs by {diff}");
    }
    let mut weights = 0;
    for (p, q) in models[0].players().iter().zip(models[1].players()) {
        for ((name, var), (_, frozen_var)) in p.trainable_vars().into_iter().zip(q.trainable_vars())
        {
            let convolution_or_bias = name.ends_with("bias") || name.ends_with("weight");
            // BatchNorm's affine parameters are not detached (their gradients cost nothing)
            if !convolution_or_bias || name.contains(".bn.") {
                continue;
            }
            if trained.get(var.as_tensor()).is_some() {
                assert!(
                    frozen.get(frozen_var.as_tensor()).is_none(),
                    "{} {name} got a gradient while frozen",
                    p.name
                );
                weights += 1;
            }
        }
    }
    assert!(weights > 10, "only {weights} weights checked");
}
