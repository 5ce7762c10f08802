//! Log-probs of completions under the model, in chunks, with a
//! memory-lean backward.
//!
//! The `B×C×V` logits are never materialised: the final hidden states of
//! the completion positions are cut into row chunks and each chunk goes
//! through the output head, `/ temperature`, an f32 log-softmax and a
//! gather on its own.
//!
//! Training uses three stages (as Unsloth's efficient GRPO does):
//! 1. [`score`]: one forward through the decoder (with graph), then
//!    log-probs and entropies per chunk *without* graph;
//! 2. the loss on the `[B, C]` log-prob tensor is differentiated by
//!    autograd, giving `g = ∂L/∂lp`;
//! 3. [`backward`]: per chunk, `∂L/∂h = (g/T)·(W[y] − softmaxᵀ·W)`
//!    (`W` = output head), then one backward of the surrogate
//!    `Σ h ⊙ sg(∂L/∂h)` through the decoder gives the adapter gradients.
//!
//! Peak memory is `O(chunk × V)` for the head instead of `O(B·C·V)`; the
//! price is a second pass through the head.
//!
//! With [`Activations::Recompute`] (TRL's `gradient_checkpointing`, on by
//! default) stage 1 keeps no graph at all, only each decoder block's input,
//! and stage 3 recomputes one block at a time from the top
//! ([`CausalLm::backward_checkpointed`]): activation memory drops from
//! every intermediate of every layer to one layer's, for one extra forward.

use candle_core::backprop::GradStore;
use candle_core::{DType, Tensor, D};
pub use models::Activations;
use models::{CausalLm, Checkpoints};

use crate::error::{Result, TrainError};

/// Completions of prompts of one length, right-padded, ready to score.
#[derive(Debug, Clone)]
pub struct ScoreBatch {
    /// `[B, P + C − 1]`: prompt then completion without its last token.
    pub ids: Tensor,
    /// Prompt length `P` (equal for every row).
    pub prompt_len: usize,
    /// Padded completion length `C`.
    pub completion_len: usize,
    /// `[B·C]` completion token ids (padding = 0), as gather indices.
    pub targets: Tensor,
}

impl ScoreBatch {
    /// Builds a batch from prompts of equal length and their completions.
    pub fn new(prompts: &[&[u32]], completions: &[&[u32]], device: &candle_core::Device) -> Result<Self> {
        let b = prompts.len();
        if b == 0 || completions.len() != b {
            return Err(TrainError::Config("a score batch needs as many completions as prompts (≥ 1)".into()));
        }
        let p = prompts[0].len();
        if p == 0 || prompts.iter().any(|x| x.len() != p) {
            return Err(TrainError::Config("prompts of a score batch must be non-empty and of equal length".into()));
        }
        let c = completions.iter().map(|x| x.len()).max().unwrap_or(0).max(1);
        let width = p + c - 1;
        let mut ids = Vec::with_capacity(b * width);
        let mut targets = Vec::with_capacity(b * c);
        for (pr, co) in prompts.iter().zip(completions) {
            ids.extend_from_slice(pr);
            for t in 0..c - 1 {
                ids.push(co.get(t).copied().unwrap_or(0));
            }
            for t in 0..c {
                targets.push(co.get(t).copied().unwrap_or(0));
            }
        }
        Ok(Self {
            ids: Tensor::from_vec(ids, (b, width), device)?,
            prompt_len: p,
            completion_len: c,
            targets: Tensor::from_vec(targets, b * c, device)?,
        })
    }

    /// Rows.
    pub fn rows(&self) -> usize {
        self.ids.dims()[0]
    }
}

/// The result of a scoring forward.
#[derive(Debug, Clone)]
pub struct Scored {
    /// Hidden states of the positions that predict the completion tokens,
    /// `[B, C, H]`, attached to the decoder's graph with
    /// [`Activations::Graph`].
    pub hidden: Tensor,
    /// Block inputs with [`Activations::Recompute`].
    pub checkpoints: Option<Checkpoints>,
    /// Log-probs `[B, C]` (f32, no graph) of the completion tokens under
    /// `softmax(logits / T)`.
    pub logprobs: Tensor,
    /// Per-token entropy `[B, C]` (f32, no graph) of the same distribution.
    pub entropy: Tensor,
}

fn chunk_logits(model: &CausalLm, h: &Tensor, temperature: f64) -> Result<Tensor> {
    let logits = model.lm_head().forward_base(h)?.to_dtype(DType::F32)?;
    Ok(if temperature != 1.0 { (logits / temperature)? } else { logits })
}

