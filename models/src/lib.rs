//! # models — gym's networks, on candle
//!
//! Tensors, weights and generation only: this crate knows nothing of envs,
//! policies, tokenizers or training loops.
//!
//! * [`files`]: find a model (preset, local folder, or hub repo id in the
//!   Hugging Face cache, offline) and its files.
//! * [`config`]: `config.json` for Llama 3, Qwen2/2.5, Qwen3 and gpt-oss.
//! * [`device`]: `--device cpu|cuda[:N]|auto` and the dtype per device.
//! * [`model`]: gym's decoder ([`CausalLm`]), built from differentiable
//!   ops, with an external [`KvCache`] and activation [`Checkpoints`].
//! * [`nn`]: the layers: [`Linear`] (with LoRA injection points,
//!   [`LinearAdapter`]), RMSNorm, RoPE, attention helpers.
//! * [`lora`]: LoRA adapters ([`Lora`]) with PEFT names, saved and loaded
//!   in PEFT's format.
//! * [`sampling`]: temperature / top-k / top-p / min-p sampling of `n`
//!   completions sharing one prefilled prompt ([`generate`]).
//! * [`device_sampling`]: the same sampling on the device (GPU decode):
//!   only ids and log-probs reach the host.
//! * [`random`]: random-init weights for any config (tests, benchmarks,
//!   training from scratch).
//! * [`export`]: the one merge routine (LoRA into the base) and the one
//!   Hugging Face folder writer, used by SFT, GRPO `--save-merged` and
//!   `gym export`; GGUF (f16, q8_0) for llama.cpp.
//! * [`heap`]: glibc heap settings for tensor work.

pub mod config;
pub mod device;
pub mod device_sampling;
pub mod error;
pub mod export;
pub mod files;
pub mod heap;
pub mod lora;
pub mod model;
pub mod nn;
pub mod random;
pub mod sampling;

pub use config::{Arch, ModelConfig};
pub use device::{default_device, default_dtype, parse_device};
pub use error::{ModelError, Result};
pub use files::{looks_like_model, ModelFiles, PRESETS};
pub use lora::{Lora, LoraConfig};
pub use model::{Activations, CausalLm, Checkpoints, KvCache};
pub use nn::{Linear, LinearAdapter, LinearKind};
pub use random::{random_weights, RandomInit};
pub use sampling::{generate, Detokenize, FinishReason, NoText, Sample, SampleOptions};
