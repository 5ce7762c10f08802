//! Exports of a trained model: LoRA merged into the base weights, written as
//! a Hugging Face folder or as GGUF (f16 or q8_0) for llama.cpp.
//!
//! [`merge`] reads the base model's safetensors and a PEFT adapter folder
//! (`adapter_config.json` + `adapter_model.safetensors`, as
//! [`crate::Lora::save_peft`] writes them) and adds `scale · B·A` to every
//! adapted weight (`scale` = `lora_alpha / r`, or `lora_alpha / √r` with
//! `use_rslora`), in f32.
//!
//! * [`write_hf`]: `config.json`, one `model.safetensors` (the base's dtype
//!   unless another is asked for; non-float tensors such as MXFP4 blocks are
//!   copied unchanged), `generation_config.json` and the tokenizer files and
//!   chat template of the base when present. gym's own loader reads it back.
//! * [`write_gguf`]: llama.cpp's layout for `llama`, `qwen2` and `qwen3`,
//!   written with candle's GGUF writer and quantizer: tensor names
//!   `token_embd.weight`, `blk.N.attn_q.weight`, …, `output_norm.weight`,
//!   `output.weight` (absent when the embedding is tied), Llama's q/k rows
//!   permuted as `convert_hf_to_gguf.py` does (llama.cpp rotates
//!   interleaved pairs for Llama, halves for Qwen), `rope_freqs.weight` for
//!   Llama 3 RoPE scaling, and the metadata llama.cpp reads (hyper-parameters,
//!   `general.file_type`, the byte-level BPE vocabulary with token types and
//!   merges, `tokenizer.ggml.pre` recognised from the pre-tokenizer's split
//!   pattern, special token ids and the chat template). 1-D tensors stay f32;
//!   in q8_0 exports a matrix whose rows are not a multiple of 32 is stored as
//!   f16, as llama.cpp's converter does. gpt-oss is not supported for GGUF.

use std::collections::{BTreeMap, HashMap};
use std::path::{Path, PathBuf};
use std::str::FromStr;

use crate::config::{Arch, ModelConfig};
use crate::files::{weight_files, ModelFiles};
use crate::lora::Lora;
use candle_core::quantized::{gguf_file, GgmlDType, QTensor};
use candle_core::{DType, Device, Tensor};
use serde_json::Value;

use crate::error::{ModelError, Result};

/// What to write.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum ExportFormat {
    /// A Hugging Face model folder (safetensors).
    Hf,
    /// One GGUF file, matrices in f16.
    GgufF16,
    /// One GGUF file, matrices in q8_0.
    GgufQ8_0,
}

impl ExportFormat {
    /// Every format's name, as [`FromStr`] accepts it.
    pub const NAMES: &'static [&'static str] = &["hf", "gguf-f16", "gguf-q8_0"];

    /// The format's name.
    pub fn name(self) -> &'static str {
        match self {
            ExportFormat::Hf => "hf",
            ExportFormat::GgufF16 => "gguf-f16",
            ExportFormat::GgufQ8_0 => "gguf-q8_0",
        }
    }
}

impl FromStr for ExportFormat {
    type Err = ModelError;

    fn from_str(s: &str) -> Result<Self> {
        Ok(match s {
            "hf" => ExportFormat::Hf,
            "gguf-f16" => ExportFormat::GgufF16,
            "gguf-q8_0" | "gguf-q8" => ExportFormat::GgufQ8_0,
            other => {
                return Err(ModelError::Invalid(format!(
                    "unknown export format `{other}` (valid: {})",
                    Self::NAMES.join(", ")
                )))
            }
        })
    }
}

/// Parses a safetensors dtype name for [`write_hf`]: `f32`, `bf16`, `f16`.
pub fn parse_dtype(s: &str) -> Result<DType> {
    match s {
        "f32" | "float32" => Ok(DType::F32),
        "bf16" | "bfloat16" => Ok(DType::BF16),
        "f16" | "float16" => Ok(DType::F16),
        other => Err(ModelError::Invalid(format!("unknown dtype `{other}` (valid: f32, bf16, f16)"))),
    }
}

/// A base model with LoRA merged in, in memory.
#[derive(Debug, Clone)]
pub struct Merged {
    /// The base model's folder.
    pub base_dir: PathBuf,
    /// The base's `config.json`.
    pub config_json: Value,
    /// The parsed config.
    pub config: ModelConfig,
    /// Every weight under its Hugging Face name; merged weights are f32,
    /// the others as stored in the base.
    pub tensors: BTreeMap<String, Tensor>,
    /// The base's floating-point dtype (of its first float tensor).
    pub base_dtype: DType,
    /// The weights that received a LoRA delta, sorted.
    pub merged: Vec<String>,
}

fn missing(what: &str, path: &Path, hint: &str) -> ModelError {
    ModelError::Invalid(format!("{what} not found: {} ({hint})", path.display()))
}

/// A file error naming the file.
fn file_err(path: &Path, e: impl std::fmt::Display) -> ModelError {
    ModelError::File { path: path.display().to_string(), reason: e.to_string() }
}

