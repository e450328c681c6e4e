//! SQUID's networks (Xiang et al., CVPR 2023, `tiangexiang/SQUID`, `models/squid.py`,
//! `inpaint.py`, `memory.py`), at xray-gan's widths: the image is cut into a 2×2 grid of
//! patches that one encoder encodes separately; the in-painting block replaces each patch's
//! bottleneck by what a queue of normal patch features of its position recalls and lets it
//! attend to its neighbours' recollections; a student decoder reconstructs from the in-painted
//! features and a teacher decoder of the same shape from the raw ones.
//!
//! Shapes for an image side S, patch side P = S/2 and base width w (the paper: S 128, w 32):
//! encoder levels w@P, 2w@P/2, 4w@P/4, 8w@P/8, bottleneck 16w@P/16 per patch; the memory query
//! is a 1×1 convolution to 4w channels, flattened to D = 4w·(P/16)² values per patch (2048 in the
//! paper).

use candle::{D, DType, Device, Result, Tensor, Var};
use candle_nn::{Init, Linear, Module, VarBuilder};
use rand::SeedableRng;
use rand_distr::{Distribution, Uniform};

use crate::blocks::{BatchNormRelu, Conv, ConvSpec, linear};
use crate::kernels::softmax_last_dim;

/// Patches per side of the grid (the paper's `num_patch`).
pub const GRID: usize = 2;
/// Patches per image.
pub const PATCHES: usize = GRID * GRID;
/// Bits of the patch-position code concatenated after the in-painting block (`log2(4) + 1`).
const POSITION_BITS: usize = 3;

const SAME3: ConvSpec = ConvSpec {
    kernel: 3,
    stride: 1,
    padding: 1,
};

/// (B, C, S, S) → (4B, C, S/2, S/2), patches row-major: image b's patch (r, c) is row 4b + 2r + c.
pub fn split_patches(x: &Tensor) -> Result<Tensor> {
    let (b, c, h, w) = x.dims4()?;
    let (ph, pw) = (h / GRID, w / GRID);
    x.reshape((b, c, GRID, ph, GRID, pw))?
        .permute((0, 2, 4, 1, 3, 5))?
        .contiguous()?
        .reshape((b * PATCHES, c, ph, pw))
}

/// The inverse of [`split_patches`]: (4B, C, P, P) → (B, C, 2P, 2P).
pub fn stitch_patches(x: &Tensor) -> Result<Tensor> {
    let (n, c, ph, pw) = x.dims4()?;
    let b = n / PATCHES;
    x.reshape((b, GRID, GRID, c, ph, pw))?
        .permute((0, 3, 1, 4, 2, 5))?
        .contiguous()?
        .reshape((b, c, GRID * ph, GRID * pw))
}

/// Conv + BatchNorm + ReLU.
#[derive(Debug, Clone)]
struct ConvBnRelu {
    conv: Conv,
    norm: BatchNormRelu,
}

impl ConvBnRelu {
    fn new(in_c: usize, out_c: usize, spec: ConvSpec, vb: VarBuilder) -> Result<Self> {
        Ok(ConvBnRelu {
            conv: Conv::conv2d(in_c, out_c, spec, false, vb.pp("conv"))?,
            norm: BatchNormRelu::new(out_c, vb.pp("bn"))?,
        })
    }

    fn transposed(in_c: usize, out_c: usize, vb: VarBuilder) -> Result<Self> {
        Ok(ConvBnRelu {
            conv: Conv::conv_transpose2d(in_c, out_c, ConvSpec::DOWN_UP, false, vb.pp("conv"))?,
            norm: BatchNormRelu::new(out_c, vb.pp("bn"))?,
        })
    }

    fn forward_t(&self, x: &Tensor, train: bool) -> Result<Tensor> {
        self.norm.forward_t(&self.conv.forward_t(x, train)?, train)
    }
}

/// What the encoder makes of one batch of patches.
#[derive(Debug, Clone)]
pub struct PatchFeatures {
    /// The inputs of the two deepest down-sampling levels (4w@P/4, 8w@P/8), the decoder's skips.
    pub skips: [Tensor; 2],
    /// 16w@P/16.
    pub bottleneck: Tensor,
}

/// The encoder every patch goes through (shared weights).
#[derive(Debug, Clone)]
pub struct PatchEncoder {
    input: ConvBnRelu,
    downs: [ConvBnRelu; 4],
}

impl PatchEncoder {
    pub fn new(width: usize, channels: usize, vb: VarBuilder) -> Result<Self> {
        let w = width;
        let down = |i: usize, a: usize, b: usize| {
            ConvBnRelu::new(a, b, ConvSpec::DOWN_UP, vb.pp(format!("down{i}")))
        };
        Ok(PatchEncoder {
            input: ConvBnRelu::new(channels, w, SAME3, vb.pp("input"))?,
            downs: [
                down(0, w, 2 * w)?,
                down(1, 2 * w, 4 * w)?,
                down(2, 4 * w, 8 * w)?,
                down(3, 8 * w, 16 * w)?,
            ],
        })
    }

