//! The in-process Rhai backend.
//!
//! Engine: `Engine::new_raw()` plus only pure packages (arithmetic, logic,
//! arrays, maps, iterators, math, strings). Not registered: the language-core
//! package (`sleep` ignores the progress deadline, `exit`, `parse_json`),
//! time (`timestamp`), function-pointer calls, BLOBs, debugging. `eval` is a
//! disabled symbol; modules are compiled out (`no_module`), so `import` does
//! not parse. `print`/`debug` go to a capped per-session buffer.
//!
//! Limits: operations per call and per session (deterministic CPU budget →
//! [`VerdictKind::TimeoutCpu`]), call depth, expression depth, string, array
//! and map sizes, variables, functions; a wall-clock deadline checked every
//! 1024 operations from the progress callback; and a heap budget checked from
//! the progress callback (see [`crate::alloc`]) that holds even for
//! index-assignment growth, which Rhai's size limits catch only late.
//!
//! Each session compiles its own AST and builds a cheap engine around shared,
//! pre-built package modules; each call gets a fresh `Scope` and fresh
//! argument values converted from JSON, so nothing the program does to its
//! arguments reaches the host. Only function definitions take effect
//! (top-level statements are never evaluated).

use std::sync::atomic::{AtomicBool, AtomicI64, AtomicU64, Ordering};
use std::sync::{Arc, Mutex, OnceLock};
use std::time::{Duration, Instant};

use rhai::packages::{
    ArithmeticPackage, BasicArrayPackage, BasicIteratorPackage, BasicMapPackage, BasicMathPackage, BasicStringPackage,
    LogicPackage, MoreStringPackage, Package,
};
use rhai::{Array, CallFnOptions, Dynamic, Engine, EvalAltResult, Map, Module, Scope, Shared, AST, INT};

use crate::{Limits, SandboxError, Session, StartError, Usage, Verdict, VerdictKind};

/// Symbols disabled in the engine (parse errors if used).
pub const DISABLED_SYMBOLS: &[&str] = &["eval"];

fn packages() -> &'static [Shared<Module>] {
    static P: OnceLock<Vec<Shared<Module>>> = OnceLock::new();
    P.get_or_init(|| {
        vec![
            ArithmeticPackage::new().as_shared_module(),
            LogicPackage::new().as_shared_module(),
            BasicArrayPackage::new().as_shared_module(),
            BasicMapPackage::new().as_shared_module(),
            BasicIteratorPackage::new().as_shared_module(),
            BasicMathPackage::new().as_shared_module(),
            BasicStringPackage::new().as_shared_module(),
            MoreStringPackage::new().as_shared_module(),
        ]
    })
}

/// Termination tokens returned from the progress callback.
const STOP_CPU: INT = 1;
const STOP_WALL: INT = 2;
const STOP_MEMORY: INT = 3;
const STOP_OUTPUT: INT = 4;

/// Per-session state shared with the engine's callbacks.
#[derive(Debug)]
struct Monitor {
    /// Operations used by finished calls.
    ops_done: AtomicU64,
    /// Operations of the running call (last progress value).
    ops_now: AtomicU64,
    ops_total: u64,
    /// Wall deadline of the running call, as nanoseconds since `epoch`.
    deadline_ns: AtomicU64,
    epoch: Instant,
    /// Heap figure at the start of the running call.
    heap_base: AtomicI64,
    heap_budget: i64,
    precise_heap: bool,
    check_memory: bool,
    output: Mutex<String>,
    output_bytes: AtomicU64,
    output_cap: usize,
    output_over: AtomicBool,
}

impl Monitor {
    fn heap_now(&self) -> i64 {
        if self.precise_heap {
            crate::alloc::thread_bytes()
        } else {
            crate::alloc::process_heap_bytes()
        }
    }

