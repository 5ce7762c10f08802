//! `gym show`: pretty-prints a trajectory file.

use std::io::Write;
use std::path::PathBuf;

use anyhow::Context;
use envs::EpisodeRecord;

/// Arguments of `gym show`.
#[derive(Debug, clap::Args)]
pub struct ShowArgs {
    /// A JSONL trajectory file written by `gym run --out`.
    pub file: PathBuf,
    /// Show only this episode (0-based line index).
    #[arg(long)]
    pub episode: Option<usize>,
    /// Show at most this many steps per episode.
    #[arg(long, default_value_t = 50)]
    pub max_steps: usize,
}

/// Reads a trajectory file; errors name the file and line.
pub fn read_trajectories(path: &std::path::Path) -> anyhow::Result<Vec<EpisodeRecord>> {
    let text = std::fs::read_to_string(path).with_context(|| format!("cannot read {}", path.display()))?;
    let mut eps = Vec::new();
    for (i, l) in text.lines().enumerate().filter(|(_, l)| !l.trim().is_empty()) {
        let v: serde_json::Value =
            serde_json::from_str(l).with_context(|| format!("{} line {}: not JSON", path.display(), i + 1))?;
        if envs::rollout::is_summary_line(&v) {
            continue;
        }
        eps.push(
            serde_json::from_value(v)
                .with_context(|| format!("{} line {}: not a trajectory record", path.display(), i + 1))?,
        );
    }
    Ok(eps)
}

/// Renders one episode as text.
pub fn render_episode(e: &EpisodeRecord, max_steps: usize) -> String {
    let mut s = String::new();
    let opts: Vec<String> = e.options.iter().map(|(k, v)| format!("{k}={v}")).collect();
    s += &format!(
        "== {} [{}] seed {} sample {} policy {} | total reward {:.4} | success {} | {} steps\n",
        e.env,
        opts.join(" "),
        e.seed,
        e.sample,
        e.policy,
        e.total_reward,
        e.success,
        e.steps.len()
    );
    if let Some(sys) = e.prompt.first() {
        s += &format!("system: {}\n", sys.content.replace('\n', "\n        "));
    }
    for (i, st) in e.steps.iter().take(max_steps).enumerate() {
        s += &format!("-- step {i}\n");
        s += &format!("observation:\n  {}\n", st.observation.replace('\n', "\n  "));
        s += &format!("action: {}\n", st.action.replace('\n', "\n        "));
        s += &format!("reward {:+.4}", st.reward);
        if st.terminated {
            s += " (terminated)";
        }
        if st.truncated {
            s += " (truncated)";
        }
        s += "\n";
        for t in &st.breakdown {
            let v = t.value.map_or("none".to_string(), |v| format!("{v:+.4}"));
            s += &format!("  {:<16} {:>9} x {:<5} = {:+.4}\n", t.name, v, t.weight, t.contribution());
        }
        if let Some(r) = &st.reason {
            s += &format!("  reason: {r}\n");
        }
    }
    if e.steps.len() > max_steps {
        s += &format!("... {} more steps\n", e.steps.len() - max_steps);
    }
    s
}

/// `gym show`.
pub fn show(a: ShowArgs) -> anyhow::Result<()> {
    let eps = read_trajectories(&a.file)?;
    let mut out = std::io::stdout().lock();
    for (i, e) in eps.iter().enumerate() {
        if a.episode.is_some_and(|k| k != i) {
            continue;
        }
        writeln!(out, "{}", render_episode(e, a.max_steps))?;
    }
    Ok(())
}
