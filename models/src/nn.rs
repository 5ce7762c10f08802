//! Building blocks written with plain, differentiable candle ops.
//!
//! candle's fused kernels (`softmax_last_dim`, `rms_norm`, `rope`) record no
//! backward op and silently cut the gradient graph; everything here uses
//! elementwise ops, reductions and matmuls that have backward rules, so the
//! same forward serves sampling and training.
//! The one exception is [`Linear::forward_sampling`]: on the KV-cached
//! sampling path, small CPU f32 products without gradient tracking use a
//! fast matrix-vector kernel that records no backward op.

use std::fmt;
use std::sync::Arc;

use candle_core::{DType, Device, Module, Result, Tensor, D};
use candle_nn::VarBuilder;

use crate::config::{ModelConfig, RopeScaling};

/// Which projection a [`Linear`] is, for choosing LoRA targets.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash)]
pub enum LinearKind {
    /// Attention query projection (`q_proj`).
    Q,
    /// Attention key projection (`k_proj`).
    K,
    /// Attention value projection (`v_proj`).
    V,
    /// Attention output projection (`o_proj`).
    O,
    /// MLP gate projection (`gate_proj`).
    Gate,
    /// MLP up projection (`up_proj`).
    Up,
    /// MLP down projection (`down_proj`).
    Down,
    /// The output head (`lm_head`).
    LmHead,
    /// The MoE router (`router`, gpt-oss).
    Router,
}

impl LinearKind {
    /// The module name as PEFT's `target_modules` spells it.
    pub fn module_name(self) -> &'static str {
        match self {
            LinearKind::Q => "q_proj",
            LinearKind::K => "k_proj",
            LinearKind::V => "v_proj",
            LinearKind::O => "o_proj",
            LinearKind::Gate => "gate_proj",
            LinearKind::Up => "up_proj",
            LinearKind::Down => "down_proj",
            LinearKind::LmHead => "lm_head",
            LinearKind::Router => "router",
        }
    }
}

/// Something added to a [`Linear`]'s output: the LoRA injection point.
///
/// `forward` receives the layer's input `x` and the base output
/// `x·Wᵀ + b` and returns the final output (for LoRA:
/// `base + (α/r)·(x·Aᵀ)·Bᵀ`). Implementations decide themselves whether
/// they are currently enabled (e.g. off for the KL reference policy).
pub trait LinearAdapter: Send + Sync + fmt::Debug {
    /// Combines the base output with the adapter's contribution.
    fn forward(&self, x: &Tensor, base: &Tensor) -> Result<Tensor>;
}

/// Up to this many input rows, [`Linear`] computes `(W·xᵀ)ᵀ` (decode steps).
const SMALL_BATCH: usize = 16;

/// Fewest weight rows per parallel chunk of a small-batch product.
const MIN_CHUNK_ROWS: usize = 64;

/// A linear layer `y = x·Wᵀ + b` with an optional [`LinearAdapter`].
#[derive(Debug, Clone)]
pub struct Linear {
    weight: Tensor,
    bias: Option<Tensor>,
    name: String,
    kind: LinearKind,
    adapter: Option<Arc<dyn LinearAdapter>>,
}

impl Linear {
    /// A layer from its weight `[out, in]` and optional bias `[out]`.
    pub fn new(weight: Tensor, bias: Option<Tensor>, name: impl Into<String>, kind: LinearKind) -> Self {
        Self { weight, bias, name: name.into(), kind, adapter: None }
    }

    /// Loads `{prefix}.weight` (and `{prefix}.bias` when `bias`).
    pub fn load(vb: &VarBuilder, in_dim: usize, out_dim: usize, bias: bool, kind: LinearKind) -> Result<Self> {
        let weight = vb.get((out_dim, in_dim), "weight")?;
        let bias = if bias { Some(vb.get(out_dim, "bias")?) } else { None };
        Ok(Self::new(weight, bias, vb.prefix(), kind))
    }

