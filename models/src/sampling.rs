//! Sampling: temperature, top-k, top-p, min-p, stop strings and eos ids,
//! `n` samples of one prompt decoded as one batch that shares the prompt's
//! prefilled KV cache. Deterministic for a seed: sample `i` draws from its
//! own ChaCha8 stream derived from `(seed, i)`.

use candle_core::{DType, Tensor};
use rand::{Rng, SeedableRng};
use rand_chacha::ChaCha8Rng;

use crate::error::{ModelError, Result};
use crate::model::CausalLm;

/// How to sample.
#[derive(Debug, Clone, PartialEq)]
pub struct SampleOptions {
    /// Softmax temperature; 0 = greedy.
    pub temperature: f32,
    /// Nucleus mass (1 = off).
    pub top_p: f32,
    /// Keep the k most likely tokens (0 = off).
    pub top_k: usize,
    /// Drop tokens below `min_p` × the top probability (0 = off).
    pub min_p: f32,
    /// Maximum new tokens.
    pub max_new_tokens: usize,
    /// Stop strings (the text is cut before them).
    pub stop: Vec<String>,
    /// Token ids that end a completion (not included in the text).
    pub eos_token_ids: Vec<u32>,
    /// The seed.
    pub seed: u64,
    /// Prompts longer than this are cut before sampling, keeping their
    /// last tokens (the start is dropped, as TRL truncates prompts on the
    /// left); 0 = no limit. The model's context still bounds a completion.
    pub max_prompt_tokens: usize,
}

impl SampleOptions {
    /// The part of `prompt` sampling sees (see
    /// [`SampleOptions::max_prompt_tokens`]).
    pub fn clip_prompt<'a>(&self, prompt: &'a [u32]) -> &'a [u32] {
        if self.max_prompt_tokens > 0 && prompt.len() > self.max_prompt_tokens {
            &prompt[prompt.len() - self.max_prompt_tokens..]
        } else {
            prompt
        }
    }
}

impl Default for SampleOptions {
    fn default() -> Self {
        Self {
            temperature: 1.0,
            top_p: 1.0,
            top_k: 0,
            min_p: 0.0,
            max_new_tokens: 256,
            stop: Vec::new(),
            eos_token_ids: Vec::new(),
            seed: 0,
            max_prompt_tokens: 0,
        }
    }
}

/// Why a completion ended.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum FinishReason {
    /// An eos token was generated.
    Eos,
    /// A stop string appeared.
    Stop,
    /// `max_new_tokens` was reached (truncated).
    Length,
}

/// One sampled completion.
#[derive(Debug, Clone, PartialEq)]
pub struct Sample {
    /// The decoded text, without the eos token and cut before a stop string.
    pub text: String,
    /// Every generated token id (including a final eos, and the tokens
    /// that completed a stop string).
    pub token_ids: Vec<u32>,
    /// Per generated token: its log-probability under the
    /// temperature-scaled distribution `log_softmax(logits / T)` before
    /// top-k/top-p/min-p truncation (T = 1 when greedy), as TRL's GRPO
    /// computes log-probs.
    pub logprobs: Vec<f32>,
    /// Why it ended.
    pub finish: FinishReason,
}

/// A token chooser for one row of logits.
fn choose(logits: &[f32], o: &SampleOptions, rng: &mut ChaCha8Rng) -> (u32, f32) {
    let t = if o.temperature > 0.0 { o.temperature } else { 1.0 };
    let max = logits.iter().copied().fold(f32::NEG_INFINITY, f32::max);
    let scaled: Vec<f32> = logits.iter().map(|l| (l - max) / t).collect();
    let lse = scaled.iter().map(|s| s.exp()).sum::<f32>().ln();
    let logprob = |i: usize| scaled[i] - lse;
    if o.temperature <= 0.0 {
        let mut best = 0;
        for (i, &l) in logits.iter().enumerate() {
            if l > logits[best] {
                best = i;
            }
        }
        return (best as u32, logprob(best));
    }
    let probs: Vec<f32> = scaled.iter().map(|s| (s - lse).exp()).collect();
    let cand = candidates(&probs, o);
    let total: f32 = cand.iter().map(|&i| probs[i]).sum();
    let mut r = rng.gen::<f32>() * total;
    let mut pick = cand[cand.len() - 1];
    for &i in &cand {
        r -= probs[i];
        if r <= 0.0 {
            pick = i;
            break;
        }
    }
    (pick as u32, logprob(pick))
}