fn read_json_file(path: &Path) -> Result<Value> {
    let text = std::fs::read_to_string(path).map_err(|e| file_err(path, e))?;
    serde_json::from_str(&text).map_err(|e| file_err(path, format!("invalid JSON: {e}")))
}

/// The base model's folder: a local folder, or a preset / repo id found in
/// the Hugging Face cache.
pub fn base_dir(name: &str) -> Result<PathBuf> {
    let p = Path::new(name);
    if p.is_dir() {
        return Ok(p.to_path_buf());
    }
    Ok(ModelFiles::resolve(name)?.dir)
}

fn is_float(dtype: DType) -> bool {
    matches!(dtype, DType::F16 | DType::BF16 | DType::F32 | DType::F64)
}

/// The LoRA settings of a PEFT adapter folder that matter for merging.
#[derive(Debug, Clone, PartialEq)]
struct AdapterSettings {
    scale: f64,
}

fn adapter_settings(dir: &Path) -> Result<AdapterSettings> {
    let path = dir.join("adapter_config.json");
    if !path.is_file() {
        return Err(missing("adapter_config.json", &path, "a PEFT adapter folder, as `gym train` writes to adapter/"));
    }
    let v = read_json_file(&path)?;
    let field_err = |field: &str, msg: &str| ModelError::Invalid(format!("{}: field `{field}`: {msg}", path.display()));
    if let Some(t) = v.get("peft_type").and_then(Value::as_str) {
        if t != "LORA" {
            return Err(field_err("peft_type", &format!("`{t}` is not supported (only LORA)")));
        }
    }
    let r =
        v.get("r").and_then(Value::as_u64).filter(|r| *r > 0).ok_or_else(|| field_err("r", "missing or not ≥ 1"))?;
    let alpha = v.get("lora_alpha").and_then(Value::as_f64).unwrap_or(8.0);
    for flag in ["use_dora", "fan_in_fan_out"] {
        if v.get(flag).and_then(Value::as_bool) == Some(true) {
            return Err(field_err(flag, "true is not supported"));
        }
    }
    for pat in ["rank_pattern", "alpha_pattern"] {
        if v.get(pat).and_then(Value::as_object).is_some_and(|m| !m.is_empty()) {
            return Err(field_err(pat, "per-module ranks or alphas are not supported"));
        }
    }
    let rslora = v.get("use_rslora").and_then(Value::as_bool).unwrap_or(false);
    let scale = if rslora { alpha / (r as f64).sqrt() } else { alpha / r as f64 };
    Ok(AdapterSettings { scale })
}

impl Merged {
    /// The base model of folder `base` alone: its config and every weight.
    pub fn load(base: &Path) -> Result<Self> {
        let mut m = Self::config_only(base)?;
        for file in weight_files(base)? {
            let t = candle_core::safetensors::load(&file, &Device::Cpu).map_err(|e| file_err(&file, e))?;
            m.tensors.extend(t);
        }
        m.base_dtype = m.tensors.values().map(Tensor::dtype).find(|d| is_float(*d)).unwrap_or(DType::F32);
        Ok(m)
    }

    /// The config of folder `base` with `weights` (Hugging Face names) in
    /// place of its own: a fully fine-tuned model. The dtype written by
    /// default is that of the first float tensor of `weights`.
    pub fn with_weights(base: &Path, weights: HashMap<String, Tensor>) -> Result<Self> {
        let mut m = Self::config_only(base)?;
        m.tensors = weights.into_iter().collect();
        m.base_dtype = m.tensors.values().map(Tensor::dtype).find(|d| is_float(*d)).unwrap_or(DType::F32);
        Ok(m)
    }

    fn config_only(base: &Path) -> Result<Self> {
        let cfg_path = base.join("config.json");
        if !cfg_path.is_file() {
            return Err(missing("config.json", &cfg_path, "the base must be a Hugging Face model folder"));
        }
        let config_json = read_json_file(&cfg_path)?;
        let config = ModelConfig::from_json(&config_json)?;
        Ok(Self {
            base_dir: base.to_path_buf(),
            config_json,
            config,
            tensors: BTreeMap::new(),
            base_dtype: DType::F32,
            merged: Vec::new(),
        })
    }

    /// Adds `delta` (a LoRA update `scale·B·A`) to weight `name` in f32:
    /// the one merge routine behind `gym export`, SFT's saved model and
    /// GRPO's `--save-merged`. `source` names where the delta came from,
    /// for errors.
    pub fn add_delta(&mut self, name: &str, delta: &Tensor, source: &str) -> Result<()> {
        let w = self.tensors.get(name).ok_or_else(|| {
            ModelError::Invalid(format!(
                "{source}: adapter for `{name}`, which the base model ({}) does not have",
                self.base_dir.display()
            ))
        })?;
        if delta.dims() != w.dims() {
            return Err(ModelError::Invalid(format!(
                "{source}: a {:?} update for `{name}` of shape {:?} (adapter for another model?)",
                delta.dims(),
                w.dims()
            )));
        }
        let new = (w.to_dtype(DType::F32)? + delta.to_dtype(DType::F32)?.to_device(&Device::Cpu)?)?;
        self.tensors.insert(name.to_string(), new);
        if let Err(at) = self.merged.binary_search_by(|m| m.as_str().cmp(name)) {
            self.merged.insert(at, name.to_string());
        }
        Ok(())
    }

