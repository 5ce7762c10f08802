//! `config.json` parsing for the supported architectures.
//!
//! Accepts both the hub style (`rope_theta` and `rope_scaling` at the top
//! level, as published for gpt-oss-20b, Llama 3.2 and Qwen) and the
//! transformers 5 style (`rope_parameters` holding `rope_theta` and the
//! scaling fields).

use serde_json::Value;

use crate::error::{ModelError, Result};

/// A supported model architecture.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Arch {
    /// Llama 2/3.x (`LlamaForCausalLM`).
    Llama,
    /// Qwen2 / Qwen2.5 (`Qwen2ForCausalLM`): q/k/v bias.
    Qwen2,
    /// Qwen3 (`Qwen3ForCausalLM`): per-head q/k RMSNorm.
    Qwen3,
    /// gpt-oss (`GptOssForCausalLM`): MoE, sinks, sliding window, YaRN.
    GptOss,
}

impl Arch {
    /// The `model_type` values gym supports.
    pub const SUPPORTED: &'static [&'static str] = &["llama", "qwen2", "qwen3", "gpt_oss"];

    fn from_model_type(t: &str) -> Option<Self> {
        Some(match t {
            "llama" => Arch::Llama,
            "qwen2" => Arch::Qwen2,
            "qwen3" => Arch::Qwen3,
            "gpt_oss" => Arch::GptOss,
            _ => return None,
        })
    }

    fn from_architecture(t: &str) -> Option<Self> {
        Some(match t {
            "LlamaForCausalLM" => Arch::Llama,
            "Qwen2ForCausalLM" => Arch::Qwen2,
            "Qwen3ForCausalLM" => Arch::Qwen3,
            "GptOssForCausalLM" => Arch::GptOss,
            _ => return None,
        })
    }
}

/// RoPE frequency scaling.
#[derive(Debug, Clone, PartialEq)]
pub enum RopeScaling {
    /// Plain RoPE.
    None,
    /// Llama 3 wavelength-dependent scaling.
    Llama3 {
        /// Scale for low frequencies.
        factor: f64,
        /// Low-frequency boundary factor.
        low_freq_factor: f64,
        /// High-frequency boundary factor.
        high_freq_factor: f64,
        /// The pre-training context length.
        original_max_position_embeddings: f64,
    },
    /// YaRN (gpt-oss).
    Yarn {
        /// Context extension factor.
        factor: f64,
        /// Ramp start (in rotations).
        beta_fast: f64,
        /// Ramp end (in rotations).
        beta_slow: f64,
        /// The pre-training context length.
        original_max_position_embeddings: f64,
        /// Whether the ramp bounds are floored/ceiled.
        truncate: bool,
        /// cos/sin multiplier; default `0.1 ln(factor) + 1`.
        attention_factor: Option<f64>,
    },
}

/// Which attention a layer uses.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum LayerKind {
    /// Causal attention over all previous positions.
    Full,
    /// Causal attention over the last `sliding_window` positions.
    Sliding,
}

/// Everything the model modules need from `config.json`.
#[derive(Debug, Clone, PartialEq)]
pub struct ModelConfig {
    /// The architecture.
    pub arch: Arch,
    /// Vocabulary size (rows of the embedding).
    pub vocab_size: usize,
    /// Residual stream width.
    pub hidden_size: usize,
    /// MLP (or per-expert) width.
    pub intermediate_size: usize,
    /// Decoder layers.
    pub num_hidden_layers: usize,
    /// Query heads.
    pub num_attention_heads: usize,
    /// Key/value heads (GQA).
    pub num_key_value_heads: usize,
    /// Per-head width.
    pub head_dim: usize,
    /// RMSNorm epsilon.
    pub rms_norm_eps: f64,
    /// RoPE base.
    pub rope_theta: f64,
    /// RoPE scaling.
    pub rope_scaling: RopeScaling,
    /// Whether `lm_head` shares the embedding matrix.
    pub tie_word_embeddings: bool,
    /// Bias on q/k/v.
    pub qkv_bias: bool,
    /// Bias on o.
    pub o_bias: bool,
    /// Bias on the MLP projections (Llama `mlp_bias`).
    pub mlp_bias: bool,
    /// Per-head RMSNorm on q and k (Qwen3).
    pub qk_norm: bool,
    /// Maximum positions.
    pub max_position_embeddings: usize,
    /// Per-layer attention kind.
    pub layer_types: Vec<LayerKind>,
    /// Window for sliding layers.
    pub sliding_window: Option<usize>,
    /// Experts per MoE layer (gpt-oss).
    pub num_local_experts: usize,
    /// Experts chosen per token (gpt-oss).
    pub num_experts_per_tok: usize,
    /// SwiGLU clamp (gpt-oss).
    pub swiglu_limit: f64,
    /// BOS id, if any.
    pub bos_token_id: Option<u32>,
    /// EOS ids from the config (generation_config.json may add more).
    pub eos_token_ids: Vec<u32>,
}

