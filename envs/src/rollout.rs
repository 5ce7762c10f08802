//! The rollout engine: runs episodes of an env with a policy across
//! threads, deterministically.
//!
//! Episodes come in groups of `group_size` samples that share one env seed
//! (the same initial state: what GRPO compares). Group `g` uses env seed
//! `seed + g`; the policy's randomness for sample `i` at step `t` derives
//! from `(env seed, i, t)`. Groups are handed to worker threads in any
//! order but stored by index, so the trajectories are bit-identical
//! whatever the thread count.
//!
//! Each episode keeps one [`Conversation`]; every request carries it (or
//! only the latest observation, per [`RolloutConfig::history`] and the
//! env's [`crate::Env::history`]).
//!
//! A policy may end an episode early ([`Completion::ends_episode`], e.g.
//! when a trainer's token budget for it is spent): the episode then stops
//! before the env is stepped again and its last step is marked truncated.

use std::collections::BTreeMap;
use std::sync::atomic::{AtomicBool, AtomicUsize, Ordering};
use std::sync::Mutex;

use serde::{Deserialize, Serialize};

use crate::conversation::{Conversation, History};
use crate::env::{Env, EnvError};
use crate::policy::{derive_seed, Completion, Policy, PolicyError, Request, RequestKey, SamplingParams};
use crate::registry::EnvMaker;
use crate::types::{Action, Observation, RewardTerm};

/// What to run.
#[derive(Debug, Clone)]
pub struct RolloutConfig {
    /// The env id (recorded in trajectories and request keys).
    pub env_id: String,
    /// The env's options as strings (recorded in trajectories).
    pub options: BTreeMap<String, String>,
    /// Total episodes.
    pub episodes: usize,
    /// The first env seed.
    pub seed: u64,
    /// Samples per env seed (GRPO's `num_generations`; 1 for evaluation).
    pub group_size: usize,
    /// Worker threads (0 = one per core).
    pub threads: usize,
    /// Sampling parameters passed to the policy (`n` is forced to 1: each
    /// episode of a group is its own request).
    pub sampling: SamplingParams,
    /// What policies are shown of each episode's conversation (`None`: the
    /// env's own [`crate::Env::history`]).
    pub history: Option<History>,
}

/// One step of a recorded episode.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
pub struct StepRecord {
    /// The observation's user text the action answered.
    pub observation: String,
    /// The policy's reply.
    pub action: String,
    /// The step reward.
    pub reward: f64,
    /// Per-reward-function breakdown.
    pub breakdown: Vec<RewardTerm>,
    /// Why the step was penalised, if it was.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub reason: Option<String>,
    /// Env extras (score, max tile, ...).
    #[serde(default, skip_serializing_if = "serde_json::Map::is_empty")]
    pub extra: serde_json::Map<String, serde_json::Value>,
    /// Terminated by the env's rules.
    pub terminated: bool,
    /// Truncated by the step limit.
    pub truncated: bool,
    /// Generated token ids (LLM policies).
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub token_ids: Option<Vec<u32>>,
    /// Per-token log-probs (LLM policies).
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub logprobs: Option<Vec<f32>>,
}

/// One episode: one line of a trajectory file.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
pub struct EpisodeRecord {
    /// The env id.
    pub env: String,
    /// The env's options.
    pub options: BTreeMap<String, String>,
    /// The env seed.
    pub seed: u64,
    /// The sample index within its group.
    pub sample: usize,
    /// The policy's name.
    pub policy: String,
    /// The system prompt and first user message.
    pub prompt: Vec<crate::types::Message>,
    /// Every step.
    pub steps: Vec<StepRecord>,
    /// Sum of step rewards.
    pub total_reward: f64,
    /// Whether the final step reported success.
    pub success: bool,
}

