//! Pieces shared by the CPU kernels: f32 slices of candle's storage, output buffers written
//! without zeroing, a matrix product on strided views (on this thread or all of them), and a
//! softmax row and dot product whose passes vectorise (lane-wise reductions, a polynomial
//! exponential; AVX2 and FMA code where the CPU has them).

use std::mem::MaybeUninit;

use candle::{CpuStorage, Layout, Result, Tensor};
use gemm::{Parallelism, gemm};
use rayon::prelude::*;

/// The contiguous f32 data behind a kernel's input; `op` names the kernel in errors.
pub(super) fn contiguous_f32<'a>(
    storage: &'a CpuStorage,
    layout: &Layout,
    op: &str,
) -> Result<&'a [f32]> {
    let CpuStorage::F32(data) = storage else {
        candle::bail!("{op}: only f32 is supported on the CPU");
    };
    let Some((start, end)) = layout.contiguous_offsets() else {
        candle::bail!("{op}: input must be contiguous");
    };
    Ok(&data[start..end])
}

/// Runs `f` on the contiguous f32 data of a CPU tensor (one that a kernel made itself).
pub(super) fn with_f32<R>(t: &Tensor, op: &str, f: impl FnOnce(&[f32]) -> Result<R>) -> Result<R> {
    let (storage, layout) = t.storage_and_layout();
    let candle::Storage::Cpu(cpu) = &*storage else {
        candle::bail!("{op}: expected a CPU tensor");
    };
    f(contiguous_f32(cpu, layout, op)?)
}

/// A vector of `len` floats filled in parallel, chunk by chunk, without zeroing it first (for
/// buffers every element of which a kernel writes anyway: at several times a layer's input, the
/// zeroing pass cost as much as the writing). `fill(i, chunk)` gets chunk `i`: `chunk` values,
/// the last one possibly fewer.
///
/// # Safety
/// `fill` must write every element of each chunk it is given (or panic).
pub(super) unsafe fn written_in_chunks(
    len: usize,
    chunk: usize,
    fill: impl Fn(usize, &mut [MaybeUninit<f32>]) + Sync + Send,
) -> Vec<f32> {
    let mut out: Vec<f32> = Vec::with_capacity(len);
    out.spare_capacity_mut()[..len]
        .par_chunks_mut(chunk.max(1))
        .enumerate()
        .for_each(|(i, values)| fill(i, values));
    // SAFETY: the chunks cover all `len` elements and the caller's `fill` wrote each of them.
    unsafe { out.set_len(len) };
    out
}

/// A read-only matrix view: element (r, c) at `data[r·rs + c·cs]`.
#[derive(Clone, Copy)]
pub(super) struct View<'a> {
    pub data: &'a [f32],
    pub rs: usize,
    pub cs: usize,
}

impl<'a> View<'a> {
    /// A row-major `rows × cols` matrix.
    pub fn rows(data: &'a [f32], cols: usize) -> Self {
        View {
            data,
            rs: cols,
            cs: 1,
        }
    }

    /// The transpose of a row-major matrix with `cols` columns.
    pub fn transposed(data: &'a [f32], cols: usize) -> Self {
        View {
            data,
            rs: 1,
            cs: cols,
        }
    }

    fn fits(&self, rows: usize, cols: usize) -> bool {
        rows == 0 || cols == 0 || (rows - 1) * self.rs + (cols - 1) * self.cs < self.data.len()
    }
}

/// `out` (m×n, row stride `out_rs`) = a (m×k) · b (k×n), or `+=` when `accumulate`; on this
/// thread, or on all of rayon's threads when `parallel`.
pub(super) fn matmul(
    out: &mut [f32],
    out_rs: usize,
    accumulate: bool,
    (m, n, k): (usize, usize, usize),
    a: View,
    b: View,
    parallel: bool,
) {
    let out_fits = m == 0 || n == 0 || (m - 1) * out_rs + n <= out.len();
    assert!(out_fits && a.fits(m, k) && b.fits(k, n), "matmul shapes");
    // SAFETY: the assert above keeps every index gemm touches inside the three slices; `out` is
    // exclusively borrowed and does not alias `a` or `b`.
    unsafe {
        gemm(
            m,
            n,
            k,
            out.as_mut_ptr(),
            1,
            out_rs as isize,
            accumulate,
            a.data.as_ptr(),
            a.cs as isize,
            a.rs as isize,
            b.data.as_ptr(),
            b.cs as isize,
            b.rs as isize,
            1.0,
            1.0,
            false,
            false,
            false,
            match parallel {
                true => Parallelism::Rayon(0),
                false => Parallelism::None,
            },
        );
    }
}

