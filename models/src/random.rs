//! Random-weight models of any supported dense shape (benchmarks, toy
//! training runs): deterministic for a seed.

use std::collections::HashMap;

use candle_core::{DType, Device, Result, Tensor};
use candle_nn::VarBuilder;
use rand::{Rng, SeedableRng};
use rand_chacha::ChaCha8Rng;

use crate::config::{Arch, ModelConfig};
use crate::model::CausalLm;

/// Names of the real model shapes [`shape`] knows (for benchmarks).
pub const SHAPES: [&str; 2] = ["qwen2.5-0.5b", "qwen3-4b"];

/// The config of a real model's shape by name (see [`SHAPES`]): Qwen2.5-0.5B
/// (24 layers, hidden 896, 14/2 heads, vocab 151936, tied) or Qwen3-4B (36
/// layers, hidden 2560, 32/8 heads, head dim 128, tied); `None` for others.
pub fn shape(name: &str) -> Option<ModelConfig> {
    let v = match name {
        "qwen2.5-0.5b" => serde_json::json!({"model_type": "qwen2", "vocab_size": 151936, "hidden_size": 896,
            "intermediate_size": 4864, "num_hidden_layers": 24, "num_attention_heads": 14, "num_key_value_heads": 2,
            "max_position_embeddings": 32768, "rope_theta": 1000000.0, "rms_norm_eps": 1e-6,
            "tie_word_embeddings": true, "hidden_act": "silu"}),
        "qwen3-4b" => serde_json::json!({"model_type": "qwen3", "vocab_size": 151936, "hidden_size": 2560,
            "intermediate_size": 9728, "num_hidden_layers": 36, "num_attention_heads": 32, "num_key_value_heads": 8,
            "head_dim": 128, "max_position_embeddings": 40960, "rope_theta": 1000000.0, "rms_norm_eps": 1e-6,
            "tie_word_embeddings": true, "hidden_act": "silu"}),
        _ => return None,
    };
    ModelConfig::from_json(&v).ok()
}

/// How to draw the weights.
#[derive(Debug, Clone, Copy, PartialEq)]
pub struct RandomInit {
    /// Std of projection weights.
    pub std: f32,
    /// Std of the embedding (and untied head).
    pub embed_std: f32,
    /// Seed.
    pub seed: u64,
}

impl Default for RandomInit {
    fn default() -> Self {
        Self { std: 0.02, embed_std: 0.02, seed: 0 }
    }
}

fn normal(rng: &mut ChaCha8Rng, n: usize, std: f32) -> Vec<f32> {
    let mut out = Vec::with_capacity(n + 1);
    while out.len() < n {
        // Box-Muller.
        let u1: f32 = rng.gen::<f32>().max(f32::MIN_POSITIVE);
        let u2: f32 = rng.gen();
        let r = (-2.0 * u1.ln()).sqrt() * std;
        let t = std::f32::consts::TAU * u2;
        out.push(r * t.cos());
        out.push(r * t.sin());
    }
    out.truncate(n);
    out
}

