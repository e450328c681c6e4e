//! The CPU kernels equal what candle's own ops compute. Convolutions (gemm): outputs, input gradients and weight
//! gradients, for every geometry the networks use and an odd one (non-square, stride 3), with
//! images one per product and grouped; and a
//! convolution's FLOP count is two per multiply-add. Fused attention: output and the gradients of
//! q, k and v equal the composite from tensor ops. Fused bias + LeakyReLU and BatchNorm + ReLU:
//! outputs, gradients and running statistics equal candle_nn's layers. With bf16 products, the
//! convolutions equal candle's on bf16-rounded operands.

use candle::{Device, Tensor, Var};
use candle_nn::{VarBuilder, VarMap};
use gan_models::blocks::{BatchNormRelu, Conv, ConvSpec};
use gan_models::flops;
use gan_models::kernels::{
    Precision, attention as attention_kernel, bf16, bias_leaky_relu, gemm_conv, with_precision,
};

fn random(shape: &[usize], seed: u64) -> Tensor {
    // A small LCG keeps the values reproducible without candle's unseedable CPU RNG.
    let n: usize = shape.iter().product();
    let mut state = seed
        .wrapping_mul(6364136223846793005)
        .wrapping_add(1442695040888963407);
    let values: Vec<f32> = (0..n)
        .map(|_| {
            state = state
                .wrapping_mul(6364136223846793005)
                .wrapping_add(1442695040888963407);
            ((state >> 40) as f32 / (1u64 << 24) as f32) * 2.0 - 1.0
        })
        .collect();
    Tensor::from_vec(values, shape, &Device::Cpu).unwrap()
}

fn max_abs_diff(a: &Tensor, b: &Tensor) -> f32 {
    assert_eq!(a.dims(), b.dims());
    (a - b)
        .unwrap()
        .abs()
        .unwrap()
        .flatten_all()
        .unwrap()
        .max(0)
        .unwrap()
        .to_scalar::<f32>()
        .unwrap()
}

/// Output, ∂x and ∂w of `ours` and `theirs` agree to float rounding.
fn assert_same(
    x_shape: &[usize],
    w_shape: &[usize],
    ours: impl Fn(&Tensor, &Tensor) -> candle::Result<Tensor>,
    theirs: impl Fn(&Tensor, &Tensor) -> candle::Result<Tensor>,
) {
    let x = Var::from_tensor(&random(x_shape, 1)).unwrap();
    let w = Var::from_tensor(&random(w_shape, 2)).unwrap();
    let a = ours(x.as_tensor(), w.as_tensor()).unwrap();
    let b = theirs(x.as_tensor(), w.as_tensor()).unwrap();
    assert!(
        max_abs_diff(&a, &b) < 1e-4,
        "outputs differ for x {x_shape:?}, w {w_shape:?}"
    );
    let r = random(a.dims(), 3);
    let ga = (a * &r).unwrap().sum_all().unwrap().backward().unwrap();
    let gb = (b * &r).unwrap().sum_all().unwrap().backward().unwrap();
    for (name, var) in [("x", &x), ("w", &w)] {
        let (ga, gb) = (ga.get(var).unwrap(), gb.get(var).unwrap());
        let scale = gb.abs().unwrap().max_keepdim(0).unwrap().max_all().unwrap();
        let scale = scale.to_scalar::<f32>().unwrap().max(1.0);
        assert!(
            max_abs_diff(ga, gb) < 1e-4 * scale,
            "∂{name} differs for x {x_shape:?}, w {w_shape:?}"
        );
    }
}

#[test]
fn conv2d_equals_candle() {
    // (x shape, w shape, padding, stride)
    let cases: [(&[usize], &[usize], usize, usize); 7] = [
        (&[2, 3, 8, 6], &[5, 3, 4, 4], 1, 2), // down-sampling stage, non-square
        // images grouped into products of at least 256 columns: 16 per group at 4×4 outputs,
        // three groups (the last one partial), run in parallel
        (&[40, 2, 8, 8], &[3, 2, 4, 4], 1, 2),
        (&[3, 2, 64, 64], &[3, 2, 4, 4], 1, 2), // 1024 columns: one image per product
        (&[2, 3, 6, 7], &[4, 3, 3, 3], 1, 1),   // stride 1 with padding (rows copied whole)
        (&[2, 4, 4, 4], &[3, 4, 4, 4], 0, 1),   // 4×4 → 1×1 head
        (&[2, 4, 5, 5], &[6, 4, 1, 1], 0, 1),   // attention's pointwise convs
        // odd geometry; candle's own backward fails when stride does not divide the padded
        // span (it has no output padding), so the span is a multiple of 3 here
        (&[1, 2, 8, 5], &[2, 2, 3, 3], 2, 3),
    ];
    for (xs, ws, p, s) in cases {
        assert_same(
            xs,
            ws,
            |x, w| gemm_conv::conv2d(x, w, p, s),
            |x, w| x.conv2d(w, p, s, 1, 1),
        );
    }
}

