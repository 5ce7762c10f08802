//! gym's causal LM: one decoder for Llama 3, Qwen2/2.5, Qwen3 and gpt-oss.
//!
//! Per-architecture switches come from [`ModelConfig`]: q/k/v (and o) bias,
//! per-head q/k RMSNorm (Qwen3), RoPE scaling (Llama 3, YaRN), attention
//! sinks, sliding-window layers and a top-k mixture of experts with clamped
//! SwiGLU (gpt-oss). Every op is differentiable (see [`super::nn`]), the
//! forward returns logits for all positions or for the last one, and the
//! KV cache lives outside the model so a prompt's cache can be shared by a
//! group of samples. The dense projections are [`Linear`]s, the LoRA
//! injection points.

use candle_core::backprop::GradStore;
use candle_core::{DType, Device, IndexOp, Module, Result, Tensor, Var, D};
use candle_nn::VarBuilder;

use crate::config::{Arch, LayerKind, ModelConfig};
use crate::nn::{apply_rope, softmax_last, Linear, LinearKind, RmsNorm, Rope};

/// Keys and values of every layer for the positions seen so far.
#[derive(Debug, Clone, Default)]
pub struct KvCache {
    layers: Vec<Option<(Tensor, Tensor)>>,
    len: usize,
}

impl KvCache {
    /// Positions cached.
    pub fn len(&self) -> usize {
        self.len
    }

    /// Whether nothing is cached.
    pub fn is_empty(&self) -> bool {
        self.len == 0
    }

    /// Keys and values `[b, kv_heads, len, head_dim]` cached for `layer`.
    pub fn keys_values(&self, layer: usize) -> Option<(&Tensor, &Tensor)> {
        self.layers.get(layer)?.as_ref().map(|(k, v)| (k, v))
    }

    /// Forgets everything.
    pub fn reset(&mut self) {
        self.layers.iter_mut().for_each(|l| *l = None);
        self.len = 0;
    }

    /// A cache whose batch is `n` copies of this one's (batch 1) rows: the
    /// prompt is prefilled once and shared by a group of samples.
    pub fn repeat_batch(&self, n: usize) -> Result<Self> {
        let layers = self
            .layers
            .iter()
            .map(|l| match l {
                Some((k, v)) => Ok(Some((k.repeat((n, 1, 1, 1))?, v.repeat((n, 1, 1, 1))?))),
                None => Ok(None),
            })
            .collect::<Result<Vec<_>>>()?;
        Ok(Self { layers, len: self.len })
    }

    /// Keeps only the given batch rows (drop finished samples).
    pub fn select_rows(&self, rows: &[u32]) -> Result<Self> {
        let Some(dev) = self.layers.iter().flatten().next().map(|(k, _)| k.device().clone()) else {
            return Ok(self.clone());
        };
        let idx = Tensor::new(rows, &dev)?;
        let layers = self
            .layers
            .iter()
            .map(|l| match l {
                Some((k, v)) => Ok(Some((k.index_select(&idx, 0)?, v.index_select(&idx, 0)?))),
                None => Ok(None),
            })
            .collect::<Result<Vec<_>>>()?;
        Ok(Self { layers, len: self.len })
    }
}

#[derive(Debug, Clone)]
struct Attention {
    q: Linear,
    k: Linear,
    v: Linear,
    o: Linear,
    q_norm: Option<RmsNorm>,
    k_norm: Option<RmsNorm>,
    sinks: Option<Tensor>,
    heads: usize,
    kv_heads: usize,
    head_dim: usize,
    window: Option<usize>,
}

impl Attention {
    fn load(cfg: &ModelConfig, vb: VarBuilder, kind: LayerKind) -> Result<Self> {
        let (h, hd, nh, nkv) = (cfg.hidden_size, cfg.head_dim, cfg.num_attention_heads, cfg.num_key_value_heads);
        let q = Linear::load(&vb.pp("q_proj"), h, nh * hd, cfg.qkv_bias, LinearKind::Q)?;
        let k = Linear::load(&vb.pp("k_proj"), h, nkv * hd, cfg.qkv_bias, LinearKind::K)?;
        let v = Linear::load(&vb.pp("v_proj"), h, nkv * hd, cfg.qkv_bias, LinearKind::V)?;
        let o = Linear::load(&vb.pp("o_proj"), nh * hd, h, cfg.o_bias, LinearKind::O)?;
        let (q_norm, k_norm) = if cfg.qk_norm {
            (
                Some(RmsNorm::load(&vb.pp("q_norm"), hd, cfg.rms_norm_eps)?),
                Some(RmsNorm::load(&vb.pp("k_norm"), hd, cfg.rms_norm_eps)?),
            )
        } else {
            (None, None)
        };
        let sinks = if cfg.arch == Arch::GptOss { Some(vb.get(nh, "sinks")?) } else { None };
        let window = if kind == LayerKind::Sliding { cfg.sliding_window } else { None };
        Ok(Self { q, k, v, o, q_norm, k_norm, sinks, heads: nh, kv_heads: nkv, head_dim: hd, window })
    }

