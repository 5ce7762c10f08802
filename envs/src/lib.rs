//! # envs — gym's environment API
//!
//! Every task an LLM can be trained on is an [`Env`]: `reset(seed)` gives an
//! [`Observation`] (chat messages, optional images, structured state);
//! `step(action)` gives a [`Step`] (observation, reward, terminated,
//! truncated, info). Rewards are sums of named [`rewards::RewardFn`]s, and
//! every step records the breakdown.
//!
//! * [`onestep`] turns a source of questions plus a rubric into an env.
//! * [`policy`] is the interface policies implement.
//! * [`conversation`] is the record of what a policy is shown in an episode.
//! * [`registry`] holds envs by id with typed options.
//! * [`mod@rollout`] runs episodes across threads, deterministically.
//! * [`check`] is the env checker every env must pass.
//! * [`games`] holds the built-in envs.
//!
//! To add an env, implement [`Env`] (two methods) and register it with a
//! spec: see the README.

pub mod answer;
pub mod check;
pub mod conversation;
pub mod env;
pub mod games;
pub mod onestep;
pub mod policy;
pub mod registry;
pub mod rewards;
pub mod rollout;
pub mod types;

mod builtin;

pub use conversation::{Conversation, History};
pub use env::{Env, EnvError};
pub use policy::{Completion, Policy, PolicyError, Request, RequestKey, SamplingParams};
pub use registry::{ActionIds, EnvMaker, EnvSpec, OptionKind, OptionSpec, Options, Registry, RegistryError};
pub use rollout::{rollout, rollout_streaming, EpisodeRecord, RolloutConfig, StepRecord, Streamed, Summary};
pub use types::{Action, Message, Observation, RewardTerm, Role, Step, StepInfo};
