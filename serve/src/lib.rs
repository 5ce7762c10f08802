//! # serve — an OpenEnv-compatible environment server (`gym serve`)
//!
//! One env type per server; one env instance per WebSocket connection
//! (`/ws`, OpenEnv's lock-step protocol), plus OpenEnv's HTTP endpoints
//! (`/health`, `/metadata`, `/schema`, `/openapi.json`, `/mcp`, and the
//! stateless `/reset`, `/step`, `/state`). Steps run on tokio's blocking
//! pool, so a long (sandboxed) step never stalls the runtime and the socket
//! keeps answering pings meanwhile.
//!
//! Programmatic use (tests, embedding):
//! ```no_run
//! # async fn demo() -> std::io::Result<()> {
//! use serve::{EnvService, ServerConfig};
//! let svc = EnvService::new(envs::Registry::builtin(), "2048", &[] as &[String], ServerConfig::default())
//!     .expect("valid env");
//! let listener = tokio::net::TcpListener::bind("127.0.0.1:0").await?;
//! serve::serve_on(listener, svc, std::future::pending()).await
//! # }
//! ```

mod http;
pub mod wire;
mod ws;

use std::future::Future;
use std::sync::atomic::{AtomicU64, AtomicUsize, Ordering};
use std::sync::Arc;
use std::time::Duration;

use envs::{EnvMaker, EnvSpec, Options, Registry, RegistryError};
use tokio::sync::{watch, Notify};

pub use wire::ErrorCode;

/// Default session limit when neither `--max-sessions` nor
/// `MAX_CONCURRENT_ENVS` is given.
pub const DEFAULT_MAX_SESSIONS: usize = 2048;

/// Server limits.
#[derive(Debug, Clone)]
pub struct ServerConfig {
    /// Most concurrent WebSocket sessions.
    pub max_sessions: usize,
    /// Sessions idle (no request) this long are closed; `None` = never.
    pub idle_timeout: Option<Duration>,
    /// Largest accepted WebSocket message / HTTP body in bytes.
    pub max_message_bytes: usize,
    /// How long shutdown waits for in-flight steps.
    pub shutdown_grace: Duration,
    /// Run a reset/step on the async worker itself (no hand-off to the
    /// blocking pool) while this env's recent ones took less than this on
    /// average; zero sends every call to the blocking pool.
    pub inline_below: Duration,
}

impl Default for ServerConfig {
    fn default() -> Self {
        Self {
            max_sessions: DEFAULT_MAX_SESSIONS,
            idle_timeout: Some(Duration::from_secs(900)),
            max_message_bytes: 32 << 20,
            shutdown_grace: Duration::from_secs(30),
            inline_below: Duration::from_micros(100),
        }
    }
}

/// One served env: its spec, maker and live-session accounting.
pub struct EnvService {
    registry: Registry,
    env_id: String,
    spec: EnvSpec,
    base_pairs: Vec<(String, String)>,
    options: Options,
    maker: EnvMaker,
    config: ServerConfig,
    active: AtomicUsize,
    total: AtomicU64,
    idle: Notify,
    shutdown: watch::Sender<bool>,
    /// Moving averages of reset, step and env-construction durations in ns (`u64::MAX` = none yet).
    ewma_ns: [AtomicU64; 3],
}

/// Which call a duration belongs to.
#[derive(Debug, Clone, Copy)]
pub(crate) enum JobKind {
    Reset = 0,
    Step = 1,
    Make = 2,
}

/// Holds one session slot; releases it when dropped.
pub(crate) struct SessionGuard {
    svc: Arc<EnvService>,
}

impl Drop for SessionGuard {
    fn drop(&mut self) {
        if self.svc.active.fetch_sub(1, Ordering::AcqRel) == 1 {
            self.svc.idle.notify_waiters();
        }
    }
}