    fn forward(
        &self,
        x: &Tensor,
        cos: &Tensor,
        sin: &Tensor,
        offset: usize,
        cache: Option<&mut Option<(Tensor, Tensor)>>,
    ) -> Result<Tensor> {
        let (b, t, _) = x.dims3()?;
        let (nh, nkv, hd) = (self.heads, self.kv_heads, self.head_dim);
        let rep = nh / nkv;
        // With a cache this is the sampling path (see `Linear::forward_sampling`).
        let sampling = cache.is_some();
        let lin = |l: &Linear, x: &Tensor| if sampling { l.forward_sampling(x) } else { l.forward(x) };
        let q = lin(&self.q, x)?.reshape((b, t, nh, hd))?.transpose(1, 2)?;
        let k = lin(&self.k, x)?.reshape((b, t, nkv, hd))?.transpose(1, 2)?;
        let v = lin(&self.v, x)?.reshape((b, t, nkv, hd))?.transpose(1, 2)?.contiguous()?;
        let q = match &self.q_norm {
            Some(n) => n.forward(&q.contiguous()?)?,
            None => q,
        };
        let k = match &self.k_norm {
            Some(n) => n.forward(&k.contiguous()?)?,
            None => k,
        };
        let q = apply_rope(&q.contiguous()?, cos, sin)?;
        let k = apply_rope(&k.contiguous()?, cos, sin)?;
        let (k, v) = match cache {
            Some(slot) => {
                let kv = match slot.take() {
                    Some((pk, pv)) => (Tensor::cat(&[&pk, &k], 2)?, Tensor::cat(&[&pv, &v], 2)?),
                    None => (k, v),
                };
                // The cache outlives the step: detached, it holds keys and
                // values only. Attached (LoRA variables make every op
                // tracked), it would keep every intermediate of every
                // decoded token alive — 40 GB for 8 × 256 tokens of a 0.5B
                // model.
                let kv = (kv.0.detach(), kv.1.detach());
                *slot = Some(kv.clone());
                kv
            }
            None => (k, v),
        };
        let s = k.dim(2)?;
        // Group queries by kv head: [b, nkv, rep*t, hd] x [b, nkv, hd, s].
        let q = q.reshape((b, nkv, rep * t, hd))?;
        let scores = (q.contiguous()?.matmul(&k.t()?)? * (1.0 / (hd as f64).sqrt()))?;
        // Softmax in f32 whatever the weights' dtype (as transformers does).
        let mut scores = scores.reshape((b, nkv, rep, t, s))?.to_dtype(DType::F32)?;
        if let Some(mask) = self.mask(t, s, offset, x.device())? {
            scores = scores.broadcast_add(&mask)?;
        }
        let probs = match &self.sinks {
            Some(sinks) => {
                let sink =
                    sinks.to_dtype(scores.dtype())?.reshape((1, nkv, rep, 1, 1))?.broadcast_as((b, nkv, rep, t, 1))?;
                let all = Tensor::cat(&[&scores, &sink], D::Minus1)?;
                softmax_last(&all)?.narrow(D::Minus1, 0, s)?
            }
            None => softmax_last(&scores)?,
        };
        let out = probs.to_dtype(v.dtype())?.reshape((b, nkv, rep * t, s))?.contiguous()?.matmul(&v)?;
        let out = out.reshape((b, nh, t, hd))?.transpose(1, 2)?.contiguous()?.reshape((b, t, nh * hd))?;
        lin(&self.o, &out)
    }

