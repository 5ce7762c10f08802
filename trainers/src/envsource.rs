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
//! # Multi-turn episodes
//!
//! An episode of `k` steps becomes one training sequence:
//!
//! ```text
//! prompt     = render(first observation) up to the assistant's generation prompt
//! completion = reply 1 | env 1 | reply 2 | env 2 | … | reply k
//! loss_mask  = true      false    true     false       true
//! ```
//!
//! *Replies* are the tokens the policy sampled; *env* segments are the
//! tokens the model's chat template inserts for the env's next observation
//! (end of the assistant turn, the user turn with the observation's last
//! user message — what [`envs::Observation::text`] returns — and the next
//! generation prompt). The policy sees the growing conversation — the
//! rollout engine's [`envs::Conversation`], the same record `gym run` shows
//! a policy (envs that show only their latest observation,
//! [`envs::History::Latest`], are refused: one sequence per episode needs
//! the whole conversation). Turn
//! `t + 1` is sampled from the token ids of `prompt ++ completion so far`
//! (token in, token out), so earlier replies are never re-tokenized and the
//! sequence is exactly what the policy conditioned on at every turn.
//!
//! The env segment after reply `t` is the text by which the rendering of
//! the conversation with reply `t` and observation `t + 1` extends the
//! rendering it was sampled from plus the reply text. If the template does
//! not render it that way (it re-renders earlier turns differently, e.g.
//! strips reasoning or trims whitespace), training fails with an error
//! naming the turn: such templates are not prefix-preserving and need a
//! patched template. When reply `t` ended with an EOS token whose text
//! starts the env segment (Qwen's `<|im_end|>`), that text is not repeated;
//! a reply cut without EOS is closed by the template's end-of-turn tokens,
//! which are env tokens.
//!
//! *Budget.* `max_completion_length` bounds the whole completion, env tokens
//! included (so `dr_grpo`'s constant is a true bound and memory stays
//! bounded): each turn may sample at most the tokens left (and at most
//! [`EnvSource::with_max_turn_tokens`]); when the next env segment leaves no
//! room for a token (or the model's context is full), the episode ends
//! there, truncated, and the sequence is marked `truncated` — as it is when
//! its last reply has no EOS. An episode cut by the env's own step limit is
//! not `truncated` in this sense: its return is what the env gave.
//!
//! *Rewards.* The sequence's reward is the episode return: per reward
//! function, the sum over steps of its values (`None` when no step scored
//! it), so the weighted sum is the sum of the step rewards.
//!
//! *Masking.* Env tokens have `loss_mask` false: they count in no loss term,
//! no normaliser (`grpo`'s per-sequence lengths, `bnpo`/`dapo`'s token
//! counts), and in neither `entropy`, `kl`, the clip ratios nor
//! `completions/*_length` (which count policy tokens); `num_tokens` counts
//! every token the model processed. One-step envs are the case `k = 1`.

use std::collections::BTreeMap;
use std::sync::Mutex;

