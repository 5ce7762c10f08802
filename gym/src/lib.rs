//! # gym — the binary's library
//!
//! The `gym` command is a thin clap front end over these modules:
//! * [`run`]: `gym run` — parallel deterministic rollouts with a summary;
//! * [`show`]: `gym show` — pretty-prints trajectory files;
//! * [`play`]: `gym play` — play an env in the terminal as a human;
//! * [`serve`]: `gym serve` — an OpenEnv-compatible environment server;
//! * [`bench`]: `gym bench` — policy and server benchmarks.
//! * [`train`]: `gym train` — GRPO with LoRA on an env's rewards.
//! * [`export`]: `gym export` — merged HF weights and GGUF (f16, q8_0).
//! * [`plot`]: `gym plot` — training curves to PNG/SVG.
//! * [`chat`]: `gym chat` — talk to a model (a quick check that it loads and answers).

pub mod bench;
pub mod chat;
pub mod export;
pub mod play;
pub mod plot;
pub mod run;
pub mod serve;
pub mod show;
pub mod train;

/// An error unless `value` ≤ `max`: integer options beyond a sane bound are
/// refused before any work (and before they can overflow an allocation).
pub fn bounded(name: &str, value: usize, max: usize) -> anyhow::Result<()> {
    anyhow::ensure!(value <= max, "{name} {value} is too large (at most {max})");
    Ok(())
}

/// A flag raised by the first Ctrl-C (SIGINT) or SIGTERM, so that a command
/// can stop taking work, keep what finished and exit with status 130; a
/// second signal exits at once (status 130).
pub fn interrupt_flag() -> anyhow::Result<std::sync::Arc<std::sync::atomic::AtomicBool>> {
    use std::sync::Arc;
    let flag = Arc::new(std::sync::atomic::AtomicBool::new(false));
    for sig in [signal_hook::consts::SIGINT, signal_hook::consts::SIGTERM] {
        // Registered first, so it sees the flag as the earlier signal left it.
        signal_hook::flag::register_conditional_shutdown(sig, 130, Arc::clone(&flag))?;
        signal_hook::flag::register(sig, Arc::clone(&flag))?;
    }
    Ok(flag)
}
