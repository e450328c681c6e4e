//! Matrix products with bf16 operands and f32 accumulation, on CPUs with AVX512-BF16.
//!
//! `vdpbf16ps` multiplies 32 pairs of bf16 values and adds each pair's two products into one of
//! 16 f32 lanes: twice the multiply-adds of an f32 FMA per instruction. Operands are rounded to
//! bf16 (8 bits of mantissa, round to nearest even) while they are packed; every sum stays f32,
//! and so do the outputs, the weights the optimiser keeps and everything outside the products.
//!
//! Layout (after the BLIS/GotoBLAS scheme): `a` is packed into panels of [`MR`] rows, `b` into
//! panels of [`NR`] columns, each as pairs of consecutive `k` (one `u32` holding two bf16), so
//! that one 512-bit load of `b` holds 16 columns × one pair and one 32-bit broadcast of `a` one
//! row × the same pair. The micro-kernel keeps an `MR × NR` tile of `c` in 24 registers and runs
//! over [`KC`] pairs of `k` at a time, the `b` panel (KC·NR·4 bytes) staying in L1.
//!
//! [`available`] says whether the CPU can run it; callers fall back to the f32 product.
//!
//! Measured on the development machine (AMD EPYC, AVX512-BF16, one thread, the seed's
//! convolution shapes): 2–3× the f32 products of the `gemm` crate, whose own f16 path converts
//! to f32 and runs at about 0.6× its f32 (docs/performance.md).

use std::ops::Range;

use rayon::prelude::*;

use super::cpu::View;

/// Rows of a micro-tile (one broadcast each).
const MR: usize = 8;
/// Columns of a micro-tile: three 16-lane registers.
const NR: usize = 48;
/// Pairs of `k` per block (the `b` panel: KC·NR·4 = 18 KiB).
const KC: usize = 96;
/// Rows per block of `a` (MC·KC·4 = 48 KiB, in L2).
const MC: usize = 128;

/// Whether this CPU runs the bf16 products (x86-64 with AVX512F, AVX512BW and AVX512-BF16).
pub fn available() -> bool {
    #[cfg(target_arch = "x86_64")]
    {
        std::arch::is_x86_feature_detected!("avx512f")
            && std::arch::is_x86_feature_detected!("avx512bw")
            && std::arch::is_x86_feature_detected!("avx512bf16")
    }
    #[cfg(not(target_arch = "x86_64"))]
    {
        false
    }
}

/// f32 → bf16 bits, rounding to nearest even (as `vcvtne2ps2bf16` does for finite values).
fn to_bf16(v: f32) -> u32 {
    let bits = v.to_bits();
    if v.is_nan() {
        return (bits >> 16) | 0x40; // a quiet NaN
    }
    (bits + 0x7fff + ((bits >> 16) & 1)) >> 16
}

/// Two values as one pair: `lo` in the low half, `hi` in the high half.
fn pair(lo: f32, hi: f32) -> u32 {
    to_bf16(lo) | (to_bf16(hi) << 16)
}

/// The bf16 value of a bf16 bit pattern, as f32 (for tests and references).
pub fn bf16_round(v: f32) -> f32 {
    f32::from_bits(to_bf16(v) << 16)
}

/// Packs indices `first..first + w` (w ≤ W) of a matrix's panel dimension, over all `k`, as
/// `[pair][W]` into `out` (zero past `w` and past `k`); element (i, kk) of the matrix (i along the
/// panel dimension) is at `data[i·ps + kk·ks]`.
fn pack_panel<const W: usize>(
    data: &[f32],
    (ps, ks): (usize, usize),
    first: usize,
    w: usize,
    k: usize,
    out: &mut [u32],
) {
    #[cfg(target_arch = "x86_64")]
    if w <= W && available() {
        if ks == 1 {
            // SAFETY: the CPU has AVX512F/BW/BF16; the matrix fits `data` (the callers' asserts).
            unsafe { x86::pairs_along_k::<W>(data, ps, first, w, k, out) };
            return;
        }
        if ps == 1 && w.is_multiple_of(8) {
            // SAFETY: as above.
            unsafe { x86::pairs_across_k::<W>(data, ks, first, w, k, out) };
            return;
        }
    }
    let at = |i: usize, kk: usize| match kk < k {
        true => data[i * ps + kk * ks],
        false => 0.0,
    };
    for (p, slot) in out.chunks_exact_mut(W).enumerate() {
        for (s, i) in slot.iter_mut().zip(first..first + w) {
            *s = pair(at(i, 2 * p), at(i, 2 * p + 1));
        }
    }
}