use envs::policy::{Completion, PolicyError, Request};
use envs::{Action, EnvMaker, EpisodeRecord, History, Policy, RolloutConfig, SamplingParams};
use models::sampling::SampleOptions;
use models::CausalLm;
use policies::llm::LlmPolicy;

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
    max_turn_tokens: Option<usize>,
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
        Self {
            env_id: env_id.to_string(),
            options,
            maker,
            policy,
            threads: 1,
            max_turn_tokens: None,
            names: Vec::new(),
            weights: Vec::new(),
        }
    }

    /// Rollout worker threads (default 1: candle parallelises the matmuls).
    pub fn with_threads(mut self, threads: usize) -> Self {
        self.threads = threads;
        self
    }

    /// At most this many sampled tokens per turn of a multi-turn episode
    /// (`None`, the default: whatever is left of `max_completion_length`).
    pub fn with_max_turn_tokens(mut self, max_turn_tokens: Option<usize>) -> Self {
        self.max_turn_tokens = max_turn_tokens;
        self
    }

    /// The policy.
    pub fn policy(&self) -> &LlmPolicy {
        &self.policy
    }

    /// Runs `episodes` episodes (`group` per env seed, env seeds from
    /// `seed`) and returns each episode's record with its training
    /// sequence (rewards in the order of [`RolloutSource::reward_names`]
    /// as of this call). `budget` is `max_completion_length`.
    pub fn episodes(
        &mut self,
        episodes: usize,
        group: usize,
        sampling: &SampleOptions,
        seed: u64,
    ) -> Result<Vec<(EpisodeRecord, Sequence)>> {
        let budget = sampling.max_new_tokens;
        if (self.maker)().history() == History::Latest {
            return Err(TrainError::Rollout(format!(
                "env `{}` shows policies only its latest observation; training samples every turn from the whole \
                 conversation (one sequence per episode), so it cannot train this env as evaluated",
                self.env_id
            )));
        }
        let cfg = RolloutConfig {
            env_id: self.env_id.clone(),
            options: self.options.clone(),
            episodes,
            seed,
            group_size: group,
            threads: self.threads,
            sampling: SamplingParams {
                n: 1,
                temperature: sampling.temperature,
                top_p: sampling.top_p,
                top_k: sampling.top_k,
                min_p: sampling.min_p,
                max_new_tokens: self.max_turn_tokens.map_or(budget, |m| m.min(budget)),
                stop: Vec::new(),
            },
            history: Some(History::Full),
        };
        let turns = Turns {
            policy: &self.policy,
            budget,
            max_prompt: sampling.max_prompt_tokens,
            live: Mutex::new(BTreeMap::new()),
        };
        let eps = envs::rollout(&self.maker, &turns, &cfg, &|_| {}).map_err(|e| TrainError::Rollout(e.to_string()))?;
        let mut live = turns.live.into_inner().unwrap_or_else(|p| p.into_inner());
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
        let breakdowns = !names.is_empty();
        if !breakdowns {
            names.push("reward".into());
            weights.push(1.0);
        }
        let eos = self.policy.eos_token_ids();
        let mut out = Vec::with_capacity(eps.len());
        for ep in eps {
            let tr = live.remove(&(ep.seed, ep.sample)).ok_or_else(|| {
                TrainError::Rollout(format!("no token record of episode (seed {}, sample {})", ep.seed, ep.sample))
            })?;
            if tr.turns != ep.steps.len() {
                return Err(TrainError::Rollout(format!(
                    "episode (seed {}, sample {}) has {} steps but {} sampled turns",
                    ep.seed,
                    ep.sample,
                    ep.steps.len(),
                    tr.turns
                )));
            }
            let truncated = tr.cut || tr.completion.last().is_none_or(|t| !eos.contains(t));
            let rewards = if breakdowns {
                names
                    .iter()
                    .map(|n| {
                        let vals: Vec<f64> = ep
                            .steps
                            .iter()
                            .flat_map(|s| s.breakdown.iter().filter(|t| &t.name == n).filter_map(|t| t.value))
                            .collect();
                        (!vals.is_empty()).then(|| vals.iter().sum())
                    })
                    .collect()
            } else {
                vec![Some(ep.steps.iter().map(|s| s.reward).sum())]
            };
            let text = ep.steps.iter().map(|s| s.action.as_str()).collect::<Vec<_>>().join("\n");
            let seq = Sequence {
                prompt: tr.prompt,
                completion: tr.completion,
                loss_mask: tr.mask,
                truncated,
                rewards,
                text,
                prompt_clipped: tr.clipped,
            };
            out.push((ep, seq));
        }
        self.names = names;
        self.weights = weights;
        Ok(out)
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
        model: &CausalLm,
        prompts: usize,
        group: usize,
        sampling: &SampleOptions,
        seed: u64,
    ) -> Result<Vec<Sequence>> {
        // Sample with the model the trainer hands over (its own, or a copy
        // with the adapters merged in), then put the policy's back.
        let own = std::mem::replace(self.policy.model_mut(), model.clone());
        // Env seeds seed..seed+prompts: keep them in a readable range.
        let eps = self.episodes(prompts * group, group, sampling, seed % 1_000_000_007);
        *self.policy.model_mut() = own;
        Ok(eps?.into_iter().map(|(_, s)| s).collect())
    }
}

/// The token record of one episode being played (its messages are the
/// rollout's [`envs::Conversation`], passed with every request).
#[derive(Debug, Default)]
struct Trace {
    /// The chat rendering the last turn was sampled from (generation prompt
    /// included), plus that turn's reply text.
    rendered: String,
    /// The last reply's token ids.
    last: Vec<u32>,
    prompt: Vec<u32>,
    completion: Vec<u32>,
    mask: Vec<bool>,
    /// Policy turns sampled.
    turns: usize,
    /// First-prompt tokens dropped to fit the prompt limit.
    clipped: usize,
    /// Ended by the token budget or the context size.
    cut: bool,
}

/// The policy as the trainer runs it: each episode is one growing
/// conversation, sampled token in, token out, within a token budget.
struct Turns<'a> {
    policy: &'a LlmPolicy,
    budget: usize,
    /// `max_prompt_tokens` (0 = none): the first prompt is cut to its last
    /// tokens before the first turn is sampled.
    max_prompt: usize,
    live: Mutex<BTreeMap<(u64, usize), Trace>>,
}

