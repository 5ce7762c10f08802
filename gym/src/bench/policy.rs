//! The policy benchmark: a policy (plus baselines) over a versioned suite of
//! envs × seeds.

use std::collections::BTreeMap;
use std::io::Write;
use std::path::{Path, PathBuf};
use std::sync::atomic::{AtomicU64, Ordering};
use std::time::Instant;

use anyhow::Context;
use envs::{Completion, Policy, PolicyError, Registry, Request, RolloutConfig, SamplingParams};

use serde::{Deserialize, Serialize};

pub use super::report::{Report, Row};
use super::stats::{mean_ci, wilson};

/// The default suite, embedded so `--suite default` works from any directory.
pub const DEFAULT_SUITE: &str = include_str!("../../../suites/default.toml");

/// Arguments of the policy benchmark.
#[derive(Debug, Clone, clap::Args)]
pub struct PolicyBenchArgs {
    /// The policy to benchmark (see `gym list`).
    #[arg(long, default_value = "random")]
    pub policy: String,
    /// API root for `openai:` policies (default: OPENAI_BASE_URL).
    #[arg(long)]
    pub base_url: Option<String>,
    /// The suite: `default`, a name under `suites/`, or a path to a TOML file.
    #[arg(long, default_value = "default")]
    pub suite: String,
    /// Baseline policies run as reference rows (comma-separated; empty for none).
    #[arg(long, default_value = "random,oracle,greedy-merge,solver")]
    pub baselines: String,
    /// Directory for `bench.json`, `bench.md` and `bench.svg`.
    #[arg(long, default_value = "bench-out")]
    pub out: PathBuf,
    /// Worker threads (0 = one per core). Results do not depend on it.
    #[arg(long, default_value_t = 0)]
    pub threads: usize,
    /// Run at most this many episodes per env (0 = the suite's count), for quick looks.
    #[arg(long, default_value_t = 0)]
    pub max_episodes: usize,
}

/// A suite file.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
pub struct Suite {
    /// The suite's name.
    pub name: String,
    /// Bumped whenever envs, options or seeds change, so reports stay comparable.
    pub version: u32,
    /// What the suite measures.
    #[serde(default)]
    pub description: String,
    /// The envs, in report order.
    #[serde(rename = "env")]
    pub envs: Vec<SuiteEnv>,
}

/// One env of a suite.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
pub struct SuiteEnv {
    /// The env id.
    pub id: String,
    /// Env options (`name = value`).
    #[serde(default)]
    pub options: BTreeMap<String, toml::Value>,
    /// The first seed; episodes use `seed_start .. seed_start + episodes`.
    pub seed_start: u64,
    /// Episodes (one per seed).
    pub episodes: usize,
}

impl SuiteEnv {
    fn option_pairs(&self) -> anyhow::Result<Vec<String>> {
        self.options
            .iter()
            .map(|(k, v)| {
                Ok(match v {
                    toml::Value::String(s) => format!("{k}={s}"),
                    toml::Value::Integer(i) => format!("{k}={i}"),
                    toml::Value::Float(f) => format!("{k}={f}"),
                    toml::Value::Boolean(b) => format!("{k}={b}"),
                    _ => anyhow::bail!("env `{}`, option `{k}`: use a string, number or boolean", self.id),
                })
            })
            .collect()
    }
}

impl Suite {
    /// Parses a suite from TOML text.
    pub fn parse(text: &str) -> anyhow::Result<Self> {
        let s: Suite = toml::from_str(text).context("invalid suite file")?;
        anyhow::ensure!(!s.envs.is_empty(), "suite `{}` lists no envs", s.name);
        for e in &s.envs {
            anyhow::ensure!(e.episodes > 0, "suite `{}`, env `{}`: episodes must be at least 1", s.name, e.id);
        }
        Ok(s)
    }

    /// Loads `default` (embedded), `suites/<name>.toml`, or a path.
    pub fn load(name: &str) -> anyhow::Result<Self> {
        let p = Path::new(name);
        if p.is_file() {
            let text = std::fs::read_to_string(p).with_context(|| format!("cannot read {}", p.display()))?;
            return Self::parse(&text).with_context(|| format!("suite file {}", p.display()));
        }
        let local = Path::new("suites").join(format!("{name}.toml"));
        if local.is_file() {
            let text = std::fs::read_to_string(&local).with_context(|| format!("cannot read {}", local.display()))?;
            return Self::parse(&text).with_context(|| format!("suite file {}", local.display()));
        }
        if name == "default" {
            return Self::parse(DEFAULT_SUITE);
        }
        anyhow::bail!("no suite `{name}`: not a file, not suites/{name}.toml, and not `default`")
    }
}

