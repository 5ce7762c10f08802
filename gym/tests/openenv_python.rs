//! Compatibility with OpenEnv's real released Python clients:
//! `openenv-core==0.3.0` and `openenv==0.10.0`, each in its own virtual
//! environment (created here on first run under the cargo target dir),
//! play full episodes of every registered env (plus the test env) against
//! in-process `gym serve` servers with `GenericEnvClient` (sync and async),
//! and `openenv validate --url` must pass for each server.
//!
//! Needs `python3` (≥ 3.10) with `venv` and access to PyPI on first run.
//! Never skipped: a missing Python or a failed `pip install` fails the test.
//! `OPENENV_VENV_DIR` overrides where the venvs live.

mod common;

use std::path::{Path, PathBuf};
use std::process::Command;

use common::*;
use serve::ServerConfig;

fn venv_root() -> PathBuf {
    if let Ok(d) = std::env::var("OPENENV_VENV_DIR") {
        return PathBuf::from(d);
    }
    match std::env::var("CARGO_TARGET_DIR") {
        Ok(d) => PathBuf::from(d),
        Err(_) => Path::new(env!("CARGO_MANIFEST_DIR")).join("../target"),
    }
}

fn run(cmd: &mut Command) -> String {
    let out = cmd.output().unwrap_or_else(|e| panic!("cannot run {cmd:?}: {e}"));
    let text = format!("{}{}", String::from_utf8_lossy(&out.stdout), String::from_utf8_lossy(&out.stderr));
    assert!(out.status.success(), "{cmd:?} failed ({}):\n{text}", out.status);
    text
}

/// A venv with `package==version` installed (reused when already there).
fn venv(name: &str, package: &str, version: &str) -> PathBuf {
    let dir = venv_root().join(name);
    let py = dir.join("bin/python");
    let have = Command::new(&py)
        .args(["-c", &format!("import importlib.metadata as m; print(m.version('{package}'))")])
        .output()
        .ok()
        .filter(|o| o.status.success())
        .map(|o| String::from_utf8_lossy(&o.stdout).trim().to_string());
    if have.as_deref() == Some(version) {
        return dir;
    }
    let _ = std::fs::remove_dir_all(&dir);
    std::fs::create_dir_all(venv_root()).expect("venv root");
    run(Command::new("python3").args(["-m", "venv"]).arg(&dir));
    run(Command::new(dir.join("bin/pip")).args([
        "install",
        "--quiet",
        "--disable-pip-version-check",
        &format!("{package}=={version}"),
    ]));
    dir
}

fn check_clients(venv_name: &str, package: &str, version: &str) {
    let dir = venv(venv_name, package, version);
    let rt = tokio::runtime::Builder::new_multi_thread().worker_threads(2).enable_all().build().expect("runtime");
    let mut servers = Vec::new();
    rt.block_on(async {
        servers.push(start(&[], ServerConfig::default()).await);
        // Every env `gym serve` offers: the built-in envs and `echo`.
        for id in envs::Registry::builtin().ids() {
            servers.push(start_with(envs::Registry::builtin(), &id, &[], ServerConfig::default()).await);
        }
    });
    let pairs: Vec<String> = servers.iter().map(|s| format!("{}={}", s.svc.env_id(), s.url())).collect();
    let script = Path::new(env!("CARGO_MANIFEST_DIR")).join("../scripts/openenv_clients.py");
    let out =
        run(Command::new(dir.join("bin/python")).arg(&script).args(&pairs).env("NO_PROXY", "127.0.0.1,localhost"));
    eprintln!("{out}");
    assert!(out.contains(&format!("all {} envs OK", pairs.len())), "{out}");
    for s in &servers {
        // Through the venv's python, not the script's shebang, so a moved venv still works.
        let out = run(Command::new(dir.join("bin/python")).arg(dir.join("bin/openenv")).args([
            "validate",
            "--json",
            "--url",
            &s.url(),
        ]));
        let v: serde_json::Value = serde_json::from_str(out.trim()).unwrap_or(serde_json::Value::Null);
        assert_eq!(v["passed"], true, "openenv validate for {}:\n{out}", s.url());
    }
    for mut s in servers {
        s.stop();
    }
}

#[test]
fn openenv_core_0_3_0_generic_client() {
    check_clients("openenv-venv-core", "openenv-core", "0.3.0");
}

#[test]
fn openenv_0_10_0_generic_client() {
    check_clients("openenv-venv-openenv", "openenv", "0.10.0");
}