/// `a` (m × k), packed once and used by any number of products with it on the left (a
/// convolution's weight, shared by every image of a batch).
pub(super) struct PackedA {
    /// `[panel][pair][MR]`: panel `i` holds rows `i·MR..`, zero past `m` and past `k`.
    data: Vec<u32>,
    m: usize,
    k: usize,
}

impl PackedA {
    /// Packs `a` (m × k), its panels on all of rayon's threads when `parallel`.
    pub(super) fn new(a: View, m: usize, k: usize, parallel: bool) -> Self {
        assert!(
            m == 0 || k == 0 || (m - 1) * a.rs + (k - 1) * a.cs < a.data.len(),
            "bf16 packing shapes"
        );
        let pairs = k.div_ceil(2);
        let mut data = vec![0u32; m.div_ceil(MR) * pairs * MR];
        let panel = |(panel, out): (usize, &mut [u32])| {
            let first = panel * MR;
            let w = MR.min(m - first);
            pack_panel::<MR>(a.data, (a.rs, a.cs), first, w, k, out);
        };
        let chunk = (pairs * MR).max(1);
        match parallel {
            true => data.par_chunks_mut(chunk).enumerate().for_each(panel),
            false => data.chunks_mut(chunk).enumerate().for_each(panel),
        }
        PackedA { data, m, k }
    }
}

/// Columns `cols` of `b` (k × n), rows `2·p0..` of them (at most [`KC`] pairs), packed as
/// `[panel][pair][NR]` into `out`, resized to fit.
fn pack_b(b: View, k: usize, p0: usize, cols: Range<usize>, out: &mut Vec<u32>) -> usize {
    let rows = (k - 2 * p0).min(2 * KC);
    let pairs = rows.div_ceil(2);
    out.clear();
    out.resize(cols.len().div_ceil(NR) * pairs * NR, 0);
    let data = &b.data[2 * p0 * b.rs..];
    for (panel, out) in out.chunks_exact_mut(pairs * NR).enumerate() {
        let first = cols.start + panel * NR;
        let w = NR.min(cols.end - first);
        pack_panel::<NR>(data, (b.cs, b.rs), first, w, rows, out);
    }
    pairs
}

/// The output pointer shared by the threads of one product, each writing its own tiles.
#[derive(Clone, Copy)]
struct Out(*mut f32);
// SAFETY: the tasks of a product write disjoint tiles (disjoint rows or disjoint columns).
unsafe impl Send for Out {}
unsafe impl Sync for Out {}

