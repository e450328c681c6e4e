//! Seconds of each trunk layer's pieces at batch 64 (seed widths), forward only: a quick look at
//! where an encoder or discriminator pass goes. `cargo run --release -p gan-models --example trunk_time`

use std::time::Instant;

use candle::{Device, Tensor};
use gan_models::kernels::attention::spatial_attention;
use gan_models::kernels::{batch_norm_relu, batch_norm_relu_eval, bias_leaky_relu, gemm_conv};

#[global_allocator]
static ALLOCATOR: gan_alloc::KeepPages = gan_alloc::KeepPages;

fn time(f: &dyn Fn() -> candle::Result<Tensor>) -> candle::Result<f64> {
    f()?;
    let t = Instant::now();
    for _ in 0..8 {
        f()?;
    }
    Ok(t.elapsed().as_secs_f64() / 8.0)
}

/// Seconds of a batch of `b` images' self-attention over `n` positions with `c` channels (q and k
/// with c/8), and its multiply-add FLOPs.
fn attention_time(b: usize, c: usize, n: usize) -> candle::Result<(f64, f64)> {
    let dev = Device::Cpu;
    let q = Tensor::randn(0f32, 1.0, (b, c / 8, n), &dev)?;
    let k = Tensor::randn(0f32, 1.0, (b, c / 8, n), &dev)?;
    let v = Tensor::randn(0f32, 1.0, (b, c, n), &dev)?;
    let seconds = time(&|| spatial_attention(&q, &k, &v))?;
    Ok((seconds, 2.0 * (b * n * n * (c / 8 + c)) as f64))
}

fn main() -> candle::Result<()> {
    let dev = Device::Cpu;
    let b = 64;
    let mut total = 0.0;
    for (cin, cout, hw) in [(1, 64, 64), (64, 128, 32), (128, 256, 16), (256, 512, 8)] {
        let x = Tensor::randn(0f32, 1.0, (b, cin, hw, hw), &dev)?;
        let w = Tensor::randn(0f32, 0.05, (cout, cin, 4, 4), &dev)?;
        let bias = Tensor::zeros(cout, candle::DType::F32, &dev)?;
        let conv = time(&|| gemm_conv::conv2d(&x, &w, 1, 2))?;
        let y = gemm_conv::conv2d(&x, &w, 1, 2)?;
        let act = time(&|| bias_leaky_relu(&y, &bias, 0.1))?;
        // a plain candle elementwise op on the same tensor, for scale
        let affine = time(&|| y.affine(1.0, 0.5))?;
        let flops = 2.0 * (b * cout * cin * 16 * (hw / 2) * (hw / 2)) as f64;
        let cols = Tensor::randn(0f32, 1.0, (cin * 16, b * (hw / 2) * (hw / 2)), &dev)?;
        let w2 = w.reshape((cout, cin * 16))?;
        let product = time(&|| w2.matmul(&cols))?;
        total += conv + act;
        print!(
            "conv {cin}->{cout} at {hw}: {conv:.4} s ({:.0} GFLOP/s; its product alone \
             {product:.4} s), bias+leaky {act:.4} s (candle's affine {affine:.4} s)",
            flops / conv / 1e9
        );
        if cout >= 256 {
            let (att, _) = attention_time(b, cout, (hw / 2) * (hw / 2))?;
            let wq = Tensor::randn(0f32, 0.05, (cout / 8, cout, 1, 1), &dev)?;
            let wv = Tensor::randn(0f32, 0.05, (cout, cout, 1, 1), &dev)?;
            let proj = time(&|| gemm_conv::conv2d(&y, &wq, 0, 1))? * 2.0
                + time(&|| gemm_conv::conv2d(&y, &wv, 0, 1))?;
            total += att + proj;
            print!(", attention {att:.4} s, projections q k v {proj:.4} s");
        }
        println!();
    }
    println!("trunk pieces total {total:.3} s");
    // the generator's transposed convolutions (seed widths), and their products alone
    for (cin, cout, hw) in [(512, 256, 4), (256, 128, 8), (128, 64, 16), (64, 1, 32)] {
        let x = Tensor::randn(0f32, 1.0, (b, cin, hw, hw), &dev)?;
        let w = Tensor::randn(0f32, 0.05, (cin, cout, 4, 4), &dev)?;
        let conv = time(&|| gemm_conv::conv_transpose2d(&x, &w, 1, 2))?;
        let flops = 2.0 * (b * cin * cout * 16 * hw * hw) as f64;
        let xs = Tensor::randn(0f32, 1.0, (cin, b * hw * hw), &dev)?;
        let w2 = w.reshape((cin, cout * 16))?.t()?;
        let product = time(&|| w2.matmul(&xs))?;
        println!(
            "transposed conv {cin}->{cout} at {hw}: {conv:.4} s ({:.0} GFLOP/s; its product alone {product:.4} s)",
            flops / conv / 1e9
        );
    }
    // the generator's self-attention: after the 2w stage (16×16) and the first w stage (32×32)
    for (c, hw) in [(128, 16), (64, 32)] {
        let (att, flops) = attention_time(b, c, hw * hw)?;
        println!(
            "generator attention, {c} channels at {hw}x{hw}: {att:.4} s ({:.0} GFLOP/s)",
            flops / att / 1e9
        );
    }
    // the generator's BatchNorm + ReLU at 32×32, 64 channels, in both modes, with the backward
    let x = candle::Var::from_tensor(&Tensor::randn(0f32, 1.0, (b, 64, 32, 32), &dev)?)?;
    let w = Tensor::ones(64, candle::DType::F32, &dev)?;
    let z = Tensor::zeros(64, candle::DType::F32, &dev)?;
    let eval = time(&|| Ok(batch_norm_relu_eval(x.as_tensor(), &w, &z, &z, &w, 1e-5)?.unwrap()))?;
    let train = time(&|| Ok(batch_norm_relu(x.as_tensor(), &w, &z, 1e-5)?.0))?;
    let r = Tensor::randn(0f32, 1.0, x.shape(), &dev)?;
    let backward = time(&|| {
        let y = batch_norm_relu(x.as_tensor(), &w, &z, 1e-5)?.0;
        let g = (y * &r)?.sum_all()?.backward()?;
        Ok(g.get(&x).unwrap().clone())
    })?;
    println!(
        "BatchNorm+ReLU on 4.2 M values: eval {eval:.4} s, train {train:.4} s, train fwd+bwd {backward:.4} s"
    );
    Ok(())
}
