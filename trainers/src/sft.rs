//! Supervised fine-tuning (SFT): next-token cross-entropy on completion
//! tokens only, as TRL's `SFTTrainer` computes it — the warm-up that teaches
//! a model the reply format before GRPO.
//!
//! * **Data** ([`SftExample`]): TRL's dataset shapes in JSONL —
//!   `{"prompt": ..., "completion": ...}` (strings: the raw texts
//!   concatenated, EOS appended; or message lists: rendered with the chat
//!   template) and `{"messages": [...]}` (conversational: rendered with the
//!   model's chat template, loss on the assistant turns only) — or an env's
//!   demonstrations over seeds ([`env_examples`]), or the generated 2048
//!   programs (`programs:2048-strategy`). Bad lines name file, line and field.
//! * **Loss**: `−Σ mask·log p(token) / Σ mask` over the batch (f32 log-softmax),
//!   prompt tokens masked out; `mean_token_accuracy` over the same tokens.
//! * **Weights**: LoRA adapters ([`SftWeights::Lora`], the default for a
//!   pretrained base) or every weight ([`SftWeights::Full`]: the model is
//!   rebuilt over a candle `VarMap` so that each tensor is a `Var`; with
//!   random initial weights this trains a model from scratch).
//! * **Optimiser**: [`AdamW`] with a [`Schedule`] and global-norm clipping
//!   (`optim.rs`); batches are shuffled per epoch by a seeded ChaCha stream.
//!
//! Metrics use TRL's names: `loss`, `learning_rate`, `grad_norm`,
//! `mean_token_accuracy`, `num_tokens`, `epoch`.

use std::collections::HashMap;
use std::path::Path;
use std::time::Instant;

use candle_core::{DType, Device, Tensor, Var, D};
use candle_nn::{VarBuilder, VarMap};
use envs::{EnvMaker, Message, Role};
use models::{CausalLm, ModelConfig, ModelFiles};
use policies::llm::LlmPolicy;
use rand::seq::SliceRandom;
use rand::SeedableRng;
use rand_chacha::ChaCha8Rng;

use crate::error::{Result, TrainError};
use crate::optim::{clip_grad_norm, learning_rate, AdamW, AdamWConfig, Schedule};
use crate::score::ScoreBatch;
use crate::trainer::Metrics;
use models::export::{write_hf, Merged};
use models::lora::{Lora, LoraConfig};

/// One tokenized training example.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct SftExample {
    /// Prompt ids (never in the loss).
    pub prompt: Vec<u32>,
    /// Completion ids.
    pub completion: Vec<u32>,
    /// Per completion token: whether it is in the loss (false e.g. for user
    /// turns after the first assistant turn).
    pub mask: Vec<bool>,
}

fn data_err(file: &str, line: usize, message: impl Into<String>) -> TrainError {
    TrainError::Data { file: file.to_string(), line, message: message.into() }
}

/// Parses a JSON list of `{"role", "content"}` messages.
fn parse_messages(v: &serde_json::Value, file: &str, line: usize, field: &str) -> Result<Vec<Message>> {
    let arr = v.as_array().ok_or_else(|| data_err(file, line, format!("`{field}` must be a list of messages")))?;
    arr.iter()
        .enumerate()
        .map(|(i, m)| {
            let role = m.get("role").and_then(|r| r.as_str());
            let content = m.get("content").and_then(|c| c.as_str());
            match (role, content) {
                (Some(r), Some(c)) => {
                    let role: Role = serde_json::from_value(serde_json::json!(r)).map_err(|_| {
                        data_err(file, line, format!("`{field}[{i}].role` is `{r}` (system, user or assistant)"))
                    })?;
                    Ok(Message { role, content: c.to_string() })
                }
                (None, _) => Err(data_err(file, line, format!("`{field}[{i}]` lacks a string `role`"))),
                (_, None) => Err(data_err(file, line, format!("`{field}[{i}]` lacks a string `content`"))),
            }
        })
        .collect()
}

