//! Convolutions as matrix products, on the CPU.
//!
//! candle 0.11's CPU `conv_transpose2d` is a direct loop without gemm, parallel only over output
//! channels, and `conv2d`'s backward uses it for the input gradient: a discriminator's first layer
//! (one input channel) then runs on one thread. Here both directions are `im2col` / `col2im` (two
//! adjoint memory passes, fused, parallel) around gemm:
//!
//! - conv2d: `y = W · im2col(x)`, W viewed as (out, in·k·k);
//! - conv_transpose2d: `y = col2im(Wᵀ · x)`, W viewed as (in, out·k·k).
//!
//! The forward passes run image by image, products in parallel: one image's columns (a few
//! hundred KiB to 1 MiB at the seed's widths) stay in cache between the pass that writes them and
//! the product that reads them, and each product writes its image's part of the (B, C, H, W)
//! output directly. Made for the whole batch at once, the columns were four times the layer's
//! input at stride 2 (67 MB at the seed's second layer) written to memory and read back, and the
//! product's (C, B·H·W) result needed a transposing pass: together a fifth of each convolution's
//! time. Where a layer has few positions per image, a product takes a small group of images
//! instead ([`MIN_COLUMNS`]), since gemm packs the weight anew for each product. A 1×1
//! convolution (the attention projections) takes each image as its columns.
//!
//! Inside [`super::with_precision`]`(Precision::Bf16, …)` every product here (forward, input and
//! weight gradients) takes bf16 operands and sums in f32 ([`super::bf16`]); the weight is packed
//! once per op for all of its products.
//!
//! Each op's input gradient is the other op's forward pass with the same weight, image by image
//! too; the weight gradients sum over the batch and take the whole batch's columns.
//! Each convolution is one graph node holding only its input and weight: the columns are a
//! temporary of the forward pass and are recomputed by the backward pass rather than kept in the
//! graph. Other devices and dtypes use candle's own convolutions.

use candle::{CpuStorage, CustomOp1, CustomOp2, Layout, Result, Shape, Tensor};
use rayon::prelude::*;

use super::bf16::{self, PackedA};
use super::cpu::{View, contiguous_f32, matmul, written_in_chunks};

/// Geometry shared by a convolution's image side and its column side.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
struct Geometry {
    batch: usize,
    channels: usize,
    height: usize,
    width: usize,
    kernel: usize,
    stride: usize,
    padding: usize,
}

impl Geometry {
    fn out_hw(&self) -> Result<(usize, usize)> {
        if self.stride == 0 {
            candle::bail!("convolution: stride must be at least 1");
        }
        let span = |n: usize| {
            (n + 2 * self.padding)
                .checked_sub(self.kernel)
                .map(|v| v / self.stride + 1)
        };
        match (span(self.height), span(self.width)) {
            (Some(h), Some(w)) => Ok((h, w)),
            _ => candle::bail!(
                "convolution: kernel {} larger than padded input {}x{}",
                self.kernel,
                self.height,
                self.width
            ),
        }
    }

    /// A 1×1 convolution with stride 1 and no padding: its columns are its input.
    fn is_pointwise(&self) -> bool {
        (self.kernel, self.stride, self.padding) == (1, 1, 0)
    }

    fn rows(&self) -> usize {
        self.channels * self.kernel * self.kernel
    }

    /// The column positions `lo..hi` (of `out`) whose source `o·stride + k − padding` under
    /// kernel tap `k` lies inside an image side of `n` pixels, and the source of `lo`.
    #[inline]
    fn inside(&self, k: usize, n: usize, out: usize) -> (std::ops::Range<usize>, usize) {
        let lo = self.padding.saturating_sub(k).div_ceil(self.stride);
        let hi = (n + self.padding)
            .saturating_sub(k)
            .div_ceil(self.stride)
            .min(out);
        if lo >= hi {
            return (0..0, 0);
        }
        (lo..hi, lo * self.stride + k - self.padding)
    }
}