#[test]
fn conv_transpose2d_equals_candle() {
    let cases: [(&[usize], &[usize], usize, usize); 7] = [
        (&[2, 3, 4, 3], &[3, 5, 4, 4], 1, 2), // up-sampling stage, non-square
        (&[40, 2, 4, 4], &[2, 3, 4, 4], 1, 2), // grouped: 16 images of 4×4 inputs per product
        (&[3, 2, 32, 32], &[2, 3, 4, 4], 1, 2), // one image per product
        (&[2, 3, 5, 4], &[3, 2, 3, 3], 1, 1), // stride 1 with padding
        (&[2, 6, 1, 1], &[6, 4, 4, 4], 0, 1), // latent 1×1 → 4×4
        (&[2, 4, 8, 8], &[4, 1, 4, 4], 1, 2), // one output channel (the generator's last layer)
        (&[1, 2, 3, 4], &[2, 2, 3, 3], 1, 3), // odd geometry
    ];
    for (xs, ws, p, s) in cases {
        assert_same(
            xs,
            ws,
            |x, w| gemm_conv::conv_transpose2d(x, w, p, s),
            |x, w| x.conv_transpose2d(w, p, 0, s, 1),
        );
    }
}

/// `t` with every value rounded to bf16 (still f32).
fn bf16_rounded(t: &Tensor) -> Tensor {
    let v: Vec<f32> = t.flatten_all().unwrap().to_vec1().unwrap();
    let v: Vec<f32> = v.into_iter().map(bf16::bf16_round).collect();
    Tensor::from_vec(v, t.dims(), &Device::Cpu).unwrap()
}

