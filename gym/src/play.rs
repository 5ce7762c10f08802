//! `gym play`: play an env in the terminal as a human.

use std::io::{BufRead, Write};

use envs::{Action, Registry};

/// Arguments of `gym play`.
#[derive(Debug, clap::Args)]
pub struct PlayArgs {
    /// The env id.
    pub env: String,
    /// The env seed.
    #[arg(long, default_value_t = 0)]
    pub seed: u64,
    /// An env option, `name=value` (repeatable).
    #[arg(long = "opt", value_name = "NAME=VALUE")]
    pub opts: Vec<String>,
}

/// What a human typed, as the env expects it: input without a tag is
/// wrapped in the env's answer tag (from `state.answer_tag`, default
/// `answer`); `\n` typed literally becomes a newline (for grids).
pub fn human_action(line: &str, state: &serde_json::Value) -> Action {
    let text = line.trim().replace("\\n", "\n");
    if text.contains('<') {
        return Action::text(text);
    }
    let tag = state["answer_tag"].as_str().unwrap_or("answer");
    Action::text(format!("<{tag}>{text}</{tag}>"))
}

/// `gym play`.
pub fn play(a: PlayArgs) -> anyhow::Result<()> {
    let reg = Registry::builtin();
    let mut env = reg.make(&a.env, &a.opts)?;
    let mut obs = env.reset(a.seed)?;
    let stdin = std::io::stdin();
    let mut out = std::io::stdout().lock();
    for m in &obs.messages {
        writeln!(out, "[{:?}]\n{}\n", m.role, m.content)?;
    }
    if !obs.images.is_empty() {
        writeln!(out, "({} image(s) attached; not shown in the terminal)", obs.images.len())?;
    }
    let mut total = 0.0;
    let mut lines = stdin.lock().lines();
    loop {
        if !obs.legal_actions.is_empty() {
            writeln!(out, "legal: {}", obs.legal_actions.join("  "))?;
        }
        write!(out, "> ")?;
        out.flush()?;
        let Some(line) = lines.next() else {
            writeln!(out, "\n(end of input)")?;
            break;
        };
        let step = env.step(&human_action(&line?, &obs.state))?;
        total += step.reward;
        for t in &step.info.breakdown {
            writeln!(
                out,
                "  {:<16} {:>8} x {}",
                t.name,
                t.value.map_or("none".into(), |v| format!("{v:+.3}")),
                t.weight
            )?;
        }
        if let Some(r) = &step.info.reason {
            writeln!(out, "  reason: {r}")?;
        }
        writeln!(out, "reward {:+.4} (total {:+.4})\n", step.reward, total)?;
        if step.done() {
            let how = if step.terminated { "terminated" } else { "truncated" };
            writeln!(out, "episode {how}; success: {}", step.info.success.unwrap_or(false))?;
            break;
        }
        obs = step.observation;
        writeln!(out, "{}\n", obs.text())?;
    }
    Ok(())
}