    fn progress(&self, ops: u64) -> Option<Dynamic> {
        self.ops_now.store(ops, Ordering::Relaxed);
        if self.ops_done.load(Ordering::Relaxed).saturating_add(ops) > self.ops_total {
            return Some(Dynamic::from_int(STOP_CPU));
        }
        if self.output_over.load(Ordering::Relaxed) {
            return Some(Dynamic::from_int(STOP_OUTPUT));
        }
        if self.check_memory && (self.precise_heap || ops & 255 == 0) {
            let used = self.heap_now() - self.heap_base.load(Ordering::Relaxed);
            if used > self.heap_budget {
                return Some(Dynamic::from_int(STOP_MEMORY));
            }
        }
        if ops & 1023 == 0 {
            let now = self.epoch.elapsed().as_nanos() as u64;
            if now > self.deadline_ns.load(Ordering::Relaxed) {
                return Some(Dynamic::from_int(STOP_WALL));
            }
        }
        None
    }

    fn print(&self, s: &str) {
        let n = s.len() as u64 + 1;
        let before = self.output_bytes.fetch_add(n, Ordering::Relaxed);
        if before + n > self.output_cap as u64 {
            self.output_over.store(true, Ordering::Relaxed);
            return;
        }
        if let Ok(mut out) = self.output.lock() {
            out.push_str(s);
            out.push('\n');
        }
    }
}

/// A compiled Rhai strategy with its own engine and limits.
pub struct RhaiSession {
    engine: Engine,
    ast: AST,
    entry: String,
    monitor: Arc<Monitor>,
    limits: Limits,
    calls: u64,
    cpu: Duration,
    started: Instant,
    dead: Option<Verdict>,
}

impl std::fmt::Debug for RhaiSession {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("RhaiSession").field("entry", &self.entry).field("calls", &self.calls).finish()
    }
}

/// Builds the restricted engine with the given limits (no callbacks).
pub fn restricted_engine(limits: &Limits) -> Engine {
    let mut engine = Engine::new_raw();
    for p in packages() {
        engine.register_global_module(p.clone());
    }
    for s in DISABLED_SYMBOLS {
        engine.disable_symbol(*s);
    }
    engine
        .set_max_operations(limits.ops_per_call.max(1))
        .set_max_call_levels(limits.call_depth)
        .set_max_expr_depths(limits.expr_depth.0, limits.expr_depth.1)
        .set_max_string_size(limits.string_bytes.max(1))
        .set_max_array_size(limits.array_len.max(1))
        .set_max_map_size(limits.map_len.max(1))
        .set_max_variables(limits.variables.max(1))
        .set_max_functions(limits.functions.max(1));
    engine
}

/// A compile error's verdict; says first why when the program uses a
/// feature the sandbox compiles out (modules: `import`, `global::`).
fn compile_error(source: &str, e: &rhai::ParseError) -> Verdict {
    let hint = if source.contains("global::") {
        "`global::` is not available (modules are disabled in this sandbox; pass the value as an argument): "
    } else if source.contains("import ") {
        "`import` is not available (modules are disabled in this sandbox): "
    } else {
        ""
    };
    Verdict::new(VerdictKind::CompileError, format!("{hint}{e}"))
}

/// Compiles `source` with the restricted engine (no limits on run time, which
/// compilation does not have). Used by static checks.
pub fn compile_check(source: &str, entry: &str, arity: Option<usize>) -> Result<(), Verdict> {
    let engine = restricted_engine(&Limits::default());
    let ast = engine.compile(source).map_err(|e| compile_error(source, &e))?;
    check_entry(&ast, entry, arity)
}

fn check_entry(ast: &AST, entry: &str, arity: Option<usize>) -> Result<(), Verdict> {
    let found: Vec<usize> = ast.iter_functions().filter(|f| f.name == entry).map(|f| f.params.len()).collect();
    if found.is_empty() {
        return Err(Verdict::new(VerdictKind::CompileError, format!("no function `{entry}` defined")));
    }
    if let Some(n) = arity {
        if !found.contains(&n) {
            return Err(Verdict::new(
                VerdictKind::CompileError,
                format!("function `{entry}` must take {n} parameter(s)"),
            ));
        }
    }
    Ok(())
}

