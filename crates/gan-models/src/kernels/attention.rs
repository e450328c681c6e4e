//! Fused spatial attention on the CPU: `out = V · softmax(QᵀK)ᵀ` per image, forward and backward,
//! never holding more than one image's N×N attention matrix per thread.
//!
//! Built from tensor ops, self-attention at 32×32 keeps the (B, N, N) energies, their softmax and
//! the gradients of both alive for the backward pass: 256 MiB each at the seed's batch of 64, so
//! a generator step carried gigabytes of them and spent most of its attention time moving them.
//! Here the forward keeps nothing but its inputs, and the backward recomputes each image's
//! attention from Q and K (a cheap N×N×C/8 product) before using it:
//!
//! - S = QᵀK, P = softmax over rows, O = V·Pᵀ;
//! - dV = dO·P, dP = dOᵀ·V, dS = P ⊙ (dP − rowsum(dP ⊙ P)), dQ = K·dSᵀ, dK = Q·dS.
//!
//! Images run in parallel, each product single-threaded (gemm), in blocks of query rows that stay
//! in cache; the softmax's exponential is a vectorisable polynomial. Inside
//! [`super::with_precision`]`(Precision::Bf16, …)` the products with V, dO, K and Q take bf16
//! operands (P and dS rounded too), summing in f32; the energies QᵀK stay f32.

use candle::{CpuStorage, CustomOp3, Layout, Result, Shape, Tensor};
use rayon::prelude::*;

use super::bf16::{self, PackedA, matmul_with};
use super::cpu::{View, contiguous_f32, dot, matmul, softmax_row, with_avx2, with_f32};
use super::softmax::softmax_last_dim;

/// Rows `first..first + rows` of P = softmax(QᵀK) for one image into `p` (rows × N); q, k are
/// (d, N).
fn attention_rows(
    p: &mut [f32],
    first: usize,
    rows: usize,
    q: &[f32],
    k: &[f32],
    d: usize,
    n: usize,
) {
    assert!(q.len() >= d * n && k.len() >= d * n && p.len() >= rows * n && first + rows <= n);
    with_avx2(
        #[inline(always)]
        || energies(p, first, rows, q, k, d, n),
    );
    p[..rows * n].chunks_mut(n).for_each(softmax_row);
}

/// Query rows per group and key positions per chunk of [`energies`]: a 4 × 16 block of
/// accumulators (eight AVX2 registers) per pass over the d rows of K.
const GROUP: usize = 4;
const CHUNK: usize = 16;

/// `p[r][j] = Σ_e q[e][first + r]·k[e][j]`, the energies, by a register-blocked loop instead of
/// gemm: d = C/8 is 8 at the generator's 32×32 stage, a product so shallow that gemm spent its
/// time packing and storing (the energies and the softmax took as long as the far larger
/// V·Pᵀ). The sum runs over e in order, in fused multiply-adds (see [`with_avx2`]).
#[inline(always)]
fn energies(p: &mut [f32], first: usize, rows: usize, q: &[f32], k: &[f32], d: usize, n: usize) {
    let mut group_q = vec![[0f32; GROUP]; d];
    for r0 in (0..rows).step_by(GROUP) {
        let g = GROUP.min(rows - r0);
        for (e, qe) in group_q.iter_mut().enumerate() {
            for (r, v) in qe.iter_mut().enumerate() {
                *v = if r < g {
                    q[e * n + first + r0 + r]
                } else {
                    0.0
                };
            }
        }
        let whole = n - n % CHUNK;
        for j in (0..whole).step_by(CHUNK) {
            let mut acc = [[0f32; CHUNK]; GROUP];
            for (e, qe) in group_q.iter().enumerate() {
                let kv: &[f32; CHUNK] = k[e * n + j..][..CHUNK].try_into().expect("chunk");
                for (a, &qv) in acc.iter_mut().zip(qe) {
                    for (a, &kv) in a.iter_mut().zip(kv) {
                        *a = qv.mul_add(kv, *a);
                    }
                }
            }
            for (r, a) in acc.iter().enumerate().take(g) {
                p[(r0 + r) * n + j..][..CHUNK].copy_from_slice(a);
            }
        }
        for j in whole..n {
            for r in 0..g {
                let mut a = 0f32;
                for (e, qe) in group_q.iter().enumerate() {
                    a = qe[r].mul_add(k[e * n + j], a);
                }
                p[(r0 + r) * n + j] = a;
            }
        }
    }
}

