//! # policies — what answers gym's envs
//!
//! Every policy implements [`envs::Policy`]. This crate provides the
//! scripted baselines (`random`, `oracle`, `replay:FILE`, and per-game
//! experts such as `expectimax` for 2048 and `solver` for Sudoku) and
//! resolves policy names given on the command line with [`make_policy`].

pub mod scripted;

use envs::Policy;

/// Errors resolving a policy name.
#[derive(Debug, thiserror::Error)]
#[non_exhaustive]
pub enum PolicyNameError {
    /// No policy of that name.
    #[error("unknown policy `{name}`; available policies: {}", known.join(", "))]
    Unknown {
        /// The name given.
        name: String,
        /// The names that exist.
        known: Vec<String>,
    },
    /// The policy exists but could not be built (e.g. a replay file that
    /// does not parse).
    #[error("policy `{name}`: {reason}")]
    Build {
        /// The name given.
        name: String,
        /// Why.
        reason: String,
    },
}

/// The policy names [`make_policy`] accepts, with one line of help each.
pub fn policy_names() -> Vec<(&'static str, &'static str)> {
    scripted::NAMES.to_vec()
}

/// Builds a policy from its command-line name.
pub fn make_policy(name: &str) -> Result<Box<dyn Policy>, PolicyNameError> {
    if let Some(p) = scripted::make(name)? {
        return Ok(p);
    }
    Err(PolicyNameError::Unknown {
        name: name.to_string(),
        known: policy_names().iter().map(|(n, _)| n.to_string()).collect(),
    })
}
