//! Adversarial suite, Python backend. Every attack runs with the static
//! import check switched **off** (the jail must hold alone) and asserts the
//! verdict, that the canary outside is untouched and its secret never
//! appears, that nothing reached the loopback listener and that no jailed
//! process survives. `assert_static` records whether the static check would
//! also have rejected the program.
#![allow(missing_docs)]

mod common;

use common::{assert_static, attack, attack_limits, World};
use sandbox::{Language, VerdictKind::*};
use serde_json::json;

macro_rules! py_attack {
    ($name:ident, $file:literal, $kind:expr, started = $started:expr, static_rejects = $st:expr $(, ok = $ok:literal)?) => {
        #[test]
        fn $name() {
            let o = attack($file, &attack_limits());
            assert_eq!(o.kind(), $kind, "{}: {:?}", $file, o.result);
            assert_eq!(o.started, $started, "{}: {:?}", $file, o.result);
            $( assert_eq!(o.result.as_deref().ok(), Some($ok), "{}", $file); )?
            assert_static($file, $st);
        }
    };
}

// Resource abuse.
py_attack!(busy_loop, "busy_loop.py", TimeoutCpu, started = true, static_rejects = false);
py_attack!(survive_timer, "survive_timer.py", TimeoutCpu, started = true, static_rejects = true);
py_attack!(block_forever, "block_forever.py", TimeoutWall, started = true, static_rejects = true);
#[test]
fn memory_bomb() {
    let l = sandbox::Limits { call_cpu: std::time::Duration::from_secs(2), ..attack_limits() };
    let o = attack("memory_bomb.py", &l);
    assert_eq!(o.kind(), MemoryLimit, "{:?}", o.result);
    assert_static("memory_bomb.py", false);
}
#[test]
fn memory_errors_name_the_limit() {
    let l = sandbox::Limits { call_cpu: std::time::Duration::from_secs(2), ..attack_limits() };
    let o = attack("memory_bomb.py", &l);
    let v = o.result.unwrap_err();
    assert!(v.reason.contains(&format!("{} MiB memory limit", l.memory_bytes >> 20)), "{}", v.reason);
}
#[test]
fn a_1_mb_action_is_an_invalid_action_not_a_protocol_error() {
    let o = attack("huge_action.py", &attack_limits());
    let v = o.result.unwrap_err();
    assert_eq!(v.kind, InvalidAction, "{v:?}");
    assert!(v.reason.contains("action is 1000000 bytes"), "{}", v.reason);
}
py_attack!(fork_bomb, "fork_bomb.py", SyscallViolation, started = true, static_rejects = true);
py_attack!(fork_once, "fork_once.py", SyscallViolation, started = true, static_rejects = true);
py_attack!(thread_bomb, "thread_bomb.py", SyscallViolation, started = true, static_rejects = true);
py_attack!(output_flood, "output_flood.py", OutputLimit, started = true, static_rejects = true);
py_attack!(recursion_bomb, "recursion_bomb.py", TimeoutCpu, started = true, static_rejects = true);
py_attack!(parser_bomb, "parser_bomb.py", RuntimeError, started = true, static_rejects = true);
py_attack!(disk_fill, "disk_fill.py", Ok, started = true, static_rejects = true, ok = "wrote 0");
py_attack!(fd_exhaustion, "fd_exhaustion.py", Ok, started = true, static_rejects = true, ok = "fds 0");
py_attack!(hang_at_load, "hang_at_load.py", TimeoutCpu, started = false, static_rejects = false);

// Escapes.
py_attack!(read_host_file, "read_host_file.py", Ok, started = true, static_rejects = true, ok = "nothing");
py_attack!(write_host_file, "write_host_file.py", Ok, started = true, static_rejects = true, ok = "wrote 0");
py_attack!(network, "network.py", RuntimeError, started = true, static_rejects = true);
py_attack!(exec_binary, "exec_binary.py", SyscallViolation, started = true, static_rejects = true);
py_attack!(ptrace, "ptrace.py", RuntimeError, started = false, static_rejects = true);
py_attack!(signal_parent, "signal_parent.py", SyscallViolation, started = true, static_rejects = true);
py_attack!(privilege_escalation, "privilege_escalation.py", SyscallViolation, started = true, static_rejects = true);
py_attack!(proc_tricks, "proc_tricks.py", Ok, started = true, static_rejects = true, ok = "found 0");
py_attack!(read_usr, "read_usr.py", RuntimeError, started = true, static_rejects = true);

