//! [`GrpoConfig`]: the trainer's settings, named as TRL's `GRPOConfig`
//! (and HF `TrainingArguments` / TRL `ModelConfig` for LoRA) wherever the
//! concept is the same, so a TRL user's config reads the same.
//!
//! Defaults are TRL 1.16's except where noted on the field
//! (`learning_rate`, `lora_dropout`, `lora_target_modules`,
//! `max_completion_length`).

use serde::{Deserialize, Serialize};

use crate::error::{Result, TrainError};
use crate::grpo::{IsLevel, LossConfig, LossType, ScaleRewards};
use crate::optim::{AdamWConfig, Schedule};
use models::lora::LoraConfig;

/// GRPO settings. Every field has a default; a TOML file sets any subset.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
#[serde(default, deny_unknown_fields)]
pub struct GrpoConfig {
    // ---- optimisation (HF TrainingArguments) ----
    /// Peak learning rate. Default 1e-5 (TRL: 1e-6, meant for full
    /// fine-tuning; LoRA wants ~10× the full-FT rate).
    pub learning_rate: f64,
    /// `linear` (default), `cosine`, `constant`, `constant_with_warmup`.
    pub lr_scheduler_type: Schedule,
    /// Warm-up steps (overrides `warmup_ratio` when > 0).
    pub warmup_steps: usize,
    /// Warm-up as a fraction of `max_steps`.
    pub warmup_ratio: f64,
    /// AdamW β₁.
    pub adam_beta1: f64,
    /// AdamW β₂.
    pub adam_beta2: f64,
    /// AdamW ε.
    pub adam_epsilon: f64,
    /// Decoupled weight decay.
    pub weight_decay: f64,
    /// Global gradient-norm clip (0 = off).
    pub max_grad_norm: f64,
    /// Optimizer steps to run.
    pub max_steps: usize,
    /// Completions per micro-batch (counts completions, not prompts).
    pub per_device_train_batch_size: usize,
    /// Micro-batches per optimizer step.
    pub gradient_accumulation_steps: usize,
    /// Micro-batches per generation (default = `gradient_accumulation_steps`).
    pub steps_per_generation: Option<usize>,
    /// Seed of every random choice (prompts, sampling, shuffling, LoRA init).
    pub seed: u64,

    // ---- GRPO ----
    /// Completions per prompt (G ≥ 2).
    pub num_generations: usize,
    /// Reuses of each generation batch (μ).
    pub num_iterations: usize,
    /// Prompts longer than this are cut from the left.
    pub max_prompt_length: usize,
    /// Maximum new tokens (also the Dr. GRPO constant). Default 256 (TRL 512).
    pub max_completion_length: usize,
    /// Sampling temperature; log-probs use the same `logits / T`.
    pub temperature: f64,
    /// Nucleus mass (1 = off).
    pub top_p: f64,
    /// Top-k (0 = off).
    pub top_k: usize,
    /// Min-p (0 = off).
    pub min_p: f64,
    /// `grpo`, `bnpo`, `dr_grpo` or `dapo` (default).
    pub loss_type: LossType,
    /// `group` (default), `batch` or `none`.
    pub scale_rewards: ScaleRewards,
    /// KL coefficient (0 = no reference pass).
    pub beta: f64,
    /// Lower clip ε.
    pub epsilon: f64,
    /// Upper clip (default = `epsilon`).
    pub epsilon_high: Option<f64>,
    /// Two-sided clip of the unclipped branch.
    pub delta: Option<f64>,
    /// `token` (default) or `sequence` (GSPO).
    pub importance_sampling_level: IsLevel,
    /// Multiply k3 by the importance ratio.
    pub use_bias_correction_kl: bool,
    /// Exclude truncated completions from the loss (their reward still counts).
    pub mask_truncated_completions: bool,
    /// Weight of each reward function (default all 1).
    pub reward_weights: Option<Vec<f64>>,

    // ---- LoRA (TRL ModelConfig names) ----
    /// LoRA rank.
    pub lora_r: usize,
    /// LoRA α.
    pub lora_alpha: f64,
    /// LoRA dropout. Default 0 (TRL 0.05; dropout breaks ratio = 1 on-policy).
    pub lora_dropout: f64,
    /// Modules to adapt. Default `["all-linear"]`.
    pub lora_target_modules: Vec<String>,
    /// Rank-stabilised LoRA scaling.
    pub use_rslora: bool,

    /// Recompute each decoder block during the backward pass instead of
    /// keeping its activations (HF `gradient_checkpointing`; TRL's GRPO
    /// default, true). Costs one extra forward; saves most activation
    /// memory on long completions.
    pub gradient_checkpointing: bool,