    /// `patches` (4B, C, P, P).
    pub fn forward_t(&self, patches: &Tensor, train: bool) -> Result<PatchFeatures> {
        let e0 = self.input.forward_t(patches, train)?;
        let e1 = self.downs[0].forward_t(&e0, train)?;
        let e2 = self.downs[1].forward_t(&e1, train)?;
        let e3 = self.downs[2].forward_t(&e2, train)?;
        let bottleneck = self.downs[3].forward_t(&e3, train)?;
        Ok(PatchFeatures {
            skips: [e2, e3],
            bottleneck,
        })
    }
}

/// Layer normalisation over the last dimension with a learned scale and shift (named `gamma` and
/// `beta`, so seeding leaves them at 1 and 0).
#[derive(Debug, Clone)]
struct LayerNorm {
    gamma: Tensor,
    beta: Tensor,
}

impl LayerNorm {
    fn new(dim: usize, vb: VarBuilder) -> Result<Self> {
        Ok(LayerNorm {
            gamma: vb.get_with_hints(dim, "gamma", Init::Const(1.0))?,
            beta: vb.get_with_hints(dim, "beta", Init::Const(0.0))?,
        })
    }

    fn forward(&self, x: &Tensor) -> Result<Tensor> {
        let mean = x.mean_keepdim(D::Minus1)?;
        let centred = x.broadcast_sub(&mean)?;
        let var = centred.sqr()?.mean_keepdim(D::Minus1)?;
        centred
            .broadcast_div(&(var + 1e-5)?.sqrt()?)?
            .broadcast_mul(&self.gamma)?
            .broadcast_add(&self.beta)
    }
}

/// What the in-painting block returns.
#[derive(Debug, Clone)]
pub struct Inpainted {
    /// 16w@P/16 per patch, to the student decoder.
    pub bottleneck: Tensor,
    /// The memory queries (4, B, D), detached: what [`InpaintBlock::enqueue`] stores after a step.
    pub queries: Tensor,
}

/// The in-painting block over a memory queue of normal patch features (`inpaint.py`,
/// `memory.py`'s `MemoryQueue`).
///
/// - One queue per patch position, `slots × D`, a buffer (not trained): the training step
///   writes each batch's queries into it first-in first-out ([`InpaintBlock::enqueue`]), so it
///   holds features of recent normal patches.
/// - Reading it: dot products of the query with every slot, a softmax, then only the `top_k`
///   largest weights kept and renormalised (the paper's hard shrinkage with k = 5 keeps 4), with
///   the gradient of the full softmax passed straight through; the recollection is the weighted
///   sum of slots. No gradient reaches the queue.
/// - Each patch's own (pre-memory) query attends to its neighbours' recollections (the other
///   three patches of the 2×2 grid; the paper's 3×3 window adds five zero-padded keys here), one
///   transformer layer: n = ReLU(LN(attention) + recollection), n = ReLU(LN(FF(n)) + n).
/// - A 3-bit code of the patch position is concatenated and a 1×1 convolution restores 16w
///   channels. While training, a random 5 % of positions keep the encoder's own feature
///   (`mask_ratio` 0.95 in-painted).
#[derive(Debug, Clone)]
pub struct InpaintBlock {
    query: ConvBnRelu,
    /// (4, slots, D).
    memory: Var,
    q: Linear,
    k: Linear,
    v: Linear,
    o: Linear,
    norm1: LayerNorm,
    ff1: Linear,
    ff2: Linear,
    norm2: LayerNorm,
    out: ConvBnRelu,
    top_k: usize,
    query_channels: usize,
}

/// The name of the queue variable (state: not trained, copied rather than averaged).
pub const MEMORY_QUEUE: &str = "memory_queue";

impl InpaintBlock {
    /// `side`: the bottleneck's spatial side P/16.
    pub fn new(
        width: usize,
        side: usize,
        slots: usize,
        top_k: usize,
        vb: VarBuilder,
    ) -> Result<Self> {
        let (c, qc) = (16 * width, 4 * width);
        let d = qc * side * side;
        let memory = vb.get_with_hints((PATCHES, slots, d), MEMORY_QUEUE, Init::Const(0.0))?;
        Ok(InpaintBlock {
            query: ConvBnRelu::new(c, qc, ConvSpec::POINTWISE, vb.pp("query"))?,
            memory: Var::from_tensor(&memory)?,
            q: linear(d, d, vb.pp("attention_q"))?,
            k: linear(d, d, vb.pp("attention_k"))?,
            v: linear(d, d, vb.pp("attention_v"))?,
            o: linear(d, d, vb.pp("attention_o"))?,
            norm1: LayerNorm::new(d, vb.pp("norm1"))?,
            ff1: linear(d, (d / 4).max(1), vb.pp("ff1"))?,
            ff2: linear((d / 4).max(1), d, vb.pp("ff2"))?,
            norm2: LayerNorm::new(d, vb.pp("norm2"))?,
            out: ConvBnRelu::new(qc + POSITION_BITS, c, ConvSpec::POINTWISE, vb.pp("out"))?,
            top_k,
            query_channels: qc,
        })
    }

