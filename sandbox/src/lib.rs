//! Runs untrusted, model-written strategy programs under hard limits.
//!
//! The program only *chooses actions*. The game, its RNG, any solution and the
//! scorer live in the host. A program is started once per episode
//! ([`start`]) and then asked for one action per move
//! ([`Session::call`]) with a fresh copy of the observation; it answers with
//! one short action string that the **host** parses strictly. Exit codes,
//! stdout and return values of anything but the entry function are never
//! taken as results.
//!
//! Two backends sit behind the same [`Session`] trait:
//!
//! * [`Language::Rhai`] — the embedded Rhai interpreter, in-process, built
//!   from a raw engine plus only pure packages (no `eval`, no modules, no
//!   `sleep`/`exit`/`timestamp`), with operation, depth, size, wall-clock,
//!   memory and output limits (see [`rhai_backend`]).
//! * [`Language::Python`] — `python3` in a fresh child per session inside new
//!   user, pid, mount, ipc, uts and net namespaces, on a minimal read-only
//!   filesystem, under rlimits, `no_new_privs` and a two-stage seccomp filter,
//!   driven over dedicated pipes with a JSON-lines protocol (see [`jail`]).
//!
//! Every failure is a typed [`Verdict`] with a short reason; nothing a
//! program does can make [`start`] or [`Session::call`] panic. If the host
//! cannot provide the jail (no user namespaces, no seccomp) [`start`] fails
//! with [`SandboxError::Unavailable`] naming what is missing; it never runs
//! a program unsandboxed.
//!
//! ```
//! use sandbox::{start, Language, Limits};
//! let src = r#"fn strategy(board) { if board[0][0] == 0 { "left" } else { "up" } }"#;
//! let mut s = start(Language::Rhai, src, "strategy", &Limits::default()).unwrap();
//! let board = serde_json::json!([[0, 2], [2, 4]]);
//! assert_eq!(s.call(&[board]).unwrap(), "left");
//! ```

pub mod alloc;
pub mod jail;
pub mod python;
pub mod rhai_backend;

use std::fmt;
use std::path::PathBuf;
use std::time::Duration;

pub use alloc::CountingAlloc;

/// The language a strategy program is written in.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash)]
pub enum Language {
    /// Rhai, run in-process by the embedded interpreter.
    Rhai,
    /// Python 3, run by the system `python3` inside the process jail.
    Python,
}

impl Language {
    /// The lower-case name (`rhai`, `python`), as used in options and code fences.
    pub fn name(self) -> &'static str {
        match self {
            Language::Rhai => "rhai",
            Language::Python => "python",
        }
    }

    /// Parses `rhai`, `python` or `python3` (case-insensitive).
    pub fn parse(s: &str) -> Option<Self> {
        match s.trim().to_ascii_lowercase().as_str() {
            "rhai" => Some(Language::Rhai),
            "python" | "python3" | "py" => Some(Language::Python),
            _ => None,
        }
    }
}

/// The class of a run's outcome.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash, PartialOrd, Ord)]
pub enum VerdictKind {
    /// The program answered.
    Ok,
    /// The program did not compile/parse, or lacks the entry function, or was
    /// rejected by the static check.
    CompileError,
    /// The program raised an error (exception, Rhai runtime error, recursion
    /// too deep, exited without answering).
    RuntimeError,
    /// The program used more CPU time (Python: kernel CPU time; Rhai:
    /// operations) than allowed.
    TimeoutCpu,
    /// The program did not answer within the wall-clock deadline (blocked,
    /// sleeping, or stuck).
    TimeoutWall,
    /// The program used more memory than allowed.
    MemoryLimit,
    /// The program printed more than allowed.
    OutputLimit,
    /// The program made a forbidden system call (killed by seccomp) or
    /// another jail layer killed it.
    SyscallViolation,
    /// The program returned something that is not a well-formed action
    /// (wrong type, too long). Hosts use this kind too when they reject a
    /// well-formed but illegal action.
    InvalidAction,
    /// The program broke the host/child protocol (garbage or oversized frames).
    ProtocolError,
}

/// Rhai operations that stand for one millisecond of CPU: hosts convert a
/// time budget with it (Rhai counts operations, so verdicts do not depend
/// on machine load), and verdicts state budgets in both units.
pub const RHAI_OPS_PER_MS: u64 = 20_000;