/// The tokens the host sampler draws from, given probabilities `probs`:
/// top-k, then top-p over the top-k mass, then min-p relative to the most
/// likely kept token (by decreasing probability when a filter sorted them).
pub(crate) fn candidates(probs: &[f32], o: &SampleOptions) -> Vec<usize> {
    // Candidates sorted by probability (only when a filter needs the order).
    let mut cand: Vec<usize> = (0..probs.len()).collect();
    let needs_sort = o.top_k > 0 || o.top_p < 1.0;
    if needs_sort {
        if o.top_k > 0 && o.top_k < cand.len() {
            cand.select_nth_unstable_by(o.top_k - 1, |&a, &b| probs[b].total_cmp(&probs[a]).then(a.cmp(&b)));
            cand.truncate(o.top_k);
        }
        cand.sort_unstable_by(|&a, &b| probs[b].total_cmp(&probs[a]).then(a.cmp(&b)));
        if o.top_p < 1.0 {
            let total: f32 = cand.iter().map(|&i| probs[i]).sum();
            let mut acc = 0.0;
            let mut keep = cand.len();
            for (n, &i) in cand.iter().enumerate() {
                acc += probs[i] / total;
                if acc >= o.top_p {
                    keep = n + 1;
                    break;
                }
            }
            cand.truncate(keep.max(1));
        }
    }
    if o.min_p > 0.0 {
        let top = cand.iter().map(|&i| probs[i]).fold(0.0, f32::max);
        cand.retain(|&i| probs[i] >= o.min_p * top);
    }
    cand
}

/// Decodes token ids to text.
pub trait Detokenize {
    /// The text of `ids` (special tokens kept).
    fn detokenize(&self, ids: &[u32]) -> Result<String>;
}

/// A detokenizer that yields no text: for benchmarks and other callers that
/// need only token ids (no stop strings can match).
#[derive(Debug, Clone, Copy, Default)]
pub struct NoText;

impl Detokenize for NoText {
    fn detokenize(&self, _ids: &[u32]) -> Result<String> {
        Ok(String::new())
    }
}

/// The random stream of completion `row` of a group sampled with `seed`:
/// ChaCha8 keyed by the seed, one ChaCha stream per row, so a row's draws
/// do not depend on how many rows share the batch.
fn row_rng(seed: u64, row: usize) -> ChaCha8Rng {
    let mut rng = ChaCha8Rng::seed_from_u64(seed);
    rng.set_stream(row as u64);
    rng
}

/// The device generator's seed for decode step `step` of a batch sampled
/// with `seed`.
fn step_seed(seed: u64, step: u64) -> u64 {
    let mut rng = ChaCha8Rng::seed_from_u64(seed);
    rng.set_stream(u64::MAX - step);
    rng.gen()
}

struct Row {
    index: usize,
    rng: ChaCha8Rng,
    ids: Vec<u32>,
    logprobs: Vec<f32>,
    text: String,
    finish: Option<FinishReason>,
}

/// Samples `n` completions of `prompt` (token ids). The prompt is
/// prefilled once; its cache is copied to a batch of `n` rows that decode
/// together; finished rows leave the batch.
pub fn generate(
    model: &CausalLm,
    tok: &dyn Detokenize,
    prompt: &[u32],
    n: usize,
    o: &SampleOptions,
) -> Result<Vec<Sample>> {
    if prompt.is_empty() {
        return Err(ModelError::Tokenizer("empty prompt".into()));
    }
    let prompt = o.clip_prompt(prompt);
    let dev = model.device().clone();
    let mut cache = model.new_cache();
    let ids = Tensor::new(prompt, &dev)?.unsqueeze(0)?;
    let first = model.forward_last(&ids, Some(&mut cache))?.to_dtype(DType::F32)?;
    // On a GPU the logits stay there and are sampled there
    // (`device_sampling`); on the CPU each row is sampled from its own
    // stream, so a row's tokens do not depend on its batch.
    let on_device = !dev.is_cpu();
    let mut rows: Vec<Row> = (0..n)
        .map(|i| Row {
            index: i,
            rng: row_rng(o.seed, i),
            ids: Vec::new(),
            logprobs: Vec::new(),
            text: String::new(),
            finish: None,
        })
        .collect();
    if o.max_new_tokens == 0 {
        return Ok(rows.into_iter().map(|r| finish(r, FinishReason::Length)).collect());
    }
    let max_pos = model.config().max_position_embeddings;
    let mut logits = first.broadcast_as((n, first.dim(1)?))?.contiguous()?;
    let mut cache = cache.repeat_batch(n)?;
    let mut step_no = 0u64;
    let mut active: Vec<usize> = (0..n).collect();
    let mut done: Vec<(usize, Sample)> = Vec::with_capacity(n);
    loop {
        let mut next = Vec::with_capacity(active.len());
        let picked: Vec<(u32, f32)> = if on_device {
            let (ids, lps) = crate::device_sampling::sample(&logits, o, step_seed(o.seed, step_no))?;
            ids.into_iter().zip(lps).collect()
        } else {
            let host: Vec<Vec<f32>> = logits.to_vec2()?;
            active.iter().zip(&host).map(|(&ri, l)| choose(l, o, &mut rows[ri].rng)).collect()
        };
        step_no += 1;
        for (slot, &ri) in active.iter().enumerate() {
            let row = &mut rows[ri];
            let (tok_id, lp) = picked[slot];
            row.ids.push(tok_id);
            row.logprobs.push(lp);
            next.push(tok_id);
            if o.eos_token_ids.contains(&tok_id) {
                row.finish = Some(FinishReason::Eos);
                continue;
            }
            if !o.stop.is_empty() {
                // Stop strings can span tokens: look at the whole decoded text.
                let text = tok.detokenize(&row.ids)?;
                if let Some(cut) = o.stop.iter().filter_map(|s| text.find(s.as_str())).min() {
                    row.text = text[..cut].to_string();
                    row.finish = Some(FinishReason::Stop);
                    continue;
                }
            }
            if row.ids.len() >= o.max_new_tokens || prompt.len() + row.ids.len() >= max_pos {
                row.finish = Some(FinishReason::Length);
            }
        }
        let keep: Vec<usize> = (0..active.len()).filter(|&s| rows[active[s]].finish.is_none()).collect();
        if keep.len() != active.len() {
            if keep.is_empty() {
                break;
            }
            cache = cache.select_rows(&keep.iter().map(|&s| s as u32).collect::<Vec<_>>())?;
            next = keep.iter().map(|&s| next[s]).collect();
            active = keep.iter().map(|&s| active[s]).collect();
        }
        let step = Tensor::new(next.as_slice(), &dev)?.unsqueeze(1)?;
        logits = model.forward_last(&step, Some(&mut cache))?.to_dtype(DType::F32)?;
    }
    for r in rows.drain(..) {
        let reason = r.finish.unwrap_or(FinishReason::Length);
        done.push(finish_with_text(r, reason, tok)?);
    }
    done.sort_by_key(|s| s.0);
    Ok(done.into_iter().map(|s| s.1).collect())
}

