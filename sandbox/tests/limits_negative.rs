//! Negative controls: every limit has a test that shows the attack gets
//! through when that one limit is disabled (a huge value or a `test-hooks`
//! switch), so the positive tests in `python_attacks.rs`/`rhai_attacks.rs`
//! are able to fail.
#![allow(missing_docs)]

mod common;

#[global_allocator]
static A: sandbox::CountingAlloc = sandbox::CountingAlloc;

use std::time::Duration;

use common::{attack, attack_limits};
use sandbox::VerdictKind::{self, *};

fn both(file: &str, on: &sandbox::Limits, off: &sandbox::Limits, with: VerdictKind, without: VerdictKind) {
    let a = attack(file, on);
    assert_eq!(a.kind(), with, "{file} with the limit: {:?}", a.result);
    let b = attack(file, off);
    assert_eq!(b.kind(), without, "{file} without the limit: {:?}", b.result);
}

fn big_stack<F: FnOnce() + Send + 'static>(f: F) {
    std::thread::Builder::new().stack_size(256 << 20).spawn(f).unwrap().join().unwrap();
}

// ---- Rhai ----

#[test]
fn rhai_operations_limit() {
    let on = attack_limits();
    let off = sandbox::Limits { ops_per_call: u64::MAX, ops_total: u64::MAX, ..attack_limits() };
    // Without the operation budget only the wall clock stops a busy loop.
    both("busy_loop.rhai", &on, &off, TimeoutCpu, TimeoutWall);
}

#[test]
fn rhai_wall_clock_limit() {
    let unlimited_ops = sandbox::Limits { ops_per_call: u64::MAX, ops_total: u64::MAX, ..attack_limits() };
    let on = sandbox::Limits { call_wall: Duration::from_millis(20), ..unlimited_ops.clone() };
    let off = sandbox::Limits { call_wall: Duration::from_secs(60), ..unlimited_ops };
    both("long_compute.rhai", &on, &off, TimeoutWall, Ok);
}

#[test]
fn rhai_memory_budget() {
    let on = sandbox::Limits { memory_bytes: 64 << 20, ..attack_limits() };
    let mut off = sandbox::Limits { call_wall: Duration::from_secs(30), ..on.clone() };
    off.hooks.no_rhai_memory = true;
    both("index_growth.rhai", &on, &off, MemoryLimit, Ok);
}

#[test]
fn rhai_output_limit() {
    let on = attack_limits();
    let off = sandbox::Limits { output_bytes: 1 << 20, ..attack_limits() };
    both("output_flood.rhai", &on, &off, OutputLimit, Ok);
}

#[test]
fn rhai_call_depth_limit() {
    big_stack(|| {
        let on = attack_limits();
        let off = sandbox::Limits { call_depth: 200, ..attack_limits() };
        both("recursion_100.rhai", &on, &off, RuntimeError, Ok);
    });
}

#[test]
fn rhai_array_size_limit() {
    let on = attack_limits();
    let off = sandbox::Limits { array_len: 100_000, ..attack_limits() };
    both("big_array.rhai", &on, &off, MemoryLimit, Ok);
}

#[test]
fn rhai_expression_depth_limit() {
    big_stack(|| {
        let on = attack_limits();
        let off = sandbox::Limits { expr_depth: (0, 0), ..attack_limits() };
        both("expr_depth_bomb.rhai", &on, &off, CompileError, Ok);
    });
}

#[test]
fn rhai_action_length_limit() {
    let on = attack_limits();
    let off = sandbox::Limits { action_bytes: 1 << 20, ..attack_limits() };
    both("long_action.rhai", &on, &off, InvalidAction, Ok);
}

// ---- Python ----

#[test]
fn python_cpu_limit() {
    let on = attack_limits();
    let mut off = sandbox::Limits { call_wall: Duration::from_secs(20), ..attack_limits() };
    off.total_cpu = Duration::from_secs(20);
    off.hooks.no_cpu_accounting = true;
    off.hooks.no_rlimits = true;
    both("cpu_burn_bounded.py", &on, &off, TimeoutCpu, Ok);
}

#[test]
fn python_wall_limit() {
    let on = attack_limits();
    let off = sandbox::Limits { call_wall: Duration::from_secs(10), ..attack_limits() };
    both("block_bounded.py", &on, &off, TimeoutWall, Ok);
}

#[test]
fn python_memory_limit() {
    let on =
        sandbox::Limits { call_cpu: Duration::from_secs(2), call_wall: Duration::from_secs(20), ..attack_limits() };
    let off = sandbox::Limits { memory_bytes: 4 << 30, ..on.clone() };
    both("memory_bomb.py", &on, &off, MemoryLimit, Ok);
}

#[test]
fn python_output_limit() {
    let on = attack_limits();
    let off = sandbox::Limits { output_bytes: 1 << 20, ..attack_limits() };
    both("output_flood.py", &on, &off, OutputLimit, Ok);
}

#[test]
fn python_seccomp_stage2() {
    let on = attack_limits();
    let mut off = attack_limits();
    off.hooks.no_stage2 = true;
    both("read_usr.py", &on, &off, RuntimeError, Ok);
}

#[test]
fn python_seccomp_kills_fork() {
    let on = attack_limits();
    let mut off = attack_limits();
    off.hooks.no_seccomp = true;
    off.hooks.no_rlimits = true;
    // Without seccomp and rlimits the fork succeeds (the spinning child is
    // still killed with the pid namespace when the session ends).
    both("fork_once.py", &on, &off, SyscallViolation, Ok);
}

#[test]
fn python_nproc_rlimit() {
    // With seccomp off, RLIMIT_NPROC alone still stops the fork.
    let mut on = attack_limits();
    on.hooks.no_seccomp = true;
    let mut off = on.clone();
    off.hooks.no_rlimits = true;
    let a = attack("fork_once.py", &on);
    assert_eq!(a.kind(), RuntimeError, "{:?}", a.result);
    assert!(a.result.unwrap_err().reason.contains("BlockingIOError"));
    assert_eq!(attack("fork_once.py", &off).kind(), Ok);
}

#[test]
fn python_nofile_rlimit() {
    let mut on = attack_limits();
    on.hooks.no_stage2 = true;
    let mut off = on.clone();
    off.hooks.no_rlimits = true;
    let count =
        |o: &common::Outcome| -> u64 { o.result.as_deref().unwrap().trim_start_matches("fds ").parse().unwrap() };
    let a = attack("fd_exhaustion.py", &on);
    assert!(count(&a) < 32, "{:?}", a.result);
    let b = attack("fd_exhaustion.py", &off);
    assert!(count(&b) > 100, "{:?}", b.result);
}

#[test]
fn python_fsize_rlimit_and_tmpfs() {
    let mut on = sandbox::Limits { tmp_bytes: 64 << 20, ..attack_limits() };
    on.hooks.no_stage2 = true;
    let mut off = on.clone();
    off.hooks.no_rlimits = true;
    let written =
        |o: &common::Outcome| -> u64 { o.result.as_deref().unwrap().trim_start_matches("wrote ").parse().unwrap() };
    let a = attack("disk_fill.py", &on);
    assert!(written(&a) <= 1 << 20, "{:?}", a.result);
    let b = attack("disk_fill.py", &off);
    assert!(written(&b) > 1 << 20, "{:?}", b.result);
}

#[test]
fn python_action_length_limit() {
    let on = attack_limits();
    let off = sandbox::Limits { action_bytes: 1 << 20, ..attack_limits() };
    both("long_action.py", &on, &off, InvalidAction, Ok);
}