/// `out` (m × n, row stride `out_rs`) = a · b, or `+=` when `accumulate`, with bf16 operands and
/// f32 sums; on this thread, or on all of rayon's threads when `parallel` (split by columns, or
/// by rows when there are fewer column panels than threads).
///
/// # Panics
/// If the CPU lacks AVX512-BF16 (see [`available`]) or the shapes do not fit the slices.
pub(super) fn matmul(
    out: &mut [f32],
    out_rs: usize,
    accumulate: bool,
    n: usize,
    a: &PackedA,
    b: View,
    parallel: bool,
) {
    let (m, k) = (a.m, a.k);
    assert!(available(), "bf16 products need AVX512-BF16");
    let out_fits = m == 0 || n == 0 || (m - 1) * out_rs + n <= out.len();
    let b_fits = k == 0 || n == 0 || (k - 1) * b.rs + (n - 1) * b.cs < b.data.len();
    assert!(out_fits && b_fits && out_rs >= n, "bf16 matmul shapes");
    if m == 0 || n == 0 {
        return;
    }
    if k == 0 {
        // an empty sum: zero, or the output as it was
        if !accumulate {
            out.chunks_mut(out_rs)
                .take(m)
                .for_each(|row| row[..n].fill(0.0));
        }
        return;
    }
    let c = Out(out.as_mut_ptr());
    // SAFETY: every task's tiles are inside `out` (out_fits) and the tasks' tiles are disjoint.
    let task = |rows: Range<usize>, cols: Range<usize>| unsafe {
        tiles(c, out_rs, accumulate, a, b, rows, cols)
    };
    // below about a million multiply-adds, threads cost more than they give
    let parallel = parallel && m * n * k >= 1 << 20;
    let threads = rayon::current_num_threads();
    let panels = n.div_ceil(NR);
    match (parallel && threads > 1, panels >= threads) {
        (false, _) => task(0..m, 0..n),
        (true, true) => (0..threads).into_par_iter().for_each(|t| {
            let per = panels.div_ceil(threads) * NR;
            let cols = (t * per).min(n)..((t + 1) * per).min(n);
            if !cols.is_empty() {
                task(0..m, cols);
            }
        }),
        (true, false) => (0..threads).into_par_iter().for_each(|t| {
            let per = m.div_ceil(threads).div_ceil(MR) * MR;
            let rows = (t * per).min(m)..((t + 1) * per).min(m);
            if !rows.is_empty() {
                task(rows, 0..n);
            }
        }),
    }
}

/// `a` (m × k) · `b` (k × n), both row-major, with bf16 operands and f32 sums, on all of rayon's
/// threads: the product as the kernels run it, for examples and benchmarks.
///
/// # Panics
/// If the CPU lacks AVX512-BF16 or the slices are shorter than the shapes.
pub fn product(a: &[f32], b: &[f32], (m, k, n): (usize, usize, usize)) -> Vec<f32> {
    let mut out = vec![0f32; m * n];
    let packed = PackedA::new(View::rows(a, k), m, k, true);
    matmul(&mut out, n, false, n, &packed, View::rows(b, n), true);
    out
}

/// [`super::cpu::matmul`]'s product, with bf16 operands when `bf16` (`a` packed for this product
/// alone).
#[allow(clippy::too_many_arguments)]
pub(super) fn matmul_with(
    bf16: bool,
    out: &mut [f32],
    out_rs: usize,
    accumulate: bool,
    (m, n, k): (usize, usize, usize),
    a: View,
    b: View,
    parallel: bool,
) {
    match bf16 {
        true => matmul(
            out,
            out_rs,
            accumulate,
            n,
            &PackedA::new(a, m, k, parallel),
            b,
            parallel,
        ),
        false => super::cpu::matmul(out, out_rs, accumulate, (m, n, k), a, b, parallel),
    }
}

/// The tiles of `rows` (starting at a multiple of [`MR`]) × `cols` of the product.
///
/// # Safety
/// `c` points at an `m × n` output with row stride `out_rs`, of which this call alone writes the
/// given rows and columns; the CPU has AVX512-BF16.
unsafe fn tiles(
    c: Out,
    out_rs: usize,
    accumulate: bool,
    a: &PackedA,
    b: View,
    rows: Range<usize>,
    cols: Range<usize>,
) {
    let pairs = a.k.div_ceil(2);
    let mut packed_b = Vec::new();
    for p0 in (0..pairs).step_by(KC) {
        // this block of pairs for all of the columns (KC·4·2 bytes a column: in L2)
        let block_pairs = pack_b(b, a.k, p0, cols.clone(), &mut packed_b);
        let add = accumulate || p0 > 0;
        for block in (rows.start..rows.end).step_by(MC) {
            let block_end = (block + MC).min(rows.end);
            for (panel, b_part) in packed_b.chunks_exact(block_pairs * NR).enumerate() {
                let c0 = cols.start + panel * NR;
                let width = NR.min(cols.end - c0);
                for r in (block..block_end).step_by(MR) {
                    let a_panel = &a.data[(r / MR) * pairs * MR..][..pairs * MR];
                    #[cfg(target_arch = "x86_64")]
                    // SAFETY: (caller) the tile's rows and columns are this call's to write.
                    unsafe {
                        x86::tile(
                            &a_panel[p0 * MR..(p0 + block_pairs) * MR],
                            b_part,
                            c.0.add(r * out_rs + c0),
                            out_rs,
                            MR.min(rows.end - r),
                            width,
                            add,
                        )
                    };
                }
            }
        }
    }
}

