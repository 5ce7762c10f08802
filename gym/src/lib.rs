//! # gym — the binary's library
//!
//! The `gym` command is a thin clap front end over these modules:
//! * [`run`]: `gym run` — parallel deterministic rollouts with a summary;
//! * [`show`]: `gym show` — pretty-prints trajectory files;
//! * [`play`]: `gym play` — play an env in the terminal as a human;
//! * [`serve`]: `gym serve` — an OpenEnv-compatible environment server;
//! * [`bench`]: `gym bench` — policy and server benchmarks.
//! * [`train`]: `gym train` — GRPO with LoRA on an env's rewards.
//! * [`chat`]: `gym chat` — talk to a model (a quick check that it loads and answers).

pub mod bench;
pub mod chat;
pub mod play;
pub mod run;
pub mod serve;
pub mod show;
pub mod train;