    /// The full parameter name prefix, e.g. `model.layers.0.self_attn.q_proj`.
    pub fn name(&self) -> &str {
        &self.name
    }

    /// Which projection this is.
    pub fn kind(&self) -> LinearKind {
        self.kind
    }

    /// The weight `[out, in]`.
    pub fn weight(&self) -> &Tensor {
        &self.weight
    }

    /// The bias `[out]`, if any.
    pub fn bias(&self) -> Option<&Tensor> {
        self.bias.as_ref()
    }

    /// `(in, out)` features.
    pub fn dims(&self) -> (usize, usize) {
        let d = self.weight.dims();
        (d[1], d[0])
    }

    /// Replaces the weight by one of the same shape (e.g. with an adapter
    /// merged in).
    pub fn set_weight(&mut self, weight: Tensor) -> Result<()> {
        if weight.dims() != self.weight.dims() {
            candle_core::bail!("{}: new weight {:?}, expected {:?}", self.name, weight.dims(), self.weight.dims());
        }
        self.weight = weight;
        Ok(())
    }

    /// Attaches (or with `None` removes) an adapter.
    pub fn set_adapter(&mut self, adapter: Option<Arc<dyn LinearAdapter>>) {
        self.adapter = adapter;
    }

    /// The attached adapter.
    pub fn adapter(&self) -> Option<&Arc<dyn LinearAdapter>> {
        self.adapter.as_ref()
    }

    /// The base output without the adapter.
    pub fn forward_base(&self, x: &Tensor) -> Result<Tensor> {
        self.base(x, false)
    }

    /// The output on the sampling path (KV-cached decoding, where no
    /// gradient is taken): like [`Module::forward`], but a few input rows on
    /// the CPU in f32 use a fast matrix-vector kernel when no operand takes
    /// part in a gradient graph. Results differ from `forward` only by
    /// float rounding.
    pub fn forward_sampling(&self, x: &Tensor) -> Result<Tensor> {
        let base = self.base(x, true)?;
        match &self.adapter {
            Some(a) => a.forward(x, &base),
            None => Ok(base),
        }
    }

    fn base(&self, x: &Tensor, sampling: bool) -> Result<Tensor> {
        // Flatten leading dims: one gemm instead of a batched one.
        let dims = x.dims().to_vec();
        let last = dims[dims.len() - 1];
        let rows: usize = dims[..dims.len() - 1].iter().product();
        let x2 = x.reshape((rows, last))?;
        let y = if sampling && rows <= SMALL_BATCH && SmallMatmul::applies(&x2, &self.weight) {
            // Sampling fast path: nothing here needs a gradient.
            x2.contiguous()?.apply_op2_no_bwd(&self.weight, &SmallMatmul)?
        } else if rows <= SMALL_BATCH && self.weight.device().is_cpu() {
            // Decode steps are matrix-vector products, which the gemm crate
            // runs on one thread: split W's rows over the thread pool.
            let xt = x2.t()?.contiguous()?;
            let out = self.weight.dim(0)?;
            let chunks = rayon::current_num_threads().min(out / MIN_CHUNK_ROWS).max(1);
            let yt = if chunks == 1 {
                self.weight.matmul(&xt)?
            } else {
                let per = out.div_ceil(chunks);
                use rayon::prelude::*;
                let parts = (0..chunks)
                    .into_par_iter()
                    .map(|c| {
                        let start = c * per;
                        self.weight.narrow(0, start, per.min(out - start))?.matmul(&xt)
                    })
                    .collect::<Result<Vec<_>>>()?;
                Tensor::cat(&parts, 0)?
            };
            yt.t()?.contiguous()?
        } else {
            x2.matmul(&self.weight.t()?)?
        };
        let mut out_dims = dims[..dims.len() - 1].to_vec();
        out_dims.push(self.weight.dim(0)?);
        let y = y.reshape(out_dims)?;
        match &self.bias {
            Some(b) => y.broadcast_add(b),
            None => Ok(y),
        }
    }
}