    /// Merges every adapter of an in-memory [`Lora`].
    pub fn add_lora(&mut self, lora: &Lora) -> Result<()> {
        for l in lora.layers() {
            self.add_delta(&format!("{}.weight", l.name()), &l.delta()?, "LoRA")?;
        }
        Ok(())
    }
}

/// Loads the base weights of `base` (a folder) and merges the PEFT adapter
/// in `adapter` (none: the base alone).
pub fn merge(base: &Path, adapter: Option<&Path>) -> Result<Merged> {
    let mut m = Merged::load(base)?;
    if let Some(dir) = adapter {
        let settings = adapter_settings(dir)?;
        let file = dir.join("adapter_model.safetensors");
        if !file.is_file() {
            return Err(missing("adapter_model.safetensors", &file, "PEFT adapters must be in safetensors format"));
        }
        let lora = candle_core::safetensors::load(&file, &Device::Cpu).map_err(|e| file_err(&file, e))?;
        let mut keys: Vec<&String> = lora.keys().collect();
        keys.sort();
        for key in keys {
            if key.ends_with(".lora_B.weight") {
                let a_key = key.replace(".lora_B.weight", ".lora_A.weight");
                if !lora.contains_key(&a_key) {
                    return Err(ModelError::Invalid(format!("{}: `{key}` has no `{a_key}`", file.display())));
                }
                continue;
            }
            let Some(module) = key.strip_suffix(".lora_A.weight") else {
                return Err(ModelError::Invalid(format!(
                    "{}: tensor `{key}` is not a LoRA A/B matrix (modules_to_save and biases are not supported)",
                    file.display()
                )));
            };
            let b_key = format!("{module}.lora_B.weight");
            let b = lora.get(&b_key).ok_or_else(|| ModelError::Invalid(format!("{}: no `{b_key}`", file.display())))?;
            let a = &lora[key];
            let name = format!("{}.weight", module.strip_prefix("base_model.model.").unwrap_or(module));
            let delta = (b.to_dtype(DType::F32)?.matmul(&a.to_dtype(DType::F32)?)? * settings.scale)?;
            m.add_delta(&name, &delta, &format!("{}: `{module}`", file.display()))?;
        }
        if m.merged.is_empty() {
            return Err(ModelError::Invalid(format!("{}: no LoRA tensors", file.display())));
        }
    }
    Ok(m)
}

fn dtype_name(d: DType) -> &'static str {
    match d {
        DType::BF16 => "bfloat16",
        DType::F16 => "float16",
        DType::F64 => "float64",
        _ => "float32",
    }
}

/// Tokenizer and template files copied from the base when present.
pub const COPIED_FILES: &[&str] = &[
    "tokenizer.json",
    "tokenizer_config.json",
    "special_tokens_map.json",
    "chat_template.jinja",
    "chat_template.json",
    "vocab.json",
    "merges.txt",
    "tokenizer.model",
    "added_tokens.json",
    "generation_config.json",
];

/// Writes `m` as a Hugging Face folder in `out` with float tensors in
/// `dtype` (default: the base's dtype).
pub fn write_hf(m: &Merged, out: &Path, dtype: Option<DType>) -> Result<()> {
    std::fs::create_dir_all(out).map_err(|e| file_err(out, e))?;
    let target = dtype.unwrap_or(m.base_dtype);
    let mut tensors: HashMap<String, Tensor> = HashMap::new();
    for (name, t) in &m.tensors {
        let t = if is_float(t.dtype()) { t.to_dtype(target)? } else { t.clone() };
        tensors.insert(name.clone(), t);
    }
    let meta: HashMap<String, String> = [("format".to_string(), "pt".to_string())].into();
    let weights = out.join("model.safetensors");
    safetensors::serialize_to_file(&tensors, Some(meta), &weights).map_err(|e| file_err(&weights, e))?;
    // The safetensors crate writes through a private temporary file (mode 0600); a model is meant to be shared.
    #[cfg(unix)]
    {
        use std::os::unix::fs::PermissionsExt;
        std::fs::set_permissions(out.join("model.safetensors"), std::fs::Permissions::from_mode(0o644))?;
    }
    let mut cfg = m.config_json.clone();
    if let Some(obj) = cfg.as_object_mut() {
        let mut set = false;
        for key in ["torch_dtype", "dtype"] {
            if obj.contains_key(key) {
                obj.insert(key.into(), Value::String(dtype_name(target).into()));
                set = true;
            }
        }
        if !set {
            obj.insert("torch_dtype".into(), Value::String(dtype_name(target).into()));
        }
    }
    std::fs::write(out.join("config.json"), serde_json::to_string_pretty(&cfg)?)?;
    for f in COPIED_FILES {
        let src = m.base_dir.join(f);
        if src.is_file() {
            std::fs::copy(&src, out.join(f))?;
        }
    }
    if !out.join("generation_config.json").is_file() {
        let mut g = serde_json::Map::new();
        if let Some(b) = m.config.bos_token_id {
            g.insert("bos_token_id".into(), b.into());
        }
        match m.config.eos_token_ids.as_slice() {
            [] => {}
            [one] => {
                g.insert("eos_token_id".into(), (*one).into());
            }
            many => {
                g.insert("eos_token_id".into(), many.to_vec().into());
            }
        }
        std::fs::write(out.join("generation_config.json"), serde_json::to_string_pretty(&Value::Object(g))?)?;
    }
    Ok(())
}