/// Times a policy's `generate` calls.
struct Timed<'a> {
    inner: &'a dyn Policy,
    nanos: AtomicU64,
    calls: AtomicU64,
}

impl Policy for Timed<'_> {
    fn name(&self) -> &str {
        self.inner.name()
    }
    fn generate(&self, requests: &[Request<'_>], params: &SamplingParams) -> Result<Vec<Vec<Completion>>, PolicyError> {
        let t = Instant::now();
        let r = self.inner.generate(requests, params);
        self.nanos.fetch_add(t.elapsed().as_nanos() as u64, Ordering::Relaxed);
        self.calls.fetch_add(requests.len() as u64, Ordering::Relaxed);
        r
    }
    fn privileged(&self) -> bool {
        self.inner.privileged()
    }
}

/// Runs one policy on one suite env.
fn run_row(
    reg: &Registry,
    env: &SuiteEnv,
    policy: &dyn Policy,
    baseline: bool,
    threads: usize,
    max_episodes: usize,
) -> anyhow::Result<Row> {
    let opts = reg.options(&env.id, &env.option_pairs()?)?;
    let maker = reg.maker(&env.id, &opts)?;
    let episodes = if max_episodes > 0 { env.episodes.min(max_episodes) } else { env.episodes };
    let cfg = RolloutConfig {
        env_id: env.id.clone(),
        options: opts.to_map(),
        episodes,
        seed: env.seed_start,
        group_size: 1,
        threads,
        sampling: SamplingParams::default(),
        history: None,
    };
    let timed = Timed { inner: policy, nanos: AtomicU64::new(0), calls: AtomicU64::new(0) };
    let t0 = Instant::now();
    let eps = match envs::rollout(&maker, &timed, &cfg, &|_| {}) {
        Ok(e) => e,
        // A policy that cannot play this env (a game-specific expert, a
        // demonstration-less oracle) gets an n/a row with the reason.
        Err(envs::rollout::RolloutError::Policy { source, .. }) => {
            let why = match source {
                PolicyError::Unsupported(w) | PolicyError::Missing(w) | PolicyError::Other(w) => w,
                other => other.to_string(),
            };
            eprintln!("bench: {} on {}: n/a ({why})", policy.name(), env.id);
            return Ok(Row::skipped(&env.id, policy.name(), baseline, why));
        }
        Err(e) => return Err(e.into()),
    };
    let secs = t0.elapsed().as_secs_f64().max(1e-9);
    let n = eps.len();
    let rewards: Vec<f64> = eps.iter().map(|e| e.total_reward).collect();
    let (mean, lo, hi) = mean_ci(&rewards);
    let wins = eps.iter().filter(|e| e.success).count();
    let (slo, shi) = wilson(wins, n);
    let steps: usize = eps.iter().map(|e| e.steps.len()).sum();
    let tokens: usize = eps.iter().flat_map(|e| e.steps.iter()).map(|s| s.token_ids.as_ref().map_or(0, Vec::len)).sum();
    let calls = timed.calls.load(Ordering::Relaxed).max(1);
    Ok(Row {
        env: env.id.clone(),
        policy: policy.name().to_string(),
        baseline,
        episodes: n,
        success_rate: wins as f64 / n.max(1) as f64,
        success_ci: [slo, shi],
        mean_reward: mean,
        reward_ci: [lo, hi],
        mean_steps: steps as f64 / n.max(1) as f64,
        tokens_per_episode: tokens as f64 / n.max(1) as f64,
        policy_ms_per_step: timed.nanos.load(Ordering::Relaxed) as f64 / 1e6 / calls as f64,
        episodes_per_s: n as f64 / secs,
        skipped: None,
    })
}

impl Row {
    fn skipped(env: &str, policy: &str, baseline: bool, why: String) -> Self {
        Row {
            env: env.to_string(),
            policy: policy.to_string(),
            baseline,
            episodes: 0,
            success_rate: 0.0,
            success_ci: [0.0, 0.0],
            mean_reward: 0.0,
            reward_ci: [0.0, 0.0],
            mean_steps: 0.0,
            tokens_per_episode: 0.0,
            policy_ms_per_step: 0.0,
            episodes_per_s: 0.0,
            skipped: Some(why),
        }
    }
}