/// `x·Wᵀ` for a few rows of `x` (decode steps) on the CPU in f32, without
/// gradient: each weight row is read once from memory and dotted with every
/// input row, output rows spread over the thread pool. Decoding is bound by
/// reading the weights, which this does at memory speed (gemm's
/// matrix-vector path does not). Each output value is one dot product in a
/// fixed order, so results do not depend on the thread count.
#[derive(Debug, Clone, Copy)]
struct SmallMatmul;

impl SmallMatmul {
    /// Whether the fast path may be used: CPU, f32, and no operand takes
    /// part in a gradient graph (so the training path never gets here).
    fn applies(x: &Tensor, w: &Tensor) -> bool {
        x.device().is_cpu()
            && x.dtype() == DType::F32
            && w.dtype() == DType::F32
            && !x.track_op()
            && !w.track_op()
            && w.rank() == 2
            && w.is_contiguous()
    }
}

impl candle_core::CustomOp2 for SmallMatmul {
    fn name(&self) -> &'static str {
        "small-matmul"
    }

    fn cpu_fwd(
        &self,
        xs: &candle_core::CpuStorage,
        xl: &candle_core::Layout,
        ws: &candle_core::CpuStorage,
        wl: &candle_core::Layout,
    ) -> Result<(candle_core::CpuStorage, candle_core::Shape)> {
        let (rows, inp) = xl.shape().dims2()?;
        let (out, w_in) = wl.shape().dims2()?;
        if inp != w_in {
            candle_core::bail!("small-matmul: x is [{rows}, {inp}] but W is [{out}, {w_in}]");
        }
        let (Some((xa, xb)), Some((wa, wb))) = (xl.contiguous_offsets(), wl.contiguous_offsets()) else {
            candle_core::bail!("small-matmul: operands must be contiguous");
        };
        let x = &xs.as_slice::<f32>()?[xa..xb];
        let w = &ws.as_slice::<f32>()?[wa..wb];
        let y = small_matmul(x, rows, w, out, inp);
        Ok((candle_core::CpuStorage::F32(y), (rows, out).into()))
    }
}

/// Output rows per parallel task of [`small_matmul`].
const SMALL_MATMUL_BLOCK: usize = 32;

/// `y[r, o] = Σ_k x[r, k]·w[o, k]` for `x [rows, inp]`, `w [out, inp]`.
fn small_matmul(x: &[f32], rows: usize, w: &[f32], out: usize, inp: usize) -> Vec<f32> {
    use rayon::prelude::*;
    // yt [out, rows]: each task writes its block of weight rows.
    let mut yt = vec![0f32; out * rows];
    if inp == 0 || rows == 0 {
        return yt;
    }
    yt.par_chunks_mut(SMALL_MATMUL_BLOCK * rows).enumerate().for_each(|(blk, chunk)| {
        for (i, y) in chunk.chunks_mut(rows).enumerate() {
            let o = blk * SMALL_MATMUL_BLOCK + i;
            dot_rows(&w[o * inp..(o + 1) * inp], x, y);
        }
    });
    if rows == 1 {
        return yt;
    }
    let mut y = vec![0f32; rows * out];
    for o in 0..out {
        for r in 0..rows {
            y[r * out + o] = yt[o * rows + r];
        }
    }
    y
}

/// `y[r] = w · x[r]` for every input row `x[r]` (rows of `w.len()`).
fn dot_rows(w: &[f32], x: &[f32], y: &mut [f32]) {
    #[cfg(target_arch = "x86_64")]
    {
        if std::arch::is_x86_feature_detected!("avx2") && std::arch::is_x86_feature_detected!("fma") {
            // SAFETY: the CPU supports AVX2 and FMA (checked just above).
            unsafe { dot_rows_avx2(w, x, y) };
            return;
        }
    }
    let n = w.len();
    for (r, y) in y.iter_mut().enumerate() {
        *y = dot_portable(w, &x[r * n..(r + 1) * n]);
    }
}

