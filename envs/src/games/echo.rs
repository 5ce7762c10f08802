//! `echo`: a trivial env for benchmarking the server itself, the same
//! contract as OpenEnv's legacy echo env (and the Python reference server in
//! `scripts/openenv_reference_server.py`): the reply is echoed back, reward
//! `min(0.1 × length, 1.0)`, the episode ends after `steps` steps.
//! Registered with the built-in envs (so the conformance suite checks it);
//! it exists for `gym serve echo` and server benchmarks, not for training.

use std::sync::Arc;

use crate::env::{Env, EnvError};
use crate::registry::{EnvSpec, OptionKind, OptionSpec, Registry};
use crate::types::{Action, Message, Observation, Step, StepInfo};
use serde_json::json;

/// The echo env.
struct Echo {
    steps: usize,
    t: usize,
    live: bool,
}

impl Env for Echo {
    fn reset(&mut self, seed: u64) -> Result<Observation, EnvError> {
        self.t = 0;
        self.live = true;
        Ok(Observation {
            messages: vec![
                Message::system("Every reply is echoed back; longer replies score more (up to 10 characters)."),
                Message::user(format!("Episode {seed}: send any message.")),
            ],
            state: json!({"echoed_message": "", "message_length": 0, "seed": seed}),
            ..Observation::default()
        })
    }

    fn step(&mut self, action: &Action) -> Result<Step, EnvError> {
        if !self.live {
            return Err(if self.t == 0 { EnvError::NotReset } else { EnvError::EpisodeOver });
        }
        self.t += 1;
        let n = action.text.chars().count();
        let mut info = StepInfo::default();
        info.term("length", Some((0.1 * n as f64).min(1.0)), 1.0);
        if n == 0 {
            info.reason = Some("empty message: nothing to echo".into());
        }
        let done = self.t >= self.steps;
        self.live = !done;
        if done {
            info.success = Some(n > 0);
        }
        let obs = Observation {
            messages: vec![Message::system("Every reply is echoed back."), Message::user(action.text.clone())],
            state: json!({"echoed_message": action.text, "message_length": n}),
            ..Observation::default()
        };
        Ok(Step::new(obs, info, done, false))
    }
}

/// Registers `echo`.
pub fn register(r: &mut Registry) {
    r.register(
        EnvSpec {
            id: "echo",
            version: 1,
            description: "Echoes the reply back; reward min(0.1 x length, 1) (server benchmarks)",
            max_steps: 100_000,
            options: vec![OptionSpec {
                name: "steps",
                kind: OptionKind::Int { min: 1, max: 100_000 },
                default: "1",
                help: "steps per episode",
            }],
            ..EnvSpec::default()
        },
        |o| {
            let steps = o.int("steps").max(1) as usize;
            Ok(Arc::new(move || Box::new(Echo { steps, t: 0, live: false }) as Box<dyn Env>))
        },
    );
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn echo_passes_the_env_checker() {
        let mut r = Registry::new();
        register(&mut r);
        let maker = r.maker("echo", &r.options("echo", &["steps=3"]).unwrap()).unwrap();
        crate::check::check_env(&maker, 3).unwrap();
        let mut e = maker();
        e.reset(0).unwrap();
        let s = e.step(&Action::text("hello")).unwrap();
        assert_eq!(s.reward, 0.5);
        assert_eq!(s.observation.state["echoed_message"], "hello");
    }
}
