//! Explains one-step scores: wraps [`OneStepEnv`] and, when the adapter
//! gave no reason, says why a reply lost points (no answer tag, a wrong
//! answer, a correct answer in the wrong format).

use crate::answer::{self, Answer};
use crate::env::{Env, EnvError};
use crate::onestep::OneStepEnv;
use crate::rewards::{extract_tag, Tags};
use crate::types::{Action, Observation, Step, StepInfo};

/// A [`OneStepEnv`] whose steps always carry a reason when the reply was
/// not perfect.
pub struct Explained {
    inner: OneStepEnv,
    tags: Tags,
}

impl Explained {
    /// Wraps `inner`, whose replies use `tags`.
    pub fn new(inner: OneStepEnv, tags: Tags) -> Self {
        Self { inner, tags }
    }
}

fn term(info: &StepInfo, name: &str) -> Option<f64> {
    info.breakdown.iter().find(|t| t.name == name).and_then(|t| t.value)
}

fn clip(s: &str) -> String {
    let s = s.trim();
    if s.chars().count() > 40 {
        format!("{}…", s.chars().take(40).collect::<String>())
    } else {
        s.to_string()
    }
}

/// Why `reply` scored `info` (`None` when it earned full marks).
pub fn explain(reply: &str, info: &StepInfo, tags: &Tags) -> Option<String> {
    let a = &tags.answer;
    let correctness = term(info, "correctness");
    match correctness {
        Some(c) if c <= -1.0 => return Some(format!("no <{a}>…</{a}> answer in the reply")),
        Some(c) if c < 0.0 => {
            let raw = extract_tag(reply, a).unwrap_or_default();
            let guess = clip(raw);
            return Some(match answer::read_answer(raw) {
                Answer::Several(_) => {
                    format!("answer `{guess}` names several different values; a list of candidates is wrong")
                }
                Answer::Unreadable(why) => format!("answer `{guess}` cannot be read: {why}"),
                _ => format!("wrong answer `{guess}`"),
            });
        }
        Some(c) if c < 0.8 => {
            let guess = extract_tag(reply, a).map(clip).unwrap_or_default();
            return Some(format!("answer `{guess}` is close but not correct (partial credit)"));
        }
        _ => {}
    }
    if term(info, "format_exact") == Some(0.0) {
        let r = &tags.reasoning;
        return Some(format!("correct answer, but the reply is not exactly <{r}>…</{r}> then <{a}>…</{a}>"));
    }
    if correctness.is_some_and(|c| c < 1.0) {
        return Some("correct answer, but not written exactly as the gold answer".into());
    }
    None
}

impl Env for Explained {
    fn reset(&mut self, seed: u64) -> Result<Observation, EnvError> {
        self.inner.reset(seed)
    }

    fn step(&mut self, action: &Action) -> Result<Step, EnvError> {
        let mut step = self.inner.step(action)?;
        if step.info.reason.is_none() {
            step.info.reason = explain(&action.text, &step.info, &self.tags);
        }
        Ok(step)
    }

    fn demonstration(&self) -> Option<Action> {
        self.inner.demonstration()
    }

    fn history(&self) -> crate::History {
        self.inner.history()
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::rewards::{answer_rubric, RewardInput};

    fn why(reply: &str, gold: &str) -> Option<String> {
        let tags = Tags::default();
        let mut info = StepInfo::default();
        answer_rubric(&tags).score_into(&RewardInput { completion: reply, answer: Some(gold) }, &mut info);
        explain(reply, &info, &tags)
    }

    #[test]
    fn reasons_name_the_problem() {
        assert_eq!(why("<think>x</think>\n<answer>42</answer>", "42"), None);
        assert!(why("42", "42").unwrap().starts_with("no <answer>"));
        assert_eq!(why("<think>x</think><answer>7</answer>", "42").unwrap(), "wrong answer `7`");
        assert!(why("<think>x</think><answer>44</answer>", "42").unwrap().contains("partial credit"));
        assert!(why("<think>x</think><answer>41 or 42</answer>", "42").unwrap().contains("several different values"));
        assert!(why("<think>x</think><answer>1/0</answer>", "42").unwrap().contains("division by zero"));
        assert!(why("so <answer>42</answer>", "42").unwrap().contains("not exactly"));
        assert!(why("<think>x</think><answer>42.0</answer>", "42").unwrap().contains("not written exactly"));
    }
}