fn err(message: impl Into<String>) -> ModelError {
    ModelError::Config { file: "config.json".into(), message: message.into() }
}

fn get_usize(v: &Value, key: &str) -> Result<usize> {
    v.get(key).and_then(Value::as_u64).map(|x| x as usize).ok_or_else(|| err(format!("missing integer field `{key}`")))
}

fn opt_usize(v: &Value, key: &str) -> Option<usize> {
    v.get(key).and_then(Value::as_u64).map(|x| x as usize)
}

fn opt_f64(v: &Value, key: &str) -> Option<f64> {
    v.get(key).and_then(Value::as_f64)
}

fn opt_bool(v: &Value, key: &str) -> Option<bool> {
    v.get(key).and_then(Value::as_bool)
}

/// Token ids given as a number or a list.
pub fn id_list(v: Option<&Value>) -> Vec<u32> {
    match v {
        Some(Value::Number(n)) => n.as_u64().map(|x| vec![x as u32]).unwrap_or_default(),
        Some(Value::Array(a)) => a.iter().filter_map(Value::as_u64).map(|x| x as u32).collect(),
        _ => Vec::new(),
    }
}

fn parse_rope(v: &Value, arch: Arch) -> Result<(f64, RopeScaling)> {
    // transformers 5: `rope_parameters` {rope_type, rope_theta, ...}; hub: top-level rope_theta + rope_scaling.
    let params = v.get("rope_parameters").filter(|p| p.is_object());
    let theta =
        params.and_then(|p| opt_f64(p, "rope_theta")).or_else(|| opt_f64(v, "rope_theta")).unwrap_or(match arch {
            Arch::Llama => 10000.0,
            Arch::Qwen2 | Arch::Qwen3 => 1_000_000.0,
            Arch::GptOss => 150000.0,
        });
    let scaling = params.or_else(|| v.get("rope_scaling").filter(|p| p.is_object()));
    let Some(s) = scaling else { return Ok((theta, RopeScaling::None)) };
    let kind = s.get("rope_type").or_else(|| s.get("type")).and_then(Value::as_str).unwrap_or("default");
    let need = |key: &str| opt_f64(s, key).ok_or_else(|| err(format!("rope scaling `{kind}` needs `{key}`")));
    let scaling = match kind {
        "default" => RopeScaling::None,
        "llama3" => RopeScaling::Llama3 {
            factor: need("factor")?,
            low_freq_factor: need("low_freq_factor")?,
            high_freq_factor: need("high_freq_factor")?,
            original_max_position_embeddings: need("original_max_position_embeddings")?,
        },
        "yarn" => RopeScaling::Yarn {
            factor: need("factor")?,
            beta_fast: opt_f64(s, "beta_fast").unwrap_or(32.0),
            beta_slow: opt_f64(s, "beta_slow").unwrap_or(1.0),
            original_max_position_embeddings: opt_f64(s, "original_max_position_embeddings")
                .or_else(|| opt_f64(v, "original_max_position_embeddings"))
                .ok_or_else(|| err("rope scaling `yarn` needs `original_max_position_embeddings`"))?,
            truncate: opt_bool(s, "truncate").unwrap_or(true),
            attention_factor: opt_f64(s, "attention_factor"),
        },
        other => {
            return Err(ModelError::Unsupported(format!(
                "config.json: rope scaling type `{other}` (supported: default, llama3, yarn)"
            )))
        }
    };
    Ok((theta, scaling))
}

