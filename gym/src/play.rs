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
    if let Some(word) = arrow_key(&text) {
        return human_action(word, state);
    }
    if text.contains('<') {
        return Action::text(text);
    }
    let tag = state["answer_tag"].as_str().unwrap_or("answer");
    Action::text(format!("<{tag}>{text}</{tag}>"))
}

/// The move word of a terminal arrow key (`ESC [ A` or `ESC O A`, …), which a
/// line-mode terminal passes through as raw escape codes.
fn arrow_key(text: &str) -> Option<&'static str> {
    let code = text.strip_prefix("\u{1b}[").or_else(|| text.strip_prefix("\u{1b}O"))?;
    match code {
        "A" => Some("up"),
        "B" => Some("down"),
        "C" => Some("right"),
        "D" => Some("left"),
        _ => None,
    }
}

/// Reads one human answer: a line, or — when the env wants a whole grid
/// (`answer_space.kind == "grid"`) and the first line is one row — as many
/// lines as the grid has rows (pasted or typed row by row).
fn read_answer(
    lines: &mut impl Iterator<Item = std::io::Result<String>>,
    state: &serde_json::Value,
    out: &mut impl Write,
) -> anyhow::Result<Option<String>> {
    let Some(first) = lines.next().transpose()? else { return Ok(None) };
    let rows = match &state["answer_space"] {
        v if v["kind"] == "grid" => v["size"].as_u64().unwrap_or(0) as usize,
        _ => 0,
    };
    let first_is_a_row = !first.contains('<') && !first.contains("\\n") && !first.trim().is_empty();
    if rows <= 1 || !first_is_a_row {
        return Ok(Some(first));
    }
    let mut grid = vec![first];
    while grid.len() < rows {
        write!(out, "{}> ", grid.len() + 1)?;
        out.flush()?;
        match lines.next().transpose()? {
            Some(l) if l.trim().is_empty() => continue,
            Some(l) => grid.push(l),
            None => break,
        }
    }
    Ok(Some(grid.join("\\n")))
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
        let Some(line) = read_answer(&mut lines, &obs.state, &mut out)? else {
            writeln!(out, "\n(end of input)")?;
            break;
        };
        let step = env.step(&human_action(&line, &obs.state))?;
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
