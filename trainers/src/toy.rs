//! The toy learning setups (the configurations called L5/L6 in BENCHMARKS.md), used to
//! prove that the trainer learns: a random-init 2-layer Qwen2-shaped model
//! (hidden 64, MLP 128, 4 heads / 2 KV heads, tied embeddings), a
//! character-level vocabulary of 19 symbols, and two tasks.
//!
//! * `count_a`: prompt = 3 random characters from {b, c} then `=`;
//!   reward = fraction of generated characters equal to `a`.
//! * `echo`: prompt `"<d>="` with a random digit; reward = fraction of
//!   generated characters equal to `d`.

use std::collections::HashMap;

use candle_core::{DType, Device, Tensor};
use candle_nn::VarBuilder;
use models::sampling::{generate, Detokenize, FinishReason, SampleOptions};
use models::{CausalLm, ModelConfig};
use rand::{Rng, SeedableRng};
use rand_chacha::ChaCha8Rng;

use crate::error::Result;
use crate::trainer::{RolloutSource, Sequence};

/// Special tokens of the toy vocabulary.
pub const SPECIALS: [&str; 4] = ["<pad>", "<bos>", "<eos>", "<unk>"];
/// The 15 ordinary characters (ids 4..19).
pub const CHARS: &str = "0123456789+=abc";

/// Padding id.
pub const PAD: u32 = 0;
/// Beginning-of-sequence id.
pub const BOS: u32 = 1;
/// End-of-sequence id.
pub const EOS: u32 = 2;
/// Unknown-character id.
pub const UNK: u32 = 3;

/// A character-level tokenizer over [`SPECIALS`] + [`CHARS`] (19 ids).
#[derive(Debug, Clone, Default)]
pub struct CharTokenizer;

impl CharTokenizer {
    /// Vocabulary size.
    pub const VOCAB: usize = SPECIALS.len() + 15;

    /// Ids of `text` (unknown characters map to `<unk>`), without BOS.
    pub fn encode(&self, text: &str) -> Vec<u32> {
        text.chars()
            .map(|ch| CHARS.chars().position(|c| c == ch).map_or(UNK, |i| (i + SPECIALS.len()) as u32))
            .collect()
    }

    /// Text of `ids`; special tokens are skipped.
    pub fn decode(&self, ids: &[u32]) -> String {
        ids.iter()
            .filter_map(|&id| (id as usize).checked_sub(SPECIALS.len()).and_then(|i| CHARS.chars().nth(i)))
            .collect()
    }
}

impl Detokenize for CharTokenizer {
    fn detokenize(&self, ids: &[u32]) -> models::Result<String> {
        Ok(self.decode(ids))
    }
}

/// Shape and initialisation of the toy model.
#[derive(Debug, Clone, Copy, PartialEq)]
pub struct TinyModelSpec {
    /// Residual width.
    pub hidden: usize,
    /// MLP width.
    pub intermediate: usize,
    /// Decoder layers.
    pub layers: usize,
    /// Query heads.
    pub heads: usize,
    /// Key/value heads.
    pub kv_heads: usize,
    /// Std of the (tied) embedding init.
    pub embed_std: f64,
    /// Std of the projection weights (biases are zero, norms one).
    pub init_std: f64,
}

impl Default for TinyModelSpec {
    /// the L5 toy model: initializer std 0.2 (embeddings included).
    fn default() -> Self {
        Self { hidden: 64, intermediate: 128, layers: 2, heads: 4, kv_heads: 2, embed_std: 0.2, init_std: 0.2 }
    }
}

/// Standard normal samples (Box–Muller on a ChaCha stream).
fn normal(rng: &mut ChaCha8Rng, n: usize, std: f64) -> Vec<f32> {
    let mut out = Vec::with_capacity(n + 1);
    while out.len() < n {
        let u1: f64 = rng.gen_range(f64::MIN_POSITIVE..1.0);
        let u2: f64 = rng.gen();
        let r = (-2.0 * u1.ln()).sqrt();
        let th = 2.0 * std::f64::consts::PI * u2;
        out.push((r * th.cos() * std) as f32);
        out.push((r * th.sin() * std) as f32);
    }
    out.truncate(n);
    out
}

