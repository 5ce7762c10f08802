//! [`EnvSource`]: completions and rewards from any registered env, through
//! the rollout engine (`envs::rollout`), with an [`LlmPolicy`] whose model
//! carries the trainer's adapters.
//!
//! Each prompt is one env seed; the `num_generations` completions of a
//! group are episodes sharing that seed (the same initial state). The
//! prompt's token ids are the policy's chat rendering of the env's first
//! observation, exactly what the policy sampled from; the rewards are the
//! env's per-function breakdown (`None` terms stay "no reward").
//!
//! One-step envs are supported; multi-turn trajectories (env tokens masked
//! out of the loss) are not yet and are reported as an error.

use std::collections::BTreeMap;

use envs::{EnvMaker, Policy, RolloutConfig, SamplingParams};
use policies::llm::sampling::SampleOptions;
use policies::llm::{CausalLm, LlmPolicy};

use crate::error::{Result, TrainError};
use crate::trainer::{RolloutSource, Sequence};

/// A rollout source over an env and a local LLM policy.
pub struct EnvSource {
    /// The env id (for records and request keys).
    pub env_id: String,
    /// The env's options (recorded in trajectories).
    pub options: BTreeMap<String, String>,
    maker: EnvMaker,
    policy: LlmPolicy,
    threads: usize,
    names: Vec<String>,
    weights: Vec<f64>,
}

impl std::fmt::Debug for EnvSource {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("EnvSource").field("env_id", &self.env_id).field("policy", &self.policy.name()).finish()
    }
}

impl EnvSource {
    /// A source for `env_id` built by `maker`, sampled by `policy` (attach
    /// the adapters to `policy.model_mut()` first and give the trainer a
    /// clone of that model, so both share weights and adapters).
    pub fn new(env_id: &str, options: BTreeMap<String, String>, maker: EnvMaker, policy: LlmPolicy) -> Self {
        Self { env_id: env_id.to_string(), options, maker, policy, threads: 1, names: Vec::new(), weights: Vec::new() }
    }

    /// Rollout worker threads (default 1: candle parallelises the matmuls).
    pub fn with_threads(mut self, threads: usize) -> Self {
        self.threads = threads;
        self
    }

    /// The policy.
    pub fn policy(&self) -> &LlmPolicy {
        &self.policy
    }
}

impl RolloutSource for EnvSource {
    fn reward_names(&self) -> Vec<String> {
        self.names.clone()
    }

    fn reward_weights(&self) -> Vec<f64> {
        self.weights.clone()
    }

    fn generate(
        &mut self,
        _model: &CausalLm,
        prompts: usize,
        group: usize,
        sampling: &SampleOptions,
        seed: u64,
    ) -> Result<Vec<Sequence>> {
        let cfg = RolloutConfig {
            env_id: self.env_id.clone(),
            options: self.options.clone(),
            episodes: prompts * group,
            // Env seeds seed..seed+prompts: keep them in a readable range.
            seed: seed % 1_000_000_007,
            group_size: group,
            threads: self.threads,
            sampling: SamplingParams {
                n: 1,
                temperature: sampling.temperature,
                top_p: sampling.top_p,
                top_k: sampling.top_k,
                min_p: sampling.min_p,
                max_new_tokens: sampling.max_new_tokens,
                stop: Vec::new(),
            },
        };
        let eps =
            envs::rollout(&self.maker, &self.policy, &cfg, &|_| {}).map_err(|e| TrainError::Rollout(e.to_string()))?;
        let mut names: Vec<String> = Vec::new();
        let mut weights: Vec<f64> = Vec::new();
        for ep in &eps {
            for s in &ep.steps {
                for t in &s.breakdown {
                    if !names.contains(&t.name) {
                        names.push(t.name.clone());
                        weights.push(t.weight);
                    }
                }
            }
        }
        if names.is_empty() {
            names.push("reward".into());
            weights.push(1.0);
        }
        let eos = self.policy.eos_token_ids().to_vec();
        let mut out = Vec::with_capacity(eps.len());
        for ep in eps {
            if ep.steps.len() != 1 {
                return Err(TrainError::Rollout(format!(
                    "env `{}` ran {} steps (seed {}): GRPO training supports one-step envs so far",
                    self.env_id,
                    ep.steps.len(),
                    ep.seed
                )));
            }
            let step = &ep.steps[0];
            let completion = step
                .token_ids
                .clone()
                .ok_or_else(|| TrainError::Rollout(format!("policy `{}` returned no token ids", self.policy.name())))?;
            let prompt = self.policy.encode(&self.policy.render_prompt(&ep.prompt)?)?;
            let truncated = completion.last().is_none_or(|t| !eos.contains(t));
            let rewards = if step.breakdown.is_empty() {
                vec![Some(step.reward)]
            } else {
                names.iter().map(|n| step.breakdown.iter().find(|t| &t.name == n).and_then(|t| t.value)).collect()
            };
            out.push(Sequence {
                prompt,
                loss_mask: vec![true; completion.len()],
                completion,
                truncated,
                rewards,
                text: step.action.clone(),
            });
        }
        self.names = names;
        self.weights = weights;
        Ok(out)
    }
}