impl RhaiSession {
    /// Compiles `source` and prepares calls to `entry`.
    pub fn start(source: &str, entry: &str, limits: &Limits) -> Result<Self, StartError> {
        let precise_heap = crate::alloc::counting_installed();
        if !precise_heap && !cfg!(all(target_os = "linux", target_env = "gnu")) {
            return Err(SandboxError::Unavailable(
                "no heap accounting: install sandbox::CountingAlloc as the global allocator".into(),
            )
            .into());
        }
        #[cfg(feature = "test-hooks")]
        let check_memory = !limits.hooks.no_rhai_memory;
        #[cfg(not(feature = "test-hooks"))]
        let check_memory = true;
        let monitor = Arc::new(Monitor {
            ops_done: AtomicU64::new(0),
            ops_now: AtomicU64::new(0),
            ops_total: limits.ops_total,
            deadline_ns: AtomicU64::new(u64::MAX),
            epoch: Instant::now(),
            heap_base: AtomicI64::new(0),
            heap_budget: limits.memory_bytes.min(i64::MAX as u64) as i64,
            precise_heap,
            check_memory,
            output: Mutex::new(String::new()),
            output_bytes: AtomicU64::new(0),
            output_cap: limits.output_bytes,
            output_over: AtomicBool::new(false),
        });
        let mut engine = restricted_engine(limits);
        let m = monitor.clone();
        engine.on_progress(move |ops| m.progress(ops));
        let m = monitor.clone();
        engine.on_print(move |s| m.print(s));
        let m = monitor.clone();
        engine.on_debug(move |s, _, _| m.print(s));
        let ast = engine.compile(source).map_err(|e| compile_error(source, &e))?;
        check_entry(&ast, entry, None)?;
        // Keep only the function definitions: top-level statements never run.
        let ast = ast.clone_functions_only();
        Ok(Self {
            engine,
            ast,
            entry: entry.to_string(),
            monitor,
            limits: limits.clone(),
            calls: 0,
            cpu: Duration::ZERO,
            started: Instant::now(),
            dead: None,
        })
    }

    fn map_error(&self, e: &EvalAltResult) -> Verdict {
        let mut e = e;
        while let EvalAltResult::ErrorInFunctionCall(_, _, inner, _) = e {
            e = inner;
        }
        match e {
            EvalAltResult::ErrorTooManyOperations(_) => Verdict::new(
                VerdictKind::TimeoutCpu,
                format!("used the CPU budget of one call: {}", crate::rhai_budget(self.limits.ops_per_call)),
            ),
            EvalAltResult::ErrorTerminated(token, _) => match token.as_int().unwrap_or(0) {
                STOP_CPU => Verdict::new(
                    VerdictKind::TimeoutCpu,
                    format!("used the CPU budget of the game: {}", crate::rhai_budget(self.limits.ops_total)),
                ),
                STOP_WALL => Verdict::new(
                    VerdictKind::TimeoutWall,
                    format!("no answer within {} ms", self.limits.call_wall.as_millis()),
                ),
                STOP_MEMORY => Verdict::new(
                    VerdictKind::MemoryLimit,
                    format!("allocated more than {} bytes", self.limits.memory_bytes),
                ),
                STOP_OUTPUT => Verdict::new(
                    VerdictKind::OutputLimit,
                    format!("printed more than {} bytes", self.limits.output_bytes),
                ),
                _ => Verdict::new(VerdictKind::RuntimeError, "terminated"),
            },
            EvalAltResult::ErrorDataTooLarge(what, _) => {
                Verdict::new(VerdictKind::MemoryLimit, format!("{what} exceeds the size limit"))
            }
            EvalAltResult::ErrorStackOverflow(_) => Verdict::new(
                VerdictKind::RuntimeError,
                format!("call depth exceeds {} (recursion too deep)", self.limits.call_depth),
            ),
            EvalAltResult::ErrorTooManyVariables(_) => Verdict::new(VerdictKind::MemoryLimit, "too many variables"),
            other => Verdict::new(VerdictKind::RuntimeError, other.to_string()),
        }
    }
}