    /// Additive mask `[t, s]` (0 or -inf), or `None` when nothing is masked.
    fn mask(&self, t: usize, s: usize, offset: usize, dev: &Device) -> Result<Option<Tensor>> {
        let window = self.window.unwrap_or(usize::MAX);
        let mut any = false;
        let mut m = vec![0f32; t * s];
        for i in 0..t {
            let qpos = offset + i;
            for j in 0..s {
                if j > qpos || qpos - j >= window {
                    m[i * s + j] = f32::NEG_INFINITY;
                    any = true;
                }
            }
        }
        if any {
            Ok(Some(Tensor::from_vec(m, (t, s), dev)?))
        } else {
            Ok(None)
        }
    }
}

#[derive(Debug, Clone)]
struct DenseMlp {
    gate: Linear,
    up: Linear,
    down: Linear,
}

impl DenseMlp {
    fn load(cfg: &ModelConfig, vb: VarBuilder) -> Result<Self> {
        let (h, i, bias) = (cfg.hidden_size, cfg.intermediate_size, cfg.mlp_bias);
        Ok(Self {
            gate: Linear::load(&vb.pp("gate_proj"), h, i, bias, LinearKind::Gate)?,
            up: Linear::load(&vb.pp("up_proj"), h, i, bias, LinearKind::Up)?,
            down: Linear::load(&vb.pp("down_proj"), i, h, bias, LinearKind::Down)?,
        })
    }

    fn forward(&self, x: &Tensor, sampling: bool) -> Result<Tensor> {
        let lin = |l: &Linear, x: &Tensor| if sampling { l.forward_sampling(x) } else { l.forward(x) };
        let g = lin(&self.gate, x)?.silu()?;
        lin(&self.down, &(g * lin(&self.up, x)?)?)
    }
}

/// gpt-oss mixture of experts: top-k routing, interleaved gate/up, clamped SwiGLU.
#[derive(Debug, Clone)]
struct Moe {
    router: Linear,
    /// `[E, 2I, H]` (out × in), gate/up interleaved along the rows.
    gate_up: Tensor,
    gate_up_bias: Tensor,
    /// `[E, H, I]`.
    down: Tensor,
    down_bias: Tensor,
    top_k: usize,
    limit: f64,
}

/// The E2M1 values of an FP4 nibble.
const FP4: [f32; 16] = [0.0, 0.5, 1.0, 1.5, 2.0, 3.0, 4.0, 6.0, -0.0, -0.5, -1.0, -1.5, -2.0, -3.0, -4.0, -6.0];

/// Decodes MXFP4 `blocks [.., G, 16]` (two nibbles per byte, low first) and
/// E8M0 `scales [.., G]` into `[.., G*32]` f32 values.
pub fn decode_mxfp4(blocks: &[u8], scales: &[u8]) -> Vec<f32> {
    let mut out = Vec::with_capacity(blocks.len() * 2);
    for (g, &s) in scales.iter().enumerate() {
        let scale = 2f32.powi(s as i32 - 127);
        for &byte in &blocks[g * 16..(g + 1) * 16] {
            out.push(FP4[(byte & 0x0f) as usize] * scale);
            out.push(FP4[(byte >> 4) as usize] * scale);
        }
    }
    out
}

impl Moe {
    fn load(cfg: &ModelConfig, vb: VarBuilder) -> Result<Self> {
        let (h, i, e) = (cfg.hidden_size, cfg.intermediate_size, cfg.num_local_experts);
        let router = Linear::load(&vb.pp("router"), h, e, true, LinearKind::Router)?;
        let ex = vb.pp("experts");
        let gate_up = Self::expert_weight(&ex, "gate_up_proj", e, 2 * i, h)?;
        let down = Self::expert_weight(&ex, "down_proj", e, h, i)?;
        Ok(Self {
            router,
            gate_up,
            gate_up_bias: ex.get((e, 2 * i), "gate_up_proj_bias")?,
            down,
            down_bias: ex.get((e, h), "down_proj_bias")?,
            top_k: cfg.num_experts_per_tok,
            limit: cfg.swiglu_limit,
        })
    }

