//! The conformance suite: every registered env, under its default options
//! and under every value of each choice option, passes the env checker;
//! every env's options are validated.

use envs::{OptionKind, Registry};

#[test]
fn builtin_registry_has_the_four_foundation_envs() {
    let ids = Registry::builtin().ids();
    for id in ["2048", "sudoku", "math", "vision-qa"] {
        assert!(ids.contains(&id.to_string()), "missing env {id}; have {ids:?}");
    }
}

fn data(path: &str) -> String {
    std::path::PathBuf::from(env!("CARGO_MANIFEST_DIR")).join("data").join(path).display().to_string()
}

#[test]
fn every_env_passes_the_checker() {
    let reg = Registry::builtin();
    // Choice values that read a data file get a committed one, so every
    // option set must build: a build failure fails the suite.
    for id in reg.ids() {
        let extra = match id.as_str() {
            "math" => vec![
                ("source=gsm8k", vec![format!("path={}", data("math/gsm8k_sample.jsonl"))]),
                ("source=jsonl", vec![format!("path={}", data("math/generic.jsonl"))]),
            ],
            "vision-qa" => vec![("source=jsonl", vec![format!("path={}", data("vision/qa.jsonl"))])],
            _ => Vec::new(),
        };
        if let Err(e) = envs::check::check_registered(&reg, &id, &extra) {
            panic!("{e}");
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