impl EnvService {
    /// A service for env `env_id` of `registry` with `name=value` options.
    pub fn new<S: AsRef<str>>(
        registry: Registry,
        env_id: &str,
        opts: &[S],
        config: ServerConfig,
    ) -> Result<Arc<Self>, RegistryError> {
        let options = registry.options(env_id, opts)?;
        let maker = registry.maker(env_id, &options)?;
        let spec = registry.spec(env_id)?.clone();
        let mut base_pairs = Vec::new();
        for p in opts {
            if let Some((k, v)) = p.as_ref().split_once('=') {
                base_pairs.push((k.trim().to_string(), v.trim().to_string()));
            }
        }
        let (shutdown, _) = watch::channel(false);
        Ok(Arc::new(Self {
            registry,
            env_id: env_id.to_string(),
            spec,
            base_pairs,
            options,
            maker,
            config,
            active: AtomicUsize::new(0),
            total: AtomicU64::new(0),
            idle: Notify::new(),
            shutdown,
            ewma_ns: [AtomicU64::new(u64::MAX), AtomicU64::new(u64::MAX), AtomicU64::new(u64::MAX)],
        }))
    }

    /// The served env's id.
    pub fn env_id(&self) -> &str {
        &self.env_id
    }

    /// Live WebSocket sessions.
    pub fn active_sessions(&self) -> usize {
        self.active.load(Ordering::Acquire)
    }

    /// WebSocket sessions accepted since start.
    pub fn total_sessions(&self) -> u64 {
        self.total.load(Ordering::Relaxed)
    }

    /// The limits in force.
    pub fn config(&self) -> &ServerConfig {
        &self.config
    }

    /// The axum router with every endpoint.
    pub fn router(self: &Arc<Self>) -> axum::Router {
        http::router(self.clone())
    }

    /// Tells every session to finish its in-flight step and close.
    pub fn begin_shutdown(&self) {
        self.shutdown.send_replace(true);
    }

    /// Waits until no session is live, or `limit` passes. Returns whether all closed.
    pub async fn wait_idle(&self, limit: Duration) -> bool {
        let deadline = tokio::time::Instant::now() + limit;
        loop {
            let notified = self.idle.notified();
            if self.active_sessions() == 0 {
                return true;
            }
            if tokio::time::timeout_at(deadline, notified).await.is_err() {
                return self.active_sessions() == 0;
            }
        }
    }

    fn try_acquire(self: &Arc<Self>) -> Result<SessionGuard, usize> {
        let max = self.config.max_sessions;
        let mut cur = self.active.load(Ordering::Acquire);
        loop {
            if cur >= max || *self.shutdown.borrow() {
                return Err(cur);
            }
            match self.active.compare_exchange_weak(cur, cur + 1, Ordering::AcqRel, Ordering::Acquire) {
                Ok(_) => {
                    self.total.fetch_add(1, Ordering::Relaxed);
                    return Ok(SessionGuard { svc: self.clone() });
                }
                Err(now) => cur = now,
            }
        }
    }

    /// Whether to run this kind of call inline: only once this env's
    /// calls are known to be fast (a long sandboxed step never runs inline,
    /// and one slow call pushes the average over the threshold).
    pub(crate) fn run_inline(&self, kind: JobKind) -> bool {
        let avg = self.ewma_ns[kind as usize].load(Ordering::Relaxed);
        avg != u64::MAX && (avg as u128) < self.config.inline_below.as_nanos()
    }

    /// Folds a call's duration into the moving average (weight 1/8; a call
    /// slower than 4× the threshold resets the average to its duration).
    pub(crate) fn record_duration(&self, kind: JobKind, d: Duration) {
        let ns = d.as_nanos().min(u64::MAX as u128 - 1) as u64;
        let slot = &self.ewma_ns[kind as usize];
        let old = slot.load(Ordering::Relaxed);
        let new = if old == u64::MAX || (ns as u128) > 4 * self.config.inline_below.as_nanos() {
            ns
        } else {
            old - old / 8 + ns / 8
        };
        slot.store(new, Ordering::Relaxed);
    }

    /// The option names the env declares (clients may override them in `reset`).
    fn option_names(&self) -> Vec<&'static str> {
        self.spec.options.iter().map(|o| o.name).collect()
    }

    /// A maker for the base options overridden by `overrides`.
    fn maker_with(&self, overrides: &[(String, String)]) -> Result<EnvMaker, RegistryError> {
        if overrides.is_empty() {
            return Ok(self.maker.clone());
        }
        let mut pairs = self.base_pairs.clone();
        for (k, v) in overrides {
            pairs.retain(|(pk, _)| pk != k);
            pairs.push((k.clone(), v.clone()));
        }
        let pairs: Vec<String> = pairs.iter().map(|(k, v)| format!("{k}={v}")).collect();
        let opts = self.registry.options(&self.env_id, &pairs)?;
        self.registry.maker(&self.env_id, &opts)
    }
}