    /// Fills the queue with draws from U(±1/√D) seeded by `seed` (the paper's initial state).
    pub fn seed_memory(&self, seed: u64) -> Result<()> {
        let (p, n, d) = self.memory.dims3()?;
        let bound = 1.0 / (d as f32).sqrt();
        let uniform = Uniform::new(-bound, bound).map_err(|e| candle::Error::Msg(e.to_string()))?;
        let mut rng = rand::rngs::StdRng::seed_from_u64(seed);
        let values: Vec<f32> = (0..p * n * d).map(|_| uniform.sample(&mut rng)).collect();
        self.memory
            .set(&Tensor::from_vec(values, (p, n, d), self.memory.device())?)
    }

    /// The queue, (4, slots, D).
    pub fn memory(&self) -> &Tensor {
        self.memory.as_tensor()
    }

    /// Writes `queries` (4, B, D) into the queue at slot `(start + i) mod slots` for query `i`.
    pub fn enqueue(&self, queries: &Tensor, start: usize) -> Result<()> {
        let (p, n, d) = self.memory.dims3()?;
        let b = queries.dim(1)?;
        let mut memory: Vec<f32> = self.memory.flatten_all()?.to_vec1()?;
        let queries: Vec<f32> = queries.flatten_all()?.to_vec1()?;
        for position in 0..p {
            for i in 0..b.min(n) {
                let slot = (start + i) % n;
                let to = (position * n + slot) * d;
                let from = (position * b + i) * d;
                memory[to..to + d].copy_from_slice(&queries[from..from + d]);
            }
        }
        self.memory
            .set(&Tensor::from_vec(memory, (p, n, d), self.memory.device())?)
    }

    /// Softmax weights over the slots with only the `top_k` largest kept and renormalised; the
    /// gradient is the full softmax's (straight through).
    fn shrunk_weights(&self, logits: &Tensor) -> Result<Tensor> {
        let soft = softmax_last_dim(logits)?;
        let dims = soft.dims().to_vec();
        let n = *dims.last().unwrap_or(&1);
        let k = self.top_k.clamp(1, n);
        let values: Vec<f32> = soft.flatten_all()?.to_vec1()?;
        let mut hard = vec![0f32; values.len()];
        let mut order: Vec<usize> = (0..n).collect();
        for (row, out) in values.chunks(n).zip(hard.chunks_mut(n)) {
            order.sort_by(|&a, &b| row[b].total_cmp(&row[a]));
            let total: f32 = order[..k].iter().map(|&i| row[i]).sum();
            for &i in &order[..k] {
                out[i] = row[i] / total.max(1e-12);
            }
        }
        let hard = Tensor::from_vec(hard, dims, soft.device())?;
        (hard - soft.detach())? + soft
    }

