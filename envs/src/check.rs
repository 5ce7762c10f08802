//! The env checker (Gymnasium's `check_env`): the contract every env must
//! honour, runnable against any [`EnvMaker`]. The workspace conformance
//! suite runs it against every registered env; run it against your own.

use crate::env::EnvError;
use crate::policy::derive_seed;
use crate::registry::{EnvMaker, EnvSpec, OptionKind, Registry};
use crate::types::{Action, Observation, Step};

/// A violated contract clause.
#[derive(Debug, thiserror::Error)]
#[error("env check failed: {0}")]
pub struct CheckError(pub String);

fn fail<T>(msg: impl Into<String>) -> Result<T, CheckError> {
    Err(CheckError(msg.into()))
}

/// Picks a deterministic action for an observation: a legal action when
/// the env lists them, else one of a few fixed replies (including malformed
/// ones, which the env must penalise rather than fail on).
fn probe_action(obs: &Observation, i: u64) -> Action {
    if !obs.legal_actions.is_empty() {
        let k = (derive_seed(i, 7) % obs.legal_actions.len() as u64) as usize;
        return Action::text(obs.legal_actions[k].clone());
    }
    const REPLIES: [&str; 5] =
        ["", "<answer>42</answer>", "garbage \u{0}\u{7f} ###", "<think>x</think>\n<answer>\n1 2\n</answer>", "up"];
    Action::text(REPLIES[(i % REPLIES.len() as u64) as usize])
}

fn run(maker: &EnvMaker, seed: u64, max_steps: usize) -> Result<(Observation, Vec<Step>), CheckError> {
    let mut env = maker();
    let first = env.reset(seed).map_err(|e| CheckError(format!("reset({seed}) failed: {e}")))?;
    let mut obs = first.clone();
    let mut steps = Vec::new();
    for i in 0..max_steps as u64 {
        let a = probe_action(&obs, derive_seed(seed, i));
        let s = env.step(&a).map_err(|e| CheckError(format!("step {i} failed: {e}")))?;
        obs = s.observation.clone();
        let done = s.done();
        steps.push(s);
        if done {
            break;
        }
    }
    Ok((first, steps))
}

/// Checks the env contract on a few seeds:
/// * `step` before `reset` is [`EnvError::NotReset`], not a panic;
/// * same seed → same first observation and same trajectory for the same
///   actions; different seeds usually differ;
/// * rewards are finite, `reward == info.total()`, observations have
///   messages with a system prompt;
/// * episodes end within `max_steps` and `step` afterwards is an error;
/// * malformed and empty replies are steps, not errors, and an empty reply's
///   step info carries a `reason`.
pub fn check_env(maker: &EnvMaker, max_steps: usize) -> Result<(), CheckError> {
    let mut env = maker();
    match env.step(&Action::text("")) {
        Err(EnvError::NotReset) => {}
        Err(e) => return fail(format!("step before reset should be NotReset, got {e}")),
        Ok(_) => return fail("step before reset succeeded"),
    }
    let seeds = [0u64, 1, 2, 12345];
    let mut firsts = Vec::new();
    for &seed in &seeds {
        let (a_first, a) = run(maker, seed, max_steps)?;
        let (b_first, b) = run(maker, seed, max_steps)?;
        if a_first != b_first || a_first.images != b_first.images {
            return fail(format!("reset({seed}) is not deterministic"));
        }
        if a != b {
            return fail(format!("seed {seed}: same actions gave different steps"));
        }
        if a_first.messages.is_empty() || a_first.messages[0].role != crate::types::Role::System {
            return fail("the first observation must start with a system prompt");
        }
        if a.is_empty() || !a.last().is_some_and(Step::done) {
            return fail(format!("seed {seed}: episode did not end within {max_steps} steps"));
        }
        for (i, s) in a.iter().enumerate() {
            if !s.reward.is_finite() || (s.reward - s.info.total()).abs() > 1e-9 {
                return fail(format!(
                    "seed {seed} step {i}: reward {} is not finite or not the breakdown total",
                    s.reward
                ));
            }
            if s.info.breakdown.iter().any(|t| t.value.is_some_and(|v| !v.is_finite())) {
                return fail(format!("seed {seed} step {i}: a breakdown term is not finite"));
            }
        }
        firsts.push(a_first);
    }
    if firsts.windows(2).all(|w| w[0] == w[1]) {
        return fail("every seed gave the same first observation");
    }
    // An empty reply is never a legal action: it is a step (not an error)
    // whose info says why it was penalised.
    for &seed in &seeds {
        let mut env = maker();
        env.reset(seed).map_err(|e| CheckError(format!("reset({seed}) failed: {e}")))?;
        let s = env.step(&Action::text("")).map_err(|e| CheckError(format!("an empty reply failed the step: {e}")))?;
        if s.info.reason.as_deref().is_none_or(|r| r.trim().is_empty()) {
            return fail(format!("seed {seed}: an empty reply was not given a reason in the step info"));
        }
    }
    // Stepping a finished episode is an error, not a panic.
    let mut env = maker();
    let mut obs = env.reset(3).map_err(|e| CheckError(e.to_string()))?;
    for i in 0..max_steps as u64 {
        let s = env.step(&probe_action(&obs, i)).map_err(|e| CheckError(e.to_string()))?;
        obs = s.observation.clone();
        if s.done() {
            break;
        }
    }
    match env.step(&Action::text("")) {
        Err(EnvError::EpisodeOver) => {}
        Err(e) => return fail(format!("step after the end should be EpisodeOver, got {e}")),
        Ok(_) => return fail("step after the end succeeded"),
    }
    // Reset after the end starts a fresh episode.
    env.reset(3).map_err(|e| CheckError(format!("reset after the end failed: {e}")))?;
    Ok(())
}

/// The option sets [`check_registered`] builds an env with: its defaults, then
/// each non-default value of each choice option on its own (`name=value`).
fn option_sets(spec: &EnvSpec) -> Vec<Vec<String>> {
    let mut sets = vec![Vec::new()];
    for o in &spec.options {
        if let OptionKind::Choice(values) = &o.kind {
            for v in values.iter().filter(|v| **v != o.default) {
                sets.push(vec![format!("{}={v}", o.name)]);
            }
        }
    }
    sets
}

/// Runs [`check_env`] on a registered env under its defaults and under each
/// non-default value of each choice option. Every set must build: a choice
/// value that needs more options (a data file for `source=jsonl`) gets them
/// from `extra`, which maps a `name=value` setting to the options to add. An
/// env that fails to build under any set fails the check — a refusal is never
/// skipped.
pub fn check_registered(reg: &Registry, id: &str, extra: &[(&str, Vec<String>)]) -> Result<(), CheckError> {
    let spec = reg.spec(id).map_err(|e| CheckError(e.to_string()))?;
    for mut set in option_sets(spec) {
        for (setting, more) in extra {
            if set.iter().any(|s| s == setting) {
                set.extend(more.iter().cloned());
            }
        }
        let opts = reg.options(id, &set).map_err(|e| CheckError(format!("{id} {set:?}: bad options: {e}")))?;
        let maker = reg.maker(id, &opts).map_err(|e| CheckError(format!("{id} {set:?}: did not build: {e}")))?;
        check_env(&maker, spec.max_steps.min(2_000)).map_err(|e| CheckError(format!("{id} {set:?}: {}", e.0)))?;
    }
    Ok(())
}
