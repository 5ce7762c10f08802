//! The server benchmark: OpenEnv's scaling-study method (N concurrent
//! WebSocket sessions, each connect → reset → step(s) → close) against any
//! OpenEnv server, with per-phase latency percentiles, sessions/s, the
//! largest concurrency with ≥ 95% success, and server memory per session.

use std::path::PathBuf;
use std::sync::atomic::{AtomicBool, AtomicU64, Ordering};
use std::sync::Arc;
use std::time::{Duration, Instant};

use anyhow::Context;
use futures_util::{SinkExt, StreamExt};
use rand::{Rng, SeedableRng};
use serde::{Deserialize, Serialize};
use serde_json::{json, Value};
use tokio_tungstenite::tungstenite::protocol::WebSocketConfig;
use tokio_tungstenite::tungstenite::Message;

use super::stats::percentile;

/// What one session does.
#[derive(Debug, Clone, Copy, PartialEq, Eq, clap::ValueEnum, Serialize, Deserialize)]
#[serde(rename_all = "kebab-case")]
pub enum EpisodeMode {
    /// Play each episode to `done` (random legal actions, else `--message`).
    Full,
    /// One step, as OpenEnv's scaling study.
    OneStep,
}

/// Arguments of `gym bench server`.
#[derive(Debug, Clone, clap::Args)]
pub struct ServerBenchArgs {
    /// The server's base URL (`http://127.0.0.1:8000`; `/ws` is appended).
    #[arg(long)]
    pub url: String,
    /// Concurrency levels to try, comma-separated.
    #[arg(long, default_value = "1,16,64,256,1024")]
    pub sessions: String,
    /// Session workload.
    #[arg(long, value_enum, default_value = "one-step")]
    pub episode: EpisodeMode,
    /// Repetitions per concurrency level.
    #[arg(long, default_value_t = 1)]
    pub reps: usize,
    /// The server's process id, to sample its memory (VmRSS) during each batch.
    #[arg(long)]
    pub server_pid: Option<u32>,
    /// Keep each session open this long after its last step (makes sessions overlap for memory figures).
    #[arg(long, default_value_t = 0)]
    pub hold_ms: u64,
    /// The reply sent when the observation lists no legal actions.
    #[arg(long, default_value = "hello")]
    pub message: String,
    /// Give up on an episode after this many steps.
    #[arg(long, default_value_t = 100_000)]
    pub max_steps: usize,
    /// Per-reply timeout in seconds (OpenEnv's client uses 60).
    #[arg(long, default_value_t = 60.0)]
    pub timeout_s: f64,
    /// Write the results as JSON here.
    #[arg(long)]
    pub out: Option<PathBuf>,
    /// A label for the report (e.g. `gym-serve` or `openenv-python`).
    #[arg(long, default_value = "server")]
    pub label: String,
    /// Client runtime threads (0 = one per core).
    #[arg(long, default_value_t = 0)]
    pub threads: usize,
}

/// One session's record.
#[derive(Debug, Clone, Default)]
struct SessionRecord {
    ok: bool,
    error: Option<String>,
    connect_ms: f64,
    reset_ms: f64,
    step_ms: Vec<f64>,
    total_ms: f64,
    start: Option<Instant>,
    end: Option<Instant>,
}

/// Latency percentiles in milliseconds.
#[derive(Debug, Clone, Default, PartialEq, Serialize, Deserialize)]
pub struct Latency {
    /// Median.
    pub p50: f64,
    /// 95th percentile.
    pub p95: f64,
    /// 99th percentile.
    pub p99: f64,
    /// Mean.
    pub mean: f64,
}

impl Latency {
    fn of(mut v: Vec<f64>) -> Self {
        v.sort_by(f64::total_cmp);
        let mean = if v.is_empty() { 0.0 } else { v.iter().sum::<f64>() / v.len() as f64 };
        Self { p50: percentile(&v, 0.5), p95: percentile(&v, 0.95), p99: percentile(&v, 0.99), mean }
    }
}

