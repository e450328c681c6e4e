//! GFLOP/s of candle's CPU matrix product in f32, bf16 and f16, and of xray-gan's own bf16
//! product (`gan_models::kernels::bf16`, AVX512-BF16, f32 sums; the weights packed inside the
//! timing), on a square product and on the shapes the seed networks' convolutions give (im2col
//! columns times weights).
//! `RAYON_NUM_THREADS=2 cargo run --release -p gan-models --example matmul_dtypes`

use std::time::Instant;

use candle::{DType, Device, Tensor};

#[global_allocator]
static ALLOCATOR: gan_alloc::KeepPages = gan_alloc::KeepPages;

/// Best GFLOP/s of `a (m×k) · b (k×n)` in `dtype` over a few tries.
fn gflops(m: usize, k: usize, n: usize, dtype: DType) -> candle::Result<f64> {
    let a = Tensor::randn(0f32, 1.0, (m, k), &Device::Cpu)?.to_dtype(dtype)?;
    let b = Tensor::randn(0f32, 1.0, (k, n), &Device::Cpu)?.to_dtype(dtype)?;
    a.matmul(&b)?;
    let flops = 2.0 * (m * k * n) as f64;
    let tries = ((2e10 / flops) as usize).clamp(2, 20);
    let mut best = f64::INFINITY;
    for _ in 0..tries {
        let t = Instant::now();
        a.matmul(&b)?;
        best = best.min(t.elapsed().as_secs_f64());
    }
    Ok(flops / best / 1e9)
}

/// Best GFLOP/s of xray-gan's bf16 product, `None` without AVX512-BF16.
fn ours_bf16(m: usize, k: usize, n: usize) -> Option<f64> {
    if !gan_models::kernels::bf16::available() {
        return None;
    }
    let a: Vec<f32> = (0..m * k).map(|i| (i % 17) as f32 / 17.0 - 0.5).collect();
    let b: Vec<f32> = (0..k * n).map(|i| (i % 13) as f32 / 13.0 - 0.5).collect();
    let product = || gan_models::kernels::bf16::product(&a, &b, (m, k, n));
    product();
    let flops = 2.0 * (m * k * n) as f64;
    let tries = ((2e10 / flops) as usize).clamp(2, 20);
    let mut best = f64::INFINITY;
    for _ in 0..tries {
        let t = Instant::now();
        std::hint::black_box(product());
        best = best.min(t.elapsed().as_secs_f64());
    }
    Some(flops / best / 1e9)
}

fn main() -> candle::Result<()> {
    // (rows, inner, columns): a square product, then the seed encoder's and discriminator's
    // convolutions as gemms at batch 64 (output channels × 16·input channels × batch·pixels) and
    // the attention's 1×1 projections at 32×32 (batch·pixels × channels × channels/8).
    let shapes = [
        ("square 1024", 1024, 1024, 1024),
        ("conv 1→64, 64×64→32×32", 64, 16, 64 * 32 * 32),
        ("conv 64→128, →16×16", 128, 16 * 64, 64 * 16 * 16),
        ("conv 128→256, →8×8", 256, 16 * 128, 64 * 8 * 8),
        ("conv 256→512, →4×4", 512, 16 * 256, 64 * 4 * 4),
        ("1×1 projection 64→8 at 32×32", 64 * 32 * 32, 64, 8),
    ];
    println!(
        "threads {}; GFLOP/s, best of a few tries",
        candle::utils::get_num_threads()
    );
    println!(
        "{:<32} {:>8} {:>8} {:>8} {:>10}",
        "product (m × k × n)", "f32", "bf16", "f16", "ours bf16"
    );
    for (name, m, k, n) in shapes {
        let f32 = gflops(m, k, n, DType::F32)?;
        let bf16 = gflops(m, k, n, DType::BF16)?;
        let f16 = gflops(m, k, n, DType::F16)?;
        let ours = ours_bf16(m, k, n).map_or("—".into(), |g| format!("{g:.1}"));
        println!("{name:<32} {f32:>8.1} {bf16:>8.1} {f16:>8.1} {ours:>10}");
    }
    Ok(())
}
