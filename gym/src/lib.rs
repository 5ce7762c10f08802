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