impl ModelConfig {
    /// Parses a `config.json` value.
    pub fn from_json(v: &Value) -> Result<Self> {
        let model_type = v.get("model_type").and_then(Value::as_str);
        let archs: Vec<&str> = v
            .get("architectures")
            .and_then(Value::as_array)
            .map(|a| a.iter().filter_map(Value::as_str).collect())
            .unwrap_or_default();
        let arch = model_type
            .and_then(Arch::from_model_type)
            .or_else(|| archs.iter().find_map(|a| Arch::from_architecture(a)))
            .ok_or_else(|| {
                ModelError::Unsupported(format!(
                    "config.json: architecture {} (model_type {}); gym supports model_type {}",
                    if archs.is_empty() { "?".to_string() } else { archs.join(", ") },
                    model_type.unwrap_or("?"),
                    Arch::SUPPORTED.join(", ")
                ))
            })?;
        let hidden_size = get_usize(v, "hidden_size")?;
        let num_attention_heads = get_usize(v, "num_attention_heads")?;
        let num_hidden_layers = get_usize(v, "num_hidden_layers")?;
        let num_key_value_heads = opt_usize(v, "num_key_value_heads").unwrap_or(num_attention_heads);
        if num_attention_heads == 0 || num_key_value_heads == 0 || num_attention_heads % num_key_value_heads != 0 {
            return Err(err(format!(
                "num_attention_heads {num_attention_heads} is not a multiple of num_key_value_heads {num_key_value_heads}"
            )));
        }
        let head_dim = opt_usize(v, "head_dim").unwrap_or(hidden_size / num_attention_heads);
        let (rope_theta, rope_scaling) = parse_rope(v, arch)?;
        let attention_bias = opt_bool(v, "attention_bias");
        let (qkv_bias, o_bias) = match arch {
            Arch::Qwen2 => (true, false),
            Arch::GptOss => (true, true),
            Arch::Llama | Arch::Qwen3 => {
                let b = attention_bias.unwrap_or(false);
                (b, b)
            }
        };
        let sliding_window = opt_usize(v, "sliding_window");
        let layer_types = match v.get("layer_types").and_then(Value::as_array) {
            Some(a) if arch == Arch::GptOss => a
                .iter()
                .map(|t| match t.as_str() {
                    Some("sliding_attention") => Ok(LayerKind::Sliding),
                    Some("full_attention") => Ok(LayerKind::Full),
                    other => Err(ModelError::Unsupported(format!("config.json: layer type {other:?}"))),
                })
                .collect::<Result<Vec<_>>>()?,
            _ if arch == Arch::GptOss => {
                (0..num_hidden_layers).map(|i| if i % 2 == 0 { LayerKind::Sliding } else { LayerKind::Full }).collect()
            }
            _ => {
                if opt_bool(v, "use_sliding_window") == Some(true) {
                    return Err(ModelError::Unsupported("config.json: use_sliding_window = true".into()));
                }
                vec![LayerKind::Full; num_hidden_layers]
            }
        };
        if layer_types.len() != num_hidden_layers {
            return Err(err(format!("layer_types has {} entries for {num_hidden_layers} layers", layer_types.len())));
        }
        if layer_types.contains(&LayerKind::Sliding) && sliding_window.is_none() {
            return Err(err("sliding layers need `sliding_window`"));
        }
        if let Some(act) = v.get("hidden_act").and_then(Value::as_str) {
            if act != "silu" {
                return Err(ModelError::Unsupported(format!("config.json: hidden_act `{act}` (only silu)")));
            }
        }
        let moe = arch == Arch::GptOss;
        Ok(Self {
            arch,
            vocab_size: get_usize(v, "vocab_size")?,
            hidden_size,
            intermediate_size: get_usize(v, "intermediate_size")?,
            num_hidden_layers,
            num_attention_heads,
            num_key_value_heads,
            head_dim,
            rms_norm_eps: opt_f64(v, "rms_norm_eps").unwrap_or(1e-6),
            rope_theta,
            rope_scaling,
            tie_word_embeddings: opt_bool(v, "tie_word_embeddings").unwrap_or(false),
            qkv_bias,
            o_bias,
            mlp_bias: opt_bool(v, "mlp_bias").unwrap_or(false),
            qk_norm: arch == Arch::Qwen3,
            max_position_embeddings: opt_usize(v, "max_position_embeddings").unwrap_or(4096),
            layer_types,
            sliding_window,
            num_local_experts: if moe { get_usize(v, "num_local_experts")? } else { 0 },
            num_experts_per_tok: if moe { get_usize(v, "num_experts_per_tok")? } else { 0 },
            swiglu_limit: opt_f64(v, "swiglu_limit").unwrap_or(7.0),
            bos_token_id: v.get("bos_token_id").and_then(Value::as_u64).map(|x| x as u32),
            eos_token_ids: id_list(v.get("eos_token_id")),
        })
    }