/// A dot product with eight independent partial sums (vectorisable).
fn dot_portable(a: &[f32], b: &[f32]) -> f32 {
    let mut acc = [0f32; 8];
    let (ca, cb) = (a.chunks_exact(8), b.chunks_exact(8));
    let (ra, rb) = (ca.remainder(), cb.remainder());
    for (a, b) in ca.zip(cb) {
        for j in 0..8 {
            acc[j] += a[j] * b[j];
        }
    }
    let tail: f32 = ra.iter().zip(rb).map(|(a, b)| a * b).sum();
    acc.iter().sum::<f32>() + tail
}

/// [`dot_rows`] with AVX2 + FMA: up to four input rows share each load of
/// the weight row.
///
/// # Safety
/// The CPU must support AVX2 and FMA.
#[cfg(target_arch = "x86_64")]
#[target_feature(enable = "avx2,fma")]
unsafe fn dot_rows_avx2(w: &[f32], x: &[f32], y: &mut [f32]) {
    let n = w.len();
    let mut r = 0;
    while r < y.len() {
        let m = (y.len() - r).min(4);
        let xs = &x[r * n..(r + m) * n];
        let ys = &mut y[r..r + m];
        // SAFETY: AVX2 and FMA are available (this function's contract).
        unsafe {
            match m {
                1 => dot_block_avx2::<1>(w, xs, ys),
                2 => dot_block_avx2::<2>(w, xs, ys),
                3 => dot_block_avx2::<3>(w, xs, ys),
                _ => dot_block_avx2::<4>(w, xs, ys),
            }
        }
        r += m;
    }
}

/// `M` dot products of `w` with the rows of `x [M, w.len()]`, two
/// accumulators per row (FMA latency), 16 floats per step.
///
/// # Safety
/// The CPU must support AVX2 and FMA.
#[cfg(target_arch = "x86_64")]
#[target_feature(enable = "avx2,fma")]
unsafe fn dot_block_avx2<const M: usize>(w: &[f32], x: &[f32], y: &mut [f32]) {
    use std::arch::x86_64::*;
    let n = w.len();
    assert!(x.len() == M * n && y.len() == M);
    let (wp, xp) = (w.as_ptr(), x.as_ptr());
    let mut a0 = [_mm256_setzero_ps(); M];
    let mut a1 = [_mm256_setzero_ps(); M];
    let mut k = 0;
    // SAFETY (all loads): k + 16 <= n (or k + 8 <= n below), and row i of
    // `x` spans [i·n, (i+1)·n), checked by the assert above.
    while k + 16 <= n {
        unsafe {
            let w0 = _mm256_loadu_ps(wp.add(k));
            let w1 = _mm256_loadu_ps(wp.add(k + 8));
            for i in 0..M {
                let xi = xp.add(i * n + k);
                a0[i] = _mm256_fmadd_ps(w0, _mm256_loadu_ps(xi), a0[i]);
                a1[i] = _mm256_fmadd_ps(w1, _mm256_loadu_ps(xi.add(8)), a1[i]);
            }
        }
        k += 16;
    }
    if k + 8 <= n {
        unsafe {
            let w0 = _mm256_loadu_ps(wp.add(k));
            for (i, a) in a0.iter_mut().enumerate() {
                *a = _mm256_fmadd_ps(w0, _mm256_loadu_ps(xp.add(i * n + k)), *a);
            }
        }
        k += 8;
    }
    for i in 0..M {
        let mut lanes = [0f32; 8];
        // SAFETY: `lanes` holds 8 f32s.
        unsafe { _mm256_storeu_ps(lanes.as_mut_ptr(), _mm256_add_ps(a0[i], a1[i])) };
        let sum = ((lanes[0] + lanes[4]) + (lanes[1] + lanes[5])) + ((lanes[2] + lanes[6]) + (lanes[3] + lanes[7]));
        let tail: f32 = w[k..].iter().zip(&x[i * n + k..(i + 1) * n]).map(|(a, b)| a * b).sum();
        y[i] = sum + tail;
    }
}