    /// Loads an expert weight as `[E, out, in]`, from MXFP4 blocks+scales or
    /// from a plain tensor in either layout.
    fn expert_weight(vb: &VarBuilder, name: &str, e: usize, out: usize, inp: usize) -> Result<Tensor> {
        let blocks_name = format!("{name}_blocks");
        if vb.contains_tensor(&blocks_name) {
            if !inp.is_multiple_of(32) {
                candle_core::bail!("{}.{blocks_name}: input width {inp} is not a multiple of 32", vb.prefix());
            }
            let g = inp / 32;
            let blocks = vb.get_with_hints_dtype((e, out, g, 16), &blocks_name, Default::default(), DType::U8)?;
            let scales =
                vb.get_with_hints_dtype((e, out, g), &format!("{name}_scales"), Default::default(), DType::U8)?;
            let values = decode_mxfp4(&blocks.flatten_all()?.to_vec1()?, &scales.flatten_all()?.to_vec1()?);
            return Tensor::from_vec(values, (e, out, inp), vb.device())?.to_dtype(vb.dtype());
        }
        // transformers writes [E, in, out] (x @ W); accept [E, out, in] too when unambiguous.
        let w = vb.get_unchecked(name)?;
        match w.dims() {
            [a, b, c] if *a == e && *b == inp && *c == out => w.transpose(1, 2)?.contiguous(),
            [a, b, c] if *a == e && *b == out && *c == inp => Ok(w),
            d => candle_core::bail!("{}.{name}: shape {d:?}, expected [{e}, {inp}, {out}]", vb.prefix()),
        }
    }

    fn forward(&self, x: &Tensor) -> Result<Tensor> {
        let (b, t, h) = x.dims3()?;
        let n = b * t;
        let xs = x.reshape((n, h))?;
        let logits: Vec<Vec<f32>> = self.router.forward(&xs)?.to_dtype(DType::F32)?.to_vec2()?;
        let experts = self.gate_up.dim(0)?;
        // Per expert: (token rows, routing weights).
        let mut routed: Vec<(Vec<u32>, Vec<f32>)> = vec![(Vec::new(), Vec::new()); experts];
        for (row, l) in logits.iter().enumerate() {
            let mut idx: Vec<usize> = (0..l.len()).collect();
            // Stable: ties keep the lower index first, as torch.topk does on CPU.
            idx.sort_by(|&a, &b| l[b].total_cmp(&l[a]));
            idx.truncate(self.top_k);
            let max = idx.iter().map(|&i| l[i]).fold(f32::NEG_INFINITY, f32::max);
            let exps: Vec<f32> = idx.iter().map(|&i| (l[i] - max).exp()).collect();
            let sum: f32 = exps.iter().sum();
            for (&ei, w) in idx.iter().zip(exps) {
                routed[ei].0.push(row as u32);
                routed[ei].1.push(w / sum);
            }
        }
        let mut out = xs.zeros_like()?;
        for (ei, (rows, weights)) in routed.iter().enumerate() {
            if rows.is_empty() {
                continue;
            }
            let idx = Tensor::new(rows.as_slice(), x.device())?;
            let xe = xs.index_select(&idx, 0)?;
            let gu = xe.matmul(&self.gate_up.i(ei)?.t()?)?.broadcast_add(&self.gate_up_bias.i(ei)?)?;
            let inter = gu.dim(1)? / 2;
            let gu = gu.reshape((rows.len(), inter, 2))?;
            let gate = gu.narrow(2, 0, 1)?.squeeze(2)?.clamp(f64::NEG_INFINITY, self.limit)?;
            let up = gu.narrow(2, 1, 1)?.squeeze(2)?.clamp(-self.limit, self.limit)?;
            let glu = (&gate * candle_nn::ops::sigmoid(&(&gate * 1.702)?)?)?;
            let y = ((up + 1.0)? * glu)?;
            let ye = y.matmul(&self.down.i(ei)?.t()?)?.broadcast_add(&self.down_bias.i(ei)?)?;
            let w = Tensor::new(weights.as_slice(), x.device())?.to_dtype(ye.dtype())?.reshape((rows.len(), 1))?;
            out = out.index_add(&idx, &ye.broadcast_mul(&w)?, 0)?;
        }
        out.reshape((b, t, h))
    }
}

#[derive(Debug, Clone)]
enum Mlp {
    Dense(DenseMlp),
    Moe(Moe),
}

#[derive(Debug, Clone)]
struct Block {
    input_norm: RmsNorm,
    attn: Attention,
    post_norm: RmsNorm,
    mlp: Mlp,
}

