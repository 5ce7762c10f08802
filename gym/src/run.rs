//! `gym run` and `gym list`.

use std::io::Write;
use std::path::PathBuf;
use std::time::Instant;

use anyhow::Context;
use envs::{Registry, RolloutConfig, SamplingParams, Summary};

/// Arguments of `gym run`.
#[derive(Debug, clap::Args)]
pub struct RunArgs {
    /// The env id (see `gym list`).
    pub env: String,
    /// The policy: a scripted baseline, `replay:FILE`, a local model or `openai:MODEL` (see `gym list`).
    #[arg(long, default_value = "random")]
    pub policy: String,
    /// API root for `openai:` policies, e.g. `http://127.0.0.1:8080/v1` (default: OPENAI_BASE_URL).
    #[arg(long)]
    pub base_url: Option<String>,
    /// Number of episodes.
    #[arg(long, default_value_t = 10)]
    pub episodes: usize,
    /// The first env seed; group g uses seed + g.
    #[arg(long, default_value_t = 0)]
    pub seed: u64,
    /// Worker threads (0 = one per core). Results do not depend on it.
    #[arg(long, default_value_t = 0)]
    pub threads: usize,
    /// Samples per env seed (episodes sharing an initial state, as in GRPO groups).
    #[arg(long, default_value_t = 1)]
    pub group_size: usize,
    /// An env option, `name=value` (repeatable).
    #[arg(long = "opt", value_name = "NAME=VALUE")]
    pub opts: Vec<String>,
    /// Write trajectories here as JSONL (one episode per line; byte-reproducible).
    #[arg(long)]
    pub out: Option<PathBuf>,
    /// Sampling temperature (LLM policies).
    #[arg(long)]
    pub temperature: Option<f32>,
    /// Nucleus sampling mass (LLM policies).
    #[arg(long)]
    pub top_p: Option<f32>,
    /// Maximum new tokens per reply (LLM policies).
    #[arg(long)]
    pub max_new_tokens: Option<usize>,
    /// Where local LLM policies run: `auto` (a CUDA GPU when built with
    /// `cuda` and one answers, else the CPU), `cpu`, `cuda` or `cuda:N`.
    #[arg(long, default_value = "auto")]
    pub device: String,
    /// Extra chat-template variables for local LLMs, as a JSON object
    /// (vLLM's `chat_template_kwargs`), e.g. '{"enable_thinking": false}'.
    #[arg(long, value_name = "JSON", value_parser = parse_template_kwargs)]
    pub chat_template_kwargs: Option<serde_json::Value>,
    /// What an LLM policy is shown of a multi-step episode: `full` (the
    /// whole conversation, as `gym train` trains on) or `latest` (only the
    /// latest observation). Default: the env's choice (`full` for every
    /// built-in env).
    #[arg(long, value_parser = parse_history)]
    pub history: Option<envs::History>,
    /// Print the summary as JSON instead of a table.
    #[arg(long)]
    pub json: bool,
}

/// Parses `--history`.
fn parse_history(s: &str) -> Result<envs::History, String> {
    envs::History::parse(s).ok_or_else(|| format!("`{s}` is not one of {}", envs::History::NAMES.join(", ")))
}

/// Parses `--chat-template-kwargs`: a JSON object.
pub fn parse_template_kwargs(s: &str) -> Result<serde_json::Value, String> {
    match serde_json::from_str::<serde_json::Value>(s) {
        Ok(v) if v.is_object() => Ok(v),
        Ok(_) => Err(format!("`{s}` is not a JSON object (e.g. '{{\"enable_thinking\": false}}')")),
        Err(e) => Err(format!("`{s}` is not JSON: {e}")),
    }
}

/// `gym list`: envs with options, and policies.
pub fn list() -> anyhow::Result<()> {
    let reg = Registry::builtin();
    let mut out = std::io::stdout().lock();
    writeln!(out, "ENVS")?;
    for s in reg.specs() {
        writeln!(out, "  {:<16} v{}  {} (max {} steps)", s.id, s.version, s.description, s.max_steps)?;
        for o in &s.options {
            let d = if o.default.is_empty() { "unset" } else { o.default };
            writeln!(out, "      --opt {}=<{}>  default {}  {}", o.name, o.kind, d, o.help)?;
        }
    }
    writeln!(out, "\nPOLICIES")?;
    for (n, h) in policies::policy_names() {
        writeln!(out, "  {n:<16} {h}")?;
    }
    Ok(())
}