/// A Rhai operation budget as a person reads it: `2000 ms (40000000
/// operations at 20000 per ms)`.
pub fn rhai_budget(ops: u64) -> String {
    format!("{} ms ({ops} operations at {RHAI_OPS_PER_MS} per ms)", ops / RHAI_OPS_PER_MS)
}

impl VerdictKind {
    /// A stable snake-case name for logs and reward breakdowns.
    pub fn name(self) -> &'static str {
        match self {
            VerdictKind::Ok => "ok",
            VerdictKind::CompileError => "compile_error",
            VerdictKind::RuntimeError => "runtime_error",
            VerdictKind::TimeoutCpu => "timeout_cpu",
            VerdictKind::TimeoutWall => "timeout_wall",
            VerdictKind::MemoryLimit => "memory_limit",
            VerdictKind::OutputLimit => "output_limit",
            VerdictKind::SyscallViolation => "syscall_violation",
            VerdictKind::InvalidAction => "invalid_action",
            VerdictKind::ProtocolError => "protocol_error",
        }
    }
}

impl fmt::Display for VerdictKind {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str(self.name())
    }
}

/// The outcome of a run: a kind plus a short reason (≤ 200 chars) suitable for
/// `StepInfo::reason`. Reasons never contain host data the program could not
/// already see.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Verdict {
    /// The class of outcome.
    pub kind: VerdictKind,
    /// A short human-readable reason.
    pub reason: String,
}

impl Verdict {
    /// A verdict with a reason, truncated to 200 characters.
    pub fn new(kind: VerdictKind, reason: impl Into<String>) -> Self {
        let mut reason: String = reason.into();
        if reason.chars().count() > 200 {
            reason = reason.chars().take(197).collect::<String>() + "...";
        }
        Self { kind, reason }
    }
}

impl fmt::Display for Verdict {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        write!(f, "{}: {}", self.kind, self.reason)
    }
}

/// Host-side failures: the sandbox could not be provided. Never caused by the
/// program under test.
#[derive(Debug, thiserror::Error)]
#[non_exhaustive]
pub enum SandboxError {
    /// A kernel feature or file the jail needs is missing; the message names it.
    #[error("sandbox unavailable: {0}")]
    Unavailable(String),
    /// An I/O error while setting up the sandbox.
    #[error("sandbox setup failed: {0}")]
    Setup(String),
}

/// Why [`start`] did not return a session.
#[derive(Debug)]
pub enum StartError {
    /// The program was rejected (compile error, static check, crashed or hit a
    /// limit while loading). This is the program's fault.
    Rejected(Verdict),
    /// The host could not provide the sandbox. Not the program's fault.
    Sandbox(SandboxError),
}

impl fmt::Display for StartError {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        match self {
            StartError::Rejected(v) => write!(f, "{v}"),
            StartError::Sandbox(e) => write!(f, "{e}"),
        }
    }
}

impl std::error::Error for StartError {}

impl From<Verdict> for StartError {
    fn from(v: Verdict) -> Self {
        StartError::Rejected(v)
    }
}

impl From<SandboxError> for StartError {
    fn from(e: SandboxError) -> Self {
        StartError::Sandbox(e)
    }
}

/// Python-specific settings of the process backend.
#[derive(Debug, Clone, PartialEq)]
pub struct PythonOptions {
    /// The interpreter, by absolute path (never a shell shim such as pyenv's).
    pub interpreter: PathBuf,
    /// Host directories bound read-only into the jail. `/usr` (with the
    /// `/bin`, `/lib*` links of a merged-usr system) is always included; add
    /// the prefix of an interpreter installed elsewhere.
    pub extra_ro_binds: Vec<PathBuf>,
    /// Modules the program may import. They are imported by the trusted runner
    /// *before* the tight seccomp stage, after which no file can be opened, so
    /// nothing else is importable.
    pub allowed_modules: Vec<String>,
    /// Run the static check (import allowlist + forbidden names on the
    /// tokenised program) before starting. **Test-only switch:** the
    /// adversarial suite turns it off to prove the jail holds alone. The jail
    /// is enforced either way.
    pub static_check: bool,
}

