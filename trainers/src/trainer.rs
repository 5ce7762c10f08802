//! The GRPO training loop (TRL 1.16's generation/buffer/accumulation
//! schedule) over LoRA adapters.
//!
//! One optimizer step runs `gradient_accumulation_steps` micro-steps. A
//! generation batch (`per_device_train_batch_size × steps_per_generation`
//! completions, `num_generations` per prompt) is produced every
//! `steps_per_generation × num_iterations` micro-steps by a
//! [`RolloutSource`]; its advantages are computed once, its completions
//! shuffled and split into `steps_per_generation` micro-batches that are
//! reused `num_iterations` times.
//!
//! Throughput metrics (not TRL names): `generation_time` (seconds spent in
//! the [`RolloutSource`] for the current generation batch),
//! `generated_tokens_per_second` (its completion tokens / `generation_time`),
//! `step_time` (wall seconds of the whole optimizer step, generation
//! included when it happened in this step) and `tokens_per_second`
//! (completion tokens of the micro-batches trained on in this step /
//! `step_time`).
//!
//! All randomness derives from `(seed, generation index)` and
//! `(seed, micro-step)`, so a run is reproducible and a resumed run
//! continues exactly where a checkpoint left it.

use std::collections::BTreeMap;
use std::time::Instant;

use candle_core::{DType, Tensor, Var};
use envs::policy::derive_seed;
use models::sampling::SampleOptions;
use models::CausalLm;
use rand::seq::SliceRandom;
use rand::SeedableRng;
use rand_chacha::ChaCha8Rng;

use crate::config::GrpoConfig;
use crate::error::{Result, TrainError};
use crate::grpo::{advantages, combine_rewards, token_weights};
use crate::loss::{grpo_loss, LossInputs};
use crate::optim::{clip_grad_norm, learning_rate, AdamW};
use crate::score::{backward, score, Activations, ScoreBatch};
use models::lora::Lora;

/// One sampled completion with its rewards.
#[derive(Debug, Clone, PartialEq)]
pub struct Sequence {
    /// Prompt token ids.
    pub prompt: Vec<u32>,
    /// Completion token ids (including a final EOS when there is one).
    pub completion: Vec<u32>,
    /// Per completion token: whether the policy produced it (false for
    /// tokens an env inserted in a multi-turn completion).
    pub loss_mask: Vec<bool>,
    /// Whether the completion hit `max_completion_length` without EOS.
    pub truncated: bool,
    /// One reward per reward function (`None` = not applicable).
    pub rewards: Vec<Option<f64>>,
    /// The decoded completion (for logs).
    pub text: String,
    /// Prompt tokens dropped before sampling to fit `max_prompt_length`
    /// ([`SampleOptions::max_prompt_tokens`]); `prompt` is what was sampled
    /// from and is scored.
    pub prompt_clipped: usize,
}

/// Where completions and rewards come from: toy tasks, envs.
pub trait RolloutSource {
    /// Names of the reward functions, in the order of [`Sequence::rewards`].
    fn reward_names(&self) -> Vec<String>;

    /// Default weight of each reward function (overridden by the config's
    /// `reward_weights`).
    fn reward_weights(&self) -> Vec<f64> {
        vec![1.0; self.reward_names().len()]
    }

    /// Samples `prompts` prompts and `group` completions of each with
    /// `model` (the policy being trained: adapters on, or merged into the
    /// weights), consecutive by group, deterministically for `seed`.
    fn generate(
        &mut self,
        model: &CausalLm,
        prompts: usize,
        group: usize,
        sampling: &SampleOptions,
        seed: u64,
    ) -> Result<Vec<Sequence>>;
}

/// A completion in the buffer, with what the loss needs.
#[derive(Debug, Clone)]
struct Item {
    seq: Sequence,
    mask: Vec<bool>,
    advantage: f64,
    old: Option<Vec<f32>>,
    reference: Option<Vec<f32>>,
}

/// Metrics of one optimizer step, under TRL's names.
pub type Metrics = BTreeMap<String, f64>;

/// The GRPO trainer: a model with LoRA adapters, AdamW, and the buffer.
#[derive(Debug)]
pub struct GrpoTrainer {
    model: CausalLm,
    lora: Lora,
    cfg: GrpoConfig,
    opt: AdamW,
    vars: Vec<Var>,
    step: usize,
    micro: usize,
    generations: usize,
    buffer: Vec<Vec<Item>>,
    gen_metrics: Metrics,
    num_tokens: f64,
}