impl Block {
    /// One block. With a KV cache slot this is the sampling path (positions
    /// continue from `offset`); without, the training/scoring forward.
    fn forward(
        &self,
        x: &Tensor,
        cos: &Tensor,
        sin: &Tensor,
        offset: usize,
        cache: Option<&mut Option<(Tensor, Tensor)>>,
    ) -> Result<Tensor> {
        let sampling = cache.is_some();
        let a = self.attn.forward(&self.input_norm.forward(x)?, cos, sin, offset, cache)?;
        let x = (x + a)?;
        let h = self.post_norm.forward(&x)?;
        let m = match &self.mlp {
            Mlp::Dense(d) => d.forward(&h, sampling)?,
            Mlp::Moe(moe) => moe.forward(&h)?,
        };
        x + m
    }
}

/// A gradient store with nothing in it (candle only makes them in
/// `backward`): the gradient of a lone variable, removed.
fn empty_grad_store() -> Result<GradStore> {
    let v = Var::new(0f32, &Device::Cpu)?;
    let mut store = v.as_tensor().backward()?;
    store.remove(v.as_tensor());
    Ok(store)
}

/// What a training forward keeps for the backward pass.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Activations {
    /// Nothing: values only (old/reference log-probs, evaluation).
    None,
    /// The whole autograd graph (fastest backward, most memory).
    Graph,
    /// Block inputs only; blocks are recomputed during the backward pass
    /// (gradient checkpointing).
    Recompute,
}

/// What [`CausalLm::hidden_for_training`] keeps for the backward pass: the
/// input of every decoder block (`[b, t, hidden]` each) and the last
/// block's output, all detached. Everything inside a block is recomputed
/// by [`CausalLm::backward_checkpointed`], so activation memory is
/// `layers × b·t·hidden` plus one block's graph, instead of every
/// intermediate of every block.
#[derive(Debug, Clone)]
pub struct Checkpoints {
    ids: Tensor,
    inputs: Vec<Tensor>,
    last: Tensor,
    cos: Tensor,
    sin: Tensor,
}

/// A causal language model (embedding, decoder blocks, final norm, head).
#[derive(Debug, Clone)]
pub struct CausalLm {
    cfg: ModelConfig,
    embed: Tensor,
    blocks: Vec<Block>,
    norm: RmsNorm,
    lm_head: Linear,
    rope: Rope,
    device: Device,
}

impl CausalLm {
    /// Builds the model from weights named as in Hugging Face checkpoints
    /// (`model.embed_tokens.weight`, `model.layers.N....`, `lm_head.weight`).
    pub fn load(cfg: &ModelConfig, vb: VarBuilder) -> Result<Self> {
        let m = vb.pp("model");
        let embed = m.pp("embed_tokens").get((cfg.vocab_size, cfg.hidden_size), "weight")?;
        let mut blocks = Vec::with_capacity(cfg.num_hidden_layers);
        for (i, kind) in cfg.layer_types.iter().enumerate() {
            let l = m.pp("layers").pp(i);
            let mlp = if cfg.arch == Arch::GptOss {
                Mlp::Moe(Moe::load(cfg, l.pp("mlp"))?)
            } else {
                Mlp::Dense(DenseMlp::load(cfg, l.pp("mlp"))?)
            };
            blocks.push(Block {
                input_norm: RmsNorm::load(&l.pp("input_layernorm"), cfg.hidden_size, cfg.rms_norm_eps)?,
                attn: Attention::load(cfg, l.pp("self_attn"), *kind)?,
                post_norm: RmsNorm::load(&l.pp("post_attention_layernorm"), cfg.hidden_size, cfg.rms_norm_eps)?,
                mlp,
            });
        }
        let norm = RmsNorm::load(&m.pp("norm"), cfg.hidden_size, cfg.rms_norm_eps)?;
        let lm_head = if cfg.tie_word_embeddings && !vb.contains_tensor("lm_head.weight") {
            Linear::new(embed.clone(), None, "lm_head", LinearKind::LmHead)
        } else {
            Linear::load(&vb.pp("lm_head"), cfg.hidden_size, cfg.vocab_size, false, LinearKind::LmHead)?
        };
        Ok(Self { cfg: cfg.clone(), embed, blocks, norm, lm_head, rope: Rope::new(cfg), device: vb.device().clone() })
    }

    /// The config.
    pub fn config(&self) -> &ModelConfig {
        &self.cfg
    }

    /// The device the weights live on.
    pub fn device(&self) -> &Device {
        &self.device
    }