/// (B, C, H, W) → (C·k·k, B·OH·OW).
fn im2col(g: Geometry, x: &[f32]) -> Result<Vec<f32>> {
    let (oh, ow) = g.out_hw()?;
    let positions = oh * ow;
    let n = g.batch * positions;
    let plane = g.height * g.width;
    if x.len() != g.batch * g.channels * plane {
        candle::bail!(
            "im2col: expected {}x{}x{}x{} values, got {}",
            g.batch,
            g.channels,
            g.height,
            g.width,
            x.len()
        );
    }
    // SAFETY: every row's `batch` blocks of `positions` values are `oh` lines of `ow` values, and
    // each line is written whole: zeros, or zeros around the span `cols`, every element of
    // which is a source pixel (or the loop panics).
    let out = unsafe {
        written_in_chunks(g.rows() * n, n, |r, row| {
            let (c, tap) = (r / (g.kernel * g.kernel), r % (g.kernel * g.kernel));
            let (ky, kx) = (tap / g.kernel, tap % g.kernel);
            let (rows, first_y) = g.inside(ky, g.height, oh);
            let (cols, first_x) = g.inside(kx, g.width, ow);
            for b in 0..g.batch {
                let image = &x[(b * g.channels + c) * plane..][..plane];
                let dst = &mut row[b * positions..][..positions];
                for (oy, line) in dst.chunks_exact_mut(ow).enumerate() {
                    if !rows.contains(&oy) {
                        for d in line {
                            d.write(0.0);
                        }
                        continue;
                    }
                    let iy = first_y + (oy - rows.start) * g.stride;
                    let src = &image[iy * g.width + first_x..(iy + 1) * g.width];
                    let (left, rest) = line.split_at_mut(cols.start);
                    let (inside, right) = rest.split_at_mut(cols.len());
                    for d in left.iter_mut().chain(right) {
                        d.write(0.0);
                    }
                    let mut pixels = src.iter().step_by(g.stride);
                    for d in inside.iter_mut() {
                        // `inside` keeps every source pixel in the image, so none is missing
                        d.write(*pixels.next().expect("im2col: span inside the image"));
                    }
                }
            }
        })
    };
    Ok(out)
}

/// (C·k·k, B·OH·OW) → (B, C, H, W), summing overlapping taps: the adjoint of [`im2col`].
fn col2im(g: Geometry, cols: &[f32]) -> Result<Vec<f32>> {
    let mut out = vec![0f32; g.batch * g.channels * g.height * g.width];
    col2im_into(g, cols, &mut out)?;
    Ok(out)
}

/// [`col2im`] summed into `out` (B, C, H, W).
fn col2im_into(g: Geometry, cols: &[f32], out: &mut [f32]) -> Result<()> {
    let (oh, ow) = g.out_hw()?;
    let positions = oh * ow;
    let n = g.batch * positions;
    let plane = g.height * g.width;
    if cols.len() != g.rows() * n || out.len() != g.batch * g.channels * plane {
        candle::bail!(
            "col2im: {} columns and {} outputs for {g:?}",
            cols.len(),
            out.len()
        );
    }
    out.par_chunks_mut(plane)
        .enumerate()
        .for_each(|(p, image)| {
            let (b, c) = (p / g.channels, p % g.channels);
            for ky in 0..g.kernel {
                for kx in 0..g.kernel {
                    let r = (c * g.kernel + ky) * g.kernel + kx;
                    let src = &cols[r * n + b * positions..][..positions];
                    let (rows, first_y) = g.inside(ky, g.height, oh);
                    let (columns, first_x) = g.inside(kx, g.width, ow);
                    for (i, oy) in rows.enumerate() {
                        let iy = first_y + i * g.stride;
                        let dst = &mut image[iy * g.width + first_x..(iy + 1) * g.width];
                        let src = &src[oy * ow..][columns.clone()];
                        for (d, &v) in dst.iter_mut().step_by(g.stride).zip(src) {
                            *d += v;
                        }
                    }
                }
            }
        });
    Ok(())
}