/// GGUF matrix storage.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum GgufType {
    /// IEEE half precision (`general.file_type` 1).
    F16,
    /// 8-bit blocks of 32 with an f16 scale (`general.file_type` 7).
    Q8_0,
}

impl GgufType {
    fn ggml(self) -> GgmlDType {
        match self {
            GgufType::F16 => GgmlDType::F16,
            GgufType::Q8_0 => GgmlDType::Q8_0,
        }
    }

    /// llama.cpp's `LLAMA_FTYPE_MOSTLY_*` value.
    pub fn file_type(self) -> u32 {
        match self {
            GgufType::F16 => 1,
            GgufType::Q8_0 => 7,
        }
    }
}

/// llama.cpp's architecture name for `arch` (`None` when GGUF export does
/// not support it).
pub fn gguf_arch(arch: Arch) -> Option<&'static str> {
    match arch {
        Arch::Llama => Some("llama"),
        Arch::Qwen2 => Some("qwen2"),
        Arch::Qwen3 => Some("qwen3"),
        Arch::GptOss => None,
    }
}

/// The GGUF name of a Hugging Face tensor name (llama/qwen2/qwen3).
pub fn gguf_name(hf: &str) -> Option<String> {
    match hf {
        "model.embed_tokens.weight" => return Some("token_embd.weight".into()),
        "model.norm.weight" => return Some("output_norm.weight".into()),
        "lm_head.weight" => return Some("output.weight".into()),
        _ => {}
    }
    let rest = hf.strip_prefix("model.layers.")?;
    let (layer, part) = rest.split_once('.')?;
    let layer: usize = layer.parse().ok()?;
    let (module, kind) = part.rsplit_once('.')?;
    if kind != "weight" && kind != "bias" {
        return None;
    }
    let g = match module {
        "input_layernorm" => "attn_norm",
        "post_attention_layernorm" => "ffn_norm",
        "self_attn.q_proj" => "attn_q",
        "self_attn.k_proj" => "attn_k",
        "self_attn.v_proj" => "attn_v",
        "self_attn.o_proj" => "attn_output",
        "self_attn.q_norm" => "attn_q_norm",
        "self_attn.k_norm" => "attn_k_norm",
        "mlp.gate_proj" => "ffn_gate",
        "mlp.up_proj" => "ffn_up",
        "mlp.down_proj" => "ffn_down",
        _ => return None,
    };
    Some(format!("blk.{layer}.{g}.{kind}"))
}

/// `convert_hf_to_gguf.py`'s `LlamaModel.permute`: within each head, rows
/// `[x0 … x_{d/2-1}, y0 … y_{d/2-1}]` become `[x0, y0, x1, y1, …]` (dim 0).
pub fn llama_permute(w: &Tensor, heads: usize) -> Result<Tensor> {
    let dims = w.dims().to_vec();
    let rows = dims[0];
    if heads == 0 || !rows.is_multiple_of(2 * heads) {
        return Err(ModelError::Invalid(format!("cannot permute {rows} rows over {heads} heads")));
    }
    let rest: usize = dims[1..].iter().product();
    let t = w.reshape((heads, 2, rows / heads / 2, rest))?.transpose(1, 2)?.contiguous()?;
    Ok(t.reshape(dims)?)
}

/// Llama 3 RoPE scaling as llama.cpp's `rope_freqs.weight`: per frequency the
/// divisor applied to it.
fn llama3_rope_factors(cfg: &ModelConfig) -> Option<Vec<f32>> {
    let crate::config::RopeScaling::Llama3 {
        factor,
        low_freq_factor,
        high_freq_factor,
        original_max_position_embeddings: old,
    } = cfg.rope_scaling
    else {
        return None;
    };
    let dim = cfg.head_dim;
    let low_wavelen = old / low_freq_factor;
    let high_wavelen = old / high_freq_factor;
    Some(
        (0..dim / 2)
            .map(|i| {
                let freq = 1.0 / cfg.rope_theta.powf((2 * i) as f64 / dim as f64);
                let wavelen = 2.0 * std::f64::consts::PI / freq;
                let f = if wavelen < high_wavelen {
                    1.0
                } else if wavelen > low_wavelen {
                    factor
                } else {
                    let smooth = (old / wavelen - low_freq_factor) / (high_freq_factor - low_freq_factor);
                    1.0 / ((1.0 - smooth) / factor + smooth)
                };
                f as f32
            })
            .collect(),
    )
}