impl Module for Linear {
    fn forward(&self, x: &Tensor) -> Result<Tensor> {
        let base = self.forward_base(x)?;
        match &self.adapter {
            Some(a) => a.forward(x, &base),
            None => Ok(base),
        }
    }
}

/// RMSNorm `w ⊙ x / sqrt(mean(x²) + eps)`, computed in f32 (differentiable).
#[derive(Debug, Clone)]
pub struct RmsNorm {
    weight: Tensor,
    eps: f64,
}

impl RmsNorm {
    /// Loads `{prefix}.weight` of width `dim`.
    pub fn load(vb: &VarBuilder, dim: usize, eps: f64) -> Result<Self> {
        Ok(Self { weight: vb.get(dim, "weight")?, eps })
    }
}

impl Module for RmsNorm {
    fn forward(&self, x: &Tensor) -> Result<Tensor> {
        let dtype = x.dtype();
        let x = x.to_dtype(DType::F32)?;
        let ms = x.sqr()?.mean_keepdim(D::Minus1)?;
        let y = x.broadcast_div(&(ms + self.eps)?.sqrt()?)?;
        y.broadcast_mul(&self.weight.to_dtype(DType::F32)?)?.to_dtype(dtype)
    }
}

/// Softmax over the last dimension from differentiable ops (the max is
/// subtracted for stability; softmax is invariant to it, so it is detached).
pub fn softmax_last(x: &Tensor) -> Result<Tensor> {
    let max = x.max_keepdim(D::Minus1)?.detach();
    let e = x.broadcast_sub(&max)?.exp()?;
    e.broadcast_div(&e.sum_keepdim(D::Minus1)?)
}

/// Log-softmax over the last dimension from differentiable ops.
pub fn log_softmax_last(x: &Tensor) -> Result<Tensor> {
    let max = x.max_keepdim(D::Minus1)?.detach();
    let shifted = x.broadcast_sub(&max)?;
    let lse = shifted.exp()?.sum_keepdim(D::Minus1)?.log()?;
    shifted.broadcast_sub(&lse)
}

/// Rotary position embedding tables (half-split / NeoX layout).
#[derive(Debug, Clone)]
pub struct Rope {
    inv_freq: Vec<f32>,
    /// Multiplier on cos and sin (YaRN's attention factor; 1 otherwise).
    scale: f32,
}

impl Rope {
    /// Builds the inverse frequencies for the config's scaling.
    pub fn new(cfg: &ModelConfig) -> Self {
        let dim = cfg.head_dim;
        let base = cfg.rope_theta;
        let half = dim / 2;
        let plain: Vec<f64> = (0..half).map(|i| 1.0 / base.powf((2 * i) as f64 / dim as f64)).collect();
        let (inv, scale) = match &cfg.rope_scaling {
            RopeScaling::None => (plain, 1.0),
            RopeScaling::Llama3 { factor, low_freq_factor, high_freq_factor, original_max_position_embeddings } => {
                let old = *original_max_position_embeddings;
                let low_wavelen = old / low_freq_factor;
                let high_wavelen = old / high_freq_factor;
                let inv = plain
                    .iter()
                    .map(|&f| {
                        let wavelen = 2.0 * std::f64::consts::PI / f;
                        if wavelen < high_wavelen {
                            f
                        } else if wavelen > low_wavelen {
                            f / factor
                        } else {
                            let smooth = (old / wavelen - low_freq_factor) / (high_freq_factor - low_freq_factor);
                            (1.0 - smooth) * f / factor + smooth * f
                        }
                    })
                    .collect();
                (inv, 1.0)
            }
            RopeScaling::Yarn {
                factor,
                beta_fast,
                beta_slow,
                original_max_position_embeddings,
                truncate,
                attention_factor,
            } => {
                let orig = *original_max_position_embeddings;
                let corr = |rot: f64| dim as f64 * (orig / (rot * 2.0 * std::f64::consts::PI)).ln() / (2.0 * base.ln());
                let (mut low, mut high) = (corr(*beta_fast), corr(*beta_slow));
                if *truncate {
                    low = low.floor();
                    high = high.ceil();
                }
                let low = low.max(0.0);
                let high = high.min(dim as f64 - 1.0);
                let high = if (high - low).abs() < 1e-12 { high + 0.001 } else { high };
                let inv = plain
                    .iter()
                    .enumerate()
                    .map(|(i, &f)| {
                        let ramp = ((i as f64 - low) / (high - low)).clamp(0.0, 1.0);
                        // transformers: extrapolation factor = 1 - ramp.
                        (f / factor) * ramp + f * (1.0 - ramp)
                    })
                    .collect();
                let m = attention_factor.unwrap_or(0.1 * factor.ln() + 1.0);
                (inv, m)
            }
        };
        Self { inv_freq: inv.into_iter().map(|x| x as f32).collect(), scale: scale as f32 }
    }