/// Columns a product should have at least: gemm packs the weight again for every product, so
/// layers with few output positions per image (the seed's last stages at 4×4, SQUID's patches)
/// multiply several images' columns at once.
const MIN_COLUMNS: usize = 256;

/// Images per product for a layer with `positions` columns per image.
fn group_size(batch: usize, positions: usize) -> usize {
    MIN_COLUMNS
        .div_ceil(positions.max(1))
        .clamp(1, batch.max(1))
}

/// Runs `f(output, input, images, parallel)` on the chunks of `out` and `x` that hold `group`
/// images each (the last one possibly fewer): groups in parallel, each product on its own thread
/// (`parallel` false), when there are at least as many groups as threads; otherwise (a batch of
/// one when predicting, say) groups in turn, each product on every thread.
fn by_groups(
    out: &mut [f32],
    out_per_image: usize,
    x: &[f32],
    in_per_image: usize,
    group: usize,
    f: impl Fn(&mut [f32], &[f32], usize, bool) -> Result<()> + Sync,
) -> Result<()> {
    if out_per_image == 0 || in_per_image == 0 {
        return Ok(()); // no output channels: nothing to compute
    }
    let (out_chunk, in_chunk) = (group * out_per_image, group * in_per_image);
    let groups = out.len().div_ceil(out_chunk);
    let run = |y: &mut [f32], x: &[f32], parallel| f(y, x, y.len() / out_per_image, parallel);
    match groups >= rayon::current_num_threads() {
        true => out
            .par_chunks_mut(out_chunk)
            .zip(x.par_chunks(in_chunk))
            .try_for_each(|(y, x)| run(y, x, false)),
        false => out
            .chunks_mut(out_chunk)
            .zip(x.chunks(in_chunk))
            .try_for_each(|(y, x)| run(y, x, true)),
    }
}

/// A convolution's left operand (its weight) for all of its products: f32 as it is, or packed
/// once into bf16 pairs when the products run in bf16 ([`super::with_precision`]).
enum Left<'a> {
    F32(View<'a>, usize, usize),
    Bf16(PackedA),
}

impl<'a> Left<'a> {
    /// `a` (m × k) for products in this thread's precision.
    fn new(a: View<'a>, m: usize, k: usize) -> Self {
        match super::bf16_products_enabled() {
            true => Left::Bf16(PackedA::new(a, m, k, true)),
            false => Left::F32(a, m, k),
        }
    }

    /// `out` (m × n, row stride n) = self · b.
    fn times(&self, out: &mut [f32], n: usize, b: View, parallel: bool) {
        match self {
            Left::F32(a, m, k) => matmul(out, n, false, (*m, n, *k), *a, b, parallel),
            Left::Bf16(a) => bf16::matmul(out, n, false, n, a, b, parallel),
        }
    }
}

/// `a · bᵀ` for a weight gradient (`a` m × k, `b` n × k, both contiguous): candle's f32 matmul,
/// or a bf16 product inside [`super::with_precision`]`(Precision::Bf16, …)`.
fn times_transposed(a: &Tensor, b: &Tensor) -> Result<Tensor> {
    if !super::bf16_products_enabled() {
        return a.matmul(&b.t()?);
    }
    a.apply_op2(b, TimesTransposed)
}

/// [`times_transposed`] in bf16, as an op (a weight gradient is not differentiated again).
struct TimesTransposed;

impl CustomOp2 for TimesTransposed {
    fn name(&self) -> &'static str {
        "xray-gan-bf16-times-transposed"
    }

    fn cpu_fwd(
        &self,
        s1: &CpuStorage,
        l1: &Layout,
        s2: &CpuStorage,
        l2: &Layout,
    ) -> Result<(CpuStorage, Shape)> {
        let (m, k) = l1.shape().dims2()?;
        let (n, k2) = l2.shape().dims2()?;
        if k != k2 {
            candle::bail!("bf16 product: inner sizes {k} and {k2}");
        }
        let a = contiguous_f32(s1, l1, "bf16 product")?;
        let b = contiguous_f32(s2, l2, "bf16 product")?;
        let packed = PackedA::new(View::rows(a, k), m, k, true);
        let mut out = vec![0f32; m * n];
        bf16::matmul(&mut out, n, false, n, &packed, View::transposed(b, k), true);
        Ok((CpuStorage::F32(out), Shape::from((m, n))))
    }
}

