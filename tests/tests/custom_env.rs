//! The README's "Adding an env" example, compiled and checked, so the
//! documentation cannot rot.

use std::sync::Arc;

use envs::{Action, Env, EnvError, EnvMaker, EnvSpec, Message, Observation, Registry, Step, StepInfo};

struct Guess {
    target: Option<u64>,
    done: bool,
}

impl Env for Guess {
    fn reset(&mut self, seed: u64) -> Result<Observation, EnvError> {
        self.target = Some(seed % 10);
        self.done = false;
        Ok(Observation {
            messages: vec![
                Message::system("Reply with one digit."),
                Message::user(format!("Guess my digit ({seed}).")),
            ],
            ..Observation::default()
        })
    }
    fn step(&mut self, action: &Action) -> Result<Step, EnvError> {
        let target = self.target.ok_or(EnvError::NotReset)?;
        if self.done {
            return Err(EnvError::EpisodeOver);
        }
        self.done = true;
        let mut info = StepInfo::default();
        let hit = action.text.trim() == target.to_string();
        info.term("hit", Some(if hit { 1.0 } else { 0.0 }), 1.0);
        info.success = Some(hit);
        if !matches!(action.text.trim().as_bytes(), [b'0'..=b'9']) {
            info.reason = Some("the reply is not one digit".into()); // malformed replies say why
        }
        Ok(Step::new(Observation::default(), info, true, false))
    }
}

#[test]
fn a_user_env_registers_and_passes_the_checker() {
    let mut registry = Registry::builtin();
    registry.register(
        EnvSpec { id: "guess", version: 1, description: "guess a digit", max_steps: 1, options: vec![] },
        |_opts| Ok(Arc::new(|| Box::new(Guess { target: None, done: false }) as Box<dyn Env>) as EnvMaker),
    );
    let maker = registry.maker("guess", &registry.options("guess", &[] as &[&str]).unwrap()).unwrap();
    envs::check::check_env(&maker, 1).unwrap();
    let mut env = maker();
    env.reset(13).unwrap();
    let s = env.step(&Action::text("3")).unwrap();
    assert_eq!((s.reward, s.info.success), (1.0, Some(true)));
}