/// Forward pass: decoder keeping `keep` for the backward pass, head in
/// chunks of `chunk_rows` rows without graph (see the module docs).
/// `before_block` is handed to [`CausalLm::hidden_for_training`].
pub fn score(
    model: &CausalLm,
    batch: &ScoreBatch,
    temperature: f64,
    chunk_rows: usize,
    keep: Activations,
    before_block: &dyn Fn(usize),
) -> Result<Scored> {
    let (b, c) = (batch.rows(), batch.completion_len);
    let (h, checkpoints) = model.hidden_for_training(&batch.ids, keep, before_block)?;
    let hidden = h.narrow(1, batch.prompt_len - 1, c)?;
    let flat = hidden.detach().reshape((b * c, hidden.dim(2)?))?;
    let chunk = chunk_rows.max(1);
    let mut lps = Vec::new();
    let mut ents = Vec::new();
    let mut start = 0;
    while start < b * c {
        let n = chunk.min(b * c - start);
        let z = chunk_logits(model, &flat.narrow(0, start, n)?, temperature)?;
        let max = z.max_keepdim(D::Minus1)?;
        let shifted = z.broadcast_sub(&max)?;
        let lse = shifted.exp()?.sum_keepdim(D::Minus1)?.log()?;
        let logp = shifted.broadcast_sub(&lse)?;
        let tgt = batch.targets.narrow(0, start, n)?.unsqueeze(1)?;
        lps.push(logp.gather(&tgt, 1)?.squeeze(1)?);
        ents.push((logp.exp()? * &logp)?.sum(D::Minus1)?.neg()?);
        start += n;
    }
    Ok(Scored {
        hidden,
        checkpoints,
        logprobs: Tensor::cat(&lps, 0)?.reshape((b, c))?,
        entropy: Tensor::cat(&ents, 0)?.reshape((b, c))?,
    })
}

/// Backpropagates `grad_lp = ∂L/∂lp` (`[B, C]`) through the head (in
/// chunks, analytically) and the decoder (autograd), returning the
/// gradients of every variable the decoder used. `before_block` is handed
/// to [`CausalLm::backward_checkpointed`] when `scored` kept checkpoints;
/// a scoring forward that kept nothing has no backward (an error).
pub fn backward(
    model: &CausalLm,
    batch: &ScoreBatch,
    scored: &Scored,
    grad_lp: &Tensor,
    temperature: f64,
    chunk_rows: usize,
    before_block: &dyn Fn(usize),
) -> Result<GradStore> {
    let (b, c) = (batch.rows(), batch.completion_len);
    let hsize = scored.hidden.dim(2)?;
    let flat = scored.hidden.detach().reshape((b * c, hsize))?;
    let w = model.lm_head().weight();
    let g = (grad_lp.to_dtype(DType::F32)?.reshape(b * c)? / temperature)?;
    let chunk = chunk_rows.max(1);
    let mut parts = Vec::new();
    let mut start = 0;
    while start < b * c {
        let n = chunk.min(b * c - start);
        let z = chunk_logits(model, &flat.narrow(0, start, n)?, temperature)?;
        let max = z.max_keepdim(D::Minus1)?;
        let e = z.broadcast_sub(&max)?.exp()?;
        let p = e.broadcast_div(&e.sum_keepdim(D::Minus1)?)?;
        let expected = p.to_dtype(w.dtype())?.matmul(w)?.to_dtype(DType::F32)?;
        let picked = w.index_select(&batch.targets.narrow(0, start, n)?, 0)?.to_dtype(DType::F32)?;
        let gc = g.narrow(0, start, n)?.unsqueeze(1)?;
        parts.push((picked - expected)?.broadcast_mul(&gc)?);
        start += n;
    }
    let dh = Tensor::cat(&parts, 0)?.reshape((b, c, hsize))?.to_dtype(scored.hidden.dtype())?;
    models::device::mem_trace(model.device(), format_args!("head gradient"));
    if let Some(ck) = &scored.checkpoints {
        // The decoder's output covers every position; only the completion
        // positions (the last `c`, see `ScoreBatch`) receive a gradient.
        let prefix = batch.prompt_len - 1;
        let full = if prefix > 0 {
            let zeros = Tensor::zeros((b, prefix, hsize), dh.dtype(), dh.device())?;
            Tensor::cat(&[&zeros, &dh], 1)?
        } else {
            dh
        };
        return Ok(model.backward_checkpointed(ck, &full, before_block)?);
    }
    if !scored.hidden.track_op() {
        return Err(TrainError::Config("backward after a scoring forward that kept no activations".into()));
    }
    let surrogate = (&scored.hidden * dh.detach())?.sum_all()?;
    Ok(surrogate.backward()?)
}