/// `(a, b, n)` data as `(b, a, n)` into `dst`.
fn swap_leading_into(src: &[f32], (a, b, n): (usize, usize, usize), dst: &mut [f32]) {
    for (p, chunk) in dst.chunks_exact_mut(n).enumerate().take(a * b) {
        let (j, i) = (p / a, p % a);
        chunk.copy_from_slice(&src[(i * b + j) * n..][..n]);
    }
}

/// [`im2col`] as a differentiable op (its gradient is [`Col2Im`]).
struct Im2Col(Geometry);

/// [`col2im`] as a differentiable op (its gradient is [`Im2Col`]).
struct Col2Im(Geometry);

impl CustomOp1 for Im2Col {
    fn name(&self) -> &'static str {
        "xray-gan-im2col"
    }

    fn cpu_fwd(&self, storage: &CpuStorage, layout: &Layout) -> Result<(CpuStorage, Shape)> {
        let g = self.0;
        let out = im2col(g, contiguous_f32(storage, layout, "im2col")?)?;
        let (oh, ow) = g.out_hw()?;
        Ok((
            CpuStorage::F32(out),
            Shape::from((g.rows(), g.batch * oh * ow)),
        ))
    }

    fn bwd(&self, _arg: &Tensor, _res: &Tensor, grad_res: &Tensor) -> Result<Option<Tensor>> {
        Ok(Some(grad_res.contiguous()?.apply_op1(Col2Im(self.0))?))
    }
}

impl CustomOp1 for Col2Im {
    fn name(&self) -> &'static str {
        "xray-gan-col2im"
    }

    fn cpu_fwd(&self, storage: &CpuStorage, layout: &Layout) -> Result<(CpuStorage, Shape)> {
        let g = self.0;
        let out = col2im(g, contiguous_f32(storage, layout, "col2im")?)?;
        Ok((
            CpuStorage::F32(out),
            Shape::from((g.batch, g.channels, g.height, g.width)),
        ))
    }

    fn bwd(&self, _arg: &Tensor, _res: &Tensor, grad_res: &Tensor) -> Result<Option<Tensor>> {
        Ok(Some(grad_res.contiguous()?.apply_op1(Im2Col(self.0))?))
    }
}

/// conv2d as one graph node that keeps only x and W: the columns (four times the input at stride
/// 2) are a temporary of the forward pass and are recomputed in the backward pass, instead of
/// living in the graph until the backward pass as a matmul operand.
struct Conv2d {
    g: Geometry,
    out_c: usize,
}