#[cfg(target_arch = "x86_64")]
mod x86 {
    use std::arch::x86_64::*;

    use super::{MR, NR};

    /// Panel indices `first..first + w` (w ≤ W), where each index's `k` values are adjacent
    /// (`data[i·ps + kk]`): 32 values of an index are 16 pairs in order. Sixteen pairs of all w
    /// indices at a time go through a small buffer so that `out` is written in order; the last
    /// pairs one by one (an odd `k`'s last pair holds a zero), slots past `w` left as they are
    /// (zero).
    #[target_feature(enable = "avx512f,avx512bw,avx512bf16")]
    pub(super) unsafe fn pairs_along_k<const W: usize>(
        data: &[f32],
        ps: usize,
        first: usize,
        w: usize,
        k: usize,
        out: &mut [u32],
    ) {
        let full = k / 2 / 16 * 16;
        let mut block = [0u32; 16 * NR];
        debug_assert!(W <= NR);
        for p in (0..full).step_by(16) {
            for i in 0..w {
                let x = &data[(first + i) * ps + 2 * p..][..32];
                // SAFETY: `x` holds 32 values, `block` 16 per index.
                unsafe {
                    let v: __m512i = std::mem::transmute(_mm512_cvtne2ps_pbh(
                        _mm512_loadu_ps(x.as_ptr().add(16)),
                        _mm512_loadu_ps(x.as_ptr()),
                    ));
                    _mm512_storeu_si512(block.as_mut_ptr().add(16 * i).cast(), v);
                }
            }
            for (j, slot) in out[p * W..(p + 16) * W].chunks_exact_mut(W).enumerate() {
                for (i, s) in slot[..w].iter_mut().enumerate() {
                    *s = block[16 * i + j];
                }
            }
        }
        for p in full..k.div_ceil(2) {
            for i in 0..w {
                let x = &data[(first + i) * ps + 2 * p..];
                let hi = if 2 * p + 1 < k { x[1] } else { 0.0 };
                out[p * W + i] = super::pair(x[0], hi);
            }
        }
    }

    /// Panel indices `first..first + w` (w ≤ W, a multiple of 8), where each `k`'s indices are
    /// adjacent (`data[i + kk·ks]`): rows 2p and 2p + 1 interleaved, 8 at a time (an odd `k`'s
    /// last row with zeros); slots past `w` are left as they are (zero).
    #[target_feature(enable = "avx512f,avx512bw,avx512bf16")]
    pub(super) unsafe fn pairs_across_k<const W: usize>(
        data: &[f32],
        ks: usize,
        first: usize,
        w: usize,
        k: usize,
        out: &mut [u32],
    ) {
        let index = _mm512_set_epi16(
            0, 0, 0, 0, 0, 0, 0, 0, 0, 0, 0, 0, 0, 0, 0, 0, 23, 7, 22, 6, 21, 5, 20, 4, 19, 3, 18,
            2, 17, 1, 16, 0,
        );
        for (p, slot) in out.chunks_exact_mut(W).take(k / 2).enumerate() {
            for (j, eight) in slot[..w].chunks_exact_mut(8).enumerate() {
                let lo = &data[2 * p * ks + first + 8 * j..][..8];
                let hi = &data[(2 * p + 1) * ks + first + 8 * j..][..8];
                // SAFETY: `lo` and `hi` hold 8 values, `eight` 8 slots.
                unsafe {
                    let v: __m512i = std::mem::transmute(_mm512_cvtne2ps_pbh(
                        _mm512_castps256_ps512(_mm256_loadu_ps(hi.as_ptr())),
                        _mm512_castps256_ps512(_mm256_loadu_ps(lo.as_ptr())),
                    ));
                    let v = _mm512_permutexvar_epi16(index, v);
                    _mm256_storeu_si256(eight.as_mut_ptr().cast(), _mm512_castsi512_si256(v));
                }
            }
        }
        if !k.is_multiple_of(2) {
            let last = &data[(k - 1) * ks + first..][..w];
            for (s, &v) in out[k / 2 * W..][..w].iter_mut().zip(last) {
                *s = super::pair(v, 0.0);
            }
        }
    }

