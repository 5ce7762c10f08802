//! # trainers — fine-tuning policies on env rewards
//!
//! The networks, LoRA adapters and exports are in [`models`]; this crate
//! holds the losses, optimisers and training loops.
//!
//! * [`grpo`]: GRPO's math exactly as TRL 1.16 computes it (advantages,
//!   importance ratios, clipped surrogate, k3 KL, aggregation per
//!   `loss_type`) on plain arrays with analytic per-token gradients — the
//!   specification, unit-tested against golden values computed with TRL
//!   1.16's formulas (the tables are in `grpo.rs`'s tests).
//! * [`loss`]: the same loss on tensors, differentiable (tested equal to
//!   [`grpo`] in value and gradient).
//! * [`score`]: chunked log-probs / entropies and a memory-lean backward.
//! * [`optim`]: AdamW, learning-rate schedules, gradient clipping.
//! * [`checkpoint`]: atomic checkpoints and resume.
//! * [`config`]: [`GrpoConfig`] with TRL's `GRPOConfig` names (TOML).
//! * [`trainer`]: [`GrpoTrainer`], the loop, and the [`RolloutSource`]
//!   trait that feeds it completions and rewards.
//! * [`envsource`]: [`envsource::EnvSource`], rewards from registered envs.
//! * [`sft`]: supervised fine-tuning (completion-only cross-entropy) on
//!   LoRA adapters or all weights, from TRL-format JSONL or env data.
//! * [`run`]: whole runs ([`run::GrpoRun`], [`run::SftRun`]): output
//!   folder, settings in layers, metrics file, resume, checkpoint cadence,
//!   saving — what `gym train` drives.
//! * [`toy`]: the toy learning setups (tiny random Qwen2, char tokenizer,
//!   `count_a`, `echo`) that prove the trainer learns.

pub mod checkpoint;
pub mod config;
pub mod envsource;
pub mod error;
pub mod grpo;
pub mod loss;
pub mod optim;
pub mod run;
pub mod score;
pub mod sft;
pub mod toy;
pub mod trainer;

pub use config::GrpoConfig;
pub use error::{Result, TrainError};
pub use models::lora::{Lora, LoraConfig};
pub use trainer::{GrpoTrainer, Metrics, RolloutSource, Sequence};
