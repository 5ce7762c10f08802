//! The README's "Adding an env" example, compiled and checked, so the
//! documentation cannot rot.

use std::sync::Arc;

use envs::{
    Action, Env, EnvError, EnvMaker, EnvSpec, Message, Observation, OptionKind, OptionSpec, Registry, Step, StepInfo,
};

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
        EnvSpec {
            id: "guess",
            version: 1,
            description: "guess a digit",
            max_steps: 1,
            options: vec![],
            ..EnvSpec::default()
        },
        |_opts| Ok(Arc::new(|| Box::new(Guess { target: None, done: false }) as Box<dyn Env>) as EnvMaker),
    );
    let maker = registry.maker("guess", &registry.options("guess", &[] as &[&str]).unwrap()).unwrap();
    envs::check::check_env(&maker, 1).unwrap();
    let mut env = maker();
    env.reset(13).unwrap();
    let s = env.step(&Action::text("3")).unwrap();
    assert_eq!((s.reward, s.info.success), (1.0, Some(true)));
}

fn guess_maker() -> EnvMaker {
    Arc::new(|| Box::new(Guess { target: None, done: false }) as Box<dyn Env>)
}

/// The conformance suite's check fails when one option set does not build
/// (it used to skip such sets, so an env broken under every option passed).
#[test]
fn the_checker_fails_an_env_that_does_not_build_under_one_option_set() {
    let mut registry = Registry::new();
    let spec = EnvSpec {
        id: "guess",
        version: 1,
        description: "guess a digit",
        max_steps: 1,
        options: vec![OptionSpec {
            name: "mode",
            kind: OptionKind::Choice(&["ok", "broken"]),
            default: "ok",
            help: "whether the env builds",
        }],
        ..EnvSpec::default()
    };
    registry.register(spec, |opts| match opts.text("mode") {
        "broken" => Err(EnvError::BadOption { name: "mode".into(), reason: "this env is broken".into() }),
        _ => Ok(guess_maker()),
    });
    envs::check::check_env(&guess_maker(), 1).unwrap();
    let e = envs::check::check_registered(&registry, "guess", &[]).unwrap_err().to_string();
    assert!(e.contains("mode=broken") && e.contains("did not build") && e.contains("this env is broken"), "{e}");
}

/// Guess, but a malformed reply's step does not say why.
struct Silent(Guess);

impl Env for Silent {
    fn reset(&mut self, seed: u64) -> Result<Observation, EnvError> {
        self.0.reset(seed)
    }
    fn step(&mut self, action: &Action) -> Result<Step, EnvError> {
        let mut s = self.0.step(action)?;
        s.info.reason = None;
        Ok(s)
    }
}

#[test]
fn the_checker_fails_an_env_that_penalises_an_empty_reply_without_a_reason() {
    let maker: EnvMaker = Arc::new(|| Box::new(Silent(Guess { target: None, done: false })) as Box<dyn Env>);
    let e = envs::check::check_env(&maker, 1).unwrap_err().to_string();
    assert!(e.contains("empty reply") && e.contains("reason"), "{e}");
}