/// Tokenizes a conversation: the prompt is everything before the first
/// assistant turn; the loss covers the assistant turns (as the chat
/// template renders them, end-of-turn token included).
pub fn chat_example(policy: &LlmPolicy, messages: &[Message]) -> std::result::Result<SftExample, String> {
    let tmpl = policy.chat_template().ok_or("the model has no chat template for conversational data")?;
    let render = |msgs: &[Message], gen: bool| -> std::result::Result<String, String> {
        let v = serde_json::to_value(msgs).map_err(|e| e.to_string())?;
        tmpl.render(&v, gen, &serde_json::json!({})).map_err(|e| e.to_string())
    };
    let full = render(messages, false)?;
    let mut spans = Vec::new();
    for (i, m) in messages.iter().enumerate() {
        if m.role != Role::Assistant {
            continue;
        }
        let before = render(&messages[..i], true)?;
        let upto = render(&messages[..=i], false)?;
        if !full.starts_with(&upto) || !upto.starts_with(&before) {
            return Err(
                "the chat template does not render conversations prefix by prefix; use prompt/completion data".into()
            );
        }
        spans.push((before.len(), upto.len()));
    }
    let Some(&(first, _)) = spans.first() else {
        return Err("`messages` has no assistant turn to learn".into());
    };
    let enc = policy.tokenizer().encode(full.as_str(), false).map_err(|e| e.to_string())?;
    let (ids, offsets) = (enc.get_ids(), enc.get_offsets());
    let split = offsets.iter().position(|o| o.0 >= first).unwrap_or(ids.len());
    if split == 0 {
        return Err("the rendered prompt is empty".into());
    }
    let completion = ids[split..].to_vec();
    if completion.is_empty() {
        return Err("the assistant turn renders to no tokens".into());
    }
    let mask = offsets[split..].iter().map(|o| spans.iter().any(|&(s, e)| o.0 >= s && o.0 < e)).collect();
    Ok(SftExample { prompt: ids[..split].to_vec(), completion, mask })
}

/// Tokenizes a plain prompt/completion pair (EOS appended to the completion).
pub fn text_example(policy: &LlmPolicy, prompt: &str, completion: &str) -> std::result::Result<SftExample, String> {
    let p = policy.encode(prompt).map_err(|e| e.to_string())?;
    if p.is_empty() {
        return Err("`prompt` is empty".into());
    }
    let mut c = policy.encode(completion).map_err(|e| e.to_string())?;
    if let Some(&eos) = policy.eos_token_ids().first() {
        c.push(eos);
    }
    if c.is_empty() {
        return Err("`completion` is empty".into());
    }
    let mask = vec![true; c.len()];
    Ok(SftExample { prompt: p, completion: c, mask })
}

/// Reads a JSONL file of TRL SFT examples (see the module docs).
pub fn jsonl_examples(path: &Path, policy: &LlmPolicy) -> Result<Vec<SftExample>> {
    let file = path.display().to_string();
    let text = std::fs::read_to_string(path).map_err(|e| data_err(&file, 0, format!("cannot read: {e}")))?;
    let mut out = Vec::new();
    for (i, raw) in text.lines().enumerate() {
        let line = i + 1;
        if raw.trim().is_empty() {
            continue;
        }
        let v: serde_json::Value =
            serde_json::from_str(raw).map_err(|e| data_err(&file, line, format!("invalid JSON: {e}")))?;
        let ex = if let Some(m) = v.get("messages") {
            chat_example(policy, &parse_messages(m, &file, line, "messages")?)
        } else {
            let p = v.get("prompt").ok_or_else(|| {
                data_err(&file, line, "expected `messages` or `prompt` + `completion` (TRL SFT formats)")
            })?;
            let c = v.get("completion").ok_or_else(|| data_err(&file, line, "`completion` is missing"))?;
            match (p, c) {
                (serde_json::Value::String(p), serde_json::Value::String(c)) => text_example(policy, p, c),
                (serde_json::Value::Array(_), serde_json::Value::Array(_)) => {
                    let mut msgs = parse_messages(p, &file, line, "prompt")?;
                    msgs.extend(parse_messages(c, &file, line, "completion")?);
                    chat_example(policy, &msgs)
                }
                (serde_json::Value::String(_), _) => {
                    return Err(data_err(&file, line, "`completion` must be a string like `prompt`"));
                }
                _ => return Err(data_err(&file, line, "`prompt` must be a string or a list of messages")),
            }
        };
        out.push(ex.map_err(|m| data_err(&file, line, m))?);
    }
    if out.is_empty() {
        return Err(data_err(&file, 0, "no examples"));
    }
    Ok(out)
}

