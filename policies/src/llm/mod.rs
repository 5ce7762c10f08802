//! Local LLM policies on candle.
//!
//! * [`files`]: find a model (preset, local folder, or hub repo id in the
//!   Hugging Face cache, offline).
//! * [`device`]: `--device cpu|cuda[:N]|auto` and the dtype per device.
//! * [`config`]: `config.json` for Llama 3, Qwen2/2.5, Qwen3 and gpt-oss.
//! * [`model`]: gym's own decoder ([`CausalLm`]), built from differentiable
//!   ops, with an external [`KvCache`] and [`Linear`] layers that accept
//!   LoRA adapters ([`LinearAdapter`]).
//! * [`chat`]: the model's chat template (minijinja) and harmony parsing.
//! * [`sampling`]: temperature / top-k / top-p / min-p sampling of `n`
//!   completions sharing one prefilled prompt.
//! * [`policy`]: [`LlmPolicy`], an [`envs::Policy`].
//! * [`tiny`]: `gym-tiny`, the trained tiny model bundled in the binary.

pub mod chat;
pub mod config;
pub mod device;
pub mod error;
pub mod files;
pub mod model;
pub mod nn;
pub mod policy;
pub mod random;
pub mod sampling;
pub mod tiny;

pub use chat::{parse_harmony, ChatTemplate, HarmonyReply};
pub use config::{Arch, ModelConfig};
pub use device::{default_device, default_dtype, parse_device};
pub use error::LlmError;
pub use files::{looks_like_model, ModelFiles, PRESETS};
pub use model::{Activations, CausalLm, Checkpoints, KvCache};
pub use nn::{Linear, LinearAdapter, LinearKind};
pub use policy::{GenerationConfig, LlmPolicy};
pub use random::{random_weights, RandomInit};
pub use sampling::{generate, FinishReason, Sample, SampleOptions};
