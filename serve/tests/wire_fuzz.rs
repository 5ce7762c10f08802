//! Property test of the OpenEnv message readers on arbitrary network input:
//! text that may or may not be JSON, and arbitrary JSON values, through
//! `parse_action` (with and without 2048's action ids) and `parse_reset`.
//! None may panic; validation errors are the expected outcome.
//!
//! CI runs 2,000 inputs per strategy; `FUZZ_CASES=N` sets more:
//! `FUZZ_CASES=1000000 cargo test --release -p serve --test wire_fuzz -- --nocapture`.

use envs::Registry;
use proptest::prelude::*;
use proptest::test_runner::{Config, TestRunner};
use serde_json::Value;
use serve::wire::{parse_action, parse_reset};

const KEYS: &[&str] = &["message", "text", "action_id", "metadata", "seed", "episode_id", "size", "data", "x"];

fn json() -> impl Strategy<Value = Value> {
    let leaf = prop_oneof![
        Just(Value::Null),
        any::<bool>().prop_map(Value::Bool),
        any::<i64>().prop_map(Value::from),
        any::<f64>().prop_map(Value::from),
        prop::sample::select(&["up", "3", "", "<answer>left</answer>"][..]).prop_map(|s| Value::String(s.to_string())),
        prop::collection::vec(any::<char>(), 0..40).prop_map(|v| Value::String(v.into_iter().collect())),
    ];
    leaf.prop_recursive(4, 64, 8, |inner| {
        prop_oneof![
            prop::collection::vec(inner.clone(), 0..8).prop_map(Value::Array),
            prop::collection::vec((prop::sample::select(KEYS), inner), 0..6)
                .prop_map(|kv| Value::Object(kv.into_iter().map(|(k, v)| (k.to_string(), v)).collect())),
        ]
    })
}

fn cases() -> u32 {
    std::env::var("FUZZ_CASES").ok().and_then(|v| v.parse().ok()).unwrap_or(2_000)
}

#[test]
fn message_readers_never_panic() {
    let reg = Registry::builtin();
    let ids = reg.spec("2048").ok().and_then(|s| s.action_ids.clone());
    assert!(ids.is_some(), "2048 declares action ids");
    let check = |v: &Value| {
        let _ = parse_action(v, None);
        let _ = parse_action(v, ids.as_ref());
        let _ = parse_reset(v, &["size", "seed"]);
        if let Some(d) = v.get("data") {
            let _ = parse_action(d, ids.as_ref());
            let _ = parse_reset(d, &["size"]);
        }
    };
    let mut runner = TestRunner::new(Config { cases: cases(), failure_persistence: None, ..Config::default() });
    runner
        .run(&json(), |v| {
            check(&v);
            Ok(())
        })
        .unwrap_or_else(|e| panic!("JSON values: {e}"));
    let text = prop::collection::vec(any::<char>(), 0..200).prop_map(|v| v.into_iter().collect::<String>());
    runner
        .run(&text, |t| {
            if let Ok(v) = serde_json::from_str::<Value>(&t) {
                check(&v);
            }
            Ok(())
        })
        .unwrap_or_else(|e| panic!("text: {e}"));
    println!("wire: {n} JSON values and {n} texts, 0 panics", n = cases());
}