impl Turns<'_> {
    fn lock(&self) -> std::sync::MutexGuard<'_, BTreeMap<(u64, usize), Trace>> {
        self.live.lock().unwrap_or_else(|p| p.into_inner())
    }

    fn err(&self, msg: String) -> PolicyError {
        PolicyError::Other(format!("{}: {msg}", self.policy.name()))
    }

    /// Appends the env tokens for `r`'s observation to `tr`; false when the
    /// episode has no room left for them and a sampled token.
    fn extend(&self, tr: &mut Trace, r: &Request<'_>) -> Result<bool, PolicyError> {
        let p = self.policy;
        let next = p.render_prompt(r.messages).map_err(|e| self.err(e.to_string()))?;
        let Some(rest) = next.strip_prefix(tr.rendered.as_str()) else {
            return Err(PolicyError::Unsupported(format!(
                "{}: the chat template is not prefix-preserving: the conversation rendered for turn {} of env `{}` \
                 (seed {}, sample {}) does not extend the prompt and reply of turn {} (a template that re-renders \
                 earlier turns, e.g. strips reasoning or trims replies, cannot be trained on multi-turn episodes)",
                p.name(),
                r.key.step + 1,
                r.key.env,
                r.key.seed,
                r.key.sample,
                r.key.step
            )));
        };
        let mut rest = rest;
        if let Some(&last) = tr.last.last() {
            if p.eos_token_ids().contains(&last) {
                let eos = p.tokenizer().decode(&[last], false).map_err(|e| self.err(e.to_string()))?;
                if !eos.is_empty() {
                    rest = rest.strip_prefix(eos.as_str()).unwrap_or(rest);
                }
            }
        }
        let ids = p.encode(rest).map_err(|e| self.err(e.to_string()))?;
        let used = tr.completion.len() + ids.len();
        let context = p.model().config().max_position_embeddings;
        if used >= self.budget || tr.prompt.len() + used >= context {
            return Ok(false);
        }
        tr.completion.extend_from_slice(&ids);
        tr.mask.resize(tr.completion.len(), false);
        tr.rendered = next;
        Ok(true)
    }

    /// Samples turn `r.key.step` of its episode.
    fn turn(&self, r: &Request<'_>, params: &SamplingParams) -> Result<Completion, PolicyError> {
        let p = self.policy;
        let key = (r.key.seed, r.key.sample);
        let mut tr = if r.key.step == 0 {
            let rendered = p.render_prompt(r.messages).map_err(|e| self.err(e.to_string()))?;
            let mut prompt = p.encode(&rendered).map_err(|e| self.err(e.to_string()))?;
            let clipped = if self.max_prompt > 0 { prompt.len().saturating_sub(self.max_prompt) } else { 0 };
            prompt.drain(..clipped);
            Trace { rendered, prompt, clipped, ..Trace::default() }
        } else {
            let tr = self.lock().remove(&key);
            let mut tr = tr.ok_or_else(|| self.err(format!("turn {} of an episode never started", r.key.step)))?;
            if tr.cut || !self.extend(&mut tr, r)? {
                tr.cut = true;
                self.lock().insert(key, tr);
                return Ok(Completion::end_episode());
            }
            tr
        };
        let mut ids = tr.prompt.clone();
        ids.extend_from_slice(&tr.completion);
        // The policy's one mapping of an env's sampling parameters; the turn's budget on top.
        let opts = SampleOptions {
            max_new_tokens: params.max_new_tokens.min(self.budget - tr.completion.len()),
            ..p.sample_options(params, r.seed)
        };
        let s = p.sample_ids(&ids, 1, &opts).map_err(|e| self.err(e.to_string()))?.swap_remove(0);
        let reply = p.reply_text(&s);
        tr.completion.extend_from_slice(&s.token_ids);
        tr.mask.resize(tr.completion.len(), true);
        tr.rendered.push_str(&reply);
        tr.last.clone_from(&s.token_ids);
        tr.turns += 1;
        self.lock().insert(key, tr);
        Ok(Completion {
            action: Action::text(reply),
            token_ids: Some(s.token_ids),
            logprobs: Some(s.logprobs),
            ends_episode: false,
        })
    }
}

impl Policy for Turns<'_> {
    fn name(&self) -> &str {
        self.policy.name()
    }

    fn generate(&self, requests: &[Request<'_>], params: &SamplingParams) -> Result<Vec<Vec<Completion>>, PolicyError> {
        if params.n != 1 {
            return Err(self.err(format!("multi-turn training samples one completion per request (n = {})", params.n)));
        }
        requests.iter().map(|r| Ok(vec![self.turn(r, params)?])).collect()
    }
}
