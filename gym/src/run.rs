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
    let bar = indicatif::ProgressBar::new(a.episodes as u64);
    bar.set_style(
        indicatif::ProgressStyle::with_template(
            "{spinner} {pos}/{len} episodes [{elapsed_precise}] {per_sec} eta {eta}",
        )
        .unwrap_or_else(|_| indicatif::ProgressStyle::default_bar()),
    );
    let start = Instant::now();
    let eps = envs::rollout(&maker, policy.as_ref(), &cfg, &|n| bar.inc(n as u64))?;
    let secs = start.elapsed().as_secs_f64().max(1e-9);
    bar.finish_and_clear();
    if let Some(path) = &a.out {
        let f = std::fs::File::create(path).with_context(|| format!("cannot create {}", path.display()))?;
        let mut w = std::io::BufWriter::new(f);
        envs::rollout::write_jsonl(&mut w, &eps).with_context(|| format!("cannot write {}", path.display()))?;
        w.flush().with_context(|| format!("cannot write {}", path.display()))?;
    }
    let s = Summary::of(&eps);
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
    Ok(())
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