/// Known pre-tokenizer split patterns and llama.cpp's `tokenizer.ggml.pre`
/// names for them.
const PRE_TOKENIZERS: &[(&str, &str)] = &[
    (
        r"(?i:'s|'t|'re|'ve|'m|'ll|'d)|[^\r\n\p{L}\p{N}]?\p{L}+|\p{N}| ?[^\s\p{L}\p{N}]+[\r\n]*|\s*[\r\n]+|\s+(?!\S)|\s+",
        "qwen2",
    ),
    (
        r"(?i:'s|'t|'re|'ve|'m|'ll|'d)|[^\r\n\p{L}\p{N}]?\p{L}+|\p{N}{1,3}| ?[^\s\p{L}\p{N}]+[\r\n]*|\s*[\r\n]+|\s+(?!\S)|\s+",
        "llama-bpe",
    ),
];

/// llama.cpp's pre-tokenizer name for a `tokenizer.json`'s `pre_tokenizer`.
fn detect_pre(pre: &Value, file: &Path) -> Result<&'static str> {
    let mut patterns = Vec::new();
    let mut byte_level_regex = false;
    let mut stack = vec![pre];
    while let Some(v) = stack.pop() {
        match v.get("type").and_then(Value::as_str) {
            Some("Sequence") => {
                if let Some(a) = v.get("pretokenizers").and_then(Value::as_array) {
                    stack.extend(a.iter());
                }
            }
            Some("Split") => {
                if let Some(p) = v.get("pattern").and_then(|p| p.get("Regex")).and_then(Value::as_str) {
                    patterns.push(p.to_string());
                }
            }
            Some("ByteLevel") => byte_level_regex |= v.get("use_regex").and_then(Value::as_bool).unwrap_or(true),
            _ => {}
        }
    }
    match patterns.as_slice() {
        [] if byte_level_regex => Ok("gpt-2"),
        [one] => PRE_TOKENIZERS.iter().find(|(p, _)| p == one).map(|(_, n)| *n).ok_or_else(|| {
            ModelError::Invalid(format!(
                "{}: pre_tokenizer split pattern is not one llama.cpp knows here (recognised: {}, GPT-2 byte-level)",
                file.display(),
                PRE_TOKENIZERS.iter().map(|(_, n)| *n).collect::<Vec<_>>().join(", ")
            ))
        }),
        _ => Err(ModelError::Invalid(format!(
            "{}: field `pre_tokenizer`: expected one split pattern, found {}",
            file.display(),
            patterns.len()
        ))),
    }
}

