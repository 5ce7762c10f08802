//! Shared harness for the adversarial suite: canary files with a secret in a
//! temp dir outside the jail, a TCP listener on loopback, survivor checks.
#![allow(dead_code)]

use std::io::ErrorKind;
use std::net::TcpListener;
use std::path::{Path, PathBuf};
use std::sync::{Mutex, MutexGuard};
use std::time::Duration;

use sandbox::{start, Language, Limits, Session, StartError, Verdict, VerdictKind};
use serde_json::{json, Value};

/// Python attacks run one at a time so survivor checks see only their own jail.
static SERIAL: Mutex<()> = Mutex::new(());

/// Takes the suite-wide lock (poison-tolerant).
pub fn serial() -> MutexGuard<'static, ()> {
    SERIAL.lock().unwrap_or_else(|e| e.into_inner())
}

/// The world outside the jail that attacks try to reach.
pub struct World {
    /// Temp dir holding the canary.
    pub dir: tempfile::TempDir,
    /// The canary file.
    pub canary: PathBuf,
    /// Its secret content.
    pub secret: String,
    /// A listener nobody should reach.
    pub listener: TcpListener,
}

impl World {
    /// Creates the canary and the listener.
    pub fn new() -> Self {
        let dir = tempfile::Builder::new().prefix("gym-canary").tempdir().unwrap();
        let secret = format!("CANARY-SECRET-{}-{:x}", std::process::id(), dir.path().as_os_str().len() * 7919);
        let canary = dir.path().join("canary.txt");
        std::fs::write(&canary, &secret).unwrap();
        let listener = TcpListener::bind("127.0.0.1:0").unwrap();
        listener.set_nonblocking(true).unwrap();
        World { dir, canary, secret, listener }
    }

    /// What the attack is told about the world (everything it might want).
    pub fn info(&self) -> Value {
        json!({
            "canary": self.canary.to_string_lossy(),
            "canary_dir": self.dir.path().to_string_lossy(),
            "port": self.listener.local_addr().unwrap().port(),
            "host_pid": std::process::id(),
        })
    }

    /// Asserts the canary is untouched, nothing new appeared next to it, the
    /// secret is in none of `texts`, and no connection reached the listener.
    pub fn check(&self, texts: &[&str]) {
        assert_eq!(std::fs::read_to_string(&self.canary).unwrap(), self.secret, "canary modified");
        let entries: Vec<_> = std::fs::read_dir(self.dir.path()).unwrap().map(|e| e.unwrap().file_name()).collect();
        assert_eq!(entries.len(), 1, "files appeared next to the canary: {entries:?}");
        for t in texts {
            assert!(!t.contains(&self.secret), "secret leaked: {t}");
        }
        match self.listener.accept() {
            Err(e) if e.kind() == ErrorKind::WouldBlock => {}
            other => panic!("a connection reached the loopback listener: {other:?}"),
        }
        assert!(!Path::new("/usr/pwned").exists());
    }
}

/// Processes that belong to a jail: in a nested pid namespace and owned by
/// the jail's outside UID.
pub fn jailed_processes() -> Vec<u32> {
    // SAFETY: geteuid has no preconditions.
    let euid = unsafe { libc::geteuid() };
    let outside = if euid == 0 { 65534 } else { euid };
    let mut found = Vec::new();
    for e in std::fs::read_dir("/proc").unwrap().flatten() {
        let Ok(pid) = e.file_name().to_string_lossy().parse::<u32>() else { continue };
        let Ok(status) = std::fs::read_to_string(e.path().join("status")) else { continue };
        let uid = status.lines().find(|l| l.starts_with("Uid:")).and_then(|l| l.split_whitespace().nth(1));
        let nspid = status.lines().find(|l| l.starts_with("NSpid:")).map(|l| l.split_whitespace().count() - 1);
        if uid == Some(&outside.to_string()) && nspid.unwrap_or(1) >= 2 {
            found.push(pid);
        }
    }
    found
}