/// Random weights under Hugging Face names for a dense (Llama/Qwen) config;
/// norms are 1 and biases 0. On the CPU the draws come from a ChaCha8
/// stream (identical on every machine); on a GPU from the device's own
/// generator seeded with `init.seed`.
pub fn random_weights(cfg: &ModelConfig, init: RandomInit, device: &Device) -> Result<HashMap<String, Tensor>> {
    if cfg.arch == Arch::GptOss {
        candle_core::bail!("random_weights: gpt-oss is not supported");
    }
    let mut rng = ChaCha8Rng::seed_from_u64(init.seed);
    if !device.is_cpu() {
        device.set_seed(init.seed)?;
    }
    let mut out = HashMap::new();
    let (h, i, hd) = (cfg.hidden_size, cfg.intermediate_size, cfg.head_dim);
    let (q, kv) = (cfg.num_attention_heads * hd, cfg.num_key_value_heads * hd);
    let mut put = |name: String, shape: &[usize], std: Option<f32>, rng: &mut ChaCha8Rng| -> Result<()> {
        let n: usize = shape.iter().product();
        let t = match std {
            // On accelerators draw on the device (curand, seeded below): a
            // 4B-parameter model in seconds instead of minutes of host RNG.
            Some(s) if !device.is_cpu() => Tensor::randn(0f32, s, shape, device)?,
            Some(s) => Tensor::from_vec(normal(rng, n, s), shape, device)?,
            None if name.ends_with("bias") => Tensor::zeros(shape, DType::F32, device)?,
            None => Tensor::ones(shape, DType::F32, device)?,
        };
        out.insert(name, t);
        Ok(())
    };
    put("model.embed_tokens.weight".into(), &[cfg.vocab_size, h], Some(init.embed_std), &mut rng)?;
    if !cfg.tie_word_embeddings {
        put("lm_head.weight".into(), &[cfg.vocab_size, h], Some(init.embed_std), &mut rng)?;
    }
    put("model.norm.weight".into(), &[h], None, &mut rng)?;
    for l in 0..cfg.num_hidden_layers {
        let p = format!("model.layers.{l}");
        put(format!("{p}.input_layernorm.weight"), &[h], None, &mut rng)?;
        put(format!("{p}.post_attention_layernorm.weight"), &[h], None, &mut rng)?;
        for (name, out_dim, in_dim, bias) in [
            ("self_attn.q_proj", q, h, cfg.qkv_bias),
            ("self_attn.k_proj", kv, h, cfg.qkv_bias),
            ("self_attn.v_proj", kv, h, cfg.qkv_bias),
            ("self_attn.o_proj", h, q, cfg.o_bias),
            ("mlp.gate_proj", i, h, cfg.mlp_bias),
            ("mlp.up_proj", i, h, cfg.mlp_bias),
            ("mlp.down_proj", h, i, cfg.mlp_bias),
        ] {
            put(format!("{p}.{name}.weight"), &[out_dim, in_dim], Some(init.std), &mut rng)?;
            if bias {
                put(format!("{p}.{name}.bias"), &[out_dim], None, &mut rng)?;
            }
        }
        if cfg.qk_norm {
            put(format!("{p}.self_attn.q_norm.weight"), &[hd], None, &mut rng)?;
            put(format!("{p}.self_attn.k_norm.weight"), &[hd], None, &mut rng)?;
        }
    }
    Ok(out)
}

impl CausalLm {
    /// A model with random weights (see [`random_weights`]).
    pub fn random(cfg: &ModelConfig, init: RandomInit, device: &Device) -> Result<Self> {
        Self::random_with_dtype(cfg, init, device, DType::F32)
    }

    /// A model with random weights stored in `dtype` (e.g. bf16 on GPUs).
    pub fn random_with_dtype(cfg: &ModelConfig, init: RandomInit, device: &Device, dtype: DType) -> Result<Self> {
        let w = random_weights(cfg, init, device)?;
        Self::load(cfg, VarBuilder::from_tensors(w, dtype, device))
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn named_shapes_parse() {
        for name in SHAPES {
            assert!(shape(name).is_some(), "{name}");
        }
        assert_eq!(shape("qwen3-4b").map(|c| c.head_dim), Some(128));
        assert!(shape("gpt-5").is_none());
    }

    #[test]
    fn random_models_are_deterministic_and_run() {
        let v = serde_json::json!({"model_type": "qwen2", "vocab_size": 19, "hidden_size": 64,
            "intermediate_size": 128, "num_hidden_layers": 2, "num_attention_heads": 4, "num_key_value_heads": 2,
            "tie_word_embeddings": true});
        let cfg = ModelConfig::from_json(&v).unwrap();
        let init = RandomInit { embed_std: 0.2, seed: 5, ..Default::default() };
        let a = CausalLm::random(&cfg, init, &Device::Cpu).unwrap();
        let b = CausalLm::random(&cfg, init, &Device::Cpu).unwrap();
        let ids = Tensor::new(&[[1u32, 2, 3]], &Device::Cpu).unwrap();
        let la: Vec<f32> = a.forward(&ids, None).unwrap().flatten_all().unwrap().to_vec1().unwrap();
        let lb: Vec<f32> = b.forward(&ids, None).unwrap().flatten_all().unwrap().to_vec1().unwrap();
        assert_eq!(la, lb);
        assert_eq!(la.len(), 3 * 19);
        assert!(la.iter().any(|x| x.abs() > 1e-3));
    }
}