    /// Query heads per key/value head.
    pub fn kv_groups(&self) -> usize {
        self.num_attention_heads / self.num_key_value_heads
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use serde_json::json;

    fn base() -> Value {
        json!({"model_type": "llama", "vocab_size": 10, "hidden_size": 8, "intermediate_size": 16,
               "num_hidden_layers": 1, "num_attention_heads": 2, "num_key_value_heads": 1})
    }

    #[test]
    fn hub_style_rope_scaling_parses() {
        let mut v = base();
        v["rope_theta"] = json!(500000.0);
        v["rope_scaling"] = json!({"rope_type": "llama3", "factor": 32.0, "low_freq_factor": 1.0,
            "high_freq_factor": 4.0, "original_max_position_embeddings": 8192});
        let c = ModelConfig::from_json(&v).unwrap();
        assert_eq!(c.rope_theta, 500000.0);
        assert!(matches!(c.rope_scaling, RopeScaling::Llama3 { factor, .. } if factor == 32.0));
        assert_eq!(c.head_dim, 4);
    }

    #[test]
    fn transformers5_rope_parameters_parse() {
        let mut v = base();
        v["model_type"] = json!("gpt_oss");
        v["num_local_experts"] = json!(4);
        v["num_experts_per_tok"] = json!(2);
        v["sliding_window"] = json!(4);
        v["rope_parameters"] = json!({"rope_type": "yarn", "rope_theta": 150000.0, "factor": 32.0,
            "beta_fast": 32.0, "beta_slow": 1.0, "original_max_position_embeddings": 4096, "truncate": false});
        let c = ModelConfig::from_json(&v).unwrap();
        assert_eq!(c.rope_theta, 150000.0);
        assert!(matches!(c.rope_scaling, RopeScaling::Yarn { truncate: false, .. }));
        assert_eq!(c.layer_types, vec![LayerKind::Sliding]);
        assert!(c.qkv_bias && c.o_bias);
    }

    #[test]
    fn unsupported_architecture_and_rope_are_named() {
        let mut v = base();
        v["model_type"] = json!("mamba");
        v["architectures"] = json!(["MambaForCausalLM"]);
        let e = ModelConfig::from_json(&v).unwrap_err().to_string();
        assert!(e.contains("MambaForCausalLM") && e.contains("qwen3"), "{e}");
        let mut v = base();
        v["rope_scaling"] = json!({"type": "dynamic", "factor": 2.0});
        let e = ModelConfig::from_json(&v).unwrap_err().to_string();
        assert!(e.contains("dynamic"), "{e}");
        let mut v = base();
        v.as_object_mut().unwrap().remove("hidden_size");
        let e = ModelConfig::from_json(&v).unwrap_err().to_string();
        assert!(e.contains("hidden_size"), "{e}");
    }
}