    /// c[..rows][..cols] (row stride `rs`) = (c if `add`) + a_part · b_part, where `a_part` is
    /// `[pair][MR]` and `b_part` `[pair][NR]` over the same pairs.
    #[target_feature(enable = "avx512f,avx512bw,avx512bf16")]
    pub(super) unsafe fn tile(
        a_part: &[u32],
        b_part: &[u32],
        c: *mut f32,
        rs: usize,
        rows: usize,
        cols: usize,
        add: bool,
    ) {
        let pairs = a_part.len() / MR;
        assert!(
            b_part.len() >= pairs * NR,
            "bf16 tile: panels of unequal depth"
        );
        let mut acc = [[_mm512_setzero_ps(); 3]; MR];
        let (a, b) = (a_part.as_ptr(), b_part.as_ptr());
        for p in 0..pairs {
            // SAFETY: p < pairs, so p·NR + 48 ≤ b_part.len() and p·MR + MR ≤ a_part.len().
            unsafe {
                let bp = b.add(p * NR);
                let b0: __m512bh = std::mem::transmute(_mm512_loadu_si512(bp.cast()));
                let b1: __m512bh = std::mem::transmute(_mm512_loadu_si512(bp.add(16).cast()));
                let b2: __m512bh = std::mem::transmute(_mm512_loadu_si512(bp.add(32).cast()));
                let ap = a.add(p * MR);
                for (i, row) in acc.iter_mut().enumerate() {
                    let ai: __m512bh = std::mem::transmute(_mm512_set1_epi32(*ap.add(i) as i32));
                    row[0] = _mm512_dpbf16_ps(row[0], ai, b0);
                    row[1] = _mm512_dpbf16_ps(row[1], ai, b1);
                    row[2] = _mm512_dpbf16_ps(row[2], ai, b2);
                }
            }
        }
        for (i, row) in acc.iter().enumerate().take(rows) {
            for (j, v) in row.iter().enumerate() {
                let c0 = j * 16;
                if c0 >= cols {
                    break;
                }
                let mask: __mmask16 = match cols - c0 {
                    16.. => 0xffff,
                    left => (1u16 << left) - 1,
                };
                // SAFETY: row i < rows and columns c0 + lane < cols are inside `c` (caller).
                unsafe {
                    let at = c.add(i * rs + c0);
                    let sum = match add {
                        true => _mm512_add_ps(*v, _mm512_maskz_loadu_ps(mask, at)),
                        false => *v,
                    };
                    _mm512_mask_storeu_ps(at, mask, sum);
                }
            }
        }
    }
}

#[cfg(test)]
mod tests {
    use super::{KC, MC, MR, NR, PackedA, View, available, bf16_round, matmul};

    fn values(n: usize, seed: u64) -> Vec<f32> {
        let mut state = seed.wrapping_mul(6364136223846793005) | 1;
        (0..n)
            .map(|_| {
                state = state
                    .wrapping_mul(6364136223846793005)
                    .wrapping_add(1442695040888963407);
                ((state >> 40) as f32 / (1u64 << 24) as f32) * 2.0 - 1.0
            })
            .collect()
    }