// Reward hacks.
py_attack!(monkey_patch, "monkey_patch.py", ProtocolError, started = false, static_rejects = true);
py_attack!(fake_exit, "fake_exit.py", RuntimeError, started = true, static_rejects = true);
py_attack!(system_exit, "system_exit.py", RuntimeError, started = true, static_rejects = false);
py_attack!(protocol_injection, "protocol_injection.py", ProtocolError, started = true, static_rejects = true);
py_attack!(malformed_action, "malformed_action.py", InvalidAction, started = true, static_rejects = false);
py_attack!(long_action, "long_action.py", InvalidAction, started = true, static_rejects = false);
py_attack!(find_secrets, "find_secrets.py", Ok, started = true, static_rejects = true, ok = "up");

#[test]
fn mutating_the_board_has_no_effect_on_the_host() {
    let _g = common::serial();
    let world = World::new();
    let board = json!([[2, 0], [0, 4]]);
    let o = common::run_with("mutate_board.py", &attack_limits(), &world, &board);
    assert_eq!(o.result.as_deref().ok(), Some("up"));
    assert_eq!(board, json!([[2, 0], [0, 4]]));
    // And the next call still sees exactly what the host sends.
    let mut s = common::session(
        Language::Python,
        "def strategy(board, info):\n    v = board[0][0]\n    board[0][0] = 2048\n    return str(v)\n",
        &attack_limits(),
    );
    for _ in 0..3 {
        assert_eq!(s.call(&[board.clone(), world.info()]).unwrap(), "2");
    }
    world.check(&[]);
}

#[test]
fn secrets_in_host_memory_are_not_visible() {
    // The host keeps a "solution" in its own memory; the candidate dumps all
    // objects it can find. Only what the host sent is in its process.
    let _g = common::serial();
    let world = World::new();
    let solution = format!("SOLUTION-{}", world.secret);
    let board = json!([[1, 2], [3, 4]]);
    let o = common::run_with("find_secrets.py", &attack_limits(), &world, &board);
    assert!(!o.output.contains(&solution));
    assert!(!o.output.contains(&world.secret));
    world.check(&o.texts());
}

#[test]
fn no_channel_between_candidates() {
    let _g = common::serial();
    let world = World::new();
    let board = json!([[0]]);
    let mut limits = attack_limits();
    let a = common::run_with("channel_write.py", &limits, &world, &board);
    assert_eq!(a.result.as_deref().ok(), Some("sent"));
    let b = common::run_with("channel_read.py", &limits, &world, &board);
    assert_eq!(b.result.as_deref().ok(), Some("none"));
    // Even without the tight seccomp stage each jail has its own /tmp.
    limits.hooks.no_stage2 = true;
    let a = common::run_with("channel_write.py", &limits, &world, &board);
    assert_eq!(a.result.as_deref().ok(), Some("sent"));
    let b = common::run_with("channel_read.py", &limits, &world, &board);
    assert_eq!(b.result.as_deref().ok(), Some("none"));
    world.check(&[]);
}

#[test]
fn network_namespace_holds_without_stage2() {
    // With the tight stage off, `socket` imports and connects, but the
    // jail's own network namespace has no route to the host's loopback.
    let mut limits = attack_limits();
    limits.hooks.no_stage2 = true;
    let o = attack("network.py", &limits);
    assert_eq!(o.kind(), RuntimeError, "{:?}", o.result);
    assert!(o.result.as_ref().unwrap_err().reason.contains("Error"), "{:?}", o.result);
}

#[test]
fn ptrace_is_killed_by_stage1_when_stage2_is_off() {
    let mut limits = attack_limits();
    limits.hooks.no_stage2 = true;
    let o = attack("ptrace.py", &limits);
    assert_eq!(o.kind(), SyscallViolation, "{:?}", o.result);
}

#[test]
fn static_check_rejects_imports_when_on() {
    let _g = common::serial();
    let limits = sandbox::Limits::default();
    for file in ["network.py", "exec_binary.py", "ptrace.py", "read_host_file.py"] {
        match sandbox::start(Language::Python, &common::program(file), "strategy", &limits) {
            Err(sandbox::StartError::Rejected(v)) => assert_eq!(v.kind, CompileError, "{file}"),
            other => panic!("{file}: expected a rejection, got {:?}", other.map(|_| ())),
        }
    }
}

#[test]
fn honest_strategy_keeps_working_across_calls() {
    let _g = common::serial();
    let src = "import math, random\nfrom collections import Counter\nstate = []\ndef strategy(board, info):\n    state.append(1)\n    return ['up', 'left'][len(state) % 2]\n";
    let mut s = common::session(Language::Python, src, &sandbox::Limits::default());
    let mut got = Vec::new();
    for _ in 0..4 {
        got.push(s.call(&[json!([[0]]), json!({})]).unwrap());
    }
    assert_eq!(got, ["left", "up", "left", "up"]);
    assert_eq!(s.usage().calls, 4);
}