/// Converts a JSON value into a fresh Rhai value.
pub fn json_to_dynamic(v: &serde_json::Value) -> Dynamic {
    match v {
        serde_json::Value::Null => Dynamic::UNIT,
        serde_json::Value::Bool(b) => Dynamic::from_bool(*b),
        serde_json::Value::Number(n) => match n.as_i64() {
            Some(i) => Dynamic::from_int(i),
            None => Dynamic::from_float(n.as_f64().unwrap_or(0.0)),
        },
        serde_json::Value::String(s) => Dynamic::from(s.clone()),
        serde_json::Value::Array(a) => Dynamic::from_array(a.iter().map(json_to_dynamic).collect::<Array>()),
        serde_json::Value::Object(o) => {
            let mut m = Map::new();
            for (k, v) in o {
                m.insert(k.as_str().into(), json_to_dynamic(v));
            }
            Dynamic::from_map(m)
        }
    }
}

/// Converts a returned value to action text: string as is, integer in
/// decimal, array of integers space-separated; anything else is invalid.
fn dynamic_to_action(v: Dynamic) -> Result<String, Verdict> {
    if v.is_string() {
        return Ok(v.into_string().unwrap_or_default());
    }
    if v.is_int() {
        return Ok(v.as_int().unwrap_or_default().to_string());
    }
    if v.is_array() {
        let type_name = v.type_name();
        if let Some(arr) = v.try_cast::<Array>() {
            let mut parts = Vec::with_capacity(arr.len());
            for x in arr.iter() {
                match x.as_int() {
                    Ok(i) => parts.push(i.to_string()),
                    Err(t) => {
                        return Err(Verdict::new(
                            VerdictKind::InvalidAction,
                            format!("strategy returned an array containing {t}; expected integers"),
                        ))
                    }
                }
            }
            return Ok(parts.join(" "));
        }
        return Err(Verdict::new(VerdictKind::InvalidAction, format!("strategy returned {type_name}")));
    }
    Err(Verdict::new(
        VerdictKind::InvalidAction,
        format!("strategy returned {}; expected a string, an integer or an array of integers", v.type_name()),
    ))
}

impl Session for RhaiSession {
    fn call(&mut self, args: &[serde_json::Value]) -> Result<String, Verdict> {
        if let Some(v) = &self.dead {
            return Err(v.clone());
        }
        let t0 = Instant::now();
        let call_deadline = t0 + self.limits.call_wall;
        let total_deadline = self.started + self.limits.total_wall;
        let deadline = call_deadline.min(total_deadline);
        let m = &self.monitor;
        m.deadline_ns.store(deadline.saturating_duration_since(m.epoch).as_nanos() as u64, Ordering::Relaxed);
        m.ops_now.store(0, Ordering::Relaxed);
        m.heap_base.store(m.heap_now(), Ordering::Relaxed);
        let argv: Vec<Dynamic> = args.iter().map(json_to_dynamic).collect();
        let mut scope = Scope::new();
        let options = CallFnOptions::new().eval_ast(false).rewind_scope(true);
        let engine = &self.engine;
        let ast = &self.ast;
        let entry = self.entry.as_str();
        let result = std::panic::catch_unwind(std::panic::AssertUnwindSafe(|| {
            engine.call_fn_with_options::<Dynamic>(options, &mut scope, ast, entry, argv)
        }));
        let ops = m.ops_now.load(Ordering::Relaxed);
        m.ops_done.fetch_add(ops, Ordering::Relaxed);
        self.cpu += t0.elapsed();
        let outcome = match result {
            Err(_) => Err(Verdict::new(VerdictKind::RuntimeError, "interpreter panicked")),
            Ok(Err(e)) => Err(self.map_error(&e)),
            Ok(Ok(v)) => {
                if m.output_over.load(Ordering::Relaxed) {
                    Err(Verdict::new(
                        VerdictKind::OutputLimit,
                        format!("printed more than {} bytes", self.limits.output_bytes),
                    ))
                } else {
                    dynamic_to_action(v).and_then(|s| crate::check_action_text(s, &self.limits))
                }
            }
        };
        match outcome {
            Ok(s) => {
                self.calls += 1;
                Ok(s)
            }
            Err(v) => {
                self.dead = Some(v.clone());
                Err(v)
            }
        }
    }