impl TinyModelSpec {
    /// `config.json` of the model (Qwen2, tied embeddings).
    pub fn config_json(&self) -> serde_json::Value {
        serde_json::json!({
            "model_type": "qwen2",
            "architectures": ["Qwen2ForCausalLM"],
            "vocab_size": CharTokenizer::VOCAB,
            "hidden_size": self.hidden,
            "intermediate_size": self.intermediate,
            "num_hidden_layers": self.layers,
            "num_attention_heads": self.heads,
            "num_key_value_heads": self.kv_heads,
            "max_position_embeddings": 128,
            "rms_norm_eps": 1e-6,
            "rope_theta": 10000.0,
            "tie_word_embeddings": true,
            "hidden_act": "silu",
            "bos_token_id": BOS,
            "eos_token_id": EOS,
            "initializer_range": self.init_std,
            "torch_dtype": "float32",
        })
    }

    /// Random weights under Hugging Face names, seeded.
    pub fn weights(&self, seed: u64, device: &Device) -> Result<HashMap<String, Tensor>> {
        let mut rng = ChaCha8Rng::seed_from_u64(seed);
        let (h, i, v) = (self.hidden, self.intermediate, CharTokenizer::VOCAB);
        let hd = h / self.heads;
        let kv = self.kv_heads * hd;
        let mut t = HashMap::new();
        let mut put = |name: String, dims: &[usize], values: Vec<f32>| -> Result<()> {
            t.insert(name, Tensor::from_vec(values, dims, device)?);
            Ok(())
        };
        put("model.embed_tokens.weight".into(), &[v, h], normal(&mut rng, v * h, self.embed_std))?;
        for l in 0..self.layers {
            let p = format!("model.layers.{l}");
            for (name, out, inp) in [
                ("self_attn.q_proj", h, h),
                ("self_attn.k_proj", kv, h),
                ("self_attn.v_proj", kv, h),
                ("self_attn.o_proj", h, h),
                ("mlp.gate_proj", i, h),
                ("mlp.up_proj", i, h),
                ("mlp.down_proj", h, i),
            ] {
                put(format!("{p}.{name}.weight"), &[out, inp], normal(&mut rng, out * inp, self.init_std))?;
            }
            for (name, n) in [("self_attn.q_proj", h), ("self_attn.k_proj", kv), ("self_attn.v_proj", kv)] {
                put(format!("{p}.{name}.bias"), &[n], vec![0.0; n])?;
            }
            put(format!("{p}.input_layernorm.weight"), &[h], vec![1.0; h])?;
            put(format!("{p}.post_attention_layernorm.weight"), &[h], vec![1.0; h])?;
        }
        put("model.norm.weight".into(), &[h], vec![1.0; h])?;
        Ok(t)
    }

    /// Builds the model with random weights (f32).
    pub fn build(&self, seed: u64, device: &Device) -> Result<CausalLm> {
        let cfg = ModelConfig::from_json(&self.config_json())?;
        let vb = VarBuilder::from_tensors(self.weights(seed, device)?, DType::F32, device);
        Ok(CausalLm::load(&cfg, vb)?)
    }

    /// Writes `config.json` and `model.safetensors` (a loadable HF folder).
    pub fn save(&self, seed: u64, dir: &std::path::Path) -> Result<()> {
        std::fs::create_dir_all(dir)?;
        std::fs::write(dir.join("config.json"), serde_json::to_string_pretty(&self.config_json())?)?;
        candle_core::safetensors::save(&self.weights(seed, &Device::Cpu)?, dir.join("model.safetensors"))?;
        Ok(())
    }
}

/// Which toy task.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum ToyTask {
    /// Emit `a`s after a `{b,c}³=` prompt.
    CountA,
    /// Repeat the prompt's digit.
    Echo,
}

impl ToyTask {
    /// The task's name (also its reward function's name).
    pub fn name(self) -> &'static str {
        match self {
            ToyTask::CountA => "count_a",
            ToyTask::Echo => "echo",
        }
    }

    /// A random prompt text.
    pub fn prompt(self, rng: &mut ChaCha8Rng) -> String {
        match self {
            ToyTask::CountA => {
                let mut s: String = (0..3).map(|_| if rng.gen::<bool>() { 'b' } else { 'c' }).collect();
                s.push('=');
                s
            }
            ToyTask::Echo => format!("{}=", rng.gen_range(0..10)),
        }
    }

    /// The reward of `completion` (text) for `prompt`: the fraction of its
    /// characters equal to the target (0 for an empty completion).
    pub fn reward(self, prompt: &str, completion: &str) -> f64 {
        let target = match self {
            ToyTask::CountA => 'a',
            ToyTask::Echo => prompt.chars().next().unwrap_or('?'),
        };
        let n = completion.chars().count();
        if n == 0 {
            return 0.0;
        }
        completion.chars().filter(|c| *c == target).count() as f64 / n as f64
    }
}