    /// `bottleneck` (4B, 16w, s, s); `keep`: for training, a (4B, 1, s, s) mask of the
    /// positions that keep the in-painted feature (the rest keep the encoder's).
    pub fn forward_t(
        &self,
        bottleneck: &Tensor,
        keep: Option<&Tensor>,
        train: bool,
    ) -> Result<Inpainted> {
        let (n, _, s, _) = bottleneck.dims4()?;
        let b = n / PATCHES;
        let query_map = self.query.forward_t(bottleneck, train)?;
        let d = self.query_channels * s * s;
        // (4B, qc, s, s) → (4, B, D): position-major, so each position reads its own queue
        let queries = query_map
            .reshape((b, PATCHES, d))?
            .transpose(0, 1)?
            .contiguous()?;
        let memory = self.memory.as_tensor().detach();
        let logits = queries.matmul(&memory.transpose(1, 2)?)?;
        let recalled = self.shrunk_weights(&logits)?.matmul(&memory)?;
        // each patch's query against its three neighbours' recollections
        let neighbours: Vec<Tensor> = (0..PATCHES)
            .map(|p| {
                let others: Vec<u32> = (0..PATCHES as u32).filter(|&o| o != p as u32).collect();
                let index = Tensor::new(others.as_slice(), recalled.device())?;
                recalled.index_select(&index, 0)?.transpose(0, 1) // (B, 3, D)
            })
            .collect::<Result<_>>()?;
        let neighbours = Tensor::stack(&neighbours, 0)?.reshape((PATCHES * b, PATCHES - 1, d))?;
        let own = queries.reshape((PATCHES * b, 1, d))?;
        let q = self.q.forward(&own)?;
        let k = self.k.forward(&neighbours)?;
        let v = self.v.forward(&neighbours)?;
        let attention = softmax_last_dim(&(q.matmul(&k.transpose(1, 2)?)? / (d as f64).sqrt())?)?;
        let attended = self.o.forward(&attention.matmul(&v)?)?;
        let recalled = recalled.reshape((PATCHES * b, 1, d))?;
        let h = (self.norm1.forward(&attended)? + recalled)?.relu()?;
        let ff = self.ff2.forward(&self.ff1.forward(&h)?.relu()?)?;
        let h = (self.norm2.forward(&ff)? + h)?.relu()?;
        // (4, B, D) → (B, 4, D) → (4B, qc, s, s), plus the position code
        let h = h
            .reshape((PATCHES, b, d))?
            .transpose(0, 1)?
            .contiguous()?
            .reshape((n, self.query_channels, s, s))?;
        let code = position_code(b, s, bottleneck.device())?;
        let inpainted = self.out.forward_t(&Tensor::cat(&[&h, &code], 1)?, train)?;
        let bottleneck = match keep {
            Some(keep) => {
                (inpainted.broadcast_mul(keep)?
                    + bottleneck.broadcast_mul(&keep.affine(-1.0, 1.0)?)?)?
            }
            None => inpainted,
        };
        Ok(Inpainted {
            bottleneck,
            queries: queries.detach(),
        })
    }
}

/// (4B, 3, s, s): the binary code of each patch's position, most significant bit first.
fn position_code(b: usize, s: usize, device: &Device) -> Result<Tensor> {
    let mut values = Vec::with_capacity(b * PATCHES * POSITION_BITS * s * s);
    for _ in 0..b {
        for p in 0..PATCHES {
            for bit in (0..POSITION_BITS).rev() {
                let on = ((p >> bit) & 1) as f32;
                values.extend(std::iter::repeat_n(on, s * s));
            }
        }
    }
    Tensor::from_vec(values, (b * PATCHES, POSITION_BITS, s, s), device)?.to_dtype(DType::F32)
}

/// A decoder's reconstruction and its features after each of its four up-sampling levels (the
/// teacher–student distillation compares them).
#[derive(Debug, Clone)]
pub struct Decoded {
    pub features: [Tensor; 4],
    pub reconstruction: Tensor,
}

/// The student's and the teacher's decoder (same shape, own weights): two up-sampling levels per
/// patch with the encoder's skips concatenated, the patches stitched into the whole image, two
/// more levels, a 3×3 convolution to one channel and tanh.
#[derive(Debug, Clone)]
pub struct PatchDecoder {
    ups: [ConvBnRelu; 4],
    merges: [ConvBnRelu; 2],
    out: Conv,
}

impl PatchDecoder {
    pub fn new(width: usize, channels: usize, vb: VarBuilder) -> Result<Self> {
        let w = width;
        let up =
            |i: usize, a: usize, b: usize| ConvBnRelu::transposed(a, b, vb.pp(format!("up{i}")));
        let merge =
            |i: usize, a: usize, b: usize| ConvBnRelu::new(a, b, SAME3, vb.pp(format!("merge{i}")));
        Ok(PatchDecoder {
            ups: [
                up(0, 16 * w, 8 * w)?,
                up(1, 8 * w, 4 * w)?,
                up(2, 4 * w, 2 * w)?,
                up(3, 2 * w, w)?,
            ],
            merges: [merge(0, 16 * w, 8 * w)?, merge(1, 8 * w, 4 * w)?],
            out: Conv::conv2d(w, channels, SAME3, false, vb.pp("out"))?,
        })
    }

    /// `bottleneck` (4B, 16w, s, s) and the encoder's `skips`.
    pub fn forward_t(
        &self,
        bottleneck: &Tensor,
        skips: &[Tensor; 2],
        train: bool,
    ) -> Result<Decoded> {
        let up0 = self.ups[0].forward_t(bottleneck, train)?;
        let d0 = self.merges[0].forward_t(&Tensor::cat(&[&up0, &skips[1]], 1)?, train)?;
        let up1 = self.ups[1].forward_t(&d0, train)?;
        let d1 = self.merges[1].forward_t(&Tensor::cat(&[&up1, &skips[0]], 1)?, train)?;
        let whole = stitch_patches(&d1)?;
        let d2 = self.ups[2].forward_t(&whole, train)?;
        let d3 = self.ups[3].forward_t(&d2, train)?;
        let reconstruction = self.out.forward_t(&d3, train)?.tanh()?;
        Ok(Decoded {
            features: [d0, d1, d2, d3],
            reconstruction,
        })
    }
}
