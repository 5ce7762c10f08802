//! Adversarial suite, Rhai backend: each attack asserts its verdict and that
//! the world outside is untouched.
#![allow(missing_docs)]

mod common;

#[global_allocator]
static A: sandbox::CountingAlloc = sandbox::CountingAlloc;

use common::{attack, attack_limits, World};
use sandbox::VerdictKind::*;
use serde_json::json;

macro_rules! rhai_attack {
    ($name:ident, $file:literal, $kind:expr, started = $started:expr $(, ok = $ok:literal)?) => {
        #[test]
        fn $name() {
            let o = attack($file, &attack_limits());
            assert_eq!(o.kind(), $kind, "{}: {:?}", $file, o.result);
            assert_eq!(o.started, $started, "{}: {:?}", $file, o.result);
            $( assert_eq!(o.result.as_deref().ok(), Some($ok), "{}", $file); )?
        }
    };
}

rhai_attack!(busy_loop, "busy_loop.rhai", TimeoutCpu, started = true);
rhai_attack!(sleep_is_not_available, "sleep.rhai", RuntimeError, started = true);
#[test]
fn index_growth() {
    let l = sandbox::Limits { memory_bytes: 64 << 20, ..attack_limits() };
    assert_eq!(attack("index_growth.rhai", &l).kind(), MemoryLimit);
}
rhai_attack!(string_doubling, "string_doubling.rhai", MemoryLimit, started = true);
rhai_attack!(array_bomb, "array_bomb.rhai", MemoryLimit, started = true);
rhai_attack!(big_array, "big_array.rhai", MemoryLimit, started = true);
rhai_attack!(recursion, "recursion.rhai", RuntimeError, started = true);
rhai_attack!(closure_call, "closure_call.rhai", RuntimeError, started = true);
rhai_attack!(expr_depth_bomb, "expr_depth_bomb.rhai", CompileError, started = false);
rhai_attack!(output_flood, "output_flood.rhai", OutputLimit, started = true);
rhai_attack!(eval, "eval.rhai", CompileError, started = false);
rhai_attack!(import, "import.rhai", CompileError, started = false);
rhai_attack!(exit, "exit.rhai", RuntimeError, started = true);
rhai_attack!(timestamp, "timestamp.rhai", RuntimeError, started = true);
rhai_attack!(malformed_action, "malformed_action.rhai", InvalidAction, started = true);
rhai_attack!(long_action, "long_action.rhai", InvalidAction, started = true);
rhai_attack!(top_level_code_never_runs, "top_level_hang.rhai", Ok, started = true, ok = "up");

#[test]
fn mutating_the_board_has_no_effect_on_the_host() {
    let world = World::new();
    let board = json!([[2, 0], [0, 4]]);
    let o = common::run_with("mutate_board.rhai", &attack_limits(), &world, &board);
    assert_eq!(o.result.as_deref().ok(), Some("up"));
    assert_eq!(board, json!([[2, 0], [0, 4]]));
    let mut s = common::session(
        sandbox::Language::Rhai,
        "fn strategy(board, info) { let v = board[0][0]; board[0][0] = 2048; v }",
        &attack_limits(),
    );
    for _ in 0..3 {
        assert_eq!(s.call(&[board.clone(), json!({})]).unwrap(), "2");
    }
}

#[test]
fn episode_operation_budget_spans_calls() {
    let mut l = attack_limits();
    l.ops_total = 3_000_000;
    let mut s = common::session(
        sandbox::Language::Rhai,
        "fn strategy(board, info) { let x = 0; for i in 0..100000 { x += i; } \"up\" }",
        &l,
    );
    let mut n = 0;
    let v = loop {
        match s.call(&[json!([]), json!({})]) {
            Result::Ok(_) => n += 1,
            Err(v) => break v,
        }
        assert!(n < 1000, "episode budget never hit");
    };
    assert_eq!(v.kind, TimeoutCpu);
    assert!(n >= 3, "{n}");
    // A finished session keeps its verdict.
    assert_eq!(s.call(&[json!([]), json!({})]).unwrap_err(), v);
}
