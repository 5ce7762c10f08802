//! Local LLM policies on [`models`].
//!
//! * [`chat`]: the model's chat template (minijinja) and harmony parsing.
//! * [`policy`]: [`LlmPolicy`], an [`envs::Policy`]: a [`models::CausalLm`]
//!   with its tokenizer, template and generation defaults.
//! * [`tiny`]: `gym-tiny`, the trained tiny model bundled in the binary.
//!
//! The network, its files, devices, sampling and LoRA are in [`models`].

pub mod chat;
pub mod error;
pub mod policy;
pub mod tiny;

pub use chat::{parse_harmony, ChatTemplate, HarmonyReply};
pub use error::LlmError;
pub use policy::{GenerationConfig, LlmPolicy, TokenizerText};

/// Loads a local LLM policy by name on `device`: `gym-tiny` (bundled), or a
/// preset, model folder or hub repo id ([`LlmPolicy::load_on`]).
pub fn load_on(name: &str, device: &candle_core::Device) -> error::Result<LlmPolicy> {
    if name == tiny::NAME {
        tiny::load_on(device)
    } else {
        LlmPolicy::load_on(name, device)
    }
}
