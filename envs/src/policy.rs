//! The agent interface: the [`Policy`] trait that rollouts call.
//!
//! Scripted baselines and LLM policies implement the same trait. A call
//! generates for a *batch* of prompts, `n` samples each. Every request
//! carries its own seed so results never depend on how requests were
//! batched or which thread ran them.

use crate::types::{Action, Observation};

/// Sampling parameters (names follow TRL / vLLM).
#[derive(Debug, Clone, PartialEq, serde::Serialize, serde::Deserialize)]
pub struct SamplingParams {
    /// Samples per prompt.
    pub n: usize,
    /// Softmax temperature; 0 means greedy.
    pub temperature: f32,
    /// Nucleus sampling mass (1.0 = off).
    pub top_p: f32,
    /// Keep only the k most likely tokens (0 = off).
    pub top_k: usize,
    /// Drop tokens below `min_p` × the top probability (0 = off).
    pub min_p: f32,
    /// Maximum new tokens per completion.
    pub max_new_tokens: usize,
    /// Stop strings (not included in the returned text).
    pub stop: Vec<String>,
}

impl Default for SamplingParams {
    fn default() -> Self {
        Self { n: 1, temperature: 1.0, top_p: 1.0, top_k: 0, min_p: 0.0, max_new_tokens: 512, stop: Vec::new() }
    }
}

/// One prompt in a batch.
#[derive(Debug, Clone, Copy)]
pub struct Request<'a> {
    /// What the env showed last.
    pub observation: &'a Observation,
    /// The conversation to answer: the episode's whole conversation, or the
    /// latest observation's messages, as the env's
    /// [`crate::Env::history`] (or the rollout's override) says. LLM
    /// policies render this; scripted ones read `observation`.
    pub messages: &'a [crate::types::Message],
    /// The env's demonstration, passed only to policies whose
    /// [`Policy::privileged`] is true (the `oracle`).
    pub oracle: Option<&'a Action>,
    /// The seed for this request's randomness; sample `i` of `n` uses a
    /// stream derived from `(seed, i)`.
    pub seed: u64,
    /// Identifies the request for replay: (env id, episode seed, sample, step).
    pub key: RequestKey<'a>,
}

/// Where a request comes from, for policies that replay recorded outputs.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct RequestKey<'a> {
    /// The env id.
    pub env: &'a str,
    /// The episode's env seed.
    pub seed: u64,
    /// The sample index within the group.
    pub sample: usize,
    /// The step index within the episode.
    pub step: usize,
}

/// One generated completion.
#[derive(Debug, Clone, Default, PartialEq)]
pub struct Completion {
    /// The action (text, optional structured form).
    pub action: Action,
    /// The generated token ids, for LLM policies.
    pub token_ids: Option<Vec<u32>>,
    /// The log-probability of each generated token, for LLM policies.
    pub logprobs: Option<Vec<f32>>,
    /// The policy ends the episode instead of acting (e.g. a trainer's
    /// token budget for it is spent): the env is not stepped, and the
    /// episode ends with its last step marked truncated, as a step limit
    /// would end it.
    pub ends_episode: bool,
}

impl Completion {
    /// A text-only completion.
    pub fn text(text: impl Into<String>) -> Self {
        Self { action: Action::text(text), ..Self::default() }
    }

    /// A completion that ends the episode without acting.
    pub fn end_episode() -> Self {
        Self { ends_episode: true, ..Self::default() }
    }
}

/// Errors a policy reports (model failures, server errors).
#[derive(Debug, thiserror::Error)]
#[non_exhaustive]
pub enum PolicyError {
    /// The policy cannot serve this env or request.
    #[error("{0}")]
    Unsupported(String),
    /// A recorded completion is missing (replay).
    #[error("{0}")]
    Missing(String),
    /// Anything else.
    #[error("{0}")]
    Other(String),
}

/// A policy: something that answers observations.
pub trait Policy: Send + Sync {
    /// A short name for reports.
    fn name(&self) -> &str;

    /// Generates `params.n` completions for each request, in order:
    /// the result has one inner vector per request, each of length `n`.
    fn generate(&self, requests: &[Request<'_>], params: &SamplingParams) -> Result<Vec<Vec<Completion>>, PolicyError>;

    /// Whether this policy is given the env's demonstration (only the
    /// `oracle` baseline should say yes).
    fn privileged(&self) -> bool {
        false
    }
}

/// Derives a child seed from a parent seed and a stream index (SplitMix64),
/// so per-episode and per-sample randomness is independent of scheduling.
pub fn derive_seed(seed: u64, stream: u64) -> u64 {
    let mut z = seed ^ stream.wrapping_add(1).wrapping_mul(0x9E37_79B9_7F4A_7C15);
    z = (z ^ (z >> 30)).wrapping_mul(0xBF58_476D_1CE4_E5B9);
    z = (z ^ (z >> 27)).wrapping_mul(0x94D0_49BB_1331_11EB);
    z ^ (z >> 31)
}
