//! The generic one-step adapter: a source of task items plus a rubric is an
//! [`Env`] whose episode is one question and one reply.

use std::sync::Arc;

use crate::env::{Env, EnvError};
use crate::rewards::{RewardInput, Rubric};
use crate::types::{Action, Message, Observation, Step, StepInfo};

/// One task: a question with a checkable answer.
#[derive(Debug, Clone, Default)]
pub struct TaskItem {
    /// The question shown to the policy.
    pub question: String,
    /// The gold answer the rubric checks against.
    pub answer: String,
    /// Images (PNG bytes) shown with the question.
    pub images: Vec<Vec<u8>>,
    /// A correct reply in the expected format (for `oracle` and SFT).
    pub demonstration: String,
    /// Structured data for scripted policies (never the answer).
    pub state: serde_json::Value,
}

/// Produces task items deterministically from a seed.
pub trait TaskSource: Send + Sync {
    /// The item for `seed`. The same seed always gives the same item.
    fn item(&self, seed: u64) -> Result<TaskItem, EnvError>;
}

/// A one-step env over a [`TaskSource`] and a [`Rubric`].
pub struct OneStepEnv {
    source: Arc<dyn TaskSource>,
    rubric: Arc<Rubric>,
    system: String,
    success_term: String,
    success_at: f64,
    current: Option<TaskItem>,
    done: bool,
}

impl OneStepEnv {
    /// A one-step env. `success_term` names the rubric function whose value
    /// must reach `success_at` for the episode to count as a success.
    pub fn new(
        source: Arc<dyn TaskSource>,
        rubric: Arc<Rubric>,
        system: impl Into<String>,
        success_term: impl Into<String>,
        success_at: f64,
    ) -> Self {
        Self {
            source,
            rubric,
            system: system.into(),
            success_term: success_term.into(),
            success_at,
            current: None,
            done: false,
        }
    }
}

impl Env for OneStepEnv {
    fn reset(&mut self, seed: u64) -> Result<Observation, EnvError> {
        let item = self.source.item(seed)?;
        let obs = Observation {
            messages: vec![Message::system(self.system.clone()), Message::user(item.question.clone())],
            images: item.images.clone(),
            state: item.state.clone(),
            legal_actions: Vec::new(),
        };
        self.current = Some(item);
        self.done = false;
        Ok(obs)
    }

    fn step(&mut self, action: &Action) -> Result<Step, EnvError> {
        let item = self.current.as_ref().ok_or(EnvError::NotReset)?;
        if self.done {
            return Err(EnvError::EpisodeOver);
        }
        self.done = true;
        let mut info = StepInfo::default();
        let input = RewardInput { completion: &action.text, answer: Some(&item.answer) };
        self.rubric.score_into(&input, &mut info);
        let success =
            info.breakdown.iter().any(|t| t.name == self.success_term && t.value.is_some_and(|v| v >= self.success_at));
        info.success = Some(success);
        if action.text.trim().is_empty() {
            info.reason = Some("empty reply".into());
        }
        let obs = Observation {
            messages: vec![Message::system(self.system.clone()), Message::user(item.question.clone())],
            images: Vec::new(),
            state: serde_json::Value::Null,
            legal_actions: Vec::new(),
        };
        Ok(Step::new(obs, info, true, false))
    }

    fn demonstration(&self) -> Option<Action> {
        match (&self.current, self.done) {
            (Some(item), false) => Some(Action::text(item.demonstration.clone())),
            _ => None,
        }
    }
}