/// Runs the suite for `policy` and the baselines on `reg`'s envs.
pub fn run_suite(
    reg: &Registry,
    suite: &Suite,
    policy_name: &str,
    policy_options: &policies::PolicyOptions,
    baselines: &[String],
    threads: usize,
    max_episodes: usize,
) -> anyhow::Result<Report> {
    for e in &suite.envs {
        reg.spec(&e.id).with_context(|| format!("suite `{}` v{}", suite.name, suite.version))?;
    }
    let main = policies::make_policy_with(policy_name, policy_options)?;
    let mut others = Vec::new();
    for b in baselines {
        if b != policy_name && !others.iter().any(|(n, _): &(String, _)| n == b) {
            others.push((b.clone(), policies::make_policy_with(b, policy_options)?));
        }
    }
    let mut rows = Vec::new();
    for e in &suite.envs {
        eprintln!("bench: {} ({} episodes) ...", e.id, e.episodes);
        rows.push(run_row(reg, e, main.as_ref(), false, threads, max_episodes)?);
        for (_, p) in &others {
            rows.push(run_row(reg, e, p.as_ref(), true, threads, max_episodes)?);
        }
    }
    Ok(Report {
        suite: suite.name.clone(),
        suite_version: suite.version,
        policy: main.name().to_string(),
        gym_version: env!("CARGO_PKG_VERSION").to_string(),
        rows,
    })
}

fn pct(x: f64) -> String {
    format!("{:.1}%", 100.0 * x)
}

/// The report as a Markdown table.
pub fn markdown(r: &Report) -> String {
    let mut s = format!(
        "# gym bench: suite `{}` v{}, policy `{}`\n\nBaselines are reference rows (*italic*; those that \
         cannot play an env are listed in bench.json only). Success: Wilson 95% interval; reward: Student-t 95% \
         interval.\n\n",
        r.suite, r.suite_version, r.policy
    );
    s.push_str("| env | policy | episodes | success (95% CI) | mean reward (95% CI) | mean steps | tokens/episode | policy ms/step | episodes/s |\n");
    s.push_str("|---|---|---:|---|---|---:|---:|---:|---:|\n");
    for row in &r.rows {
        let name = if row.baseline { format!("*{}*", row.policy) } else { format!("**{}**", row.policy) };
        if let Some(why) = &row.skipped {
            if row.baseline {
                // A baseline that cannot play this env (e.g. a 2048 expert on
                // Sudoku) is listed in bench.json only.
                continue;
            }
            s.push_str(&format!("| {} | {} | – | n/a: {} | | | | | |\n", row.env, name, why.replace('|', "/")));
            continue;
        }
        s.push_str(&format!(
            "| {} | {} | {} | {} [{}, {}] | {:.3} [{:.3}, {:.3}] | {:.1} | {} | {:.3} | {:.1} |\n",
            row.env,
            name,
            row.episodes,
            pct(row.success_rate),
            pct(row.success_ci[0]),
            pct(row.success_ci[1]),
            row.mean_reward,
            row.reward_ci[0],
            row.reward_ci[1],
            row.mean_steps,
            if row.tokens_per_episode > 0.0 { format!("{:.0}", row.tokens_per_episode) } else { "–".into() },
            row.policy_ms_per_step,
            row.episodes_per_s,
        ));
    }
    s
}

/// Writes `bench.json`, `bench.md` and `bench.svg` into `dir`; returns their paths.
pub fn write_outputs(r: &Report, dir: &Path) -> anyhow::Result<[PathBuf; 3]> {
    std::fs::create_dir_all(dir).with_context(|| format!("cannot create {}", dir.display()))?;
    let json = dir.join("bench.json");
    let md = dir.join("bench.md");
    let svg = dir.join("bench.svg");
    std::fs::write(&json, serde_json::to_string_pretty(r)? + "\n")
        .with_context(|| format!("cannot write {}", json.display()))?;
    std::fs::write(&md, markdown(r)).with_context(|| format!("cannot write {}", md.display()))?;
    std::fs::write(&svg, super::chart::svg(r)).with_context(|| format!("cannot write {}", svg.display()))?;
    Ok([json, md, svg])
}