    #[test]
    fn rounding_is_to_nearest_even() {
        assert_eq!(bf16_round(1.0), 1.0);
        // 1 + 2^-8 lies halfway between 1 and 1 + 2^-7: to the even mantissa, 1
        assert_eq!(bf16_round(1.0 + 1.0 / 256.0), 1.0);
        assert_eq!(bf16_round(1.0 + 3.0 / 256.0), 1.0 + 4.0 / 256.0);
        assert_eq!(bf16_round(-2.5), -2.5);
        assert!(bf16_round(f32::NAN).is_nan());
        assert_eq!(bf16_round(f32::INFINITY), f32::INFINITY);
    }

    /// Every path of packing and tiling (row- and column-major operands, edges in m, n and k,
    /// several blocks of k and of rows, accumulation, both parallel splits) equals an f64
    /// product of the bf16-rounded operands to f32 rounding.
    #[test]
    fn product_equals_the_product_of_rounded_operands() {
        if !available() {
            eprintln!("no AVX512-BF16 on this CPU: nothing to test");
            return;
        }
        let shapes = [
            (MR, NR, 32),
            (MR * 3 + 5, NR * 2 + 7, 2 * KC * 2 + 3), // edges everywhere, three blocks of k
            (MC + MR + 1, NR + 1, 64),                // two blocks of rows
            (5, 3, 1),                                // k = 1: one half-empty pair
            (3, 5, 0),                                // k = 0: an empty sum
            (13, NR + 16, 2 * KC + 1),                // a part panel of 16, an odd k
            // over the 2^20 multiply-adds that go parallel: more column panels than threads
            // splits by columns, a single panel by rows (uneven parts with 3 threads)
            (16, 8 * NR, 2 * KC + 34),
            (32 * MR, 17, 250),
            (64, 256, 1024),
        ];
        for threads in [2, 3] {
            let pool = rayon::ThreadPoolBuilder::new()
                .num_threads(threads)
                .build()
                .unwrap();
            pool.install(|| check_products(&shapes));
        }
    }

    fn check_products(shapes: &[(usize, usize, usize)]) {
        for (i, &(m, n, k)) in shapes.iter().enumerate() {
            let a = values(m * k, 2 * i as u64);
            let b = values(k * n, 2 * i as u64 + 1);
            let start = values(m * n, 99);
            for (a_t, b_t, accumulate, parallel) in [
                (false, false, false, false),
                (true, true, true, true),
                (false, true, false, true),
                (true, false, true, false),
            ] {
                let av = match a_t {
                    true => View::transposed(&a, m),
                    false => View::rows(&a, k),
                };
                let bv = match b_t {
                    true => View::transposed(&b, k),
                    false => View::rows(&b, n),
                };
                let mut out = start.clone();
                let packed = PackedA::new(av, m, k, parallel);
                matmul(&mut out, n, accumulate, n, &packed, bv, parallel);
                for r in 0..m {
                    for c in 0..n {
                        let (mut sum, mut size) = (0f64, 0f64);
                        for kk in 0..k {
                            let x = bf16_round(av.data[r * av.rs + kk * av.cs]) as f64
                                * bf16_round(bv.data[kk * bv.rs + c * bv.cs]) as f64;
                            sum += x;
                            size += x.abs();
                        }
                        if accumulate {
                            sum += start[r * n + c] as f64;
                            size += (start[r * n + c] as f64).abs();
                        }
                        let err = (out[r * n + c] as f64 - sum).abs();
                        assert!(
                            err <= 1e-6 * size.max(1e-3),
                            "({m}×{k})·({k}×{n}) a_t {a_t} b_t {b_t} acc {accumulate} par \
                             {parallel}: [{r},{c}] {} vs {sum}",
                            out[r * n + c]
                        );
                    }
                }
            }
        }
    }
}