impl CustomOp2 for Conv2d {
    fn name(&self) -> &'static str {
        "xray-gan-conv2d"
    }

    fn cpu_fwd(
        &self,
        s1: &CpuStorage,
        l1: &Layout,
        s2: &CpuStorage,
        l2: &Layout,
    ) -> Result<(CpuStorage, Shape)> {
        let g = self.g;
        let (oh, ow) = g.out_hw()?;
        let x = contiguous_f32(s1, l1, "conv2d")?;
        let w = contiguous_f32(s2, l2, "conv2d")?;
        let (p, rows) = (oh * ow, g.rows());
        let image = g.channels * g.height * g.width;
        if x.len() != g.batch * image || image == 0 {
            candle::bail!("conv2d: {} input values for {g:?}", x.len());
        }
        // a 1×1 convolution's weight is small: its products go image by image, each taking
        // the image itself as its columns
        let group = match g.is_pointwise() {
            true => 1,
            false => group_size(g.batch, p),
        };
        let left = Left::new(View::rows(w, rows), self.out_c, rows);
        let mut y = vec![0f32; g.batch * self.out_c * p];
        by_groups(
            &mut y,
            self.out_c * p,
            x,
            image,
            group,
            |y, x, images, parallel| {
                let n = images * p;
                let cols = match g.is_pointwise() {
                    true => None,
                    false => Some(im2col(Geometry { batch: images, ..g }, x)?),
                };
                let cols = View::rows(cols.as_deref().unwrap_or(x), n);
                match images {
                    1 => left.times(y, n, cols, parallel),
                    _ => {
                        // (out, images·OH·OW) → (images, out, OH·OW)
                        let mut t = vec![0f32; y.len()];
                        left.times(&mut t, n, cols, parallel);
                        swap_leading_into(&t, (self.out_c, images, p), y);
                    }
                }
                Ok(())
            },
        )?;
        Ok((
            CpuStorage::F32(y),
            Shape::from((g.batch, self.out_c, oh, ow)),
        ))
    }

    fn bwd(
        &self,
        x: &Tensor,
        w: &Tensor,
        _res: &Tensor,
        grad: &Tensor,
    ) -> Result<(Option<Tensor>, Option<Tensor>)> {
        let g = self.g;
        let (oh, ow) = g.out_hw()?;
        // an untracked side (data input, frozen weight) needs no gradient; ∂x is the transposed
        // convolution of the gradient with the same weight, image by image
        let grad_x = match x.track_op() {
            true => Some(grad.contiguous()?.apply_op2(
                &w.contiguous()?,
                ConvTranspose2d {
                    g,
                    in_c: self.out_c,
                    in_hw: (oh, ow),
                },
            )?),
            false => None,
        };
        let grad_w = match w.track_op() {
            true => {
                let grad = grad
                    .transpose(0, 1)?
                    .contiguous()?
                    .reshape((self.out_c, g.batch * oh * ow))?;
                let cols = x.contiguous()?.apply_op1(Im2Col(g))?;
                Some(times_transposed(&grad, &cols)?.reshape(w.shape())?)
            }
            false => None,
        };
        Ok((grad_x, grad_w))
    }
}

/// conv_transpose2d as one graph node that keeps only x and W (the columns Wᵀ·x, four times the
/// output at stride 2, are a temporary). `g` is the geometry of the output side.
struct ConvTranspose2d {
    g: Geometry,
    in_c: usize,
    in_hw: (usize, usize),
}

impl ConvTranspose2d {
    /// x (B, Cin, H, W) as (Cin, B·H·W).
    fn channels_first(&self, x: &Tensor) -> Result<Tensor> {
        let (h, w) = self.in_hw;
        x.transpose(0, 1)?
            .contiguous()?
            .reshape((self.in_c, self.g.batch * h * w))
    }
}