/// With bf16 products, a convolution's output, ∂x and ∂w equal candle's f32 convolution of the
/// same operands rounded to bf16 (x, w and the upstream gradient), to f32 rounding; on operands
/// that are not bf16 values they differ (the bf16 path ran).
#[test]
fn bf16_convolutions_equal_candle_on_rounded_operands() {
    if !bf16::available() {
        assert!(Precision::Bf16.check(&Device::Cpu).is_err());
        eprintln!("no AVX512-BF16 on this CPU: the bf16 products are not available");
        return;
    }
    assert!(Precision::Bf16.check(&Device::Cpu).is_ok());
    // the portable path has no bf16 products: refused, not silently f32
    let portable = gan_models::kernels::portable_kernels(|| Precision::Bf16.check(&Device::Cpu));
    assert!(portable.is_err_and(|e| e.contains("portable")));
    // (x shape, w shape, transposed, padding, stride): a down-sampling stage, images grouped
    // into products, a 1×1 convolution; an up-sampling stage, grouped, the latent's 1×1 → 4×4
    type Case = (&'static [usize], &'static [usize], bool, usize, usize);
    let cases: [Case; 6] = [
        (&[3, 3, 16, 16], &[5, 3, 4, 4], false, 1, 2),
        (&[40, 2, 8, 8], &[3, 2, 4, 4], false, 1, 2),
        (&[2, 4, 5, 5], &[6, 4, 1, 1], false, 0, 1),
        (&[2, 3, 4, 3], &[3, 5, 4, 4], true, 1, 2),
        (&[40, 2, 4, 4], &[2, 3, 4, 4], true, 1, 2),
        (&[2, 6, 1, 1], &[6, 4, 4, 4], true, 0, 1),
    ];
    for (xs, ws, transposed, pad, stride) in cases {
        let ours = |x: &Tensor, w: &Tensor| match transposed {
            true => gemm_conv::conv_transpose2d(x, w, pad, stride),
            false => gemm_conv::conv2d(x, w, pad, stride),
        };
        let theirs = |x: &Tensor, w: &Tensor| match transposed {
            true => x.conv_transpose2d(w, pad, 0, stride, 1),
            false => x.conv2d(w, pad, stride, 1, 1),
        };
        let (x, w) = (random(xs, 1), random(ws, 2));
        let (xv, wv) = (Var::from_tensor(&x).unwrap(), Var::from_tensor(&w).unwrap());
        let r = random(ours(&x, &w).unwrap().dims(), 3);
        let run = |precision| {
            with_precision(precision, || {
                let y = ours(xv.as_tensor(), wv.as_tensor()).unwrap();
                let g = (&y * &r).unwrap().sum_all().unwrap().backward().unwrap();
                [y, g.get(&xv).unwrap().clone(), g.get(&wv).unwrap().clone()]
            })
        };
        let (bf, f32s) = (run(Precision::Bf16), run(Precision::F32));
        for (name, a, b) in [
            ("y", &bf[0], &f32s[0]),
            ("∂x", &bf[1], &f32s[1]),
            ("∂w", &bf[2], &f32s[2]),
        ] {
            let d = max_abs_diff(a, b);
            assert!(
                d > 1e-5,
                "bf16 products gave the f32 {name} for x {xs:?}: {d}"
            );
        }
        let x = Var::from_tensor(&bf16_rounded(&x)).unwrap();
        let w = Var::from_tensor(&bf16_rounded(&w)).unwrap();
        let a = with_precision(Precision::Bf16, || ours(x.as_tensor(), w.as_tensor())).unwrap();
        let b = theirs(x.as_tensor(), w.as_tensor()).unwrap();
        assert!(max_abs_diff(&a, &b) < 1e-4, "outputs differ for x {xs:?}");
        let r = bf16_rounded(&random(a.dims(), 3));
        let ga = with_precision(Precision::Bf16, || {
            (a * &r).unwrap().sum_all().unwrap().backward()
        })
        .unwrap();
        let gb = (b * &r).unwrap().sum_all().unwrap().backward().unwrap();
        for (name, var) in [("x", &x), ("w", &w)] {
            let (ga, gb) = (ga.get(var).unwrap(), gb.get(var).unwrap());
            let scale = gb.abs().unwrap().max_all().unwrap();
            let scale = scale.to_scalar::<f32>().unwrap().max(1.0);
            assert!(
                max_abs_diff(ga, gb) < 1e-4 * scale,
                "∂{name} differs for x {xs:?}, w {ws:?}"
            );
        }
    }
}

#[test]
fn mismatched_channels_are_an_error_not_a_panic() {
    let x = random(&[1, 3, 8, 8], 1);
    assert!(gemm_conv::conv2d(&x, &random(&[2, 4, 4, 4], 2), 1, 2).is_err());
    assert!(gemm_conv::conv_transpose2d(&x, &random(&[4, 2, 4, 4], 2), 1, 2).is_err());
    // stride 0, an empty input
    assert!(gemm_conv::conv2d(&x, &random(&[2, 3, 4, 4], 2), 1, 0).is_err());
    let empty = Tensor::zeros((1, 4, 0, 3), candle::DType::F32, &Device::Cpu).unwrap();
    assert!(gemm_conv::conv_transpose2d(&empty, &random(&[4, 2, 4, 4], 2), 1, 2).is_err());
    // a kernel larger than the padded image
    assert!(gemm_conv::conv2d(&random(&[1, 1, 2, 2], 1), &random(&[1, 1, 4, 4], 2), 0, 1).is_err());
}

#[test]
fn a_convolution_counts_two_flops_per_multiply_add() {
    let map = VarMap::new();
    let vb = VarBuilder::from_varmap(&map, candle::DType::F32, &Device::Cpu);
    let down = Conv::conv2d(3, 5, ConvSpec::DOWN_UP, false, vb.pp("down")).unwrap();
    let up = Conv::conv_transpose2d(5, 2, ConvSpec::DOWN_UP, false, vb.pp("up")).unwrap();
    let x = Tensor::zeros((2, 3, 8, 8), candle::DType::F32, &Device::Cpu).unwrap();
    let (y, counted) = flops::count(|| down.forward_t(&x, false).unwrap());
    // 2 images × 4×4 outputs × 5 out × 3 in × 4×4 taps
    assert_eq!(counted, 2 * (2 * 16 * 5 * 3 * 16));
    let (_, counted) = flops::count(|| up.forward_t(&y, false).unwrap());
    // 2 images × 4×4 inputs × 5 in × 2 out × 4×4 taps
    assert_eq!(counted, 2 * (2 * 16 * 5 * 2 * 16));
}