    /// The inverse frequencies (for tests).
    pub fn inv_freq(&self) -> &[f32] {
        &self.inv_freq
    }

    /// `(cos, sin)` of shape `[t, head_dim]` for positions `offset..offset+t`.
    pub fn tables(&self, offset: usize, t: usize, device: &Device) -> Result<(Tensor, Tensor)> {
        let half = self.inv_freq.len();
        let mut cos = Vec::with_capacity(t * half * 2);
        let mut sin = Vec::with_capacity(t * half * 2);
        for p in offset..offset + t {
            let row: Vec<f32> = self.inv_freq.iter().map(|f| (p as f32) * f).collect();
            for _ in 0..2 {
                cos.extend(row.iter().map(|a| a.cos() * self.scale));
                sin.extend(row.iter().map(|a| a.sin() * self.scale));
            }
        }
        Ok((Tensor::from_vec(cos, (t, half * 2), device)?, Tensor::from_vec(sin, (t, half * 2), device)?))
    }
}

/// Applies RoPE to `x` of shape `[b, heads, t, head_dim]` with tables `[t, head_dim]`.
pub fn apply_rope(x: &Tensor, cos: &Tensor, sin: &Tensor) -> Result<Tensor> {
    let d = x.dim(D::Minus1)?;
    let half = d / 2;
    let x1 = x.narrow(D::Minus1, 0, half)?;
    let x2 = x.narrow(D::Minus1, half, half)?;
    let rotated = Tensor::cat(&[&x2.neg()?, &x1], D::Minus1)?;
    x.broadcast_mul(cos)? + rotated.broadcast_mul(sin)?
}

#[cfg(test)]
mod tests {
    use super::*;

    fn reference(x: &[f32], rows: usize, w: &[f32], out: usize, inp: usize) -> Vec<f64> {
        let mut y = vec![0f64; rows * out];
        for r in 0..rows {
            for o in 0..out {
                y[r * out + o] = (0..inp).map(|k| x[r * inp + k] as f64 * w[o * inp + k] as f64).sum();
            }
        }
        y
    }

    #[test]
    fn small_matmul_matches_a_reference_for_every_shape() {
        let val = |i: usize| ((i * 7919 % 1000) as f32 / 500.0) - 1.0;
        // Widths with and without 16- and 8-float tails; row counts across the 4-row blocks.
        for inp in [1, 8, 15, 16, 37, 64, 100] {
            for rows in 1..=9 {
                let out = 2 * SMALL_MATMUL_BLOCK + 3;
                let x: Vec<f32> = (0..rows * inp).map(val).collect();
                let w: Vec<f32> = (0..out * inp).map(|i| val(i + 3)).collect();
                let want = reference(&x, rows, &w, out, inp);
                let got = small_matmul(&x, rows, &w, out, inp);
                for (g, e) in got.iter().zip(&want) {
                    assert!((*g as f64 - e).abs() < 1e-4, "inp {inp} rows {rows}: {g} vs {e}");
                }
                let mut y = vec![0f32; rows];
                for (r, yr) in y.iter_mut().enumerate() {
                    *yr = dot_portable(&w[..inp], &x[r * inp..(r + 1) * inp]);
                }
                for (r, yr) in y.iter().enumerate() {
                    assert!((*yr as f64 - want[r * out]).abs() < 1e-4);
                }
            }
        }
    }