    // ---- gym ----
    /// Rows of the output head computed at once (memory ↔ speed). Default
    /// 256: a Qwen-sized vocabulary (152k) then needs ~150 MB per f32 copy.
    pub logit_chunk_rows: usize,
    /// Write a checkpoint every this many steps (0 = only at the end).
    pub save_steps: usize,
    /// Keep at most this many checkpoints (0 = all).
    pub save_total_limit: usize,
    /// Multi-turn envs: at most this many sampled tokens per turn (default:
    /// whatever is left of `max_completion_length`, which bounds the whole
    /// completion, env tokens included).
    pub max_turn_tokens: Option<usize>,
}

impl Default for GrpoConfig {
    fn default() -> Self {
        Self {
            learning_rate: 1e-5,
            lr_scheduler_type: Schedule::Linear,
            warmup_steps: 0,
            warmup_ratio: 0.0,
            adam_beta1: 0.9,
            adam_beta2: 0.999,
            adam_epsilon: 1e-8,
            weight_decay: 0.0,
            max_grad_norm: 1.0,
            max_steps: 100,
            per_device_train_batch_size: 8,
            gradient_accumulation_steps: 1,
            steps_per_generation: None,
            seed: 42,
            num_generations: 8,
            num_iterations: 1,
            max_prompt_length: 512,
            max_completion_length: 256,
            temperature: 1.0,
            top_p: 1.0,
            top_k: 0,
            min_p: 0.0,
            loss_type: LossType::Dapo,
            scale_rewards: ScaleRewards::Group,
            beta: 0.0,
            epsilon: 0.2,
            epsilon_high: None,
            delta: None,
            importance_sampling_level: IsLevel::Token,
            use_bias_correction_kl: true,
            mask_truncated_completions: false,
            reward_weights: None,
            lora_r: 16,
            lora_alpha: 32.0,
            lora_dropout: 0.0,
            lora_target_modules: vec!["all-linear".into()],
            use_rslora: false,
            gradient_checkpointing: true,
            logit_chunk_rows: 256,
            save_steps: 0,
            save_total_limit: 0,
            max_turn_tokens: None,
        }
    }
}

impl GrpoConfig {
    /// Reads a TOML document (unknown keys are errors).
    pub fn from_toml(text: &str) -> Result<Self> {
        toml::from_str(text).map_err(|e| TrainError::Config(e.to_string()))
    }

    /// The TOML form of this config.
    pub fn to_toml(&self) -> Result<String> {
        toml::to_string(self).map_err(|e| TrainError::Config(e.to_string()))
    }

    /// `steps_per_generation` with its default.
    pub fn spg(&self) -> usize {
        self.steps_per_generation.unwrap_or(self.gradient_accumulation_steps).max(1)
    }

    /// Completions per generation batch.
    pub fn generation_batch_size(&self) -> usize {
        self.per_device_train_batch_size * self.spg()
    }

    /// Unique prompts per generation batch.
    pub fn prompts_per_generation(&self) -> usize {
        self.generation_batch_size() / self.num_generations.max(1)
    }

    /// Micro-steps between generations (`spg × num_iterations`).
    pub fn generate_every(&self) -> usize {
        self.spg() * self.num_iterations.max(1)
    }

    /// Whether old log-probs are computed after generation (TRL: iff
    /// `GA % generate_every != 0`); otherwise the ratio is on-policy.
    pub fn needs_old_logprobs(&self) -> bool {
        !self.gradient_accumulation_steps.max(1).is_multiple_of(self.generate_every())
    }

    /// Warm-up steps with `warmup_ratio` resolved.
    pub fn warmup(&self) -> usize {
        if self.warmup_steps > 0 {
            self.warmup_steps
        } else {
            (self.warmup_ratio * self.max_steps as f64).ceil() as usize
        }
    }

    /// The loss settings.
    pub fn loss(&self) -> LossConfig {
        LossConfig {
            epsilon: self.epsilon,
            epsilon_high: self.epsilon_high.unwrap_or(self.epsilon),
            delta: self.delta,
            beta: self.beta,
            bias_correction_kl: self.use_bias_correction_kl,
            level: self.importance_sampling_level,
            loss_type: self.loss_type,
            max_completion_length: self.max_completion_length,
            grad_accum: self.gradient_accumulation_steps.max(1),
            steps_per_generation: self.spg(),
        }
    }

    /// The LoRA settings.
    pub fn lora(&self) -> LoraConfig {
        LoraConfig {
            r: self.lora_r,
            lora_alpha: self.lora_alpha,
            lora_dropout: self.lora_dropout,
            target_modules: self.lora_target_modules.clone(),
            use_rslora: self.use_rslora,
        }
    }