#[test]
fn fused_attention_equals_tensor_ops() {
    // (q/k shape, v shape): an odd size, a 4×4 map with 16 channels, and more positions than one
    // block of query rows (64) holds, not a multiple of it
    let cases: [(&[usize], &[usize]); 3] = [
        (&[3, 2, 7], &[3, 5, 7]),
        (&[2, 2, 16], &[2, 16, 16]),
        (&[2, 3, 150], &[2, 4, 150]),
    ];
    for (qk, vs) in cases {
        let q = Var::from_tensor(&random(qk, 11)).unwrap();
        let k = Var::from_tensor(&random(qk, 12)).unwrap();
        let v = Var::from_tensor(&random(vs, 13)).unwrap();
        let (qt, kt, vt) = (q.as_tensor(), k.as_tensor(), v.as_tensor());
        let fused = attention_kernel::spatial_attention(qt, kt, vt).unwrap();
        let reference = attention_kernel::composite(qt, kt, vt).unwrap();
        assert!(
            max_abs_diff(&fused, &reference) < 1e-5,
            "outputs differ for {qk:?}"
        );
        let r = random(fused.dims(), 14);
        let ga = (fused * &r).unwrap().sum_all().unwrap().backward().unwrap();
        let gb = (reference * &r)
            .unwrap()
            .sum_all()
            .unwrap()
            .backward()
            .unwrap();
        for (name, var) in [("q", &q), ("k", &k), ("v", &v)] {
            let diff = max_abs_diff(ga.get(var).unwrap(), gb.get(var).unwrap());
            assert!(diff < 1e-5, "∂{name} differs by {diff} for {qk:?}");
        }
    }
}

/// With bf16 products, fused attention (output and the gradients of q, k and v) stays within
/// bf16 rounding of the f32 composite, and differs from the f32 kernel (the bf16 path ran).
#[test]
fn bf16_attention_is_within_rounding_of_tensor_ops() {
    if !bf16::available() {
        return; // see bf16_convolutions_equal_candle_on_rounded_operands
    }
    for (qk, vs) in [
        (&[2usize, 4, 150][..], &[2usize, 32, 150][..]),
        (&[2, 2, 64], &[2, 16, 64]),
    ] {
        let q = Var::from_tensor(&random(qk, 21)).unwrap();
        let k = Var::from_tensor(&random(qk, 22)).unwrap();
        let v = Var::from_tensor(&random(vs, 23)).unwrap();
        let (qt, kt, vt) = (q.as_tensor(), k.as_tensor(), v.as_tensor());
        let r = random(vs, 24);
        let run = |precision| {
            with_precision(precision, || {
                let out = attention_kernel::spatial_attention(qt, kt, vt).unwrap();
                let g = (&out * &r).unwrap().sum_all().unwrap().backward().unwrap();
                let grads = [&q, &k, &v].map(|var| g.get(var).unwrap().clone());
                (out, grads)
            })
        };
        let (out, grads) = run(Precision::Bf16);
        let (out32, grads32) = run(Precision::F32);
        let reference = attention_kernel::composite(qt, kt, vt).unwrap();
        let g_ref = (&reference * &r)
            .unwrap()
            .sum_all()
            .unwrap()
            .backward()
            .unwrap();
        let scale = |t: &Tensor| {
            t.abs()
                .unwrap()
                .max_all()
                .unwrap()
                .to_scalar::<f32>()
                .unwrap()
        };
        let pairs = [("output", &out, &out32, reference.clone())]
            .into_iter()
            .chain(
                ["∂q", "∂k", "∂v"]
                    .into_iter()
                    .zip(grads.iter().zip(&grads32))
                    .zip([&q, &k, &v])
                    .map(|((name, (a, b)), var)| (name, a, b, g_ref.get(var).unwrap().clone())),
            );
        for (name, bf, f32_kernel, reference) in pairs {
            let (d, d32) = (max_abs_diff(bf, &reference), max_abs_diff(bf, f32_kernel));
            assert!(
                d < 2e-2 * scale(&reference),
                "{name} off by {d} for {qk:?} (scale {})",
                scale(&reference)
            );
            assert!(
                d32 > 0.0,
                "{name}: bf16 products gave the f32 result for {qk:?}"
            );
        }
    }
}