/// Per-micro-step statistics to average into the step's metrics.
#[derive(Debug, Default)]
struct MicroStats {
    loss: f64,
    entropy: Vec<f64>,
    kl: Vec<f64>,
    clip_low: Vec<f64>,
    clip_high: Vec<f64>,
    clip_region: Vec<f64>,
    tokens: usize,
}

fn mean(xs: &[f64]) -> f64 {
    if xs.is_empty() {
        0.0
    } else {
        xs.iter().sum::<f64>() / xs.len() as f64
    }
}

fn std_unbiased(xs: &[f64]) -> f64 {
    if xs.len() < 2 {
        return 0.0;
    }
    let m = mean(xs);
    (xs.iter().map(|x| (x - m).powi(2)).sum::<f64>() / (xs.len() - 1) as f64).sqrt()
}

impl GrpoTrainer {
    /// Attaches LoRA adapters to `model` (seeded by `cfg.seed`) and sets up
    /// the optimizer. `model` shares its weights and adapters with every
    /// clone of it (e.g. one held by an [`policies::llm::LlmPolicy`]).
    pub fn new(mut model: CausalLm, cfg: GrpoConfig) -> Result<Self> {
        cfg.validate()?;
        let lora = Lora::attach(&mut model, &cfg.lora(), derive_seed(cfg.seed, 0x10a))?;
        Self::with_lora(model, lora, cfg)
    }

    /// A trainer for a model whose adapters are already attached.
    pub fn with_lora(model: CausalLm, lora: Lora, cfg: GrpoConfig) -> Result<Self> {
        cfg.validate()?;
        let vars = lora.vars();
        let opt = AdamW::new(vars.clone(), cfg.adamw())?;
        Ok(Self {
            model,
            lora,
            cfg,
            opt,
            vars,
            step: 0,
            micro: 0,
            generations: 0,
            buffer: Vec::new(),
            gen_metrics: Metrics::new(),
            num_tokens: 0.0,
        })
    }

    /// The model (adapters attached).
    pub fn model(&self) -> &CausalLm {
        &self.model
    }

    /// The adapters.
    pub fn lora(&self) -> &Lora {
        &self.lora
    }

    /// The settings.
    pub fn config(&self) -> &GrpoConfig {
        &self.cfg
    }

    /// Optimizer steps done.
    pub fn step(&self) -> usize {
        self.step
    }

    /// Whether the buffer is exhausted, so a checkpoint now is exact.
    pub fn at_generation_boundary(&self) -> bool {
        self.micro.is_multiple_of(self.cfg.generate_every())
    }

    /// The optimizer (for checkpoints).
    pub fn optimizer(&self) -> &AdamW {
        &self.opt
    }

    /// Restores counters and optimizer state (for `checkpoint::restore`).
    pub(crate) fn restore(&mut self, step: usize, micro: usize, generations: usize, num_tokens: f64) {
        self.step = step;
        self.micro = micro;
        self.generations = generations;
        self.num_tokens = num_tokens;
        self.buffer.clear();
    }

    /// Mutable optimizer (for checkpoints).
    pub(crate) fn optimizer_mut(&mut self) -> &mut AdamW {
        &mut self.opt
    }

    /// Counters for a checkpoint: (step, micro-step, generations, num_tokens).
    pub(crate) fn counters(&self) -> (usize, usize, usize, f64) {
        (self.step, self.micro, self.generations, self.num_tokens)
    }

    fn sampling(&self) -> SampleOptions {
        SampleOptions {
            temperature: self.cfg.temperature as f32,
            top_p: self.cfg.top_p as f32,
            top_k: self.cfg.top_k,
            min_p: self.cfg.min_p as f32,
            max_new_tokens: self.cfg.max_completion_length,
            max_prompt_tokens: self.cfg.max_prompt_length,
            ..SampleOptions::default()
        }
    }