/// Rollout failures.
#[derive(Debug, thiserror::Error)]
#[non_exhaustive]
pub enum RolloutError {
    /// The env failed.
    #[error("env `{env}` (seed {seed}): {source}")]
    Env {
        /// Env id.
        env: String,
        /// Env seed.
        seed: u64,
        /// Cause.
        source: EnvError,
    },
    /// The policy failed.
    #[error("policy `{policy}`: {source}")]
    Policy {
        /// Policy name.
        policy: String,
        /// Cause.
        source: PolicyError,
    },
    /// The policy answered with the wrong number of completions.
    #[error("policy `{0}` returned the wrong number of completions")]
    Shape(String),
    /// Writing finished episodes failed.
    #[error("cannot write trajectories: {0}")]
    Output(std::io::Error),
    /// A rollout worker panicked (a bug in an env or a policy) while running
    /// the group of this env seed.
    #[error("a rollout worker panicked on env seed {seed}: {message}")]
    Panicked {
        /// The env seed of the group the worker was running.
        seed: u64,
        /// The panic message.
        message: String,
    },
}

/// The message a panic carried (`panic!("...")` gives a `&str` or a `String`).
fn panic_message(payload: &(dyn std::any::Any + Send)) -> String {
    if let Some(s) = payload.downcast_ref::<&str>() {
        (*s).to_string()
    } else if let Some(s) = payload.downcast_ref::<String>() {
        s.clone()
    } else {
        "a non-string panic payload".to_string()
    }
}

/// Runs `cfg.episodes` episodes. `progress` is called with the number of
/// episodes just finished (from worker threads).
pub fn rollout(
    maker: &EnvMaker,
    policy: &dyn Policy,
    cfg: &RolloutConfig,
    progress: &(dyn Fn(usize) + Sync),
) -> Result<Vec<EpisodeRecord>, RolloutError> {
    let mut all = Vec::new();
    let never = AtomicBool::new(false);
    rollout_streaming(maker, policy, cfg, &never, progress, &mut |eps| {
        all.extend(eps);
        Ok(())
    })?;
    Ok(all)
}

/// How a streaming rollout ended.
#[derive(Debug, Clone, PartialEq)]
pub struct Streamed {
    /// Statistics of every episode handed to the sink.
    pub summary: Summary,
    /// `stop` was raised before every episode ran.
    pub interrupted: bool,
}

/// Runs `cfg.episodes` episodes and hands each finished group to `sink` in
/// group order (the same order and bytes as [`rollout`], whatever the thread
/// count), keeping only the groups that finished ahead of an earlier one:
/// memory does not grow with the number of episodes.
///
/// When `stop` becomes true (Ctrl-C), workers take no new group, the groups
/// already running finish and are handed over, and the result says
/// `interrupted`. Every group up to the last one handed over is complete.
pub fn rollout_streaming(
    maker: &EnvMaker,
    policy: &dyn Policy,
    cfg: &RolloutConfig,
    stop: &AtomicBool,
    progress: &(dyn Fn(usize) + Sync),
    sink: &mut (dyn FnMut(Vec<EpisodeRecord>) -> std::io::Result<()> + Send),
) -> Result<Streamed, RolloutError> {
    let group_size = cfg.group_size.max(1);
    let groups = cfg.episodes.div_ceil(group_size);
    let threads =
        if cfg.threads == 0 { std::thread::available_parallelism().map_or(1, |n| n.get()) } else { cfg.threads }
            .clamp(1, groups.max(1));
    let next = AtomicUsize::new(0);
    let out = Mutex::new(Ordered { pending: BTreeMap::new(), next: 0, tally: Tally::default(), sink });
    let first_err: Mutex<Option<RolloutError>> = Mutex::new(None);

    crossbeam::scope(|scope| {
        for _ in 0..threads {
            scope.spawn(|_| loop {
                if lock(&first_err).is_some() || stop.load(Ordering::Relaxed) {
                    return;
                }
                let g = next.fetch_add(1, Ordering::Relaxed);
                if g >= groups {
                    return;
                }
                let n = group_size.min(cfg.episodes - g * group_size);
                let seed = cfg.seed.wrapping_add(g as u64);
                let result =
                    std::panic::catch_unwind(std::panic::AssertUnwindSafe(|| run_group(maker, policy, cfg, seed, n)))
                        .unwrap_or_else(|p| Err(RolloutError::Panicked { seed, message: panic_message(p.as_ref()) }));
                let written = result.and_then(|eps| {
                    progress(eps.len());
                    lock(&out).finish(g, eps).map_err(RolloutError::Output)
                });
                if let Err(e) = written {
                    lock(&first_err).get_or_insert(e);
                    return;
                }
            });
        }
    })
    .map_err(|p| RolloutError::Panicked { seed: cfg.seed, message: panic_message(p.as_ref()) })?;

    if let Some(e) = lock(&first_err).take() {
        return Err(e);
    }
    let out = out.into_inner().unwrap_or_else(|p| p.into_inner());
    Ok(Streamed { interrupted: out.next < groups, summary: out.tally.summary() })
}