    fn usage(&self) -> Usage {
        Usage {
            calls: self.calls,
            cpu: self.cpu,
            ops: self.monitor.ops_done.load(Ordering::Relaxed),
            output_bytes: self.monitor.output_bytes.load(Ordering::Relaxed),
        }
    }

    fn output(&self) -> String {
        self.monitor.output.lock().map(|s| s.clone()).unwrap_or_default()
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use serde_json::json;

    fn run(src: &str, limits: &Limits) -> Result<String, Verdict> {
        let mut s = match RhaiSession::start(src, "strategy", limits) {
            Ok(s) => s,
            Err(StartError::Rejected(v)) => return Err(v),
            Err(e) => panic!("{e}"),
        };
        s.call(&[json!([[2, 0], [0, 2]])])
    }

    #[test]
    fn returns_are_converted_strictly() {
        let l = Limits::default();
        assert_eq!(run("fn strategy(b) { \"up\" }", &l).unwrap(), "up");
        assert_eq!(run("fn strategy(b) { 3 }", &l).unwrap(), "3");
        assert_eq!(run("fn strategy(b) { [1, 2, 3] }", &l).unwrap(), "1 2 3");
        assert_eq!(run("fn strategy(b) { 1.5 }", &l).unwrap_err().kind, VerdictKind::InvalidAction);
        assert_eq!(run("fn strategy(b) { () }", &l).unwrap_err().kind, VerdictKind::InvalidAction);
        assert_eq!(run("fn strategy(b) { [\"a\"] }", &l).unwrap_err().kind, VerdictKind::InvalidAction);
    }

    #[test]
    fn compile_errors_and_missing_entry() {
        let l = Limits::default();
        assert_eq!(run("fn strategy(b) { ", &l).unwrap_err().kind, VerdictKind::CompileError);
        assert_eq!(run("fn other(b) { 1 }", &l).unwrap_err().kind, VerdictKind::CompileError);
        assert_eq!(run("fn strategy(b) { eval(\"1\") }", &l).unwrap_err().kind, VerdictKind::CompileError);
        assert_eq!(run("import \"x\" as y; fn strategy(b) { 1 }", &l).unwrap_err().kind, VerdictKind::CompileError);
        let v = run("const X = 3; fn strategy(b) { global::X }", &l).unwrap_err();
        assert_eq!(v.kind, VerdictKind::CompileError);
        assert!(v.reason.contains("`global::` is not available") && v.reason.contains("argument"), "{}", v.reason);
        assert_eq!(run("fn strategy(b) { sleep(1); 1 }", &l).unwrap_err().kind, VerdictKind::RuntimeError);
        assert_eq!(run("fn strategy(b) { timestamp(); 1 }", &l).unwrap_err().kind, VerdictKind::RuntimeError);
    }

    #[test]
    fn top_level_code_never_runs() {
        let l = Limits::default();
        assert_eq!(run("loop {} fn strategy(b) { \"up\" }", &l).unwrap(), "up");
    }

    #[test]
    fn arguments_are_copies() {
        let l = Limits::default();
        let mut s = RhaiSession::start("fn strategy(b) { b[0][0] = 2048; b[0][0] }", "strategy", &l).unwrap();
        let board = json!([[2, 0], [0, 2]]);
        assert_eq!(s.call(std::slice::from_ref(&board)).unwrap(), "2048");
        assert_eq!(board, json!([[2, 0], [0, 2]]));
    }
}
