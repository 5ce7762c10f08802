//! `gym-tiny`: gym's own tiny model, bundled in the binary so that
//! `gym run 2048-strategy --policy gym-tiny` works offline from anywhere.
//!
//! A Qwen2-shaped decoder (3 layers, hidden 128, 4 heads / 2 KV heads,
//! tied embeddings, ≈ 0.6 M parameters, f32) trained from scratch with gym
//! alone by `scripts/train_gym_tiny.sh`: SFT on procedurally generated Rhai
//! 2048 programs (`envs::games::strategy::programs`), then GRPO on
//! `2048-strategy` (LoRA, merged). The bundled weights are the GRPO model:
//! on 256 held-out seeds it scores +1.12 mean reward against its SFT
//! start's +0.58 (see BENCHMARKS.md). Its files live in
//! `policies/assets/gym-tiny/` in Hugging Face layout, so the folder also loads as `--policy
//! policies/assets/gym-tiny` and trains as `--model`.
//!
//! * Tokenizer: characters (printable ASCII and newline) plus one token per
//!   text piece the generated programs share (`programs::FRAGMENTS`), matched
//!   longest-first; specials `<|pad|>`, `<|end|>` (EOS), `<|user|>`,
//!   `<|assistant|>`, `<|unk|>`. Made by `scripts/gym_tiny_tokenizer.py`.
//! * Chat template: the model has a 256-token context and cannot read
//!   instructions, so its template keeps the first sentence of each user
//!   message (`Write a 2048 strategy for a 4x4 board`) and drops system
//!   messages; a reply is `<|assistant|>…<|end|>`.

use candle_core::Device;
use candle_nn::VarBuilder;

use models::{CausalLm, ModelConfig, RandomInit};

use super::chat::ChatTemplate;
use super::error::{LlmError, Result};
use super::policy::{GenerationConfig, LlmPolicy};

/// The policy name.
pub const NAME: &str = "gym-tiny";

/// `config.json`.
pub const CONFIG: &str = include_str!("../../assets/gym-tiny/config.json");
/// `tokenizer.json`.
pub const TOKENIZER: &[u8] = include_bytes!("../../assets/gym-tiny/tokenizer.json");
/// `chat_template.jinja`.
pub const CHAT_TEMPLATE: &str = include_str!("../../assets/gym-tiny/chat_template.jinja");
/// `generation_config.json`.
pub const GENERATION_CONFIG: &str = include_str!("../../assets/gym-tiny/generation_config.json");
/// `model.safetensors` (the trained weights).
pub const WEIGHTS: &[u8] = include_bytes!("../../assets/gym-tiny/model.safetensors");

fn parse(text: &str, file: &str) -> Result<serde_json::Value> {
    serde_json::from_str(text).map_err(|e| LlmError::Config { file: file.into(), message: e.to_string() })
}

/// The model's config.
pub fn config() -> Result<ModelConfig> {
    Ok(ModelConfig::from_json(&parse(CONFIG, "gym-tiny/config.json")?)?)
}

fn assemble(name: &str, model: CausalLm) -> Result<LlmPolicy> {
    let tokenizer = tokenizers::Tokenizer::from_bytes(TOKENIZER).map_err(|e| LlmError::Tokenizer(e.to_string()))?;
    let template = ChatTemplate::new(CHAT_TEMPLATE, None, Some("<|end|>".into()))?;
    let generation = GenerationConfig::from_json(&parse(GENERATION_CONFIG, "gym-tiny/generation_config.json")?);
    Ok(LlmPolicy::from_parts(name, model, tokenizer, Some(template), generation))
}

/// The bundled, trained gym-tiny policy (CPU, f32).
pub fn load() -> Result<LlmPolicy> {
    load_on(&Device::Cpu)
}

/// Loads the bundled gym-tiny on `device` (f32 on CPUs, bf16 on GPUs).
pub fn load_on(device: &Device) -> Result<LlmPolicy> {
    let vb = VarBuilder::from_buffered_safetensors(WEIGHTS.to_vec(), models::device::default_dtype(device), device)?;
    let model = CausalLm::load(&config()?, vb)?;
    assemble(NAME, model)
}

/// Writes the bundled model as a Hugging Face folder (config, tokenizer,
/// chat template, generation config, weights) into `dir`, so tools that
/// take a model folder (`gym export`, transformers) can use it.
pub fn write_folder(dir: &std::path::Path) -> std::io::Result<()> {
    std::fs::create_dir_all(dir)?;
    std::fs::write(dir.join("config.json"), CONFIG)?;
    std::fs::write(dir.join("tokenizer.json"), TOKENIZER)?;
    std::fs::write(dir.join("chat_template.jinja"), CHAT_TEMPLATE)?;
    std::fs::write(dir.join("generation_config.json"), GENERATION_CONFIG)?;
    std::fs::write(dir.join("model.safetensors"), WEIGHTS)
}

/// An untrained gym-tiny of the same shape, tokenizer and template, with
/// random weights drawn from `seed` (the baseline the trained one must beat).
pub fn random(seed: u64) -> Result<LlmPolicy> {
    let init = RandomInit { std: 0.02, embed_std: 0.02, seed };
    let model = CausalLm::random(&config()?, init, &Device::Cpu)?;
    assemble("gym-tiny-random", model)
}