    /// The optimizer settings.
    pub fn adamw(&self) -> AdamWConfig {
        AdamWConfig {
            beta1: self.adam_beta1,
            beta2: self.adam_beta2,
            eps: self.adam_epsilon,
            weight_decay: self.weight_decay,
        }
    }

    /// Checks TRL's validation rules.
    pub fn validate(&self) -> Result<()> {
        let bad = |m: String| Err(TrainError::Config(m));
        if self.num_generations < 2 {
            return bad(format!("num_generations must be at least 2 (got {})", self.num_generations));
        }
        if self.per_device_train_batch_size == 0 || self.gradient_accumulation_steps == 0 {
            return bad("per_device_train_batch_size and gradient_accumulation_steps must be ≥ 1".into());
        }
        let gbs = self.generation_batch_size();
        if !gbs.is_multiple_of(self.num_generations) {
            return bad(format!(
                "generation batch size {gbs} (per_device_train_batch_size × steps_per_generation) is not \
                 divisible by num_generations {}",
                self.num_generations
            ));
        }
        if self.temperature <= 0.0 {
            return bad(format!("temperature must be > 0 for GRPO (got {})", self.temperature));
        }
        if !(self.top_p > 0.0 && self.top_p <= 1.0) {
            return bad(format!("top_p must be in (0, 1] (got {})", self.top_p));
        }
        if self.max_completion_length == 0 || self.num_iterations == 0 {
            return bad("max_completion_length and num_iterations must be ≥ 1".into());
        }
        if self.max_turn_tokens == Some(0) {
            return bad("max_turn_tokens must be ≥ 1 (or unset)".into());
        }
        if self.epsilon < 0.0 || self.epsilon_high.is_some_and(|e| e < 0.0) {
            return bad("epsilon and epsilon_high must be ≥ 0".into());
        }
        if let Some(d) = self.delta {
            if d <= 1.0 + self.epsilon_high.unwrap_or(self.epsilon) {
                return bad(format!("delta {d} must exceed 1 + epsilon_high"));
            }
        }
        if self.learning_rate < 0.0 || !self.learning_rate.is_finite() {
            return bad(format!("learning_rate {} is invalid", self.learning_rate));
        }
        Ok(())
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn toml_uses_trl_names_and_rejects_unknown_keys() {
        let c = GrpoConfig::from_toml(
            "learning_rate = 3e-3\nnum_generations = 4\nloss_type = \"dr_grpo\"\nscale_rewards = \"none\"\n\
             epsilon_high = 0.28\nbeta = 0.04\nlr_scheduler_type = \"cosine\"\nlora_target_modules = [\"q_proj\"]\n",
        )
        .unwrap();
        assert_eq!(c.learning_rate, 3e-3);
        assert_eq!(c.loss_type, LossType::DrGrpo);
        assert_eq!(c.scale_rewards, ScaleRewards::None);
        assert_eq!(c.loss().epsilon_high, 0.28);
        assert_eq!(c.lr_scheduler_type, Schedule::Cosine);
        assert_eq!(c.max_completion_length, GrpoConfig::default().max_completion_length);
        assert!(GrpoConfig::from_toml("learning_rat = 1.0").unwrap_err().to_string().contains("learning_rat"));
        let round = GrpoConfig::from_toml(&c.to_toml().unwrap()).unwrap();
        assert_eq!(round, c);
    }

    #[test]
    fn validation_follows_trl_rules() {
        assert!(GrpoConfig::default().validate().is_ok());
        let c = GrpoConfig { num_generations: 3, ..Default::default() };
        assert!(c.validate().unwrap_err().to_string().contains("divisible"));
        assert!(GrpoConfig { num_generations: 1, ..Default::default() }.validate().is_err());
        let c = GrpoConfig { max_turn_tokens: Some(0), ..Default::default() };
        assert!(c.validate().unwrap_err().to_string().contains("max_turn_tokens"));
        assert!(GrpoConfig { max_turn_tokens: Some(8), ..Default::default() }.validate().is_ok());
        let c = GrpoConfig { gradient_accumulation_steps: 2, num_iterations: 2, ..Default::default() };
        assert!(c.needs_old_logprobs());
        assert!(!GrpoConfig::default().needs_old_logprobs());
        let c = GrpoConfig { gradient_accumulation_steps: 2, steps_per_generation: Some(4), ..Default::default() };
        assert_eq!(c.generation_batch_size(), 32);
        assert!(c.needs_old_logprobs());
    }
}