/// Serves `svc` on `listener` until `shutdown` resolves, then stops
/// accepting, lets sessions finish their in-flight steps (up to the
/// configured grace) and returns.
pub async fn serve_on(
    listener: tokio::net::TcpListener,
    svc: Arc<EnvService>,
    shutdown: impl Future<Output = ()> + Send + 'static,
) -> std::io::Result<()> {
    use axum::serve::ListenerExt;
    let app = svc.router();
    let s2 = svc.clone();
    // Lock-step request/reply: never let Nagle hold a reply back.
    let listener = listener.tap_io(|tcp| {
        let _ = tcp.set_nodelay(true);
    });
    axum::serve(listener, app)
        .with_graceful_shutdown(async move {
            shutdown.await;
            s2.begin_shutdown();
        })
        .await?;
    svc.begin_shutdown();
    svc.wait_idle(svc.config.shutdown_grace).await;
    Ok(())
}

/// Binds a listener with a deep accept backlog (bursts of thousands of
/// connects otherwise overflow the default and wait for SYN retries).
pub async fn bind(addr: &str) -> std::io::Result<tokio::net::TcpListener> {
    let mut last = std::io::Error::new(std::io::ErrorKind::InvalidInput, format!("`{addr}` resolves to nothing"));
    for a in tokio::net::lookup_host(addr).await? {
        let sock = if a.is_ipv4() { tokio::net::TcpSocket::new_v4()? } else { tokio::net::TcpSocket::new_v6()? };
        sock.set_reuseaddr(true)?;
        match sock.bind(a).and_then(|()| sock.listen(8192)) {
            Ok(l) => return Ok(l),
            Err(e) => last = e,
        }
    }
    Err(last)
}

/// Resolves on ctrl-c or SIGTERM.
pub async fn shutdown_signal() {
    let ctrl_c = async {
        let _ = tokio::signal::ctrl_c().await;
    };
    #[cfg(unix)]
    let term = async {
        match tokio::signal::unix::signal(tokio::signal::unix::SignalKind::terminate()) {
            Ok(mut s) => {
                s.recv().await;
            }
            Err(_) => std::future::pending::<()>().await,
        }
    };
    #[cfg(not(unix))]
    let term = std::future::pending::<()>();
    tokio::select! {
        _ = ctrl_c => {}
        _ = term => {}
    }
}

/// Raises the soft open-files limit to the hard limit (each session is a socket).
pub fn raise_fd_limit() {
    #[cfg(unix)]
    // SAFETY: getrlimit/setrlimit only read and write the struct we pass.
    unsafe {
        let mut r = libc::rlimit { rlim_cur: 0, rlim_max: 0 };
        if libc::getrlimit(libc::RLIMIT_NOFILE, &mut r) == 0 && r.rlim_cur < r.rlim_max {
            r.rlim_cur = r.rlim_max;
            libc::setrlimit(libc::RLIMIT_NOFILE, &r);
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn inline_only_after_fast_calls_and_never_after_a_slow_one() {
        let svc = EnvService::new(Registry::builtin(), "echo", &[] as &[&str], ServerConfig::default()).unwrap();
        assert!(!svc.run_inline(JobKind::Step), "unknown cost: use the blocking pool");
        svc.record_duration(JobKind::Step, Duration::from_micros(5));
        assert!(svc.run_inline(JobKind::Step));
        assert!(!svc.run_inline(JobKind::Reset), "resets are tracked separately");
        svc.record_duration(JobKind::Step, Duration::from_millis(50));
        assert!(!svc.run_inline(JobKind::Step), "one slow step moves work off the runtime");
        for _ in 0..100 {
            svc.record_duration(JobKind::Step, Duration::from_micros(5));
        }
        assert!(svc.run_inline(JobKind::Step));
        let off = EnvService::new(
            Registry::builtin(),
            "echo",
            &[] as &[&str],
            ServerConfig { inline_below: Duration::ZERO, ..ServerConfig::default() },
        )
        .unwrap();
        off.record_duration(JobKind::Step, Duration::from_nanos(1));
        assert!(!off.run_inline(JobKind::Step));
    }
}