/// The tokenizer as GGUF metadata.
fn tokenizer_metadata(m: &Merged) -> Result<Vec<(String, gguf_file::Value)>> {
    use gguf_file::Value as G;
    let path = m.base_dir.join("tokenizer.json");
    if !path.is_file() {
        return Err(missing("tokenizer.json", &path, "GGUF export needs the base model's tokenizer"));
    }
    let tok = read_json_file(&path)?;
    let field = |f: &str, msg: &str| ModelError::Invalid(format!("{}: field `{f}`: {msg}", path.display()));
    let model = tok.get("model").ok_or_else(|| field("model", "missing"))?;
    if model.get("type").and_then(Value::as_str) != Some("BPE") {
        return Err(field("model.type", "only byte-level BPE tokenizers can be exported to GGUF"));
    }
    let pre = detect_pre(tok.get("pre_tokenizer").unwrap_or(&Value::Null), &path)?;
    let vocab = model.get("vocab").and_then(Value::as_object).ok_or_else(|| field("model.vocab", "missing"))?;
    let size = m.config.vocab_size;
    let mut tokens: Vec<Option<String>> = vec![None; size];
    let mut types = vec![5i32; size]; // UNUSED
    let mut by_text: HashMap<String, u32> = HashMap::new();
    for (text, id) in vocab {
        let id = id.as_u64().ok_or_else(|| field("model.vocab", "ids must be integers"))? as usize;
        if id >= size {
            return Err(field("model.vocab", &format!("id {id} ≥ vocab_size {size} of config.json")));
        }
        tokens[id] = Some(text.clone());
        types[id] = 1; // NORMAL
        by_text.insert(text.clone(), id as u32);
    }
    for t in tok.get("added_tokens").and_then(Value::as_array).into_iter().flatten() {
        let (Some(id), Some(text)) = (t.get("id").and_then(Value::as_u64), t.get("content").and_then(Value::as_str))
        else {
            return Err(field("added_tokens", "entries need `id` and `content`"));
        };
        let id = id as usize;
        if id >= size {
            return Err(field("added_tokens", &format!("id {id} ≥ vocab_size {size} of config.json")));
        }
        tokens[id] = Some(text.to_string());
        // CONTROL for special tokens, USER_DEFINED otherwise.
        types[id] = if t.get("special").and_then(Value::as_bool).unwrap_or(false) { 3 } else { 4 };
        by_text.insert(text.to_string(), id as u32);
    }
    let tokens: Vec<G> =
        tokens.into_iter().enumerate().map(|(i, t)| G::String(t.unwrap_or_else(|| format!("[PAD{i}]")))).collect();
    let merges: Vec<G> = model
        .get("merges")
        .and_then(Value::as_array)
        .ok_or_else(|| field("model.merges", "missing"))?
        .iter()
        .map(|mg| match mg {
            Value::String(s) => Ok(G::String(s.clone())),
            Value::Array(pair) if pair.len() == 2 => {
                let s: Vec<&str> = pair.iter().filter_map(Value::as_str).collect();
                if s.len() == 2 {
                    Ok(G::String(format!("{} {}", s[0], s[1])))
                } else {
                    Err(field("model.merges", "a merge pair must hold two strings"))
                }
            }
            _ => Err(field("model.merges", "a merge must be a string or a pair of strings")),
        })
        .collect::<Result<_>>()?;

    let tcfg_path = m.base_dir.join("tokenizer_config.json");
    let tcfg = if tcfg_path.is_file() { read_json_file(&tcfg_path)? } else { Value::Null };
    let token_id = |key: &str| -> Option<u32> {
        let v = tcfg.get(key)?;
        let text = v.as_str().or_else(|| v.get("content").and_then(Value::as_str))?;
        by_text.get(text).copied()
    };
    let gen_path = m.base_dir.join("generation_config.json");
    let gen = if gen_path.is_file() { read_json_file(&gen_path)? } else { Value::Null };
    let first_id = |v: Option<&Value>| -> Option<u32> {
        match v? {
            Value::Number(n) => n.as_u64().map(|x| x as u32),
            Value::Array(a) => a.first().and_then(Value::as_u64).map(|x| x as u32),
            _ => None,
        }
    };
    let bos = token_id("bos_token").or(m.config.bos_token_id);
    let eos = token_id("eos_token").or_else(|| m.config.eos_token_ids.first().copied());
    let pad = token_id("pad_token").or_else(|| first_id(gen.get("pad_token_id")));
    let add_bos = match tcfg.get("add_bos_token").and_then(Value::as_bool) {
        Some(b) => b,
        None => {
            // A post-processor that inserts the BOS token (Llama 3's TemplateProcessing).
            let bos_text = bos.and_then(|id| by_text.iter().find(|(_, v)| **v == id).map(|(k, _)| k.clone()));
            match (bos_text, tok.get("post_processor")) {
                (Some(b), Some(pp)) if !pp.is_null() => pp.to_string().contains(&serde_json::to_string(&b)?),
                _ => false,
            }
        }
    };
    let template = chat_template(&m.base_dir, &tcfg)?;

    let mut md = vec![
        ("tokenizer.ggml.model".to_string(), G::String("gpt2".into())),
        ("tokenizer.ggml.pre".to_string(), G::String(pre.into())),
        ("tokenizer.ggml.tokens".to_string(), G::Array(tokens)),
        ("tokenizer.ggml.token_type".to_string(), G::Array(types.into_iter().map(G::I32).collect())),
        ("tokenizer.ggml.merges".to_string(), G::Array(merges)),
    ];
    if let Some(b) = bos {
        md.push(("tokenizer.ggml.bos_token_id".into(), G::U32(b)));
    }
    if let Some(e) = eos {
        md.push(("tokenizer.ggml.eos_token_id".into(), G::U32(e)));
    }
    if let Some(p) = pad {
        md.push(("tokenizer.ggml.padding_token_id".into(), G::U32(p)));
    }
    md.push(("tokenizer.ggml.add_bos_token".into(), G::Bool(add_bos)));
    if let Some(t) = template {
        md.push(("tokenizer.chat_template".into(), G::String(t)));
    }
    Ok(md)
}

/// The chat template: `chat_template.jinja`, else `tokenizer_config.json`'s
/// `chat_template` (a string, or the `default` of a named list).
fn chat_template(dir: &Path, tcfg: &Value) -> Result<Option<String>> {
    let file = dir.join("chat_template.jinja");
    if file.is_file() {
        return Ok(Some(std::fs::read_to_string(&file)?));
    }
    Ok(match tcfg.get("chat_template") {
        Some(Value::String(s)) => Some(s.clone()),
        Some(Value::Array(list)) => list
            .iter()
            .find(|t| t.get("name").and_then(Value::as_str) == Some("default"))
            .and_then(|t| t.get("template").and_then(Value::as_str))
            .map(str::to_string),
        _ => None,
    })
}