/// `gym run`.
pub fn run(a: RunArgs) -> anyhow::Result<()> {
    let reg = Registry::builtin();
    let options = reg.options(&a.env, &a.opts)?;
    let maker = reg.maker(&a.env, &options)?;
    let popts = policies::PolicyOptions {
        base_url: a.base_url.clone(),
        device: Some(a.device.clone()),
        chat_template_kwargs: a.chat_template_kwargs.clone(),
    };
    let policy = policies::make_policy_with(&a.policy, &popts)?;
    let mut sampling = SamplingParams::default();
    if let Some(t) = a.temperature {
        sampling.temperature = t;
    }
    if let Some(p) = a.top_p {
        sampling.top_p = p;
    }
    if let Some(m) = a.max_new_tokens {
        sampling.max_new_tokens = m;
    }
    anyhow::ensure!(a.episodes > 0, "--episodes must be at least 1");
    crate::bounded("--episodes", a.episodes, MAX_EPISODES)?;
    crate::bounded("--group-size", a.group_size, MAX_GROUP)?;
    crate::bounded("--threads", a.threads, MAX_THREADS)?;
    crate::bounded("--max-new-tokens", a.max_new_tokens.unwrap_or(0), MAX_NEW_TOKENS)?;
    // The output file is created before any work: a wrong path fails now.
    let mut out_file = match &a.out {
        Some(path) => Some(TrajectoryFile::create(path)?),
        None => None,
    };
    let cfg = RolloutConfig {
        env_id: a.env.clone(),
        options: options.to_map(),
        episodes: a.episodes,
        seed: a.seed,
        group_size: a.group_size,
        threads: a.threads,
        sampling,
        history: a.history,
    };
    let stop = crate::interrupt_flag()?;
    let bar = indicatif::ProgressBar::new(a.episodes as u64);
    bar.set_style(
        indicatif::ProgressStyle::with_template(
            "{spinner} {pos}/{len} episodes [{elapsed_precise}] {per_sec} eta {eta}",
        )
        .unwrap_or_else(|_| indicatif::ProgressStyle::default_bar()),
    );
    let start = Instant::now();
    let mut sink = |eps: Vec<envs::EpisodeRecord>| match out_file.as_mut() {
        Some(f) => f.append(&eps),
        None => Ok(()),
    };
    let streamed = envs::rollout_streaming(&maker, policy.as_ref(), &cfg, &stop, &|n| bar.inc(n as u64), &mut sink)?;
    let secs = start.elapsed().as_secs_f64().max(1e-9);
    bar.finish_and_clear();
    let s = streamed.summary;
    if let (Some(f), Some(path)) = (out_file.take(), &a.out) {
        f.finish(&s, streamed.interrupted).with_context(|| format!("cannot write {}", path.display()))?;
    }
    let mut out = std::io::stdout().lock();
    if a.json {
        let v = serde_json::json!({
            "env": a.env, "policy": policy.name(), "options": options.to_map(), "summary": s,
            "seconds": secs, "episodes_per_s": s.episodes as f64 / secs, "steps_per_s": s.total_steps as f64 / secs,
        });
        writeln!(out, "{}", serde_json::to_string_pretty(&v)?)?;
    } else {
        write_table(&mut out, &a.env, policy.name(), &s, secs)?;
        if let Some(p) = &a.out {
            writeln!(out, "trajectories written to {}", p.display())?;
        }
    }
    if streamed.interrupted {
        out.flush()?;
        eprintln!("interrupted: {} of {} episodes finished and were kept", s.episodes, a.episodes);
        std::process::exit(130);
    }
    Ok(())
}

/// The most episodes one `gym run` may ask for.
const MAX_EPISODES: usize = 1_000_000_000;
/// The largest group.
const MAX_GROUP: usize = 65_536;
/// The most worker threads.
const MAX_THREADS: usize = 4_096;
/// The most new tokens per reply.
const MAX_NEW_TOKENS: usize = 1 << 20;

/// A trajectory file written as episodes finish: whole lines only (each
/// batch of complete lines goes out in one write), then a summary line.
struct TrajectoryFile {
    file: std::fs::File,
    path: PathBuf,
    buf: Vec<u8>,
}

impl TrajectoryFile {
    fn create(path: &std::path::Path) -> anyhow::Result<Self> {
        if let Some(dir) = path.parent().filter(|d| !d.as_os_str().is_empty()) {
            anyhow::ensure!(
                dir.is_dir(),
                "cannot write {}: the folder {} does not exist",
                path.display(),
                dir.display()
            );
        }
        let file = std::fs::File::create(path).with_context(|| format!("cannot create {}", path.display()))?;
        Ok(Self { file, path: path.to_path_buf(), buf: Vec::new() })
    }

    /// Appends finished episodes; writes once 64 KiB of lines are ready.
    fn append(&mut self, eps: &[envs::EpisodeRecord]) -> std::io::Result<()> {
        envs::rollout::write_jsonl(&mut self.buf, eps)?;
        if self.buf.len() >= 64 * 1024 {
            self.file.write_all(&self.buf)?;
            self.buf.clear();
        }
        Ok(())
    }

    /// Writes what is left and the summary line.
    fn finish(mut self, summary: &Summary, interrupted: bool) -> anyhow::Result<()> {
        let line = envs::rollout::SummaryLine { summary: summary.clone(), interrupted };
        serde_json::to_writer(&mut self.buf, &line)?;
        self.buf.push(b'\n');
        self.file.write_all(&self.buf).with_context(|| format!("cannot write {}", self.path.display()))?;
        self.file.sync_data().with_context(|| format!("cannot write {}", self.path.display()))?;
        Ok(())
    }
}

fn write_table(out: &mut impl Write, env: &str, policy: &str, s: &Summary, secs: f64) -> std::io::Result<()> {
    writeln!(out, "env {env}  policy {policy}")?;
    let rows = [
        ("episodes", format!("{}", s.episodes)),
        ("mean reward", format!("{:.4}", s.mean_reward)),
        ("median reward", format!("{:.4}", s.median_reward)),
        ("min reward", format!("{:.4}", s.min_reward)),
        ("max reward", format!("{:.4}", s.max_reward)),
        ("success rate", format!("{:.1}%", 100.0 * s.success_rate)),
        ("mean steps", format!("{:.1}", s.mean_steps)),
        ("episodes/s", format!("{:.1}", s.episodes as f64 / secs)),
        ("steps/s", format!("{:.1}", s.total_steps as f64 / secs)),
        ("wall time", format!("{secs:.3} s")),
    ];
    for (k, v) in rows {
        writeln!(out, "  {k:<14} {v:>14}")?;
    }
    Ok(())
}