impl Default for PythonOptions {
    fn default() -> Self {
        Self {
            interpreter: PathBuf::from("/usr/bin/python3"),
            extra_ro_binds: Vec::new(),
            allowed_modules: python::DEFAULT_ALLOWED_MODULES.iter().map(|s| s.to_string()).collect(),
            static_check: true,
        }
    }
}

/// Resource limits for one session (one episode of one program).
///
/// Defaults are safe for 4×4 2048 and 9×9 Sudoku move pickers. Every numeric
/// limit can be raised; tests set single limits to huge values to prove the
/// tests detect a missing limit.
#[derive(Debug, Clone, PartialEq)]
pub struct Limits {
    /// Maximum program source size in bytes.
    pub source_bytes: usize,
    /// CPU time allowed for a single call (Python: kernel CPU time of the
    /// child, measured by the host; Rhai: see `ops_per_call`).
    pub call_cpu: Duration,
    /// CPU time allowed for the whole session (start-up, definitions and all calls).
    pub total_cpu: Duration,
    /// Wall-clock backstop for a single call; catches blocked programs.
    pub call_wall: Duration,
    /// Wall-clock backstop for the whole session.
    pub total_wall: Duration,
    /// Memory budget in bytes (Python: `RLIMIT_AS` of the child; Rhai: heap
    /// bytes allocated during a call).
    pub memory_bytes: u64,
    /// Captured `print`/stdout/stderr bytes before the run is stopped.
    pub output_bytes: usize,
    /// Longest accepted action string, in bytes.
    pub action_bytes: usize,
    /// Rhai: operations per call (deterministic CPU budget).
    pub ops_per_call: u64,
    /// Rhai: operations per session.
    pub ops_total: u64,
    /// Rhai: function call depth.
    pub call_depth: usize,
    /// Rhai: expression nesting depth at global level and inside functions.
    pub expr_depth: (usize, usize),
    /// Rhai: longest string in bytes.
    pub string_bytes: usize,
    /// Rhai: largest array (elements, nested arrays counted).
    pub array_len: usize,
    /// Rhai: largest object map (properties).
    pub map_len: usize,
    /// Rhai: variables in scope.
    pub variables: usize,
    /// Rhai: function definitions.
    pub functions: usize,
    /// Python: processes/threads the sandbox UID may own (`RLIMIT_NPROC`).
    pub processes: u64,
    /// Python: open file descriptors (`RLIMIT_NOFILE`).
    pub open_files: u64,
    /// Python: largest file the program may write (`RLIMIT_FSIZE`).
    pub file_bytes: u64,
    /// Python: size of the scratch tmpfs mounted at `/tmp` (0 = none).
    pub tmp_bytes: u64,
    /// Seed for the program's own randomness (Python's `random` module is
    /// seeded with it before the program loads; hash randomisation is off),
    /// so reruns with the same seed are identical. Rhai has no RNG.
    pub seed: u64,
    /// Python interpreter settings.
    pub python: PythonOptions,
    /// Test-only switches that disable jail layers (feature `test-hooks`).
    #[cfg(feature = "test-hooks")]
    pub hooks: TestHooks,
}

/// Jail layers that the adversarial suite switches off, one at a time, to
/// prove that each of its tests fails without the layer. Only compiled with
/// the `test-hooks` feature.
#[cfg(feature = "test-hooks")]
#[derive(Debug, Clone, Default, PartialEq, Eq)]
pub struct TestHooks {
    /// Install no seccomp filter (neither stage).
    pub no_seccomp: bool,
    /// Install only the wide loader filter, not the tight stage 2.
    pub no_stage2: bool,
    /// Set no rlimits.
    pub no_rlimits: bool,
    /// Host does not check CPU time (only wall clock).
    pub no_cpu_accounting: bool,
    /// Rhai: do not check the memory budget.
    pub no_rhai_memory: bool,
}