/// Writes `m` as one GGUF file at `out` (llama, qwen2 and qwen3).
pub fn write_gguf(m: &Merged, out: &Path, ty: GgufType) -> Result<()> {
    use gguf_file::Value as G;
    let cfg = &m.config;
    let arch = gguf_arch(cfg.arch).ok_or_else(|| {
        ModelError::Invalid(format!(
            "GGUF export of {:?} models is not supported (supported: llama, qwen2, qwen3); use --format hf",
            cfg.arch
        ))
    })?;
    let name = m.base_dir.file_name().map(|n| n.to_string_lossy().to_string()).unwrap_or_else(|| "model".into());
    let k = |key: &str| format!("{arch}.{key}");
    let mut md: Vec<(String, G)> = vec![
        ("general.architecture".into(), G::String(arch.into())),
        ("general.name".into(), G::String(name)),
        ("general.file_type".into(), G::U32(ty.file_type())),
        ("general.quantization_version".into(), G::U32(2)),
        (k("context_length"), G::U32(cfg.max_position_embeddings as u32)),
        (k("embedding_length"), G::U32(cfg.hidden_size as u32)),
        (k("block_count"), G::U32(cfg.num_hidden_layers as u32)),
        (k("feed_forward_length"), G::U32(cfg.intermediate_size as u32)),
        (k("attention.head_count"), G::U32(cfg.num_attention_heads as u32)),
        (k("attention.head_count_kv"), G::U32(cfg.num_key_value_heads as u32)),
        (k("attention.key_length"), G::U32(cfg.head_dim as u32)),
        (k("attention.value_length"), G::U32(cfg.head_dim as u32)),
        (k("rope.freq_base"), G::F32(cfg.rope_theta as f32)),
        (k("attention.layer_norm_rms_epsilon"), G::F32(cfg.rms_norm_eps as f32)),
    ];
    if cfg.arch == Arch::Llama {
        md.push((k("vocab_size"), G::U32(cfg.vocab_size as u32)));
        md.push((k("rope.dimension_count"), G::U32(cfg.head_dim as u32)));
    }
    md.extend(tokenizer_metadata(m)?);

    let mut qt: Vec<(String, QTensor)> = Vec::new();
    for (hf, t) in &m.tensors {
        let g = gguf_name(hf).ok_or_else(|| {
            ModelError::Invalid(format!("tensor `{hf}` has no GGUF name for {arch} (unexpected in this architecture)"))
        })?;
        let mut t = t.to_dtype(DType::F32)?;
        if cfg.arch == Arch::Llama {
            if hf.ends_with("self_attn.q_proj.weight") || hf.ends_with("self_attn.q_proj.bias") {
                t = llama_permute(&t, cfg.num_attention_heads)?;
            } else if hf.ends_with("self_attn.k_proj.weight") || hf.ends_with("self_attn.k_proj.bias") {
                t = llama_permute(&t, cfg.num_key_value_heads)?;
            }
        }
        let q = if t.rank() < 2 {
            QTensor::quantize(&t, GgmlDType::F32)?
        } else {
            let cols = t.dim(candle_core::D::Minus1)?;
            let dt = if ty == GgufType::Q8_0 && !cols.is_multiple_of(32) { GgmlDType::F16 } else { ty.ggml() };
            QTensor::quantize(&t, dt)?
        };
        qt.push((g, q));
    }
    if let Some(f) = llama3_rope_factors(cfg) {
        let n = f.len();
        qt.push((
            "rope_freqs.weight".into(),
            QTensor::quantize(&Tensor::from_vec(f, n, &Device::Cpu)?, GgmlDType::F32)?,
        ));
    }
    // llama.cpp's converter order: token embedding, blocks in order, output norm/head.
    qt.sort_by_key(|(n, _)| tensor_order(n));

    if let Some(parent) = out.parent().filter(|p| !p.as_os_str().is_empty()) {
        std::fs::create_dir_all(parent)?;
    }
    let tmp = out.with_extension("gguf.tmp");
    {
        let mut w = std::io::BufWriter::new(std::fs::File::create(&tmp)?);
        let md_refs: Vec<(&str, &G)> = md.iter().map(|(k, v)| (k.as_str(), v)).collect();
        let t_refs: Vec<(&str, &QTensor)> = qt.iter().map(|(k, v)| (k.as_str(), v)).collect();
        gguf_file::write(&mut w, &md_refs, &t_refs)?;
        std::io::Write::flush(&mut w)?;
    }
    std::fs::rename(&tmp, out)?;
    Ok(())
}

fn tensor_order(name: &str) -> (usize, usize, String) {
    if name == "token_embd.weight" || name == "rope_freqs.weight" {
        return (0, 0, name.to_string());
    }
    if let Some(rest) = name.strip_prefix("blk.") {
        let (n, tail) = rest.split_once('.').unwrap_or((rest, ""));
        return (1, n.parse().unwrap_or(usize::MAX), tail.to_string());
    }
    (2, 0, name.to_string())
}