    /// An empty KV cache for this model.
    pub fn new_cache(&self) -> KvCache {
        KvCache { layers: vec![None; self.blocks.len()], len: 0 }
    }

    /// Embeddings `[b, t, hidden]` of `ids [b, t]`.
    fn embed_ids(&self, ids: &Tensor) -> Result<Tensor> {
        let (b, t) = ids.dims2()?;
        self.embed.index_select(&ids.flatten_all()?, 0)?.reshape((b, t, self.cfg.hidden_size))
    }

    /// RoPE tables for positions `offset..offset + t`, in `dtype`.
    fn rope_tables(&self, offset: usize, t: usize, dtype: DType) -> Result<(Tensor, Tensor)> {
        let (cos, sin) = self.rope.tables(offset, t, &self.device)?;
        Ok((cos.to_dtype(dtype)?, sin.to_dtype(dtype)?))
    }

    /// Final-norm hidden states `[b, t, hidden]` for `ids [b, t]`, appending
    /// to `cache` when given (positions continue from its length).
    pub fn hidden(&self, ids: &Tensor, mut cache: Option<&mut KvCache>) -> Result<Tensor> {
        let t = ids.dim(1)?;
        let offset = cache.as_ref().map_or(0, |c| c.len);
        if let Some(c) = cache.as_mut() {
            if c.layers.len() != self.blocks.len() {
                c.layers = vec![None; self.blocks.len()];
            }
        }
        let mut x = self.embed_ids(ids)?;
        let (cos, sin) = self.rope_tables(offset, t, x.dtype())?;
        for (i, block) in self.blocks.iter().enumerate() {
            let slot = cache.as_mut().map(|c| &mut c.layers[i]);
            x = block.forward(&x, &cos, &sin, offset, slot)?;
        }
        if let Some(c) = cache {
            c.len += t;
        }
        self.norm.forward(&x)
    }

    /// Final-norm hidden states `[b, t, hidden]` for `ids [b, t]` (no KV
    /// cache), keeping what `keep` says for a backward pass: the whole
    /// graph, nothing (each block's output is detached), or the block
    /// inputs as [`Checkpoints`] for [`Self::backward_checkpointed`].
    ///
    /// `before_block(i)` runs before block `i`; the checkpointed backward
    /// calls it again before recomputing that block, so a caller can make
    /// random state (LoRA dropout) replay identically.
    pub fn hidden_for_training(
        &self,
        ids: &Tensor,
        keep: Activations,
        before_block: &dyn Fn(usize),
    ) -> Result<(Tensor, Option<Checkpoints>)> {
        let graph = keep == Activations::Graph;
        let cut = |x: Tensor| if graph { x } else { x.detach() };
        let mut x = cut(self.embed_ids(ids)?);
        let (cos, sin) = self.rope_tables(0, ids.dim(1)?, x.dtype())?;
        let keep_inputs = keep == Activations::Recompute;
        let mut inputs = Vec::with_capacity(if keep_inputs { self.blocks.len() } else { 0 });
        for (i, block) in self.blocks.iter().enumerate() {
            before_block(i);
            if keep_inputs {
                inputs.push(x.clone());
            }
            x = cut(block.forward(&x, &cos, &sin, 0, None)?);
        }
        let h = cut(self.norm.forward(&x)?);
        let ck = keep_inputs.then(|| Checkpoints { ids: ids.clone(), inputs, last: x, cos, sin });
        Ok((h, ck))
    }