/// Results at one concurrency level (one repetition).
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
pub struct Level {
    /// Concurrent sessions.
    pub sessions: usize,
    /// Repetition index.
    pub rep: usize,
    /// Sessions that completed.
    pub successes: usize,
    /// Sessions that failed.
    pub failures: usize,
    /// successes / sessions.
    pub success_rate: f64,
    /// Batch wall time in seconds.
    pub wall_s: f64,
    /// Successful sessions per second of wall time.
    pub sessions_per_s: f64,
    /// Steps per second of wall time.
    pub steps_per_s: f64,
    /// Mean steps per successful session.
    pub mean_steps: f64,
    /// WebSocket connect latency.
    pub connect_ms: Latency,
    /// Reset latency.
    pub reset_ms: Latency,
    /// Step latency (every step of every session).
    pub step_ms: Latency,
    /// Whole-session latency.
    pub total_ms: Latency,
    /// Server VmRSS before the batch, KiB.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub server_rss_base_kib: Option<u64>,
    /// Server peak VmRSS during the batch, KiB.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub server_rss_peak_kib: Option<u64>,
    /// Server VmRSS half a second after the batch's sessions ended, KiB
    /// (whether memory is returned after load).
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub server_rss_after_kib: Option<u64>,
    /// (peak − base) / sessions, KiB.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub server_kib_per_session: Option<f64>,
    /// Server CPU time (user + system) during the batch, seconds.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub server_cpu_s: Option<f64>,
    /// Server CPU time per successful session, milliseconds.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub server_cpu_ms_per_session: Option<f64>,
    /// The most frequent errors, with counts.
    pub errors: Vec<(String, usize)>,
}

/// The server-benchmark report.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
pub struct ServerReport {
    /// The label given.
    pub label: String,
    /// The URL benchmarked.
    pub url: String,
    /// The workload.
    pub episode: EpisodeMode,
    /// The levels, in order.
    pub levels: Vec<Level>,
    /// The largest concurrency with ≥ 95% success over all repetitions.
    pub max_batch_95: Option<usize>,
    /// CPU cores of the machine the benchmark ran on.
    pub cores: usize,
}

/// Reads a process's VmRSS in KiB (Linux).
pub fn vm_rss_kib(pid: u32) -> Option<u64> {
    let s = std::fs::read_to_string(format!("/proc/{pid}/status")).ok()?;
    s.lines().find(|l| l.starts_with("VmRSS:"))?.split_whitespace().nth(1)?.parse().ok()
}

/// A process's CPU time (user + system, all threads) in seconds (Linux).
pub fn cpu_seconds(pid: u32) -> Option<f64> {
    let s = std::fs::read_to_string(format!("/proc/{pid}/stat")).ok()?;
    // Fields after the parenthesised command name; utime and stime are fields 14 and 15.
    let rest = &s[s.rfind(')')? + 2..];
    let f: Vec<&str> = rest.split_whitespace().collect();
    let ticks: f64 = f.get(11)?.parse::<f64>().ok()? + f.get(12)?.parse::<f64>().ok()?;
    // SAFETY: sysconf only reads a configuration value.
    let hz = unsafe { libc::sysconf(libc::_SC_CLK_TCK) };
    Some(ticks / if hz > 0 { hz as f64 } else { 100.0 })
}

/// The `/ws` URL for a base URL, as OpenEnv's client derives it.
pub fn ws_url(base: &str) -> String {
    let b = base.trim_end_matches('/');
    let b = if let Some(r) = b.strip_prefix("http://") {
        format!("ws://{r}")
    } else if let Some(r) = b.strip_prefix("https://") {
        format!("wss://{r}")
    } else if b.starts_with("ws://") || b.starts_with("wss://") {
        b.to_string()
    } else {
        format!("ws://{b}")
    };
    if b.ends_with("/ws") {
        b
    } else {
        format!("{b}/ws")
    }
}

type Ws = tokio_tungstenite::WebSocketStream<tokio_tungstenite::MaybeTlsStream<tokio::net::TcpStream>>;

async fn request(ws: &mut Ws, msg: &Value, timeout: Duration) -> Result<Value, String> {
    ws.send(Message::text(msg.to_string())).await.map_err(|e| format!("send: {e}"))?;
    loop {
        let m = tokio::time::timeout(timeout, ws.next()).await.map_err(|_| "timeout".to_string())?;
        match m {
            Some(Ok(Message::Text(t))) => {
                let v: Value = serde_json::from_str(t.as_str()).map_err(|e| format!("bad reply: {e}"))?;
                if v["type"] == "error" {
                    return Err(v["data"]["code"].as_str().unwrap_or("error").to_string());
                }
                return Ok(v);
            }
            Some(Ok(Message::Ping(_) | Message::Pong(_) | Message::Frame(_))) => continue,
            Some(Ok(Message::Binary(_))) => return Err("binary reply".into()),
            Some(Ok(Message::Close(_))) | None => return Err("closed".into()),
            Some(Err(e)) => return Err(format!("recv: {e}")),
        }
    }
}