/// Examples from an env: for each seed, the first observation's messages
/// plus an assistant reply from `reply(seed)` (e.g. the env's
/// demonstration, or a generated program), rendered with the chat template.
pub fn env_examples(
    env_id: &str,
    maker: &EnvMaker,
    seeds: std::ops::Range<u64>,
    policy: &LlmPolicy,
    reply: &dyn Fn(&dyn envs::Env, u64) -> Option<String>,
) -> Result<Vec<SftExample>> {
    let mut out = Vec::with_capacity((seeds.end - seeds.start) as usize);
    for seed in seeds {
        let mut env = maker();
        let obs = env.reset(seed).map_err(|e| TrainError::Rollout(format!("{env_id} seed {seed}: {e}")))?;
        let text = reply(env.as_ref(), seed).ok_or_else(|| {
            TrainError::Config(format!("env `{env_id}` has no demonstration for seed {seed}; give a JSONL file"))
        })?;
        let mut msgs = obs.messages.clone();
        msgs.push(Message::assistant(text));
        let ex = chat_example(policy, &msgs).map_err(|m| TrainError::Config(format!("{env_id} seed {seed}: {m}")))?;
        out.push(ex);
    }
    Ok(out)
}

/// Which weights SFT trains.
#[derive(Debug, Clone, PartialEq)]
pub enum SftWeights {
    /// LoRA adapters with these settings.
    Lora(LoraConfig),
    /// Every weight (`--sft-full`).
    Full,
}

/// SFT settings (TRL `SFTConfig` / HF `TrainingArguments` names).
#[derive(Debug, Clone, PartialEq)]
pub struct SftConfig {
    /// Peak learning rate.
    pub learning_rate: f64,
    /// Learning-rate schedule.
    pub lr_scheduler_type: Schedule,
    /// Warm-up as a fraction of `max_steps`.
    pub warmup_ratio: f64,
    /// Optimizer steps.
    pub max_steps: usize,
    /// Examples per step.
    pub per_device_train_batch_size: usize,
    /// Global gradient-norm clip (0 = off).
    pub max_grad_norm: f64,
    /// Decoupled weight decay.
    pub weight_decay: f64,
    /// Seed of the shuffling and LoRA init.
    pub seed: u64,
    /// Examples longer than this (prompt + completion) are cut from the right.
    pub max_length: usize,
    /// LoRA or full.
    pub weights: SftWeights,
}

impl Default for SftConfig {
    fn default() -> Self {
        Self {
            learning_rate: 2e-4,
            lr_scheduler_type: Schedule::Linear,
            warmup_ratio: 0.03,
            max_steps: 100,
            per_device_train_batch_size: 8,
            max_grad_norm: 1.0,
            weight_decay: 0.0,
            seed: 42,
            max_length: 1024,
            weights: SftWeights::Lora(LoraConfig::default()),
        }
    }
}

/// Rebuilds `model`'s weights `tensors` over a `VarMap`, so that every
/// weight is trainable (full fine-tuning, training from scratch).
pub fn trainable_model(
    cfg: &ModelConfig,
    tensors: HashMap<String, Tensor>,
    device: &Device,
) -> Result<(CausalLm, VarMap)> {
    let vm = VarMap::new();
    {
        let mut data = vm.data().lock().map_err(|_| TrainError::Config("VarMap lock poisoned".into()))?;
        for (k, t) in tensors {
            data.insert(k, Var::from_tensor(&t.to_dtype(DType::F32)?.to_device(device)?)?);
        }
    }
    let model = CausalLm::load(cfg, VarBuilder::from_varmap(&vm, DType::F32, device))?;
    Ok((model, vm))
}

/// The SFT trainer.
pub struct SftTrainer {
    model: CausalLm,
    lora: Option<Lora>,
    varmap: Option<VarMap>,
    vars: Vec<Var>,
    opt: AdamW,
    cfg: SftConfig,
    examples: Vec<SftExample>,
    order: Vec<usize>,
    cursor: usize,
    epoch: usize,
    step: usize,
    num_tokens: f64,
}

impl std::fmt::Debug for SftTrainer {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("SftTrainer")
            .field("cfg", &self.cfg)
            .field("examples", &self.examples.len())
            .field("step", &self.step)
            .finish()
    }
}