/// Query rows per block: a block of P (64 × N floats, 256 KiB at N = 1024) stays in cache
/// between the product that makes it, the softmax and the products that use it.
const BLOCK: usize = 64;

struct Dims {
    batch: usize,
    inner: usize,
    channels: usize,
    positions: usize,
}

fn dims(q: &Shape, k: &Shape, v: &Shape) -> Result<Dims> {
    let (batch, inner, positions) = q.dims3()?;
    let (kb, ki, kn) = k.dims3()?;
    let (vb, channels, vn) = v.dims3()?;
    if (kb, ki, kn) != (batch, inner, positions) || (vb, vn) != (batch, positions) {
        candle::bail!("attention: q {q:?}, k {k:?} and v {v:?} do not match");
    }
    Ok(Dims {
        batch,
        inner,
        channels,
        positions,
    })
}

struct SpatialAttention;

impl CustomOp3 for SpatialAttention {
    fn name(&self) -> &'static str {
        "xray-gan-spatial-attention"
    }

    fn cpu_fwd(
        &self,
        s1: &CpuStorage,
        l1: &Layout,
        s2: &CpuStorage,
        l2: &Layout,
        s3: &CpuStorage,
        l3: &Layout,
    ) -> Result<(CpuStorage, Shape)> {
        let d = dims(l1.shape(), l2.shape(), l3.shape())?;
        let (q, k, v) = (
            contiguous_f32(s1, l1, "attention")?,
            contiguous_f32(s2, l2, "attention")?,
            contiguous_f32(s3, l3, "attention")?,
        );
        let (n, c, i) = (d.positions, d.channels, d.inner);
        // read here: the images' threads do not see this thread's precision
        let bf16 = super::bf16_products_enabled();
        let mut out = vec![0f32; d.batch * c * n];
        out.par_chunks_mut(c * n).enumerate().for_each_init(
            || vec![0f32; BLOCK * n],
            |p, (b, o)| {
                let (q, k) = (&q[b * i * n..][..i * n], &k[b * i * n..][..i * n]);
                let v = View::rows(&v[b * c * n..][..c * n], n);
                let packed_v = bf16.then(|| PackedA::new(v, c, n, false));
                for first in (0..n).step_by(BLOCK) {
                    let rows = BLOCK.min(n - first);
                    attention_rows(p, first, rows, q, k, i, n);
                    // O[:, block] = V · P_blockᵀ
                    let (o, p_t) = (&mut o[first..], View::transposed(p, n));
                    match &packed_v {
                        Some(v) => bf16::matmul(o, n, false, rows, v, p_t, false),
                        None => matmul(o, n, false, (c, rows, n), v, p_t, false),
                    }
                }
            },
        );
        Ok((CpuStorage::F32(out), Shape::from((d.batch, c, n))))
    }

    fn bwd(
        &self,
        q: &Tensor,
        k: &Tensor,
        v: &Tensor,
        _res: &Tensor,
        grad_res: &Tensor,
    ) -> Result<(Option<Tensor>, Option<Tensor>, Option<Tensor>)> {
        let d = dims(q.shape(), k.shape(), v.shape())?;
        let (n, c, i) = (d.positions, d.channels, d.inner);
        let (q, k, v, grad) = (
            q.contiguous()?,
            k.contiguous()?,
            v.contiguous()?,
            grad_res.contiguous()?,
        );
        let bf16 = super::bf16_products_enabled();
        let mut dq = vec![0f32; d.batch * i * n];
        let mut dk = vec![0f32; d.batch * i * n];
        let mut dv = vec![0f32; d.batch * c * n];
        with_f32(&q, "attention", |qs| {
            with_f32(&k, "attention", |ks| {
                with_f32(&v, "attention", |vs| {
                    with_f32(&grad, "attention", |gs| {
                        dq.par_chunks_mut(i * n)
                            .zip(dk.par_chunks_mut(i * n))
                            .zip(dv.par_chunks_mut(c * n))
                            .enumerate()
                            .for_each_init(
                                || (vec![0f32; BLOCK * n], vec![0f32; BLOCK * n]),
                                |(p, ds), (b, ((dq, dk), dv))| {
                                    let q = &qs[b * i * n..][..i * n];
                                    let k = &ks[b * i * n..][..i * n];
                                    let v = &vs[b * c * n..][..c * n];
                                    let go = &gs[b * c * n..][..c * n];
                                    image_backward(
                                        p,
                                        ds,
                                        (q, k, v, go),
                                        (dq, dk, dv),
                                        (n, c, i),
                                        bf16,
                                    );
                                },
                            );
                        Ok(())
                    })
                })
            })
        })?;
        let device = q.device();
        Ok((
            Some(Tensor::from_vec(dq, q.shape(), device)?),
            Some(Tensor::from_vec(dk, k.shape(), device)?),
            Some(Tensor::from_vec(dv, v.shape(), device)?),
        ))
    }
}