/// Merges `adapter` into `base` and writes `format` to `out`: a folder for
/// [`ExportFormat::Hf`], a `.gguf` file otherwise (when `out` is a folder or
/// has no `.gguf` extension, `model-f16.gguf` / `model-q8_0.gguf` inside
/// it). Returns the path written.
pub fn export(
    base: &Path,
    adapter: Option<&Path>,
    out: &Path,
    format: ExportFormat,
    dtype: Option<DType>,
) -> Result<PathBuf> {
    let m = merge(base, adapter)?;
    match format {
        ExportFormat::Hf => {
            write_hf(&m, out, dtype)?;
            Ok(out.to_path_buf())
        }
        ExportFormat::GgufF16 | ExportFormat::GgufQ8_0 => {
            let (ty, file) = if format == ExportFormat::GgufF16 {
                (GgufType::F16, "model-f16.gguf")
            } else {
                (GgufType::Q8_0, "model-q8_0.gguf")
            };
            let path = if out.extension().is_some_and(|e| e == "gguf") { out.to_path_buf() } else { out.join(file) };
            write_gguf(&m, &path, ty)?;
            Ok(path)
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn names_follow_llama_cpp() {
        assert_eq!(gguf_name("model.embed_tokens.weight").as_deref(), Some("token_embd.weight"));
        assert_eq!(gguf_name("model.layers.3.self_attn.q_proj.bias").as_deref(), Some("blk.3.attn_q.bias"));
        assert_eq!(gguf_name("model.layers.0.self_attn.k_norm.weight").as_deref(), Some("blk.0.attn_k_norm.weight"));
        assert_eq!(gguf_name("model.layers.1.mlp.down_proj.weight").as_deref(), Some("blk.1.ffn_down.weight"));
        assert_eq!(
            gguf_name("model.layers.1.post_attention_layernorm.weight").as_deref(),
            Some("blk.1.ffn_norm.weight")
        );
        assert_eq!(gguf_name("lm_head.weight").as_deref(), Some("output.weight"));
        assert_eq!(gguf_name("model.layers.0.mlp.experts.gate_up_proj"), None);
    }

    #[test]
    fn llama_permute_interleaves_halves_per_head() {
        // 2 heads of width 4, one column: rows [0 1 2 3 | 4 5 6 7] -> [0 2 1 3 | 4 6 5 7].
        let w = Tensor::arange(0f32, 8.0, &Device::Cpu).unwrap().reshape((8, 1)).unwrap();
        let p: Vec<f32> = llama_permute(&w, 2).unwrap().flatten_all().unwrap().to_vec1().unwrap();
        assert_eq!(p, vec![0.0, 2.0, 1.0, 3.0, 4.0, 6.0, 5.0, 7.0]);
        assert!(llama_permute(&w, 3).is_err());
    }

    #[test]
    fn formats_and_dtypes_parse_with_valid_names_listed() {
        assert_eq!("gguf-q8_0".parse::<ExportFormat>().unwrap(), ExportFormat::GgufQ8_0);
        let e = "gguf-q4".parse::<ExportFormat>().unwrap_err().to_string();
        assert!(e.contains("gguf-q4") && e.contains("hf, gguf-f16, gguf-q8_0"), "{e}");
        assert_eq!(parse_dtype("bf16").unwrap(), DType::BF16);
        assert!(parse_dtype("int8").unwrap_err().to_string().contains("f32, bf16, f16"));
    }

    #[test]
    fn pre_tokenizer_detection() {
        let qwen = serde_json::json!({"type": "Sequence", "pretokenizers": [
            {"type": "Split", "pattern": {"Regex": PRE_TOKENIZERS[0].0}}, {"type": "ByteLevel", "use_regex": false}]});
        assert_eq!(detect_pre(&qwen, Path::new("t.json")).unwrap(), "qwen2");
        let llama = serde_json::json!({"type": "Sequence", "pretokenizers": [
            {"type": "Split", "pattern": {"Regex": PRE_TOKENIZERS[1].0}}, {"type": "ByteLevel", "use_regex": false}]});
        assert_eq!(detect_pre(&llama, Path::new("t.json")).unwrap(), "llama-bpe");
        let gpt2 = serde_json::json!({"type": "ByteLevel", "add_prefix_space": false});
        assert_eq!(detect_pre(&gpt2, Path::new("t.json")).unwrap(), "gpt-2");
        let other = serde_json::json!({"type": "Split", "pattern": {"Regex": "\\s+"}});
        let e = detect_pre(&other, Path::new("t.json")).unwrap_err().to_string();
        assert!(e.contains("t.json") && e.contains("llama-bpe"), "{e}");
    }

    #[test]
    fn llama3_rope_factors_match_the_scaled_frequencies() {
        let v = serde_json::json!({"model_type": "llama", "vocab_size": 10, "hidden_size": 64, "intermediate_size": 32,
            "num_hidden_layers": 1, "num_attention_heads": 4, "head_dim": 16, "rope_theta": 500000.0,
            "rope_scaling": {"rope_type": "llama3", "factor": 8.0, "low_freq_factor": 1.0, "high_freq_factor": 4.0,
            "original_max_position_embeddings": 64}});
        let cfg = ModelConfig::from_json(&v).unwrap();
        let f = llama3_rope_factors(&cfg).unwrap();
        // gym's Rope applies the same scaling: base frequency / factor must equal its inverse frequency.
        let rope = crate::nn::Rope::new(&cfg);
        for (i, (fac, inv)) in f.iter().zip(rope.inv_freq()).enumerate() {
            let base = 1.0 / 500000f64.powf((2 * i) as f64 / 16.0);
            assert!(((base / *fac as f64) as f32 - inv).abs() <= 1e-6 * inv.abs().max(1e-30), "{i}: {fac} {inv}");
        }
        assert_eq!(f[0], 1.0);
        assert_eq!(*f.last().unwrap(), 8.0);
    }
}