    /// Log-probs (no graph) of `items` under the current model state.
    fn logprobs_no_grad(&self, items: &[&Sequence]) -> Result<Vec<Vec<f32>>> {
        let mut out = vec![Vec::new(); items.len()];
        for idx in buckets(items.iter().map(|s| s.prompt.len())) {
            let batch = ScoreBatch::new(
                &idx.iter().map(|&i| items[i].prompt.as_slice()).collect::<Vec<_>>(),
                &idx.iter().map(|&i| items[i].completion.as_slice()).collect::<Vec<_>>(),
                self.model.device(),
            )?;
            let s = score(
                &self.model,
                &batch,
                self.cfg.temperature,
                self.cfg.logit_chunk_rows,
                Activations::None,
                &|_| {},
            )?;
            let lp: Vec<Vec<f32>> = s.logprobs.to_vec2()?;
            for (row, &i) in lp.into_iter().zip(&idx) {
                out[i] = row;
            }
        }
        Ok(out)
    }

    /// Produces a new generation batch into the buffer.
    fn fill_buffer(&mut self, source: &mut dyn RolloutSource) -> Result<()> {
        let cfg = &self.cfg;
        let g = cfg.num_generations;
        let prompts = cfg.prompts_per_generation();
        let seed = derive_seed(cfg.seed, 1_000_000 + self.generations as u64);
        let t0 = Instant::now();
        self.lora.set_training(false);
        models::device::mem_trace(self.model.device(), format_args!("before generation"));
        // Sampling needs no gradient: on the CPU in f32 it runs on a copy
        // with the adapters merged in (see `Lora::merged_copy`).
        let merged = self.lora.merged_copy(&self.model)?;
        let mut seqs = source.generate(merged.as_ref().unwrap_or(&self.model), prompts, g, &self.sampling(), seed)?;
        drop(merged);
        models::device::mem_trace(self.model.device(), format_args!("generated"));
        if seqs.len() != prompts * g {
            return Err(TrainError::Rollout(format!("expected {} completions, got {}", prompts * g, seqs.len())));
        }
        let clipped_prompts = seqs.iter().filter(|s| s.prompt_clipped > 0).count();
        if clipped_prompts == seqs.len() {
            let longest = seqs.iter().map(|s| s.prompt.len() + s.prompt_clipped).max().unwrap_or(0);
            return Err(TrainError::Rollout(format!(
                "every prompt of this step is longer than max_prompt_length = {} tokens (the longest has {longest}): \
                 raise max_prompt_length or shorten the prompts; training on their cut ends would learn nothing \
                 useful",
                cfg.max_prompt_length
            )));
        }
        for s in &mut seqs {
            if s.prompt.len() > cfg.max_prompt_length {
                return Err(TrainError::Rollout(format!(
                    "the rollout source returned a {}-token prompt; max_prompt_length is {} (sources sample from \
                     SampleOptions::clip_prompt)",
                    s.prompt.len(),
                    cfg.max_prompt_length
                )));
            }
            if s.completion.is_empty() {
                // Nothing was generated (e.g. max_completion_length hit at once): score one pad token, masked.
                s.completion.push(0);
                s.loss_mask = vec![false];
            }
            s.loss_mask.resize(s.completion.len(), true);
        }
        let gen_time = t0.elapsed().as_secs_f64();
        let names = source.reward_names();
        let weights = cfg.reward_weights.clone().unwrap_or_else(|| source.reward_weights());
        if weights.len() != names.len() {
            return Err(TrainError::Config(format!(
                "reward_weights has {} entries for {} reward functions ({})",
                weights.len(),
                names.len(),
                names.join(", ")
            )));
        }
        let per_fn: Vec<Vec<Option<f64>>> = seqs.iter().map(|s| s.rewards.clone()).collect();
        let rewards = combine_rewards(&per_fn, &weights);
        let adv = advantages(&rewards, g, cfg.scale_rewards);

        // Generation metrics (TRL names).
        let mut m = Metrics::new();
        let scored: Vec<f64> = rewards.iter().flatten().copied().collect();
        m.insert("reward".into(), mean(&scored));
        m.insert("reward_std".into(), std_unbiased(&scored));
        m.insert("frac_reward_zero_std".into(), adv.frac_zero_std);
        for (k, name) in names.iter().enumerate() {
            let v: Vec<f64> = per_fn.iter().filter_map(|r| r.get(k).copied().flatten()).collect();
            m.insert(format!("rewards/{name}/mean"), mean(&v));
            m.insert(format!("rewards/{name}/std"), std_unbiased(&v));
        }
        // Lengths count policy tokens (env tokens of multi-turn completions are not generated).
        let policy_len = |s: &Sequence| s.loss_mask.iter().filter(|m| **m).count() as f64;
        let lens: Vec<f64> = seqs.iter().map(policy_len).collect();
        let term: Vec<f64> = seqs.iter().filter(|s| !s.truncated).map(policy_len).collect();
        m.insert("completions/mean_length".into(), mean(&lens));
        m.insert("completions/min_length".into(), lens.iter().copied().fold(f64::INFINITY, f64::min));
        m.insert("completions/max_length".into(), lens.iter().copied().fold(0.0, f64::max));
        m.insert("completions/clipped_ratio".into(), 1.0 - term.len() as f64 / seqs.len().max(1) as f64);
        // Prompts cut to max_prompt_length before sampling (gym train warns).
        m.insert("prompts/clipped".into(), clipped_prompts as f64);
        m.insert("prompts/clipped_tokens".into(), seqs.iter().map(|s| s.prompt_clipped as f64).sum());
        m.insert("completions/mean_terminated_length".into(), mean(&term));
        m.insert(
            "completions/min_terminated_length".into(),
            if term.is_empty() { 0.0 } else { term.iter().copied().fold(f64::INFINITY, f64::min) },
        );
        m.insert("completions/max_terminated_length".into(), term.iter().copied().fold(0.0, f64::max));
        // Policy turns per completion (runs of policy tokens): 1 for one-step envs.
        let turns: Vec<f64> = seqs
            .iter()
            .map(|s| {
                s.loss_mask.iter().zip(std::iter::once(&false).chain(&s.loss_mask)).filter(|(m, p)| **m && !**p).count()
                    as f64
            })
            .collect();
        m.insert("completions/mean_turns".into(), mean(&turns));
        let tokens: usize = seqs.iter().map(|s| s.prompt.len() + s.completion.len()).sum();
        self.num_tokens += tokens as f64;
        m.insert("num_tokens".into(), self.num_tokens);
        m.insert("generation_time".into(), gen_time);
        m.insert("generated_tokens_per_second".into(), lens.iter().sum::<f64>() / gen_time.max(1e-9));

        // Masks: policy tokens, minus truncated completions when asked.
        let mut items: Vec<Item> = seqs
            .into_iter()
            .zip(adv.values)
            .map(|(seq, advantage)| {
                let drop = cfg.mask_truncated_completions && seq.truncated;
                let mask = seq.loss_mask.iter().map(|m| *m && !drop).collect();
                Item { seq, mask, advantage, old: None, reference: None }
            })
            .collect();
        let refs: Vec<&Sequence> = items.iter().map(|i| &i.seq).collect();
        let old = if cfg.needs_old_logprobs() { Some(self.logprobs_no_grad(&refs)?) } else { None };
        let reference = if cfg.beta != 0.0 {
            let _off = self.lora.disabled();
            Some(self.logprobs_no_grad(&refs)?)
        } else {
            None
        };
        for (i, item) in items.iter_mut().enumerate() {
            item.old = old.as_ref().map(|o| o[i].clone());
            item.reference = reference.as_ref().map(|r| r[i].clone());
        }
        // Shuffle whole completions, split into steps_per_generation chunks.
        let mut rng = ChaCha8Rng::seed_from_u64(derive_seed(seed, 7));
        items.shuffle(&mut rng);
        let spg = cfg.spg();
        let per = items.len().div_ceil(spg);
        let mut chunks: Vec<Vec<Item>> = Vec::with_capacity(spg);
        let mut it = items.into_iter();
        for _ in 0..spg {
            chunks.push(it.by_ref().take(per).collect());
        }
        self.buffer = chunks;
        self.gen_metrics = m;
        self.generations += 1;
        Ok(())
    }