/// `gym bench --policy P --suite S`.
pub fn run(a: PolicyBenchArgs) -> anyhow::Result<()> {
    let suite = Suite::load(&a.suite)?;
    let baselines: Vec<String> =
        a.baselines.split(',').map(str::trim).filter(|s| !s.is_empty()).map(String::from).collect();
    let reg = envs::Registry::builtin();
    let popts = policies::PolicyOptions { base_url: a.base_url.clone(), ..Default::default() };
    let report = run_suite(&reg, &suite, &a.policy, &popts, &baselines, a.threads, a.max_episodes)?;
    let paths = write_outputs(&report, &a.out)?;
    let mut out = std::io::stdout().lock();
    write!(out, "{}", markdown(&report))?;
    writeln!(out, "\nwritten: {}", paths.iter().map(|p| p.display().to_string()).collect::<Vec<_>>().join(", "))?;
    Ok(())
}

/// Arguments of `gym bench compare`.
#[derive(Debug, Clone, clap::Args)]
pub struct CompareArgs {
    /// The first report (`bench.json`).
    pub a: PathBuf,
    /// The second report.
    pub b: PathBuf,
}

fn load_report(p: &Path) -> anyhow::Result<Report> {
    let text = std::fs::read_to_string(p).with_context(|| format!("cannot read {}", p.display()))?;
    serde_json::from_str(&text).with_context(|| format!("{} is not a gym bench report", p.display()))
}

/// Two reports side by side, as Markdown. A difference is marked
/// significant (`*`) when the 95% intervals do not overlap.
pub fn compare_markdown(a: &Report, b: &Report, a_name: &str, b_name: &str) -> String {
    let mut s = format!(
        "# gym bench compare\n\nA = {a_name} (policy `{}`, suite `{}` v{}); B = {b_name} (policy `{}`, suite `{}` v{}).\n",
        a.policy, a.suite, a.suite_version, b.policy, b.suite, b.suite_version
    );
    if (a.suite.as_str(), a.suite_version) != (b.suite.as_str(), b.suite_version) {
        s.push_str("\n**Warning: the suites differ; numbers are not comparable.**\n");
    }
    s.push_str(
        "\n| env | policy A | policy B | success A | success B | Δ success | reward A | reward B | Δ reward |\n",
    );
    s.push_str("|---|---|---|---:|---:|---:|---:|---:|---:|\n");
    let overlap = |x: [f64; 2], y: [f64; 2]| x[0] <= y[1] && y[0] <= x[1];
    let mut pairs: Vec<(&Row, &Row)> = Vec::new();
    // The benchmarked policies against each other, then matching baselines.
    for ra in a.rows.iter().filter(|r| !r.baseline) {
        if let Some(rb) = b.rows.iter().find(|r| !r.baseline && r.env == ra.env) {
            pairs.push((ra, rb));
        }
    }
    for ra in a.rows.iter().filter(|r| r.baseline) {
        if let Some(rb) = b.rows.iter().find(|r| r.baseline && r.env == ra.env && r.policy == ra.policy) {
            pairs.push((ra, rb));
        }
    }
    for (ra, rb) in pairs {
        if ra.skipped.is_some() || rb.skipped.is_some() {
            continue;
        }
        let ds = rb.success_rate - ra.success_rate;
        let dr = rb.mean_reward - ra.mean_reward;
        let sig_s = if overlap(ra.success_ci, rb.success_ci) { "" } else { " *" };
        let sig_r = if overlap(ra.reward_ci, rb.reward_ci) { "" } else { " *" };
        s.push_str(&format!(
            "| {} | {} | {} | {} | {} | {:+.1} pp{} | {:.3} | {:.3} | {:+.3}{} |\n",
            ra.env,
            ra.policy,
            rb.policy,
            pct(ra.success_rate),
            pct(rb.success_rate),
            100.0 * ds,
            sig_s,
            ra.mean_reward,
            rb.mean_reward,
            dr,
            sig_r
        ));
    }
    s.push_str("\n`*`: the 95% intervals do not overlap.\n");
    s
}

/// `gym bench compare a.json b.json`.
pub fn compare(c: CompareArgs) -> anyhow::Result<()> {
    let a = load_report(&c.a)?;
    let b = load_report(&c.b)?;
    let md = compare_markdown(&a, &b, &c.a.display().to_string(), &c.b.display().to_string());
    std::io::stdout().lock().write_all(md.as_bytes())?;
    Ok(())
}