/// Limits for attacks: short budgets so the suite stays fast, static check off
/// (the jail must hold alone).
pub fn attack_limits() -> Limits {
    let mut l = Limits {
        call_cpu: Duration::from_millis(400),
        total_cpu: Duration::from_secs(2),
        call_wall: Duration::from_millis(1500),
        total_wall: Duration::from_secs(8),
        ..Limits::default()
    };
    l.python.static_check = false;
    l
}

/// The result of running an attack: the start error or the first call's result.
#[derive(Debug)]
pub struct Outcome {
    /// `Err` when the program never started.
    pub result: Result<String, Verdict>,
    /// Whether the program got past start.
    pub started: bool,
    /// Captured output.
    pub output: String,
    /// Host pid of the jail (Python).
    pub pid: Option<i32>,
}

impl Outcome {
    /// The verdict kind (`Ok` for an answer).
    pub fn kind(&self) -> VerdictKind {
        match &self.result {
            Ok(_) => VerdictKind::Ok,
            Err(v) => v.kind,
        }
    }
    /// All text the host received from the program (for leak checks).
    pub fn texts(&self) -> Vec<&str> {
        let r = match &self.result {
            Ok(s) => s.as_str(),
            Err(v) => v.reason.as_str(),
        };
        vec![r, self.output.as_str()]
    }
}

/// Reads an attack program from `tests/attacks/`.
pub fn program(file: &str) -> String {
    let path = Path::new(env!("CARGO_MANIFEST_DIR")).join("tests/attacks").join(file);
    std::fs::read_to_string(&path).unwrap_or_else(|e| panic!("{}: {e}", path.display()))
}

/// Runs `file` once: start, one call with `[board, info]`, then drop.
pub fn run_with(file: &str, limits: &Limits, world: &World, board: &Value) -> Outcome {
    let lang = if file.ends_with(".py") { Language::Python } else { Language::Rhai };
    let src = program(file);
    match start(lang, &src, "strategy", limits) {
        Err(StartError::Rejected(v)) => Outcome { result: Err(v), started: false, output: String::new(), pid: None },
        Err(StartError::Sandbox(e)) => panic!("sandbox unavailable on this host: {e}"),
        Ok(mut s) => {
            let result = s.call(&[board.clone(), world.info()]);
            let output = s.output();
            Outcome { result, started: true, output, pid: None }
        }
    }
}

/// Runs an attack with the standard board and checks the world afterwards:
/// canary untouched, no secret in any text, no connection, no survivors.
pub fn attack(file: &str, limits: &Limits) -> Outcome {
    let _guard = if file.ends_with(".py") { Some(serial()) } else { None };
    let world = World::new();
    let board = json!([[2, 0, 0, 2], [0, 4, 0, 0], [0, 0, 8, 0], [2, 0, 0, 16]]);
    let out = run_with(file, limits, &world, &board);
    world.check(&out.texts());
    if file.ends_with(".py") {
        // Give the kernel a moment to tear the namespace down.
        let mut left = jailed_processes();
        for _ in 0..50 {
            if left.is_empty() {
                break;
            }
            std::thread::sleep(Duration::from_millis(10));
            left = jailed_processes();
        }
        assert!(left.is_empty(), "{file}: jailed processes survived: {left:?}");
    }
    out
}

/// Asserts the static check (switched off during the run) would also have
/// rejected the program — or not.
pub fn assert_static(file: &str, rejected: bool) {
    let l = Limits::default();
    let r = sandbox::python::static_check(&program(file), &l.python.allowed_modules);
    assert_eq!(r.is_err(), rejected, "{file}: static check result {r:?}");
}

/// Starts a session for a source (helper for multi-call tests).
pub fn session(lang: Language, src: &str, limits: &Limits) -> Box<dyn Session> {
    match start(lang, src, "strategy", limits) {
        Ok(s) => s,
        Err(e) => panic!("start failed: {e}"),
    }
}