impl Default for Limits {
    fn default() -> Self {
        Self {
            source_bytes: 16 * 1024,
            call_cpu: Duration::from_millis(500),
            total_cpu: Duration::from_secs(5),
            call_wall: Duration::from_secs(2),
            total_wall: Duration::from_secs(15),
            memory_bytes: 256 << 20,
            output_bytes: 16 * 1024,
            action_bytes: 64,
            ops_per_call: 5_000_000,
            ops_total: 100_000_000,
            call_depth: 32,
            expr_depth: (64, 32),
            string_bytes: 16 * 1024,
            array_len: 10_000,
            map_len: 1_000,
            variables: 512,
            functions: 64,
            processes: 1,
            open_files: 32,
            file_bytes: 1 << 20,
            tmp_bytes: 1 << 20,
            seed: 0,
            python: PythonOptions::default(),
            #[cfg(feature = "test-hooks")]
            hooks: TestHooks::default(),
        }
    }
}

/// Resources a session has used so far.
#[derive(Debug, Clone, Copy, Default, PartialEq, Eq)]
pub struct Usage {
    /// Calls answered.
    pub calls: u64,
    /// CPU time (Python: kernel-measured; Rhai: wall time spent in calls).
    pub cpu: Duration,
    /// Rhai operations executed (0 for Python).
    pub ops: u64,
    /// Bytes of output captured (including bytes dropped after the cap).
    pub output_bytes: u64,
}

/// A started program: call its entry function once per move.
///
/// After any non-`Ok` verdict the session is finished: the child (if any) is
/// killed and every further call returns the same verdict.
pub trait Session: Send {
    /// Calls the entry function with fresh copies of `args` and returns the
    /// action it chose, as text: a string is returned as is, an integer in
    /// decimal, a list of integers space-separated. Anything else is an
    /// [`VerdictKind::InvalidAction`]. The host must still parse the text
    /// strictly.
    fn call(&mut self, args: &[serde_json::Value]) -> Result<String, Verdict>;
    /// Resources used so far.
    fn usage(&self) -> Usage;
    /// Captured output (`print`, stdout and stderr), capped at
    /// [`Limits::output_bytes`]. A log for humans, never a result.
    fn output(&self) -> String;
}

/// Compiles/starts `source` and prepares to call its function `entry`.
///
/// The source is rejected ([`StartError::Rejected`]) when it is too long, does
/// not compile, fails the static check (Python), lacks `entry`, or misbehaves
/// while loading. For Python this spawns the jailed child, which lives until
/// the session is dropped.
pub fn start(language: Language, source: &str, entry: &str, limits: &Limits) -> Result<Box<dyn Session>, StartError> {
    if source.len() > limits.source_bytes {
        return Err(Verdict::new(
            VerdictKind::CompileError,
            format!("program is {} bytes; the limit is {}", source.len(), limits.source_bytes),
        )
        .into());
    }
    match language {
        Language::Rhai => Ok(Box::new(rhai_backend::RhaiSession::start(source, entry, limits)?)),
        Language::Python => {
            if limits.python.static_check {
                if let Err(findings) = python::static_check(source, &limits.python.allowed_modules) {
                    return Err(Verdict::new(VerdictKind::CompileError, findings.summary()).into());
                }
            }
            Ok(Box::new(jail::PythonSession::start(source, entry, limits)?))
        }
    }
}

/// Converts an action text candidate (already a string) into the canonical
/// form, enforcing the length cap.
pub(crate) fn check_action_text(text: String, limits: &Limits) -> Result<String, Verdict> {
    if text.len() > limits.action_bytes {
        return Err(Verdict::new(
            VerdictKind::InvalidAction,
            format!("action is {} bytes; the limit is {}", text.len(), limits.action_bytes),
        ));
    }
    Ok(text)
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn reasons_are_short() {
        let v = Verdict::new(VerdictKind::RuntimeError, "x".repeat(1000));
        assert!(v.reason.chars().count() <= 200);
        assert_eq!(v.to_string().split(':').next(), Some("runtime_error"));
    }

    #[test]
    fn languages_parse() {
        assert_eq!(Language::parse("Python3"), Some(Language::Python));
        assert_eq!(Language::parse("rhai"), Some(Language::Rhai));
        assert_eq!(Language::parse("lua"), None);
    }

    #[test]
    fn oversized_source_is_rejected() {
        let l = Limits { source_bytes: 10, ..Limits::default() };
        match start(Language::Rhai, "fn strategy(b) { \"left\" }", "strategy", &l) {
            Err(StartError::Rejected(v)) => assert_eq!(v.kind, VerdictKind::CompileError),
            _ => panic!("expected rejection"),
        }
    }
}