/// Finished groups waiting for the ones before them, and the sink.
struct Ordered<'s> {
    pending: BTreeMap<usize, Vec<EpisodeRecord>>,
    next: usize,
    tally: Tally,
    sink: &'s mut (dyn FnMut(Vec<EpisodeRecord>) -> std::io::Result<()> + Send),
}

impl Ordered<'_> {
    /// Records group `g` and hands over every group now in order.
    fn finish(&mut self, g: usize, eps: Vec<EpisodeRecord>) -> std::io::Result<()> {
        self.pending.insert(g, eps);
        while let Some(eps) = self.pending.remove(&self.next) {
            self.next += 1;
            eps.iter().for_each(|e| self.tally.add(e));
            (self.sink)(eps)?;
        }
        Ok(())
    }
}

fn lock<T>(m: &Mutex<T>) -> std::sync::MutexGuard<'_, T> {
    m.lock().unwrap_or_else(|p| p.into_inner())
}

struct Live {
    env: Box<dyn Env>,
    obs: Observation,
    conversation: Conversation,
    history: History,
    record: EpisodeRecord,
    done: bool,
}

/// Runs one group of `n` samples on env seed `seed`, in lock-step: at each
/// step the live episodes' prompts go to the policy as one batch.
fn run_group(
    maker: &EnvMaker,
    policy: &dyn Policy,
    cfg: &RolloutConfig,
    seed: u64,
    n: usize,
) -> Result<Vec<EpisodeRecord>, RolloutError> {
    let env_err = |source| RolloutError::Env { env: cfg.env_id.clone(), seed, source };
    let mut live = Vec::with_capacity(n);
    for sample in 0..n {
        let mut env = maker();
        let obs = env.reset(seed).map_err(env_err)?;
        let record = EpisodeRecord {
            env: cfg.env_id.clone(),
            options: cfg.options.clone(),
            seed,
            sample,
            policy: policy.name().to_string(),
            prompt: obs.messages.clone(),
            steps: Vec::new(),
            total_reward: 0.0,
            success: false,
        };
        let history = cfg.history.unwrap_or_else(|| env.history());
        let conversation = Conversation::new(obs.messages.clone());
        live.push(Live { env, obs, conversation, history, record, done: false });
    }
    let params = SamplingParams { n: 1, ..cfg.sampling.clone() };
    let mut t = 0usize;
    while live.iter().any(|l| !l.done) {
        let idx: Vec<usize> = (0..n).filter(|&i| !live[i].done).collect();
        let oracles: Vec<Option<Action>> =
            idx.iter().map(|&i| if policy.privileged() { live[i].env.demonstration() } else { None }).collect();
        let requests: Vec<Request<'_>> = idx
            .iter()
            .zip(&oracles)
            .map(|(&i, o)| Request {
                observation: &live[i].obs,
                messages: live[i].conversation.view(&live[i].obs, live[i].history),
                oracle: o.as_ref(),
                seed: derive_seed(derive_seed(seed, i as u64), t as u64),
                key: RequestKey { env: &cfg.env_id, seed, sample: i, step: t },
            })
            .collect();
        let out = policy
            .generate(&requests, &params)
            .map_err(|source| RolloutError::Policy { policy: policy.name().to_string(), source })?;
        drop(requests);
        if out.len() != idx.len() || out.iter().any(|c| c.is_empty()) {
            return Err(RolloutError::Shape(policy.name().to_string()));
        }
        for (&i, mut comps) in idx.iter().zip(out) {
            let c: Completion = comps.swap_remove(0);
            let l = &mut live[i];
            if c.ends_episode {
                l.done = true;
                if let Some(last) = l.record.steps.last_mut() {
                    last.truncated = true;
                }
                continue;
            }
            let step = l.env.step(&c.action).map_err(env_err)?;
            l.conversation.reply(c.action.text.clone());
            l.record.total_reward += step.reward;
            l.record.steps.push(StepRecord {
                observation: l.obs.text().to_string(),
                action: c.action.text,
                reward: step.reward,
                breakdown: step.info.breakdown,
                reason: step.info.reason,
                extra: step.info.extra,
                terminated: step.terminated,
                truncated: step.truncated,
                token_ids: c.token_ids,
                logprobs: c.logprobs,
            });
            if step.terminated || step.truncated {
                l.done = true;
                l.record.success = step.info.success.unwrap_or(false);
            }
            l.conversation.observe(&step.observation);
            l.obs = step.observation;
        }
        t += 1;
    }
    Ok(live.into_iter().map(|l| l.record).collect())
}