    /// One micro-step on buffer chunk `chunk`: forward, loss, backward.
    /// Returns the gradients (one per variable) and statistics.
    fn micro_step(&self, chunk: &[Item], n_gen_tokens: usize) -> Result<(Vec<Option<Tensor>>, MicroStats)> {
        let cfg = self.cfg.loss();
        let masks: Vec<Vec<bool>> = chunk.iter().map(|i| pad_mask(&i.mask, i.seq.completion.len())).collect();
        let weights = token_weights(&masks, &cfg, n_gen_tokens);
        let mut grads: Vec<Option<Tensor>> = vec![None; self.vars.len()];
        let mut st = MicroStats::default();
        let dev = self.model.device();
        self.lora.set_training(true);
        let seqs: Vec<&Sequence> = chunk.iter().map(|i| &i.seq).collect();
        for idx in buckets(seqs.iter().map(|s| s.prompt.len())) {
            let sub_tokens: usize = idx.iter().map(|&i| masks[i].iter().filter(|m| **m).count()).sum();
            if sub_tokens == 0 {
                continue;
            }
            // Dropout is reseeded before every block from the sub-batch seed,
            // so a recomputed block replays its masks in the backward pass.
            let dropout_seed = derive_seed(self.cfg.seed, (self.micro as u64) << 20 | idx[0] as u64);
            let keep = if self.cfg.gradient_checkpointing { Activations::Recompute } else { Activations::Graph };
            let per_block = |i: usize| self.lora.reseed_dropout(derive_seed(dropout_seed, i as u64 + 1));
            let batch = ScoreBatch::new(
                &idx.iter().map(|&i| seqs[i].prompt.as_slice()).collect::<Vec<_>>(),
                &idx.iter().map(|&i| seqs[i].completion.as_slice()).collect::<Vec<_>>(),
                dev,
            )?;
            let c = batch.completion_len;
            let pad = |v: &[f32]| {
                let mut v = v.to_vec();
                v.resize(c, 0.0);
                v
            };
            let sub_mask: Vec<Vec<bool>> = idx.iter().map(|&i| pad_mask(&masks[i], c)).collect();
            let sub_adv: Vec<f64> = idx.iter().map(|&i| chunk[i].advantage).collect();
            let sub_w: Vec<f64> = idx.iter().map(|&i| weights[i]).collect();
            let old: Option<Vec<Vec<f32>>> =
                idx.iter().map(|&i| chunk[i].old.as_deref().map(pad)).collect::<Option<Vec<_>>>();
            let reference: Option<Vec<Vec<f32>>> =
                idx.iter().map(|&i| chunk[i].reference.as_deref().map(pad)).collect::<Option<Vec<_>>>();
            let inputs = LossInputs::from_host(
                &sub_mask,
                &sub_adv,
                old.as_deref(),
                reference.as_deref(),
                &sub_w,
                DType::F32,
                dev,
            )?;
            models::device::mem_trace(dev, format_args!("before scoring"));
            let scored = score(&self.model, &batch, self.cfg.temperature, self.cfg.logit_chunk_rows, keep, &per_block)?;
            models::device::mem_trace(dev, format_args!("scored"));
            let lp = Var::from_tensor(&scored.logprobs)?;
            let out = grpo_loss(lp.as_tensor(), &inputs, &cfg)?;
            st.loss += out.loss.to_scalar::<f32>()? as f64;
            let ent = (&scored.entropy * &inputs.mask)?.sum_all()?.to_scalar::<f32>()? as f64;
            st.entropy.push(ent / out.tokens.max(1) as f64);
            if let Some(k) = out.kl {
                st.kl.push(k);
            }
            st.clip_low.push(out.clip_low);
            st.clip_high.push(out.clip_high);
            st.clip_region.push(out.clip_region);
            st.tokens += out.tokens;
            let g_lp = out.loss.backward()?.remove(lp.as_tensor());
            let Some(g_lp) = g_lp else { continue };
            if g_lp.abs()?.sum_all()?.to_scalar::<f32>()? == 0.0 {
                continue; // e.g. every advantage 0 and beta 0: nothing to backpropagate
            }
            models::device::mem_trace(dev, format_args!("loss differentiated"));
            let store = backward(
                &self.model,
                &batch,
                &scored,
                &g_lp,
                self.cfg.temperature,
                self.cfg.logit_chunk_rows,
                &per_block,
            )?;
            for (slot, v) in grads.iter_mut().zip(&self.vars) {
                // Detached: candle's gradients still reference the graph
                // they came from, which would stay alive across sub-batches.
                if let Some(g) = store.get(v.as_tensor()) {
                    *slot = Some(match slot.take() {
                        Some(acc) => (acc + g)?.detach(),
                        None => g.detach(),
                    });
                }
            }
        }
        self.lora.set_training(false);
        // Token-weighted entropy over sub-batches would differ only with several prompt lengths.
        if st.entropy.len() > 1 {
            let e = mean(&st.entropy);
            st.entropy = vec![e];
        }
        Ok((grads, st))
    }