impl SftTrainer {
    /// A trainer over `examples`. For [`SftWeights::Lora`] the adapters are
    /// attached to `model`; for [`SftWeights::Full`] give the `VarMap`
    /// the model was built over ([`trainable_model`]).
    pub fn new(mut model: CausalLm, varmap: Option<VarMap>, examples: Vec<SftExample>, cfg: SftConfig) -> Result<Self> {
        if examples.is_empty() {
            return Err(TrainError::Config("SFT needs at least one example".into()));
        }
        if cfg.per_device_train_batch_size == 0 || cfg.max_steps == 0 {
            return Err(TrainError::Config("per_device_train_batch_size and max_steps must be at least 1".into()));
        }
        let (lora, vars) = match (&cfg.weights, &varmap) {
            (SftWeights::Lora(lc), _) => {
                let l = Lora::attach(&mut model, lc, envs::policy::derive_seed(cfg.seed, 0x10a))?;
                let v = l.vars();
                (Some(l), v)
            }
            (SftWeights::Full, Some(vm)) => (None, vm.all_vars()),
            (SftWeights::Full, None) => {
                return Err(TrainError::Config("full SFT needs the model built over a VarMap".into()));
            }
        };
        let adamw = AdamWConfig { weight_decay: cfg.weight_decay, ..AdamWConfig::default() };
        let opt = AdamW::new(vars.clone(), adamw)?;
        let mut examples = examples;
        for e in &mut examples {
            let room = cfg.max_length.saturating_sub(e.prompt.len()).max(1);
            e.completion.truncate(room);
            e.mask.resize(e.completion.len(), true);
        }
        let mut t = Self {
            model,
            lora,
            varmap,
            vars,
            opt,
            cfg,
            examples,
            order: Vec::new(),
            cursor: 0,
            epoch: 0,
            step: 0,
            num_tokens: 0.0,
        };
        t.reshuffle();
        Ok(t)
    }

    fn reshuffle(&mut self) {
        self.order = (0..self.examples.len()).collect();
        let mut rng = ChaCha8Rng::seed_from_u64(envs::policy::derive_seed(self.cfg.seed, self.epoch as u64));
        self.order.shuffle(&mut rng);
        self.cursor = 0;
    }

    /// The model (adapters attached for LoRA).
    pub fn model(&self) -> &CausalLm {
        &self.model
    }

    /// The adapters (LoRA mode).
    pub fn lora(&self) -> Option<&Lora> {
        self.lora.as_ref()
    }

    /// Optimizer steps done.
    pub fn step(&self) -> usize {
        self.step
    }

    /// The loss, accuracy and token count of `batch` without updating
    /// anything: `(mean NLL, mean_token_accuracy, tokens)`.
    pub fn evaluate(&self, batch: &[SftExample]) -> Result<(f64, f64, usize)> {
        let refs: Vec<&SftExample> = batch.iter().collect();
        let (loss, acc, n, _) = self.forward_backward(&refs, false)?;
        Ok((loss, acc, n))
    }

    /// Loss and (optionally) gradients of `batch`, bucketed by prompt length.
    #[allow(clippy::type_complexity)]
    fn forward_backward(&self, batch: &[&SftExample], grad: bool) -> Result<(f64, f64, usize, Vec<Option<Tensor>>)> {
        let n_tokens: usize = batch.iter().map(|e| e.mask.iter().filter(|m| **m).count()).sum();
        let mut grads: Vec<Option<Tensor>> = vec![None; self.vars.len()];
        if n_tokens == 0 {
            return Ok((0.0, 0.0, 0, grads));
        }
        let dev = self.model.device();
        let mut by_len: std::collections::BTreeMap<usize, Vec<&SftExample>> = Default::default();
        for e in batch {
            by_len.entry(e.prompt.len()).or_default().push(e);
        }
        let (mut loss, mut correct) = (0.0, 0.0);
        for group in by_len.values() {
            let sb = ScoreBatch::new(
                &group.iter().map(|e| e.prompt.as_slice()).collect::<Vec<_>>(),
                &group.iter().map(|e| e.completion.as_slice()).collect::<Vec<_>>(),
                dev,
            )?;
            let (b, c) = (sb.rows(), sb.completion_len);
            let mut w = Vec::with_capacity(b * c);
            for e in group {
                for t in 0..c {
                    w.push(if e.mask.get(t).copied().unwrap_or(false) { 1.0 / n_tokens as f32 } else { 0.0 });
                }
            }
            let w = Tensor::from_vec(w, b * c, dev)?;
            let h = self.model.hidden(&sb.ids, None)?.narrow(1, sb.prompt_len - 1, c)?;
            let h = h.reshape((b * c, h.dim(2)?))?;
            let logits = candle_core::Module::forward(self.model.lm_head(), &h)?.to_dtype(DType::F32)?;
            let logp = candle_nn::ops::log_softmax(&logits, D::Minus1)?;
            let lp = logp.gather(&sb.targets.unsqueeze(1)?, 1)?.squeeze(1)?;
            let part = (lp * &w)?.sum_all()?.neg()?;
            loss += part.to_scalar::<f32>()? as f64;
            let hit = logits.argmax(D::Minus1)?.eq(&sb.targets)?.to_dtype(DType::F32)?;
            correct += (hit * (&w * n_tokens as f64)?)?.sum_all()?.to_scalar::<f32>()? as f64;
            if grad {
                let store = part.backward()?;
                // Detached: candle's gradients reference the graph they came
                // from, which would otherwise stay alive across length groups.
                for (slot, v) in grads.iter_mut().zip(&self.vars) {
                    if let Some(g) = store.get(v.as_tensor()) {
                        *slot = Some(match slot.take() {
                            Some(acc) => (acc + g)?.detach(),
                            None => g.detach(),
                        });
                    }
                }
            }
        }
        Ok((loss, correct / n_tokens as f64, n_tokens, grads))
    }

