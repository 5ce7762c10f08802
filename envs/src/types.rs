//! The data that flows between environments, policies and the rollout loop.

use serde::{Deserialize, Serialize};

/// Who speaks a chat message.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash, Serialize, Deserialize)]
#[serde(rename_all = "lowercase")]
pub enum Role {
    /// Instructions that frame the task (reply format, rules).
    System,
    /// The environment's turn: the board, the question, feedback.
    User,
    /// The policy's turn.
    Assistant,
}

/// One chat message.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
pub struct Message {
    /// Who speaks.
    pub role: Role,
    /// What is said.
    pub content: String,
}

impl Message {
    /// A system message.
    pub fn system(content: impl Into<String>) -> Self {
        Self { role: Role::System, content: content.into() }
    }
    /// A user message.
    pub fn user(content: impl Into<String>) -> Self {
        Self { role: Role::User, content: content.into() }
    }
    /// An assistant message.
    pub fn assistant(content: impl Into<String>) -> Self {
        Self { role: Role::Assistant, content: content.into() }
    }
}

/// What a policy sees after `reset` or `step`.
///
/// LLM policies read `messages` (and `images`); scripted policies read the
/// structured `state` and, for envs with a small discrete action set,
/// `legal_actions` (each already written as a valid reply).
#[derive(Debug, Clone, Default, PartialEq, Serialize, Deserialize)]
pub struct Observation {
    /// Chat messages for the policy: usually one system and one user message.
    pub messages: Vec<Message>,
    /// Images attached to the last user message, as PNG bytes.
    #[serde(skip)]
    pub images: Vec<Vec<u8>>,
    /// Structured state for scripted policies (board, grid, ...).
    ///
    /// One-step text tasks also describe their answer here so the `random`
    /// baseline can guess in the right shape: `answer_tag` (e.g. `"answer"`)
    /// and `answer_space`, one of `{"kind":"number","min":0,"max":100}`,
    /// `{"kind":"grid","size":9}` or `{"kind":"choice","values":[...]}`.
    /// Never the answer itself.
    pub state: serde_json::Value,
    /// Replies that are legal right now, for envs with a discrete action set.
    #[serde(default, skip_serializing_if = "Vec::is_empty")]
    pub legal_actions: Vec<String>,
}

impl Observation {
    /// The text of the last user message (what changes from step to step).
    pub fn text(&self) -> &str {
        self.messages.iter().rev().find(|m| m.role == Role::User).map(|m| m.content.as_str()).unwrap_or("")
    }
}

/// What a policy answers: its text, plus an optional structured form.
#[derive(Debug, Clone, Default, PartialEq, Serialize, Deserialize)]
pub struct Action {
    /// The policy's reply, exactly as generated.
    pub text: String,
    /// A structured form (e.g. `{"action_id": 2}`) that an env may accept
    /// instead of parsing `text`.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub structured: Option<serde_json::Value>,
}

impl Action {
    /// An action from text.
    pub fn text(text: impl Into<String>) -> Self {
        Self { text: text.into(), structured: None }
    }
}

/// One named reward function's contribution to a step's reward.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
pub struct RewardTerm {
    /// The reward function's name (e.g. `correctness`).
    pub name: String,
    /// The raw score the function returned; `None` means "no reward" (excluded).
    pub value: Option<f64>,
    /// The weight it carries in the total.
    pub weight: f64,
}

impl RewardTerm {
    /// `weight * value`, or 0 when excluded.
    pub fn contribution(&self) -> f64 {
        self.value.map_or(0.0, |v| v * self.weight)
    }
}

/// Why a step scored what it did.
#[derive(Debug, Clone, Default, PartialEq, Serialize, Deserialize)]
pub struct StepInfo {
    /// Per-reward-function breakdown; the step reward is the sum of contributions.
    pub breakdown: Vec<RewardTerm>,
    /// A short human-readable reason (e.g. why an action was invalid).
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub reason: Option<String>,
    /// Whether the episode's goal was reached (set on the final step).
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub success: Option<bool>,
    /// Env-specific extras (score, max tile, ...).
    #[serde(default, skip_serializing_if = "serde_json::Map::is_empty")]
    pub extra: serde_json::Map<String, serde_json::Value>,
}

impl StepInfo {
    /// The step reward: the sum of the breakdown's contributions.
    pub fn total(&self) -> f64 {
        self.breakdown.iter().map(RewardTerm::contribution).sum()
    }

    /// Adds a breakdown term.
    pub fn term(&mut self, name: &str, value: Option<f64>, weight: f64) {
        self.breakdown.push(RewardTerm { name: name.to_string(), value, weight });
    }
}

/// The result of `Env::step`, Gymnasium style.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
pub struct Step {
    /// The next observation (the final one when the episode ended).
    pub observation: Observation,
    /// The step reward; always equals `info.total()`.
    pub reward: f64,
    /// The episode ended by the env's rules (won, lost, answered).
    pub terminated: bool,
    /// The episode was cut short (step limit).
    pub truncated: bool,
    /// The reward breakdown and extras.
    pub info: StepInfo,
}

impl Step {
    /// Builds a step whose reward is the total of `info`'s breakdown.
    pub fn new(observation: Observation, info: StepInfo, terminated: bool, truncated: bool) -> Self {
        Self { observation, reward: info.total(), terminated, truncated, info }
    }

    /// Whether the episode is over.
    pub fn done(&self) -> bool {
        self.terminated || self.truncated
    }
}