    #[test]
    fn linear_uses_the_fast_path_only_without_gradients() {
        let dev = Device::Cpu;
        let w = Tensor::randn(0f32, 1.0, (70, 24), &dev).unwrap();
        let x = Tensor::randn(0f32, 1.0, (3, 24), &dev).unwrap();
        let lin = Linear::new(w.clone(), None, "l", LinearKind::Q);
        let fast = lin.forward_sampling(&x).unwrap();
        let slow = x.matmul(&w.t().unwrap()).unwrap();
        assert_eq!(
            lin.forward(&x).unwrap().to_vec2::<f32>().unwrap(),
            lin.forward_base(&x).unwrap().to_vec2::<f32>().unwrap()
        );
        let diff = (fast - &slow).unwrap().abs().unwrap().max_all().unwrap().to_scalar::<f32>().unwrap();
        assert!(diff < 1e-5, "{diff}");
        // With a variable input the layer stays differentiable.
        let v = candle_core::Var::from_tensor(&x).unwrap();
        assert!(!SmallMatmul::applies(v.as_tensor(), &w));
        let y = lin.forward_sampling(v.as_tensor()).unwrap();
        let grads = y.sum_all().unwrap().backward().unwrap();
        assert!(grads.get(v.as_tensor()).is_some(), "the gradient reaches the input");
    }

    #[test]
    fn yarn_inverse_frequencies_match_reference_values() {
        let v = serde_json::json!({"model_type": "gpt_oss", "vocab_size": 8, "hidden_size": 64,
            "intermediate_size": 64, "num_hidden_layers": 1, "num_attention_heads": 1, "head_dim": 64,
            "num_local_experts": 1, "num_experts_per_tok": 1, "sliding_window": 4,
            "rope_theta": 150000.0, "rope_scaling": {"rope_type": "yarn", "factor": 32.0, "beta_fast": 32.0,
            "beta_slow": 1.0, "original_max_position_embeddings": 4096, "truncate": false}});
        let cfg = ModelConfig::from_json(&v).unwrap();
        let rope = Rope::new(&cfg);
        let inv = rope.inv_freq();
        let want = [(0, 1.0), (1, 0.689044), (2, 0.474782), (3, 0.327146), (8, 0.0508133), (11, 0.0115921)];
        for (i, w) in want {
            assert!((inv[i] - w).abs() / w < 1e-4, "inv[{i}] = {} want {w}", inv[i]);
        }
        assert!((inv[31] - 3.0235e-7).abs() / 3.0235e-7 < 1e-3);
        assert!((rope.scale - 1.3465736).abs() < 1e-6);
    }

    #[test]
    fn softmax_rows_sum_to_one_and_carry_gradients() {
        let dev = Device::Cpu;
        let v = candle_core::Var::from_vec(vec![1f32, 2.0, 3.0, -1.0, 0.0, 5.0], (2, 3), &dev).unwrap();
        let p = softmax_last(v.as_tensor()).unwrap();
        let sums: Vec<f32> = p.sum(1).unwrap().to_vec1().unwrap();
        assert!(sums.iter().all(|s| (s - 1.0).abs() < 1e-6));
        let loss = p.narrow(1, 0, 1).unwrap().sum_all().unwrap();
        let grads = loss.backward().unwrap();
        let g = grads.get(v.as_tensor()).expect("gradient reaches the input");
        assert!(g.abs().unwrap().sum_all().unwrap().to_scalar::<f32>().unwrap() > 0.0);
    }
}