#[test]
fn fused_bias_leaky_relu_equals_candle_nn() {
    for shape in [&[2usize, 3, 5, 4][..], &[3, 6, 1, 1], &[2, 4, 7]] {
        let c = shape[1];
        assert_same(
            shape,
            &[c],
            |x, b| bias_leaky_relu(x, b, 0.1),
            |x, b| {
                let mut per_channel = vec![1; x.rank()];
                per_channel[1] = c;
                candle_nn::ops::leaky_relu(&x.broadcast_add(&b.reshape(per_channel)?)?, 0.1)
            },
        );
    }
}

#[test]
fn fused_batch_norm_relu_equals_candle_nn_in_training_and_evaluation() {
    let (b, c, h, w) = (4, 3, 5, 6);
    let ours_vars = VarMap::new();
    let theirs_vars = VarMap::new();
    let ours = BatchNormRelu::new(
        c,
        VarBuilder::from_varmap(&ours_vars, candle::DType::F32, &Device::Cpu),
    )
    .unwrap();
    let theirs = candle_nn::batch_norm(
        c,
        candle_nn::BatchNormConfig::default(),
        VarBuilder::from_varmap(&theirs_vars, candle::DType::F32, &Device::Cpu),
    )
    .unwrap();
    // the same non-trivial affine parameters on both sides
    let get = |vars: &VarMap, name: &str| {
        vars.get(
            c,
            name,
            candle_nn::Init::Const(0.),
            candle::DType::F32,
            &Device::Cpu,
        )
        .unwrap()
    };
    for vars in [&ours_vars, &theirs_vars] {
        let weight = Var::from_tensor(&get(vars, "weight")).unwrap();
        weight
            .set(&random(&[c], 7).affine(0.5, 1.0).unwrap())
            .unwrap();
        let bias = Var::from_tensor(&get(vars, "bias")).unwrap();
        bias.set(&random(&[c], 8)).unwrap();
    }
    let theirs_forward = |x: &Tensor, train: bool| {
        use candle::ModuleT;
        theirs.forward_t(x, train).unwrap().relu().unwrap()
    };
    // the same output and the same gradients for x, weight and bias, in either mode
    let compare = |x: &Var, train: bool, seed: u64| {
        let mode = if train { "training" } else { "evaluation" };
        let a = ours.forward_t(x.as_tensor(), train).unwrap();
        let e = theirs_forward(x.as_tensor(), train);
        assert!(max_abs_diff(&a, &e) < 1e-5, "{mode} output");
        let r = random(a.dims(), seed);
        let ga = (&a * &r).unwrap().sum_all().unwrap().backward().unwrap();
        let ge = (&e * &r).unwrap().sum_all().unwrap().backward().unwrap();
        assert!(
            max_abs_diff(ga.get(x).unwrap(), ge.get(x).unwrap()) < 1e-4,
            "{mode} ∂x"
        );
        for name in ["weight", "bias"] {
            let (va, ve) = (get(&ours_vars, name), get(&theirs_vars, name));
            assert!(
                max_abs_diff(ga.get(&va).unwrap(), ge.get(&ve).unwrap()) < 1e-4,
                "{mode} ∂{name}"
            );
        }
    };
    for step in 0..2u64 {
        let x =
            Var::from_tensor(&random(&[b, c, h, w], 11 + step).affine(2.0, 0.3).unwrap()).unwrap();
        compare(&x, true, 3 + step);
        // the running statistics follow the same rule
        for name in ["running_mean", "running_var"] {
            assert!(
                max_abs_diff(&get(&ours_vars, name), &get(&theirs_vars, name)) < 1e-5,
                "{name} after step {step}"
            );
        }
    }
    // evaluation mode: the running statistics are constants; the gradients reach x, weight and
    // bias (a frozen generator passes its input gradient back through this)
    compare(
        &Var::from_tensor(&random(&[b, c, h, w], 21)).unwrap(),
        false,
        23,
    );
}