    /// One optimizer step on the next batch (shuffled epochs).
    pub fn train_step(&mut self) -> Result<Metrics> {
        let t0 = Instant::now();
        let bs = self.cfg.per_device_train_batch_size;
        let mut idx = Vec::with_capacity(bs);
        while idx.len() < bs {
            if self.cursor >= self.order.len() {
                self.epoch += 1;
                self.reshuffle();
            }
            idx.push(self.order[self.cursor]);
            self.cursor += 1;
        }
        let batch: Vec<&SftExample> = idx.iter().map(|&i| &self.examples[i]).collect();
        if let Some(l) = &self.lora {
            l.set_training(true);
        }
        let (loss, acc, n, grads) = self.forward_backward(&batch, true)?;
        if let Some(l) = &self.lora {
            l.set_training(false);
        }
        let mut grads: Vec<Tensor> = grads
            .into_iter()
            .zip(&self.vars)
            .map(|(g, v)| g.map_or_else(|| v.zeros_like(), Ok))
            .collect::<candle_core::Result<_>>()?;
        let grad_norm = if self.cfg.max_grad_norm > 0.0 {
            clip_grad_norm(&mut grads, self.cfg.max_grad_norm)?
        } else {
            crate::optim::global_norm(&grads)?
        };
        let warmup = (self.cfg.warmup_ratio * self.cfg.max_steps as f64).ceil() as usize;
        let lr =
            learning_rate(self.cfg.learning_rate, self.cfg.lr_scheduler_type, self.step, self.cfg.max_steps, warmup);
        self.opt.step(&grads, lr)?;
        self.step += 1;
        self.num_tokens += batch.iter().map(|e| e.prompt.len() + e.completion.len()).sum::<usize>() as f64;
        let mut m = Metrics::new();
        m.insert("loss".into(), loss);
        m.insert("mean_token_accuracy".into(), acc);
        m.insert("grad_norm".into(), grad_norm);
        m.insert("learning_rate".into(), lr);
        m.insert("num_tokens".into(), self.num_tokens);
        m.insert("completion_tokens".into(), n as f64);
        m.insert("epoch".into(), self.epoch as f64 + self.cursor as f64 / self.order.len() as f64);
        m.insert("step_time".into(), t0.elapsed().as_secs_f64());
        m.insert("step".into(), self.step as f64);
        Ok(m)
    }

