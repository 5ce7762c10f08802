//! The policy benchmark's report types (`bench.json`), shared by the
//! runner (`bench/policy.rs`) and the chart (`bench/chart.rs`).

use serde::{Deserialize, Serialize};

/// One (env, policy) row of a report.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
pub struct Row {
    /// The env id.
    pub env: String,
    /// The policy name.
    pub policy: String,
    /// Whether this is a baseline (reference) row.
    pub baseline: bool,
    /// Episodes run.
    pub episodes: usize,
    /// Fraction of successful episodes.
    pub success_rate: f64,
    /// Wilson 95% interval of the success rate.
    pub success_ci: [f64; 2],
    /// Mean episode reward.
    pub mean_reward: f64,
    /// Student-t 95% interval of the mean reward.
    pub reward_ci: [f64; 2],
    /// Mean steps per episode.
    pub mean_steps: f64,
    /// Generated tokens per episode (0 for scripted policies).
    pub tokens_per_episode: f64,
    /// Mean wall time of one policy call per step, in milliseconds.
    pub policy_ms_per_step: f64,
    /// Episodes per second (env + policy, all threads).
    pub episodes_per_s: f64,
    /// Why the row has no numbers (e.g. the baseline does not support the env).
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub skipped: Option<String>,
}

/// A policy-benchmark report (`bench.json`).
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
pub struct Report {
    /// The suite's name.
    pub suite: String,
    /// The suite's version.
    pub suite_version: u32,
    /// The benchmarked policy.
    pub policy: String,
    /// gym's version.
    pub gym_version: String,
    /// Rows: for each env, the policy first, then the baselines.
    pub rows: Vec<Row>,
}