/// One image's gradients, block of query rows by block: `p` and `ds` are a block's P and dS
/// (scratch), the gradients start at zero; the products in bf16 when `bf16`.
fn image_backward(
    p: &mut [f32],
    ds: &mut [f32],
    (q, k, v, go): (&[f32], &[f32], &[f32], &[f32]),
    (dq, dk, dv): (&mut [f32], &mut [f32], &mut [f32]),
    (n, c, i): (usize, usize, usize),
    bf16: bool,
) {
    let k_all = View::rows(k, n);
    let packed_k = bf16.then(|| PackedA::new(k_all, i, n, false));
    for first in (0..n).step_by(BLOCK) {
        let rows = BLOCK.min(n - first);
        attention_rows(p, first, rows, q, k, i, n);
        // dO[:, block] as (C × rows) and as its transpose
        let go_block = View {
            data: &go[first..],
            rs: n,
            cs: 1,
        };
        let go_block_t = View {
            data: &go[first..],
            rs: 1,
            cs: n,
        };
        // dV += dO[:, block] · P_block
        let p_rows = View::rows(p, n);
        matmul_with(bf16, dv, n, true, (c, n, rows), go_block, p_rows, false);
        // dP_block = dO[:, block]ᵀ · V, then dS = P ⊙ (dP − rowsum(dP ⊙ P))
        let v_rows = View::rows(v, n);
        matmul_with(bf16, ds, n, false, (rows, n, c), go_block_t, v_rows, false);
        for (g_row, p_row) in ds.chunks_mut(n).zip(p.chunks(n)).take(rows) {
            let dot = dot(g_row, p_row);
            for (g, &pv) in g_row.iter_mut().zip(p_row) {
                *g = pv * (*g - dot);
            }
        }
        // dQ[:, block] = K · dS_blockᵀ;  dK += Q[:, block] · dS_block
        let (dq, ds_t) = (&mut dq[first..], View::transposed(ds, n));
        match &packed_k {
            Some(k) => bf16::matmul(dq, n, false, rows, k, ds_t, false),
            None => matmul(dq, n, false, (i, rows, n), k_all, ds_t, false),
        }
        let q_block = View {
            data: &q[first..],
            rs: n,
            cs: 1,
        };
        let ds_rows = View::rows(ds, n);
        matmul_with(bf16, dk, n, true, (i, n, rows), q_block, ds_rows, false);
    }
}

/// `out[b] = v[b] · softmax(q[b]ᵀ k[b])ᵀ` for q, k `(B, d, N)` and v `(B, C, N)`: `(B, C, N)`,
/// differentiable. Fused on the CPU for f32; elsewhere from tensor ops.
pub fn spatial_attention(q: &Tensor, k: &Tensor, v: &Tensor) -> Result<Tensor> {
    if super::fused_kernels_apply(&[q, k, v]) {
        return q
            .contiguous()?
            .apply_op3(&k.contiguous()?, &v.contiguous()?, SpatialAttention);
    }
    composite(q, k, v)
}

/// The same product from tensor ops (the reference the fused kernel is tested against).
pub fn composite(q: &Tensor, k: &Tensor, v: &Tensor) -> Result<Tensor> {
    let energy = q.transpose(1, 2)?.contiguous()?.matmul(k)?; // (B, N, N)
    let attention = softmax_last_dim(&energy)?;
    attention
        .matmul(&v.transpose(1, 2)?.contiguous()?)?
        .transpose(1, 2)?
        .contiguous()
}