/// Runs `f` compiled for AVX2 and FMA when the CPU has them (8 lanes instead of the baseline's
/// 4, and a fused multiply-add instruction). Both paths compute the same IEEE operations in the
/// same order and give bit-identical results: a kernel's `mul_add` is one correctly rounded
/// operation in both, an instruction here and libm's `fmaf` call on the baseline (slow there,
/// but CPUs without AVX2 are rare).
///
/// Pass `f` as `#[inline(always)] || …`: only code inlined into the AVX2 function is compiled
/// for AVX2, and LLVM left larger closures out of line, compiled for the baseline. The softmax
/// row ran that way, with 4-lane SSE, until session 9 found it in a disassembly (the generator's
/// 32×32 attention: 0.122 → 0.103 s at batch 64).
#[inline(always)]
pub(super) fn with_avx2<R>(f: impl FnOnce() -> R) -> R {
    #[cfg(target_arch = "x86_64")]
    {
        #[target_feature(enable = "avx2,fma")]
        fn avx2<R>(f: impl FnOnce() -> R) -> R {
            f()
        }
        if std::arch::is_x86_feature_detected!("avx2") && std::arch::is_x86_feature_detected!("fma")
        {
            // SAFETY: the CPU supports AVX2 and FMA (checked just above).
            return unsafe { avx2(f) };
        }
    }
    f()
}

/// Softmax of one row in place: subtract the maximum, exponentiate, divide by the sum; every
/// pass vectorises.
pub(super) fn softmax_row(row: &mut [f32]) {
    with_avx2(
        #[inline(always)]
        || softmax_row_in_lanes(row),
    )
}

#[inline(always)]
fn softmax_row_in_lanes(row: &mut [f32]) {
    let max = lanes(row, f32::NEG_INFINITY, |m, v| if v > m { v } else { m })
        .into_iter()
        .fold(f32::NEG_INFINITY, f32::max);
    row.iter_mut().for_each(|v| *v = exp_nonpositive(*v - max));
    let sum: f32 = lanes(row, 0.0, |a, v| a + v).into_iter().sum();
    let inv = 1.0 / sum;
    row.iter_mut().for_each(|v| *v *= inv);
}

/// e^x for x ≤ 0 (softmax after subtracting the row maximum), branch-free (no `round`: on the
/// baseline x86-64 target it is a library call) so that loops over it vectorise: x = j·ln2 + r
/// with |r| ≤ ln2/2, e^r by a degree-6 polynomial in fused multiply-adds (see [`with_avx2`]), 2^j
/// from the exponent bits. Relative error below 5e-7 on [−87, 0]; inputs under −87 give e^−87
/// (≈ 1.6e−38).
#[inline(always)]
fn exp_nonpositive(x: f32) -> f32 {
    // adding 1.5·2^23 rounds to an integer (round-to-nearest of the float unit)
    const ROUNDER: f32 = 12_582_912.0;
    let x = if x < -87.0 { -87.0 } else { x };
    let t = x.mul_add(std::f32::consts::LOG2_E, ROUNDER);
    let j = t - ROUNDER;
    // the same integer from t's low mantissa bits (an `as i32` conversion would not vectorise)
    let j_int = t.to_bits() as i32 - ROUNDER.to_bits() as i32;
    let r = (-j).mul_add(1.428_606_8e-6, (-j).mul_add(0.693_145_75, x));
    let mut p = 1.0f32 / 720.0;
    for c in [1.0 / 120.0, 1.0 / 24.0, 1.0 / 6.0, 0.5, 1.0, 1.0] {
        p = p.mul_add(r, c);
    }
    f32::from_bits(((j_int + 127) as u32) << 23) * p
}

/// Folds `values` into 8 independent lanes (so the loop vectorises), the remainder into lane 0.
#[inline(always)]
fn lanes(values: &[f32], init: f32, f: impl Fn(f32, f32) -> f32) -> [f32; 8] {
    let mut acc = [init; 8];
    let chunks = values.chunks_exact(8);
    let rest = chunks.remainder();
    for c in chunks {
        for l in 0..8 {
            acc[l] = f(acc[l], c[l]);
        }
    }
    for &v in rest {
        acc[0] = f(acc[0], v);
    }
    acc
}

/// Σ a·b in 8 lanes.
pub(super) fn dot(a: &[f32], b: &[f32]) -> f32 {
    with_avx2(
        #[inline(always)]
        || dot_in_lanes(a, b),
    )
}

#[inline(always)]
fn dot_in_lanes(a: &[f32], b: &[f32]) -> f32 {
    let mut acc = [0f32; 8];
    let (ca, cb) = (a.chunks_exact(8), b.chunks_exact(8));
    let tail: f32 = ca
        .remainder()
        .iter()
        .zip(cb.remainder())
        .map(|(x, y)| x * y)
        .sum();
    for (x, y) in ca.zip(cb) {
        for l in 0..8 {
            acc[l] = x[l].mul_add(y[l], acc[l]);
        }
    }
    acc.iter().sum::<f32>() + tail
}

#[cfg(test)]
mod tests {
    use super::exp_nonpositive;

    #[test]
    fn polynomial_exp_is_accurate_to_float_rounding() {
        let mut worst = 0f32;
        for i in 0..=200_000 {
            let x = -100.0 * i as f32 / 200_000.0;
            let (ours, std) = (exp_nonpositive(x), x.exp());
            if x >= -87.0 {
                worst = worst.max(((ours - std) / std).abs());
            } else {
                // clamped: at most e^-87, which a softmax cannot tell from 0
                assert!(ours <= 1.7e-38, "e^{x}: {ours}");
            }
        }
        assert!(worst < 5e-7, "worst relative error {worst}");
        assert_eq!(exp_nonpositive(0.0), 1.0);
    }
}