    /// Runs one optimizer step (generating when the buffer is used up) and
    /// returns its metrics.
    pub fn train_step(&mut self, source: &mut dyn RolloutSource) -> Result<Metrics> {
        let t0 = Instant::now();
        let ga = self.cfg.gradient_accumulation_steps.max(1);
        let mut acc: Vec<Option<Tensor>> = vec![None; self.vars.len()];
        let mut all = MicroStats::default();
        let (mut low_min, mut high_max) = (f64::INFINITY, 0.0f64);
        let mut step_tokens = 0usize;
        for _ in 0..ga {
            if self.micro.is_multiple_of(self.cfg.generate_every()) || self.buffer.is_empty() {
                self.fill_buffer(source)?;
            }
            let n_gen: usize = self.buffer.iter().flatten().map(|i| i.mask.iter().filter(|m| **m).count()).sum();
            let chunk = std::mem::take(&mut self.buffer[self.micro % self.cfg.spg()]);
            step_tokens += chunk.iter().map(|i| i.seq.completion.len()).sum::<usize>();
            let res = self.micro_step(&chunk, n_gen);
            let idx = self.micro % self.cfg.spg();
            self.buffer[idx] = chunk;
            let (grads, st) = res?;
            for (a, g) in acc.iter_mut().zip(grads) {
                if let Some(g) = g {
                    *a = Some(match a.take() {
                        Some(x) => (x + g)?,
                        None => g,
                    });
                }
            }
            all.loss += st.loss;
            all.entropy.extend(st.entropy);
            all.kl.extend(st.kl);
            low_min = st.clip_low.iter().copied().fold(low_min, f64::min);
            high_max = st.clip_high.iter().copied().fold(high_max, f64::max);
            all.clip_low.extend(st.clip_low);
            all.clip_high.extend(st.clip_high);
            all.clip_region.extend(st.clip_region);
            all.tokens += st.tokens;
            self.micro += 1;
        }
        let mut grads: Vec<Tensor> = acc
            .into_iter()
            .zip(&self.vars)
            .map(|(g, v)| g.map_or_else(|| v.zeros_like(), Ok))
            .collect::<candle_core::Result<_>>()?;
        let grad_norm = clip_grad_norm(&mut grads, self.cfg.max_grad_norm)?;
        let lr = learning_rate(
            self.cfg.learning_rate,
            self.cfg.lr_scheduler_type,
            self.step,
            self.cfg.max_steps,
            self.cfg.warmup(),
        );
        self.opt.step(&grads, lr)?;
        self.step += 1;

        let mut m = self.gen_metrics.clone();
        m.insert("loss".into(), all.loss);
        m.insert("grad_norm".into(), grad_norm);
        m.insert("learning_rate".into(), lr);
        m.insert("entropy".into(), mean(&all.entropy));
        if self.cfg.beta != 0.0 {
            m.insert("kl".into(), mean(&all.kl));
        }
        m.insert("clip_ratio/low_mean".into(), mean(&all.clip_low));
        m.insert("clip_ratio/low_min".into(), if low_min.is_finite() { low_min } else { 0.0 });
        m.insert("clip_ratio/high_mean".into(), mean(&all.clip_high));
        m.insert("clip_ratio/high_max".into(), high_max);
        m.insert("clip_ratio/region_mean".into(), mean(&all.clip_region));
        let dt = t0.elapsed().as_secs_f64();
        m.insert("step_time".into(), dt);
        m.insert("tokens_per_second".into(), step_tokens as f64 / dt.max(1e-9));
        m.insert("step".into(), self.step as f64);
        Ok(m)
    }
}

/// `mask` padded with `false` (or cut) to `len`.
fn pad_mask(mask: &[bool], len: usize) -> Vec<bool> {
    let mut m = mask.to_vec();
    m.resize(len, false);
    m
}

/// Indices grouped by prompt length (ascending length, stable order), so
/// that each forward sees prompts of one length and right-padded
/// completions only — no attention mask is needed.
fn buckets(lens: impl Iterator<Item = usize>) -> Vec<Vec<usize>> {
    let mut by: BTreeMap<usize, Vec<usize>> = BTreeMap::new();
    for (i, l) in lens.enumerate() {
        by.entry(l).or_default().push(i);
    }
    by.into_values().collect()
}
