//! The conformance suite: every registered env, under its default options
//! and under every value of each choice option, passes the env checker;
//! every env's options are validated.

use envs::{OptionKind, Registry};

/// Option sets to check for an env: the defaults, then each value of each
/// choice option on its own.
fn option_sets(spec: &envs::EnvSpec) -> Vec<Vec<String>> {
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

#[test]
fn builtin_registry_has_the_four_foundation_envs() {
    let ids = Registry::builtin().ids();
    for id in ["2048", "sudoku", "math", "vision-qa"] {
        assert!(ids.contains(&id.to_string()), "missing env {id}; have {ids:?}");
    }
}

#[test]
fn every_env_passes_the_checker() {
    let reg = Registry::builtin();
    for spec in reg.specs() {
        for set in option_sets(spec) {
            let opts = match reg.options(spec.id, &set) {
                Ok(o) => o,
                Err(e) => panic!("{} {set:?}: {e}", spec.id),
            };
            let maker = match reg.maker(spec.id, &opts) {
                // Choice values that need extra options (a dataset path) may
                // refuse to build; that refusal must be a clean error.
                Err(e) => {
                    assert!(!e.to_string().is_empty());
                    continue;
                }
                Ok(m) => m,
            };
            if let Err(e) = envs::check::check_env(&maker, spec.max_steps.min(2_000)) {
                panic!("{} {set:?}: {e}", spec.id);
            }
        }
    }
}

#[test]
fn every_env_declares_itself() {
    for spec in Registry::builtin().specs() {
        assert!(!spec.description.is_empty(), "{} has no description", spec.id);
        assert!(spec.version >= 1, "{} has no version", spec.id);
        assert!(spec.max_steps >= 1, "{} has no step limit", spec.id);
        for o in &spec.options {
            assert!(!o.help.is_empty(), "{}: option {} has no help", spec.id, o.name);
        }
    }
}

#[test]
fn options_are_validated_for_every_env() {
    let reg = Registry::builtin();
    for spec in reg.specs() {
        let e = reg.options(spec.id, &["no_such_option=1"]).unwrap_err().to_string();
        assert!(e.contains("no_such_option"), "{e}");
        for o in &spec.options {
            assert!(e.contains(o.name), "{}: error should list `{}`: {e}", spec.id, o.name);
            let bad = match &o.kind {
                OptionKind::Int { max, .. } => Some(format!("{}={}", o.name, max.saturating_add(1))),
                OptionKind::Float { max, .. } => Some(format!("{}={}", o.name, max * 2.0 + 1.0)),
                OptionKind::Choice(_) => Some(format!("{}=definitely-not-a-choice", o.name)),
                OptionKind::Bool => Some(format!("{}=maybe", o.name)),
                OptionKind::Text => None,
            };
            if let Some(bad) = bad {
                let err = reg.options(spec.id, &[bad.as_str()]).unwrap_err().to_string();
                assert!(err.contains(o.name), "{}: {err}", spec.id);
            }
        }
    }
    let e = reg.options("no-such-env", &[] as &[&str]).unwrap_err().to_string();
    assert!(e.contains("2048") && e.contains("sudoku"), "{e}");
}