    /// Writes a loadable model folder with [`models::export::write_hf`]:
    /// the configs, tokenizer and chat template of the base `files`, and
    /// the trained weights (full: every weight; LoRA: the base with the
    /// adapters merged in, plus `adapter/` in PEFT format).
    pub fn save(&self, files: &ModelFiles, dir: &Path) -> Result<()> {
        let merged = match (&self.varmap, &self.lora) {
            (Some(vm), None) => {
                let data = vm.data().lock().map_err(|_| TrainError::Config("VarMap lock poisoned".into()))?;
                let weights = data.iter().map(|(k, v)| (k.clone(), v.as_detached_tensor())).collect();
                Merged::with_weights(&files.dir, weights)?
            }
            (_, Some(lora)) => {
                lora.save_peft(&dir.join("adapter"), &files.dir.display().to_string())?;
                let mut base = Merged::load(&files.dir)?;
                base.add_lora(lora)?;
                base
            }
            (None, None) => return Err(TrainError::Config("nothing to save".into())),
        };
        Ok(write_hf(&merged, dir, None)?)
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::toy::{TinyModelSpec, BOS, EOS};

    /// `d1 d2 =` → `d2 d1 <eos>` over digit ids 4..14.
    fn reverse_task(n: usize) -> Vec<SftExample> {
        (0..n)
            .map(|i| {
                let (a, b) = (4 + (i % 10) as u32, 4 + ((i / 10) % 10) as u32);
                SftExample { prompt: vec![BOS, a, b, 15], completion: vec![b, a, EOS], mask: vec![true; 3] }
            })
            .collect()
    }

    fn full_trainer(examples: Vec<SftExample>, steps: usize) -> SftTrainer {
        let spec = TinyModelSpec::default();
        let cfg = ModelConfig::from_json(&spec.config_json()).unwrap();
        let (model, vm) = trainable_model(&cfg, spec.weights(3, &Device::Cpu).unwrap(), &Device::Cpu).unwrap();
        let cfg = SftConfig {
            learning_rate: 1e-2,
            max_steps: steps,
            per_device_train_batch_size: 16,
            weights: SftWeights::Full,
            ..SftConfig::default()
        };
        SftTrainer::new(model, Some(vm), examples, cfg).unwrap()
    }

    #[test]
    fn loss_goes_down_full_and_lora() {
        let data = reverse_task(100);
        let mut t = full_trainer(data.clone(), 60);
        let (before, _, _) = t.evaluate(&data).unwrap();
        for _ in 0..60 {
            t.train_step().unwrap();
        }
        let (after, acc, n) = t.evaluate(&data).unwrap();
        assert_eq!(n, 300);
        assert!(after < before * 0.5, "full: loss {before} -> {after}");
        assert!(acc > 0.5, "full: accuracy {acc}");

        let model = TinyModelSpec::default().build(3, &Device::Cpu).unwrap();
        let cfg =
            SftConfig { learning_rate: 1e-2, max_steps: 40, per_device_train_batch_size: 16, ..SftConfig::default() };
        let mut t = SftTrainer::new(model, None, data.clone(), cfg).unwrap();
        let (before, _, _) = t.evaluate(&data).unwrap();
        let m0 = t.train_step().unwrap();
        for _ in 1..40 {
            t.train_step().unwrap();
        }
        let (after, _, _) = t.evaluate(&data).unwrap();
        assert!(after < before * 0.8, "lora: loss {before} -> {after}");
        for k in ["loss", "learning_rate", "grad_norm", "mean_token_accuracy", "num_tokens", "epoch"] {
            assert!(m0.contains_key(k), "metric {k} missing");
        }
    }

    #[test]
    fn prompt_tokens_get_no_gradient() {
        // The loss and gradient equal the completion-only NLL of a plain
        // forward, and differ from the NLL over the whole sequence.
        let ex = SftExample { prompt: vec![BOS, 5, 6, 15], completion: vec![7, 8, EOS], mask: vec![true, true, false] };
        let t = full_trainer(vec![ex.clone()], 1);
        let (loss, _, n, grads) = t.forward_backward(&[&ex], true).unwrap();
        assert_eq!(n, 2);
        let full: Vec<u32> = ex.prompt.iter().chain(&ex.completion).copied().collect();
        let ids = Tensor::new(&full[..full.len() - 1], &Device::Cpu).unwrap().unsqueeze(0).unwrap();
        let logp =
            candle_nn::ops::log_softmax(&t.model.forward(&ids, None).unwrap().squeeze(0).unwrap(), D::Minus1).unwrap();
        let pick = |pos: usize| logp.get(pos).unwrap().get(full[pos + 1] as usize).unwrap();
        // Completion tokens 7 and 8 are predicted at positions 3 and 4; EOS is masked.
        let manual = ((pick(3) + pick(4)).unwrap() * -0.5).unwrap();
        assert!((manual.to_scalar::<f32>().unwrap() as f64 - loss).abs() < 1e-5);
        let all: Vec<Tensor> = (0..full.len() - 1).map(pick).collect();
        let whole = (Tensor::stack(&all, 0).unwrap().mean_all().unwrap() * -1.0).unwrap();
        assert!((whole.to_scalar::<f32>().unwrap() as f64 - loss).abs() > 1e-3);
        let store = manual.backward().unwrap();
        let mut checked = 0;
        for (g, v) in grads.iter().zip(&t.vars) {
            let (Some(g), Some(m)) = (g, store.get(v.as_tensor())) else { continue };
            let diff = (g - m).unwrap().abs().unwrap().max_all().unwrap().to_scalar::<f32>().unwrap();
            assert!(diff < 1e-5, "gradient differs by {diff}");
            checked += 1;
        }
        assert!(checked > 10, "only {checked} gradients compared");
        // A fully masked example has zero loss and no gradient.
        let none = SftExample { mask: vec![false; 3], ..ex };
        let (l, _, n, g) = t.forward_backward(&[&none], true).unwrap();
        assert_eq!((l, n), (0.0, 0));
        assert!(g.iter().all(|g| g.is_none()));
    }

    #[test]
    fn jsonl_formats_and_errors() {
        let policy = policies::llm::tiny::random(0).unwrap();
        let dir = tempfile::tempdir().unwrap();
        let good = dir.path().join("good.jsonl");
        std::fs::write(
            &good,
            "{\"prompt\": \"ab\", \"completion\": \"cd\"}\n\n\
             {\"messages\": [{\"role\": \"user\", \"content\": \"Hi. More\"}, {\"role\": \"assistant\", \"content\": \"yo\"}]}\n",
        )
        .unwrap();
        let ex = jsonl_examples(&good, &policy).unwrap();
        assert_eq!(ex.len(), 2);
        let tok = policy.tokenizer();
        assert_eq!(tok.decode(&ex[0].completion, false).unwrap(), "cd<|end|>");
        // Conversational: the prompt is the rendered user turn, the loss is on the assistant turn.
        assert_eq!(tok.decode(&ex[1].prompt, false).unwrap(), "<|user|>Hi\n<|assistant|>");
        let learned: Vec<u32> =
            ex[1].completion.iter().zip(&ex[1].mask).filter(|(_, m)| **m).map(|(t, _)| *t).collect();
        assert_eq!(tok.decode(&learned, false).unwrap(), "yo<|end|>");

        let bad = dir.path().join("bad.jsonl");
        for (line, needle) in [
            ("{\"prompt\": \"ab\"}", "`completion` is missing"),
            ("{\"text\": \"ab\"}", "expected `messages` or `prompt`"),
            ("{\"messages\": [{\"role\": \"robot\", \"content\": \"x\"}]}", "messages[0].role"),
            ("{\"messages\": [{\"role\": \"user\", \"content\": \"x\"}]}", "no assistant turn"),
            ("not json", "invalid JSON"),
        ] {
            std::fs::write(&bad, format!("{{\"prompt\": \"a\", \"completion\": \"b\"}}\n{line}\n")).unwrap();
            let e = jsonl_examples(&bad, &policy).unwrap_err().to_string();
            assert!(e.contains("bad.jsonl:2") && e.contains(needle), "{e}");
        }
    }

    #[test]
    fn lora_merge_reproduces_the_adapted_model() {
        let spec = TinyModelSpec::default();
        let mut model = spec.build(3, &Device::Cpu).unwrap();
        let lora = Lora::attach(&mut model, &LoraConfig { r: 4, ..LoraConfig::default() }, 1).unwrap();
        for l in lora.layers() {
            let b = l.b();
            b.set(&Tensor::randn(0f32, 0.1, b.shape(), &Device::Cpu).unwrap()).unwrap();
        }
        let dir = tempfile::tempdir().unwrap();
        std::fs::write(dir.path().join("config.json"), spec.config_json().to_string()).unwrap();
        let mut m = Merged::with_weights(dir.path(), spec.weights(3, &Device::Cpu).unwrap()).unwrap();
        m.add_lora(&lora).unwrap();
        let cfg = ModelConfig::from_json(&spec.config_json()).unwrap();
        let tensors = m.tensors.into_iter().collect();
        let merged = CausalLm::load(&cfg, VarBuilder::from_tensors(tensors, DType::F32, &Device::Cpu)).unwrap();
        let ids = Tensor::new(&[[BOS, 4, 5, 6]], &Device::Cpu).unwrap();
        let a = model.forward(&ids, None).unwrap();
        let b = merged.forward(&ids, None).unwrap();
        let diff = (a - b).unwrap().abs().unwrap().max_all().unwrap().to_scalar::<f32>().unwrap();
        assert!(diff < 1e-4, "merged model differs by {diff}");
    }
}
