//! The [`Env`] trait: Gymnasium's `reset`/`step` contract adapted to LLMs.

use crate::conversation::History;
use crate::types::{Action, Observation, Step};

/// Errors an environment reports.
///
/// Malformed *model output* is never an error: it is a step with a penalty
/// and a reason in [`crate::StepInfo::reason`]. Errors are for misuse of the
/// API (stepping a finished episode) and for broken inputs (unreadable
/// dataset files, bad options).
#[derive(Debug, thiserror::Error)]
#[non_exhaustive]
pub enum EnvError {
    /// `step` was called before `reset`.
    #[error("step called before reset")]
    NotReset,
    /// `step` was called after the episode terminated or was truncated.
    #[error("step called after the episode ended; call reset first")]
    EpisodeOver,
    /// An option value is missing, malformed or out of range.
    #[error("option `{name}`: {reason}")]
    BadOption {
        /// The option's name.
        name: String,
        /// What is wrong with it.
        reason: String,
    },
    /// A file (dataset, image) could not be read or parsed.
    #[error("{path}: {reason}")]
    File {
        /// The file's path.
        path: String,
        /// What went wrong, naming the line or field where known.
        reason: String,
    },
    /// Anything else, with a message.
    #[error("{0}")]
    Other(String),
}

/// An environment: a task an LLM can be trained on.
///
/// Two methods are required; the rest have defaults. An env is created by
/// the [`crate::Registry`] from its options, then driven by
/// `reset(seed)` → `step(action)`… until the returned [`Step`] is done.
///
/// Contract (checked for every registered env by the conformance suite):
/// * `reset` with the same seed gives the same observation and, for the same
///   actions, the same steps;
/// * `step` after the episode ended returns [`EnvError::EpisodeOver`];
/// * rewards are finite and `step.reward == step.info.total()`;
/// * malformed actions are penalised with a reason, never an error or panic.
pub trait Env: Send {
    /// Starts a new episode whose randomness derives entirely from `seed`.
    fn reset(&mut self, seed: u64) -> Result<Observation, EnvError>;

    /// Applies the policy's action.
    fn step(&mut self, action: &Action) -> Result<Step, EnvError>;

    /// A correct action for the current state, when the env knows one
    /// (the answer of a one-step task, a solver's placement). Used by the
    /// `oracle` policy to prove the reward ceiling and for SFT demonstrations.
    /// Never shown to learning policies.
    fn demonstration(&self) -> Option<Action> {
        None
    }

    /// How much of the episode's conversation a policy is shown (see
    /// [`crate::conversation`]). Default, and every built-in env's choice:
    /// [`History::Full`], the conversation `gym train` trains on. An env
    /// whose observation already holds everything (a board game's board)
    /// may choose [`History::Latest`] to keep prompts short; `gym run
    /// --history` overrides it for evaluation.
    fn history(&self) -> History {
        History::Full
    }
}