/// Aggregate statistics of a set of episodes.
#[derive(Debug, Clone, Default, PartialEq, Serialize, Deserialize)]
pub struct Summary {
    /// Number of episodes.
    pub episodes: usize,
    /// Mean total reward.
    pub mean_reward: f64,
    /// Median total reward.
    pub median_reward: f64,
    /// Smallest total reward.
    pub min_reward: f64,
    /// Largest total reward.
    pub max_reward: f64,
    /// Fraction of episodes that succeeded.
    pub success_rate: f64,
    /// Mean steps per episode.
    pub mean_steps: f64,
    /// Total steps.
    pub total_steps: usize,
}

impl Summary {
    /// Summarises episodes.
    pub fn of(eps: &[EpisodeRecord]) -> Self {
        let mut t = Tally::default();
        eps.iter().for_each(|e| t.add(e));
        t.summary()
    }
}

/// What a [`Summary`] needs of each episode (three numbers, not the episode).
#[derive(Debug, Default)]
struct Tally {
    rewards: Vec<f64>,
    successes: usize,
    steps: usize,
}

impl Tally {
    fn add(&mut self, e: &EpisodeRecord) {
        self.rewards.push(e.total_reward);
        self.successes += usize::from(e.success);
        self.steps += e.steps.len();
    }

    fn summary(mut self) -> Summary {
        let r = &mut self.rewards;
        if r.is_empty() {
            return Summary::default();
        }
        r.sort_by(f64::total_cmp);
        let n = r.len();
        let median = if n % 2 == 1 { r[n / 2] } else { (r[n / 2 - 1] + r[n / 2]) / 2.0 };
        Summary {
            episodes: n,
            mean_reward: r.iter().sum::<f64>() / n as f64,
            median_reward: median,
            min_reward: r[0],
            max_reward: r[n - 1],
            success_rate: self.successes as f64 / n as f64,
            mean_steps: self.steps as f64 / n as f64,
            total_steps: self.steps,
        }
    }
}

/// The last line of a trajectory file written by `gym run --out`: the
/// summary of the episodes above it and whether the run was interrupted.
/// Readers of trajectory files skip it ([`is_summary_line`]).
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
pub struct SummaryLine {
    /// Statistics of the episodes in the file.
    pub summary: Summary,
    /// The run stopped early (Ctrl-C): the file holds the episodes that finished.
    pub interrupted: bool,
}

/// Whether a parsed JSONL line is a [`SummaryLine`] rather than an episode.
pub fn is_summary_line(v: &serde_json::Value) -> bool {
    v.get("summary").is_some() && v.get("steps").is_none()
}

/// Writes episodes as JSONL (one episode per line). Deterministic: the
/// same episodes give the same bytes.
pub fn write_jsonl<W: std::io::Write>(mut w: W, eps: &[EpisodeRecord]) -> std::io::Result<()> {
    for e in eps {
        serde_json::to_writer(&mut w, e)?;
        w.write_all(b"\n")?;
    }
    Ok(())
}