/// A [`RolloutSource`] for a toy task: samples prompts, generates with the
/// trained model itself and scores completions with the task's reward.
#[derive(Debug, Clone)]
pub struct ToySource {
    /// The task.
    pub task: ToyTask,
    /// The tokenizer.
    pub tokenizer: CharTokenizer,
}

impl ToySource {
    /// A source for `task`.
    pub fn new(task: ToyTask) -> Self {
        Self { task, tokenizer: CharTokenizer }
    }
}

impl RolloutSource for ToySource {
    fn reward_names(&self) -> Vec<String> {
        vec![self.task.name().to_string()]
    }

    fn generate(
        &mut self,
        model: &CausalLm,
        prompts: usize,
        group: usize,
        sampling: &SampleOptions,
        seed: u64,
    ) -> Result<Vec<Sequence>> {
        let mut rng = ChaCha8Rng::seed_from_u64(seed);
        let mut out = Vec::with_capacity(prompts * group);
        for g in 0..prompts {
            let text = self.task.prompt(&mut rng);
            let mut prompt = vec![BOS];
            prompt.extend(self.tokenizer.encode(&text));
            let opts = SampleOptions {
                eos_token_ids: vec![EOS],
                seed: envs::policy::derive_seed(seed, g as u64),
                ..sampling.clone()
            };
            for s in generate(model, &self.tokenizer, &prompt, group, &opts)? {
                let reward = self.task.reward(&text, &s.text);
                let seen = opts.clip_prompt(&prompt);
                out.push(Sequence {
                    prompt: seen.to_vec(),
                    loss_mask: vec![true; s.token_ids.len()],
                    completion: s.token_ids,
                    truncated: s.finish == FinishReason::Length,
                    rewards: vec![Some(reward)],
                    text: s.text,
                    prompt_clipped: prompt.len() - seen.len(),
                });
            }
        }
        Ok(out)
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn tokenizer_round_trips_and_has_19_symbols() {
        let t = CharTokenizer;
        assert_eq!(CharTokenizer::VOCAB, 19);
        let ids = t.encode("bcb=a7+");
        assert!(ids.iter().all(|&i| (4..19).contains(&i)));
        assert_eq!(t.decode(&ids), "bcb=a7+");
        assert_eq!(t.decode(&[BOS, 16, EOS]), "a");
        assert_eq!(t.encode("x"), vec![UNK]);
    }

    #[test]
    fn rewards_are_fractions_of_the_target_character() {
        assert_eq!(ToyTask::CountA.reward("bcb=", "aaba"), 0.75);
        assert_eq!(ToyTask::CountA.reward("bcb=", ""), 0.0);
        assert_eq!(ToyTask::Echo.reward("7=", "7771"), 0.75);
        let mut rng = ChaCha8Rng::seed_from_u64(0);
        let p = ToyTask::CountA.prompt(&mut rng);
        assert!(p.len() == 4 && p.ends_with('=') && p[..3].chars().all(|c| c == 'b' || c == 'c'));
    }

    #[test]
    fn tiny_model_has_the_l5_shape_and_is_seeded() {
        let spec = TinyModelSpec::default();
        let w = spec.weights(3, &Device::Cpu).unwrap();
        let e = w["model.embed_tokens.weight"].flatten_all().unwrap().to_vec1::<f32>().unwrap();
        let std = (e.iter().map(|x| (*x as f64).powi(2)).sum::<f64>() / e.len() as f64).sqrt();
        assert!((std - 0.2).abs() < 0.02, "embedding std {std}");
        let m = spec.build(3, &Device::Cpu).unwrap();
        assert_eq!(m.linears().len(), 14);
        let ids = Tensor::new(&[[BOS, 4, 5]], &Device::Cpu).unwrap();
        let a = m.forward(&ids, None).unwrap().flatten_all().unwrap().to_vec1::<f32>().unwrap();
        let b = spec.build(3, &Device::Cpu).unwrap().forward(&ids, None).unwrap();
        assert_eq!(a, b.flatten_all().unwrap().to_vec1::<f32>().unwrap());
        assert_eq!(a.len(), 3 * 19);
    }
}