impl CustomOp2 for ConvTranspose2d {
    fn name(&self) -> &'static str {
        "xray-gan-conv-transpose2d"
    }

    fn cpu_fwd(
        &self,
        s1: &CpuStorage,
        l1: &Layout,
        s2: &CpuStorage,
        l2: &Layout,
    ) -> Result<(CpuStorage, Shape)> {
        let g = self.g;
        let (h, w) = self.in_hw;
        let x = contiguous_f32(s1, l1, "conv_transpose2d")?;
        let weight = contiguous_f32(s2, l2, "conv_transpose2d")?;
        let (hw, rows) = (h * w, g.rows());
        let plane = g.channels * g.height * g.width;
        if x.len() != g.batch * self.in_c * hw || plane == 0 || hw == 0 {
            candle::bail!("conv_transpose2d: {} input values for {g:?}", x.len());
        }
        let group = group_size(g.batch, hw);
        let left = Left::new(View::transposed(weight, rows), rows, self.in_c);
        let mut out = vec![0f32; g.batch * plane];
        by_groups(
            &mut out,
            plane,
            x,
            self.in_c * hw,
            group,
            |y, x, images, parallel| {
                let n = images * hw;
                // the group's input as (Cin, images·H·W)
                let gathered = match images {
                    1 => None,
                    _ => {
                        let mut t = vec![0f32; x.len()];
                        swap_leading_into(x, (images, self.in_c, hw), &mut t);
                        Some(t)
                    }
                };
                let x = View::rows(gathered.as_deref().unwrap_or(x), n);
                // the group's columns Wᵀ·x, then summed into its output planes
                let mut cols = vec![0f32; rows * n];
                left.times(&mut cols, n, x, parallel);
                col2im_into(Geometry { batch: images, ..g }, &cols, y)
            },
        )?;
        Ok((
            CpuStorage::F32(out),
            Shape::from((g.batch, g.channels, g.height, g.width)),
        ))
    }

    fn bwd(
        &self,
        x: &Tensor,
        w: &Tensor,
        _res: &Tensor,
        grad: &Tensor,
    ) -> Result<(Option<Tensor>, Option<Tensor>)> {
        let g = self.g;
        // an untracked side (data input, frozen weight) needs no gradient; ∂x is the convolution
        // of the gradient with the same weight, image by image
        let grad_x = match x.track_op() {
            true => Some(grad.contiguous()?.apply_op2(
                &w.contiguous()?,
                Conv2d {
                    g,
                    out_c: self.in_c,
                },
            )?),
            false => None,
        };
        let grad_w = match w.track_op() {
            true => {
                let grad_cols = grad.contiguous()?.apply_op1(Im2Col(g))?;
                Some(times_transposed(&self.channels_first(x)?, &grad_cols)?.reshape(w.shape())?)
            }
            false => None,
        };
        Ok((grad_x, grad_w))
    }
}

/// Whether the gemm formulation applies (CPU, f32, fused kernels on: see
/// [`super::fused_kernels_apply`]); elsewhere candle's own kernels run.
pub fn gemm_applies(x: &Tensor, weight: &Tensor) -> bool {
    super::fused_kernels_apply(&[x, weight])
}

/// conv2d of `x` (B, Cin, H, W) with `weight` (Cout, Cin, k, k), no bias, differentiable.
pub fn conv2d(x: &Tensor, weight: &Tensor, padding: usize, stride: usize) -> Result<Tensor> {
    let (batch, channels, height, width) = x.dims4()?;
    let (out_c, in_c, kernel, _) = weight.dims4()?;
    if in_c != channels {
        candle::bail!("conv2d: input has {channels} channels, weight expects {in_c}");
    }
    let g = Geometry {
        batch,
        channels,
        height,
        width,
        kernel,
        stride,
        padding,
    };
    g.out_hw()?;
    x.contiguous()?
        .apply_op2(&weight.contiguous()?, Conv2d { g, out_c })
}

/// conv_transpose2d of `x` (B, Cin, H, W) with `weight` (Cin, Cout, k, k), no bias, no output
/// padding, differentiable.
pub fn conv_transpose2d(
    x: &Tensor,
    weight: &Tensor,
    padding: usize,
    stride: usize,
) -> Result<Tensor> {
    let (batch, channels, height, width) = x.dims4()?;
    let (in_c, out_c, kernel, _) = weight.dims4()?;
    if in_c != channels {
        candle::bail!("conv_transpose2d: input has {channels} channels, weight expects {in_c}");
    }
    if stride == 0 || height == 0 || width == 0 {
        candle::bail!("conv_transpose2d: stride {stride} on a {height}x{width} input");
    }
    let span = |n: usize| ((n - 1) * stride + kernel).checked_sub(2 * padding);
    let (Some(out_h), Some(out_w)) = (span(height), span(width)) else {
        candle::bail!("conv_transpose2d: padding {padding} too large for a {height}x{width} input");
    };
    let g = Geometry {
        batch,
        channels: out_c,
        height: out_h,
        width: out_w,
        kernel,
        stride,
        padding,
    };
    x.contiguous()?.apply_op2(
        &weight.contiguous()?,
        ConvTranspose2d {
            g,
            in_c,
            in_hw: (height, width),
        },
    )
}
