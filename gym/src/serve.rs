//! `gym serve`: the command line of the OpenEnv server in the [`serve`]
//! crate (flags, `$PORT` / `$MAX_CONCURRENT_ENVS`, the runtime, ctrl-c).

use std::time::Duration;

use anyhow::Context;
use serve::{bind, raise_fd_limit, serve_on, shutdown_signal, EnvService, ServerConfig, DEFAULT_MAX_SESSIONS};

/// Arguments of `gym serve`.
#[derive(Debug, clap::Args)]
pub struct ServeArgs {
    /// The env id (see `gym list`; also `echo`, a trivial env for server benchmarks).
    pub env: String,
    /// An env option, `name=value` (repeatable). Clients may override
    /// options per episode by passing them to `reset`.
    #[arg(long = "opt", value_name = "NAME=VALUE")]
    pub opts: Vec<String>,
    /// Address to bind.
    #[arg(long, default_value = "127.0.0.1")]
    pub host: String,
    /// Port to bind (default: `$PORT`, else 8000; 0 picks a free port).
    #[arg(long)]
    pub port: Option<u16>,
    /// Most concurrent WebSocket sessions (default: `$MAX_CONCURRENT_ENVS`, else 2048).
    #[arg(long)]
    pub max_sessions: Option<usize>,
    /// Close sessions that send no request for this many seconds (0 = never).
    #[arg(long, default_value_t = 900)]
    pub idle_timeout_s: u64,
    /// Largest accepted WebSocket message or HTTP body, in MiB.
    #[arg(long, default_value_t = 32)]
    pub max_message_mib: usize,
    /// On shutdown, wait at most this long for in-flight steps.
    #[arg(long, default_value_t = 30)]
    pub shutdown_grace_s: u64,
    /// Run resets/steps on the async worker while this env's average call is
    /// below this many microseconds (0 = always use the blocking pool).
    #[arg(long, default_value_t = 100)]
    pub inline_below_us: u64,
    /// Runtime worker threads (0 = one per core).
    #[arg(long, default_value_t = 0)]
    pub threads: usize,
}

/// `gym serve`.
pub fn serve(a: ServeArgs) -> anyhow::Result<()> {
    let max_sessions = match a.max_sessions {
        Some(n) => n,
        None => match std::env::var("MAX_CONCURRENT_ENVS") {
            Ok(v) => v.trim().parse().with_context(|| format!("MAX_CONCURRENT_ENVS=`{v}` is not a number"))?,
            Err(_) => DEFAULT_MAX_SESSIONS,
        },
    };
    anyhow::ensure!(max_sessions >= 1, "--max-sessions must be at least 1");
    let port = match a.port {
        Some(p) => p,
        None => match std::env::var("PORT") {
            Ok(v) => v.trim().parse().with_context(|| format!("PORT=`{v}` is not a port number"))?,
            Err(_) => 8000,
        },
    };
    let config = ServerConfig {
        max_sessions,
        idle_timeout: (a.idle_timeout_s > 0).then(|| Duration::from_secs(a.idle_timeout_s)),
        max_message_bytes: a.max_message_mib.max(1) << 20,
        shutdown_grace: Duration::from_secs(a.shutdown_grace_s),
        inline_below: Duration::from_micros(a.inline_below_us),
    };
    let svc = EnvService::new(envs::Registry::builtin(), &a.env, &a.opts, config)?;
    raise_fd_limit();
    let mut rt = tokio::runtime::Builder::new_multi_thread();
    rt.enable_all();
    if a.threads > 0 {
        rt.worker_threads(a.threads);
    }
    let rt = rt.build().context("cannot start the tokio runtime")?;
    rt.block_on(async move {
        let addr = format!("{}:{}", a.host, port);
        let listener = bind(&addr).await.with_context(|| format!("cannot listen on {addr}"))?;
        let local = listener.local_addr()?;
        eprintln!(
            "gym serve: env `{}` on http://{local} (WebSocket ws://{local}/ws), at most {} sessions; ctrl-c to stop",
            svc.env_id(),
            svc.config().max_sessions
        );
        serve_on(listener, svc.clone(), shutdown_signal()).await?;
        eprintln!("gym serve: stopped after {} sessions", svc.total_sessions());
        Ok(())
    })
}