    /// Backpropagates `grad_hidden = ∂L/∂h` (`h` as returned by
    /// [`Self::hidden_for_training`]) through the decoder, one block at a
    /// time from the top: each block is recomputed from its saved input
    /// (made a variable), and the surrogate `Σ out ⊙ sg(∂L/∂out)` is
    /// differentiated, which yields the block's parameter gradients and
    /// `∂L/∂input` for the block below. Returns the gradients of every
    /// variable the decoder uses (LoRA adapters, and norms or the
    /// embedding when those are variables).
    pub fn backward_checkpointed(
        &self,
        ck: &Checkpoints,
        grad_hidden: &Tensor,
        before_block: &dyn Fn(usize),
    ) -> Result<GradStore> {
        let missing = || candle_core::Error::Msg("checkpointed backward: no gradient reached a block input".into());
        // candle leaves the gradients it hands back attached to the graph
        // they were computed from (a gradient through `q·kᵀ` references
        // `k`), and it also returns gradients for frozen leaves (base
        // weights). Kept as they come, each block's store would pin that
        // block's whole graph until the end: memory grows by one block's
        // activations per block, as if nothing were recomputed. So keep
        // only the variables' gradients, detached.
        let mut store = empty_grad_store()?;
        let mut keep = |surrogate: &Tensor, part: GradStore| -> Result<()> {
            for v in surrogate.sorted_nodes().into_iter().filter(|t| t.is_variable()) {
                if let Some(g) = part.get(v) {
                    let g = match store.get(v) {
                        Some(prev) => (prev + g)?.detach(),
                        None => g.detach(),
                    };
                    store.insert(v, g);
                }
            }
            Ok(())
        };
        let x = Var::from_tensor(&ck.last)?;
        let h = self.norm.forward(x.as_tensor())?;
        let surrogate = (h * grad_hidden.detach())?.sum_all()?;
        let mut part = surrogate.backward()?;
        let mut g = part.remove(x.as_tensor()).ok_or_else(missing)?.detach();
        keep(&surrogate, part)?;
        for (i, block) in self.blocks.iter().enumerate().rev() {
            before_block(i);
            let xin = Var::from_tensor(&ck.inputs[i])?;
            let out = block.forward(xin.as_tensor(), &ck.cos, &ck.sin, 0, None)?;
            super::device::mem_trace(&self.device, format_args!("block {i} recomputed"));
            let surrogate = (out * &g)?.sum_all()?;
            let mut part = surrogate.backward()?;
            super::device::mem_trace(&self.device, format_args!("block {i} backward"));
            g = part.remove(xin.as_tensor()).ok_or_else(missing)?.detach();
            keep(&surrogate, part)?;
        }
        if self.embed.is_variable() {
            let e = self.embed_ids(&ck.ids)?;
            let surrogate = (e * &g)?.sum_all()?;
            let part = surrogate.backward()?;
            keep(&surrogate, part)?;
        }
        Ok(store)
    }

    /// Logits `[b, t, vocab]` for every position.
    pub fn forward(&self, ids: &Tensor, cache: Option<&mut KvCache>) -> Result<Tensor> {
        let h = self.hidden(ids, cache)?;
        self.lm_head.forward(&h)
    }

    /// Logits `[b, vocab]` for the last position only.
    pub fn forward_last(&self, ids: &Tensor, cache: Option<&mut KvCache>) -> Result<Tensor> {
        let sampling = cache.is_some();
        let h = self.hidden(ids, cache)?;
        let t = h.dim(1)?;
        let last = h.narrow(1, t - 1, 1)?.squeeze(1)?;
        if sampling {
            self.lm_head.forward_sampling(&last)
        } else {
            self.lm_head.forward(&last)
        }
    }

    /// The output head (tied to the embedding when the config says so).
    pub fn lm_head(&self) -> &Linear {
        &self.lm_head
    }

    /// The embedding matrix `[vocab, hidden]`.
    pub fn embeddings(&self) -> &Tensor {
        &self.embed
    }

    /// Every adaptable projection (q, k, v, o and, for dense MLPs, gate, up,
    /// down), for attaching LoRA adapters.
    pub fn linears_mut(&mut self) -> Vec<&mut Linear> {
        let mut out = Vec::new();
        for b in &mut self.blocks {
            let a = &mut b.attn;
            out.extend([&mut a.q, &mut a.k, &mut a.v, &mut a.o]);
            if let Mlp::Dense(m) = &mut b.mlp {
                out.extend([&mut m.gate, &mut m.up, &mut m.down]);
            }
        }
        out
    }

    /// Read-only view of the same projections.
    pub fn linears(&self) -> Vec<&Linear> {
        let mut out = Vec::new();
        for b in &self.blocks {
            let a = &b.attn;
            out.extend([&a.q, &a.k, &a.v, &a.o]);
            if let Mlp::Dense(m) = &b.mlp {
                out.extend([&m.gate, &m.up, &m.down]);
            }
        }
        out
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn mxfp4_decodes_low_nibble_first_with_e8m0_scale() {
        let mut blocks = [0u8; 16];
        blocks[0] = 0x7 | (0x9 << 4); // +6, -0.5
        let out = decode_mxfp4(&blocks, &[128]); // scale 2
        assert_eq!(out.len(), 32);
        assert_eq!(&out[..3], &[12.0, -1.0, 0.0]);
    }
}