fn finish(r: Row, reason: FinishReason) -> Sample {
    Sample { text: r.text, token_ids: r.ids, logprobs: r.logprobs, finish: reason }
}

fn finish_with_text(r: Row, reason: FinishReason, tok: &dyn Detokenize) -> Result<(usize, Sample)> {
    let index = r.index;
    let mut s = finish(r, reason);
    match reason {
        FinishReason::Eos => s.text = tok.detokenize(&s.token_ids[..s.token_ids.len() - 1])?,
        FinishReason::Length => s.text = tok.detokenize(&s.token_ids)?,
        FinishReason::Stop => {}
    }
    Ok((index, s))
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn filters_restrict_the_support() {
        let logits = [2.0f32, 1.0, 0.0, -1.0, -5.0];
        let mut rng = ChaCha8Rng::seed_from_u64(1);
        let top1 = SampleOptions { top_k: 1, ..Default::default() };
        for _ in 0..20 {
            assert_eq!(choose(&logits, &top1, &mut rng).0, 0);
        }
        let top2 = SampleOptions { top_k: 2, ..Default::default() };
        let minp = SampleOptions { min_p: 0.3, ..Default::default() };
        let topp = SampleOptions { top_p: 0.7, ..Default::default() };
        for _ in 0..200 {
            assert!(choose(&logits, &top2, &mut rng).0 < 2);
            // p1/p0 = e^-1 = 0.37 >= 0.3, p2/p0 = 0.135 < 0.3
            assert!(choose(&logits, &minp, &mut rng).0 < 2);
            // p0 = 0.64 < 0.7, so the nucleus is {0, 1}
            assert!(choose(&logits, &topp, &mut rng).0 < 2);
        }
        let greedy = SampleOptions { temperature: 0.0, ..Default::default() };
        let (t, lp) = choose(&logits, &greedy, &mut rng);
        assert_eq!(t, 0);
        let z: f32 = logits.iter().map(|l| l.exp()).sum();
        assert!((lp - (2.0 - z.ln())).abs() < 1e-5);
    }

    #[test]
    fn sampling_follows_the_distribution() {
        let logits = [0.0f32, (3.0f32).ln()];
        let mut rng = ChaCha8Rng::seed_from_u64(7);
        let o = SampleOptions::default();
        let ones = (0..4000).filter(|_| choose(&logits, &o, &mut rng).0 == 1).count();
        let frac = ones as f64 / 4000.0;
        assert!((frac - 0.75).abs() < 0.03, "{frac}");
        let hot = SampleOptions { temperature: 100.0, ..Default::default() };
        let ones = (0..4000).filter(|_| choose(&logits, &hot, &mut rng).0 == 1).count();
        assert!((ones as f64 / 4000.0 - 0.5).abs() < 0.04);
    }
}