fn choose(obs: &Value, message: &str, rng: &mut impl Rng) -> Value {
    if let Some(legal) = obs["legal_actions"].as_array().filter(|a| !a.is_empty()) {
        let a = &legal[rng.gen_range(0..legal.len())];
        return match a {
            Value::Number(n) => json!({ "action_id": n }),
            Value::String(s) => json!({ "message": s }),
            other => json!({ "message": other.to_string() }),
        };
    }
    json!({ "message": message })
}

async fn session(url: String, a: Arc<ServerBenchArgs>, idx: u64, start: Arc<tokio::sync::Barrier>) -> SessionRecord {
    let mut rec = SessionRecord::default();
    let timeout = Duration::from_secs_f64(a.timeout_s.max(0.001));
    start.wait().await;
    let t0 = Instant::now();
    rec.start = Some(t0);
    let mut cfg = WebSocketConfig::default();
    cfg.read_buffer_size = 4 << 10;
    cfg.max_message_size = Some(100 << 20);
    let conn = tokio::time::timeout(
        Duration::from_secs(10),
        tokio_tungstenite::connect_async_with_config(&url, Some(cfg), true),
    )
    .await;
    let mut ws = match conn {
        Ok(Ok((ws, _))) => ws,
        Ok(Err(e)) => {
            rec.error = Some(format!("connect: {e}"));
            rec.end = Some(Instant::now());
            return rec;
        }
        Err(_) => {
            rec.error = Some("connect: timeout".into());
            rec.end = Some(Instant::now());
            return rec;
        }
    };
    rec.connect_ms = t0.elapsed().as_secs_f64() * 1e3;
    let mut rng = rand_chacha::ChaCha8Rng::seed_from_u64(idx);
    let result: Result<(), String> = async {
        let t = Instant::now();
        let mut r = request(&mut ws, &json!({"type": "reset", "data": {"seed": idx}}), timeout).await?;
        rec.reset_ms = t.elapsed().as_secs_f64() * 1e3;
        loop {
            let action = choose(&r["data"]["observation"], &a.message, &mut rng);
            let t = Instant::now();
            r = request(&mut ws, &json!({"type": "step", "data": action}), timeout).await?;
            rec.step_ms.push(t.elapsed().as_secs_f64() * 1e3);
            if a.episode == EpisodeMode::OneStep || r["data"]["done"] == true {
                break;
            }
            if rec.step_ms.len() >= a.max_steps {
                return Err(format!("episode not done after {} steps", a.max_steps));
            }
        }
        Ok(())
    }
    .await;
    if a.hold_ms > 0 {
        tokio::time::sleep(Duration::from_millis(a.hold_ms)).await;
    }
    let _ = ws.send(Message::text(r#"{"type":"close"}"#)).await;
    let _ = ws.close(None).await;
    rec.total_ms = t0.elapsed().as_secs_f64() * 1e3;
    rec.end = Some(Instant::now());
    match result {
        Ok(()) => rec.ok = true,
        Err(e) => rec.error = Some(e),
    }
    rec
}

async fn level(a: Arc<ServerBenchArgs>, n: usize, rep: usize) -> Level {
    let url = ws_url(&a.url);
    let base = a.server_pid.and_then(vm_rss_kib);
    let cpu0 = a.server_pid.and_then(cpu_seconds);
    let peak = Arc::new(AtomicU64::new(base.unwrap_or(0)));
    let stop = Arc::new(AtomicBool::new(false));
    let sampler = a.server_pid.map(|pid| {
        let (peak, stop) = (peak.clone(), stop.clone());
        tokio::spawn(async move {
            while !stop.load(Ordering::Relaxed) {
                if let Some(r) = vm_rss_kib(pid) {
                    peak.fetch_max(r, Ordering::Relaxed);
                }
                tokio::time::sleep(Duration::from_millis(5)).await;
            }
        })
    });
    let barrier = Arc::new(tokio::sync::Barrier::new(n + 1));
    let mut set = tokio::task::JoinSet::new();
    for i in 0..n {
        set.spawn(session(url.clone(), a.clone(), (rep * 1_000_000 + i) as u64, barrier.clone()));
    }
    barrier.wait().await;
    let t0 = Instant::now();
    let mut recs = Vec::with_capacity(n);
    while let Some(r) = set.join_next().await {
        recs.push(r.unwrap_or_else(|e| SessionRecord { error: Some(format!("task: {e}")), ..Default::default() }));
    }
    // Wall time: first session start to last session end.
    let first = recs.iter().filter_map(|r| r.start).min().unwrap_or(t0);
    let last = recs.iter().filter_map(|r| r.end).max().unwrap_or_else(Instant::now);
    let wall = last.saturating_duration_since(first).as_secs_f64().max(1e-9);
    let cpu = match (cpu0, a.server_pid.and_then(cpu_seconds)) {
        (Some(a0), Some(a1)) => Some((a1 - a0).max(0.0)),
        _ => None,
    };
    stop.store(true, Ordering::Relaxed);
    if let Some(s) = sampler {
        let _ = s.await;
    }
    let after = match a.server_pid {
        Some(pid) => {
            tokio::time::sleep(Duration::from_millis(500)).await;
            vm_rss_kib(pid)
        }
        None => None,
    };
    let ok: Vec<&SessionRecord> = recs.iter().filter(|r| r.ok).collect();
    let steps: usize = ok.iter().map(|r| r.step_ms.len()).sum();
    let mut errors: Vec<(String, usize)> = Vec::new();
    for r in recs.iter().filter_map(|r| r.error.as_ref()) {
        let key: String = r.chars().take(80).collect();
        match errors.iter_mut().find(|(k, _)| *k == key) {
            Some(e) => e.1 += 1,
            None => errors.push((key, 1)),
        }
    }
    errors.sort_by_key(|e| std::cmp::Reverse(e.1));
    errors.truncate(5);
    let peak_v = peak.load(Ordering::Relaxed);
    Level {
        sessions: n,
        rep,
        successes: ok.len(),
        failures: n - ok.len(),
        success_rate: ok.len() as f64 / n.max(1) as f64,
        wall_s: wall,
        sessions_per_s: ok.len() as f64 / wall,
        steps_per_s: steps as f64 / wall,
        mean_steps: steps as f64 / ok.len().max(1) as f64,
        connect_ms: Latency::of(ok.iter().map(|r| r.connect_ms).collect()),
        reset_ms: Latency::of(ok.iter().map(|r| r.reset_ms).collect()),
        step_ms: Latency::of(ok.iter().flat_map(|r| r.step_ms.iter().copied()).collect()),
        total_ms: Latency::of(ok.iter().map(|r| r.total_ms).collect()),
        server_rss_base_kib: base,
        server_rss_peak_kib: base.map(|_| peak_v),
        server_rss_after_kib: after,
        server_kib_per_session: base.map(|b| peak_v.saturating_sub(b) as f64 / n.max(1) as f64),
        server_cpu_s: cpu,
        server_cpu_ms_per_session: cpu.map(|c| 1e3 * c / ok.len().max(1) as f64),
        errors,
    }
}

/// Runs the benchmark.
pub async fn run_async(a: ServerBenchArgs) -> anyhow::Result<ServerReport> {
    let levels: Vec<usize> = a
        .sessions
        .split(',')
        .map(|s| s.trim().parse::<usize>().with_context(|| format!("--sessions: `{s}` is not a number")))
        .collect::<Result<_, _>>()?;
    anyhow::ensure!(levels.iter().all(|&n| n > 0), "--sessions values must be at least 1");
    ::serve::raise_fd_limit();
    let a = Arc::new(a);
    let mut out = Vec::new();
    for &n in &levels {
        for rep in 0..a.reps.max(1) {
            let l = level(a.clone(), n, rep).await;
            eprintln!(
                "{}: {n} sessions (rep {rep}): {:.1}% ok, {:.0} sessions/s, step p50 {:.3} ms p99 {:.3} ms",
                a.label,
                100.0 * l.success_rate,
                l.sessions_per_s,
                l.step_ms.p50,
                l.step_ms.p99
            );
            out.push(l);
            // Let the server reap closed sessions before the next batch.
            tokio::time::sleep(Duration::from_millis(200)).await;
        }
    }
    let max_batch_95 = levels
        .iter()
        .copied()
        .filter(|&n| {
            let (ok, all) =
                out.iter().filter(|l| l.sessions == n).fold((0, 0), |(o, t), l| (o + l.successes, t + l.sessions));
            all > 0 && ok as f64 >= 0.95 * all as f64
        })
        .max();
    Ok(ServerReport {
        label: a.label.clone(),
        url: a.url.clone(),
        episode: a.episode,
        levels: out,
        max_batch_95,
        cores: std::thread::available_parallelism().map_or(1, |n| n.get()),
    })
}

/// The report as a Markdown table.
pub fn markdown(r: &ServerReport) -> String {
    let mut s = format!(
        "## {} ({}, {} episodes, {} cores)\n\n| sessions | ok | sessions/s | steps/s | connect p50/p95/p99 ms | reset p50/p95/p99 ms | step p50/p95/p99 ms | server KiB/session | server RSS before / peak / after MiB | server CPU ms/session |\n|---:|---:|---:|---:|---|---|---|---:|---|---:|\n",
        r.label,
        r.url,
        match r.episode {
            EpisodeMode::Full => "full",
            EpisodeMode::OneStep => "one-step",
        },
        r.cores
    );
    for l in &r.levels {
        let f = |x: &Latency| format!("{:.2} / {:.2} / {:.2}", x.p50, x.p95, x.p99);
        s.push_str(&format!(
            "| {} | {:.1}% | {:.0} | {:.0} | {} | {} | {} | {} | {} | {} |\n",
            l.sessions,
            100.0 * l.success_rate,
            l.sessions_per_s,
            l.steps_per_s,
            f(&l.connect_ms),
            f(&l.reset_ms),
            f(&l.step_ms),
            l.server_kib_per_session.map_or("–".to_string(), |k| format!("{k:.1}")),
            match (l.server_rss_base_kib, l.server_rss_peak_kib, l.server_rss_after_kib) {
                (Some(b), Some(p), Some(a)) =>
                    format!("{:.1} / {:.1} / {:.1}", b as f64 / 1024.0, p as f64 / 1024.0, a as f64 / 1024.0),
                _ => "–".to_string(),
            },
            l.server_cpu_ms_per_session.map_or("–".to_string(), |k| format!("{k:.3}")),
        ));
    }
    s.push_str(&format!(
        "\nLargest concurrency with ≥ 95% success: {}\n",
        r.max_batch_95.map_or("none".to_string(), |n| n.to_string())
    ));
    s
}

/// `gym bench server`.
pub fn run(a: ServerBenchArgs) -> anyhow::Result<()> {
    let mut rt = tokio::runtime::Builder::new_multi_thread();
    rt.enable_all();
    if a.threads > 0 {
        rt.worker_threads(a.threads);
    }
    let rt = rt.build().context("cannot start the tokio runtime")?;
    let out = a.out.clone();
    let report = rt.block_on(run_async(a))?;
    print!("{}", markdown(&report));
    if let Some(p) = out {
        std::fs::write(&p, serde_json::to_string_pretty(&report)? + "\n")
            .with_context(|| format!("cannot write {}", p.display()))?;
        println!("written: {}", p.display());
    }
    Ok(())
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn ws_urls_as_openenv_derives_them() {
        assert_eq!(ws_url("http://127.0.0.1:8000"), "ws://127.0.0.1:8000/ws");
        assert_eq!(ws_url("http://h/p/"), "ws://h/p/ws");
        assert_eq!(ws_url("https://h"), "wss://h/ws");
        assert_eq!(ws_url("h:1"), "ws://h:1/ws");
        assert_eq!(ws_url("ws://h/ws"), "ws://h/ws");
    }

    #[test]
    fn actions_from_observations() {
        let mut rng = rand_chacha::ChaCha8Rng::seed_from_u64(0);
        assert_eq!(choose(&json!({"legal_actions": [2]}), "m", &mut rng), json!({"action_id": 2}));
        assert_eq!(choose(&json!({"legal_actions": ["up"]}), "m", &mut rng), json!({"message": "up"}));
        assert_eq!(choose(&json!({}), "m", &mut rng), json!({"message": "m"}));
    }
}
