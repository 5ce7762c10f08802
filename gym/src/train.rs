//! `gym train`: GRPO with LoRA on an env (or a built-in toy task), and SFT
//! (`--sft`).
//!
//! ```text
//! gym train --sft data.jsonl --model Qwen/Qwen2.5-0.5B-Instruct --output-dir runs/sft     # LoRA SFT
//! gym train --sft programs:2048-strategy --model policies/assets/gym-tiny --from-scratch --output-dir runs/sft
//! gym train toy:count_a --max-steps 40 --output-dir runs/count_a
//! gym train <env> --model Qwen/Qwen2.5-0.5B-Instruct --config grpo.toml --set beta=0.04
//! gym train toy:count_a --output-dir runs/count_a --resume      # continue a killed run
//! ```
//!
//! Settings: a TOML file with TRL `GRPOConfig` key names (see
//! [`trainers::GrpoConfig`] for every key and its default), then
//! `--set key=value` (any key; the value is TOML: `--set beta=0.04`,
//! `--set loss_type=dr_grpo`), then the dedicated flags below.
//!
//! Output folder: `metrics.jsonl` (one JSON object per step, TRL metric
//! names), `checkpoint-N/` (adapters in PEFT format, optimizer state,
//! `trainer_state.json`, `config.toml`; written atomically every
//! `save_steps` and at the end), `adapter/` (the final PEFT adapter) and,
//! for toy tasks, `base-model/` (the random base the adapter belongs to).
//! The progress line shows reward, loss, grad norm, entropy, the zero-std
//! fraction, mean completion length and the `tokens_per_second` metric.
//!
//! Afterwards: `gym export --adapter <out>/adapter --out merged/` (merged
//! Hugging Face weights; `--format gguf-f16|gguf-q8_0` for llama.cpp, see
//! [`crate::export`]) and `gym plot <out>/metrics.jsonl` (reward and KL
//! curves to PNG/SVG, see [`crate::plot`]).
//!
//! `--save-merged` also writes `model/`: the base with the adapters merged
//! in, a loadable Hugging Face folder.
//!
//! SFT (`--sft SOURCE`, the positional target is then not needed):
//! SOURCE is a JSONL file in TRL's formats (`{"prompt", "completion"}` or
//! `{"messages"}`), an env id (its `demonstration()` for seeds
//! `0..--sft-examples`), or `programs:2048-strategy` (the env's prompts with
//! procedurally generated strategy programs as replies). Loss on completion
//! tokens only. LoRA by default (`lora_*` settings as for GRPO); `--sft-full`
//! trains every weight; `--from-scratch` (implies `--sft-full`) starts from
//! random weights of the model's shape. Writes `metrics.jsonl` (`loss`,
//! `learning_rate`, `grad_norm`, `mean_token_accuracy`, ...) and `model/`
//! (full weights, or LoRA merged into the base, plus `model/adapter/`).

use std::path::{Path, PathBuf};

use anyhow::Context;
use trainers::run::{layered_config, toml_value, GrpoRun, GrpoRunSpec, SftRun, SftRunSpec};
use trainers::GrpoConfig;

/// Arguments of `gym train`.
#[derive(Debug, clap::Args)]
pub struct TrainArgs {
    /// What to train on: an env id (see `gym list`) or a toy task
    /// (`toy:count_a`, `toy:echo`). Not needed with `--sft`.
    #[arg(required_unless_present = "sft", default_value = "")]
    pub target: String,
    /// Supervised fine-tuning instead of GRPO, on a JSONL file (TRL
    /// formats), an env id (its demonstrations) or `programs:2048-strategy`.
    #[arg(long, value_name = "SOURCE")]
    pub sft: Option<String>,
    /// SFT: train every weight instead of LoRA adapters.
    #[arg(long)]
    pub sft_full: bool,
    /// SFT: start from random weights of the model's shape (implies --sft-full).
    #[arg(long)]
    pub from_scratch: bool,
    /// SFT from an env: examples (env seeds 0..N).
    #[arg(long, default_value_t = 2000)]
    pub sft_examples: u64,
    /// GRPO: also write `model/`, the base with the adapters merged in.
    #[arg(long)]
    pub save_merged: bool,
    /// The model: a preset, a local Hugging Face folder or a hub repo id in
    /// the local cache. Toy tasks use their own random-init model (`tiny`).
    #[arg(long)]
    pub model: Option<String>,
    /// A TOML file of settings (TRL `GRPOConfig` names).
    #[arg(long)]
    pub config: Option<PathBuf>,
    /// Override any setting, `key=value` with a TOML value (repeatable).
    #[arg(long = "set", value_name = "KEY=VALUE")]
    pub set: Vec<String>,
    /// Where metrics, checkpoints and the adapter go.
    #[arg(long, default_value = "runs/train")]
    pub output_dir: PathBuf,
    /// Continue from the newest checkpoint in the output folder.
    #[arg(long)]
    pub resume: bool,
    /// Start over in an output folder that holds an earlier run's
    /// checkpoints (they are deleted); without it such a folder is refused.
    #[arg(long, conflicts_with = "resume")]
    pub overwrite: bool,
    /// With --resume: continue even when settings other than max_steps,
    /// save_steps, save_total_limit and logging_steps differ from the
    /// checkpoint's (refused by default).
    #[arg(long, requires = "resume")]
    pub allow_config_change: bool,
    /// An env option, `name=value` (repeatable).
    #[arg(long = "opt", value_name = "NAME=VALUE")]
    pub opts: Vec<String>,
    /// `learning_rate`.
    #[arg(long)]
    pub learning_rate: Option<f64>,
    /// `max_steps`.
    #[arg(long)]
    pub max_steps: Option<usize>,
    /// `num_generations`.
    #[arg(long)]
    pub num_generations: Option<usize>,
    /// `per_device_train_batch_size` (completions per micro-batch).
    #[arg(long)]
    pub per_device_train_batch_size: Option<usize>,
    /// `max_completion_length`.
    #[arg(long)]
    pub max_completion_length: Option<usize>,
    /// `beta` (KL coefficient).
    #[arg(long)]
    pub beta: Option<f64>,
    /// `loss_type` (grpo, bnpo, dr_grpo, dapo).
    #[arg(long)]
    pub loss_type: Option<String>,
    /// `temperature`.
    #[arg(long)]
    pub temperature: Option<f64>,
    /// `save_steps`.
    #[arg(long)]
    pub save_steps: Option<usize>,
    /// `seed`.
    #[arg(long)]
    pub seed: Option<u64>,
    /// Where to train: `auto` (a CUDA GPU when built with `cuda` and one
    /// answers, else the CPU), `cpu`, `cuda` or `cuda:N`. Base weights are
    /// bf16 on GPUs (f32 on CPUs); adapters and optimizer state are f32.
    #[arg(long, default_value = "auto")]
    pub device: String,
    /// Rollout worker threads for env training (0 = one per core). Results
    /// do not depend on it (seeded per episode); more threads help when the
    /// env's reward is expensive (e.g. playing strategy games) and the model
    /// is small.
    #[arg(long, default_value_t = 1)]
    pub rollout_threads: usize,
    /// No progress line.
    #[arg(long)]
    pub quiet: bool,
}

/// The settings: file (or the checkpoint's), then `--set`, then flags.
fn build_config(a: &TrainArgs, resume_from: Option<&Path>) -> anyhow::Result<GrpoConfig> {
    let mut overrides = Vec::new();
    for kv in &a.set {
        let (k, v) = kv.split_once('=').with_context(|| format!("--set {kv}: expected KEY=VALUE"))?;
        overrides.push((k.trim().to_string(), toml_value(v.trim())));
    }
    let int = |v: usize| toml::Value::Integer(v as i64);
    let flags = [
        ("learning_rate", a.learning_rate.map(toml::Value::Float)),
        ("max_steps", a.max_steps.map(int)),
        ("num_generations", a.num_generations.map(int)),
        ("per_device_train_batch_size", a.per_device_train_batch_size.map(int)),
        ("max_completion_length", a.max_completion_length.map(int)),
        ("beta", a.beta.map(toml::Value::Float)),
        ("loss_type", a.loss_type.clone().map(toml::Value::String)),
        ("temperature", a.temperature.map(toml::Value::Float)),
        ("save_steps", a.save_steps.map(int)),
        ("seed", a.seed.map(|v| toml::Value::Integer(v as i64))),
    ];
    overrides.extend(flags.into_iter().filter_map(|(k, v)| Some((k.to_string(), v?))));
    Ok(layered_config(a.config.as_deref(), resume_from, &overrides)?)
}

/// The live progress line of a training run (hidden with `--quiet`).
fn progress_bar(quiet: bool, steps: usize) -> indicatif::ProgressBar {
    let bar = if quiet { indicatif::ProgressBar::hidden() } else { indicatif::ProgressBar::new(steps as u64) };
    bar.set_style(
        indicatif::ProgressStyle::with_template("{pos}/{len} [{elapsed_precise}, eta {eta}] {msg}")
            .unwrap_or_else(|_| indicatif::ProgressStyle::default_bar()),
    );
    bar
}

/// Shows a step's message: on the bar, or — when stderr is not a terminal
/// (a log file, CI), where the bar draws nothing — as one plain line per step.
fn report(bar: &indicatif::ProgressBar, quiet: bool, done: usize, msg: String) {
    bar.set_position(done as u64);
    if !quiet && bar.is_hidden() {
        let total = bar.length().unwrap_or(0);
        eprintln!("step {done}/{total} [{:.0?}, eta {:.0?}] {msg}", bar.elapsed(), bar.eta());
    }
    bar.set_message(msg);
}

/// `gym train --sft`.
pub fn train_sft(a: &TrainArgs, source: &str) -> anyhow::Result<()> {
    let model =
        a.model.clone().context("--sft needs --model (a local Hugging Face model folder, preset or repo id)")?;
    let spec = SftRunSpec {
        source: source.to_string(),
        env_options: a.opts.clone(),
        env_examples: a.sft_examples,
        model,
        full: a.sft_full,
        from_scratch: a.from_scratch,
        device: models::parse_device(&a.device)?,
        output_dir: a.output_dir.clone(),
        learning_rate: a.learning_rate,
        max_steps: a.max_steps,
        batch_size: a.per_device_train_batch_size,
    };
    let mut run = SftRun::start(&spec, &build_config(a, None)?)?;
    let bar = progress_bar(a.quiet, run.max_steps());
    let stop = crate::interrupt_flag()?;
    let mut interrupted = false;
    while !run.is_done() {
        if stop.load(std::sync::atomic::Ordering::Relaxed) {
            interrupted = true;
            break;
        }
        let m = run.step()?;
        let get = |k: &str| m.get(k).copied().unwrap_or(0.0);
        let msg = format!(
            "loss {:.4}  acc {:.3}  grad {:.3}  lr {:.2e}",
            get("loss"),
            get("mean_token_accuracy"),
            get("grad_norm"),
            get("learning_rate"),
        );
        report(&bar, a.quiet, run.steps_done(), msg);
    }
    bar.finish();
    let examples = run.examples();
    let steps = run.steps_done();
    let written = run.finish()?;
    if interrupted {
        let dir = written.model.map(|d| d.display().to_string()).unwrap_or_default();
        eprintln!("interrupted after step {steps}: the model of the finished steps is written to {dir}");
        std::process::exit(130);
    }
    if let (false, Some(dir)) = (a.quiet, written.model) {
        eprintln!("SFT on {examples} examples done; model written to {}", dir.display());
    }
    Ok(())
}

/// `gym train`.
pub fn train(a: TrainArgs) -> anyhow::Result<()> {
    if let Some(src) = a.sft.clone() {
        return train_sft(&a, &src);
    }
    let resume_from = if a.resume { Some(GrpoRun::resume_point(&a.output_dir)?) } else { None };
    let cfg = build_config(&a, resume_from.as_deref())?;
    let spec = GrpoRunSpec {
        target: a.target.clone(),
        env_options: a.opts.clone(),
        model: a.model.clone(),
        device: models::parse_device(&a.device)?,
        rollout_threads: a.rollout_threads,
        output_dir: a.output_dir.clone(),
        save_merged: a.save_merged,
        overwrite: a.overwrite,
        allow_config_change: a.allow_config_change,
    };
    let mut run = GrpoRun::start(&spec, cfg, resume_from.as_deref())?;
    if let (false, Some((ck, st))) = (a.quiet, run.resumed()) {
        eprintln!("resumed from {} (step {})", ck.display(), st.global_step);
    }
    let bar = progress_bar(a.quiet, run.config().max_steps);
    bar.set_position(run.steps_done() as u64);
    let stop = crate::interrupt_flag()?;
    while !run.is_done() {
        if stop.load(std::sync::atomic::Ordering::Relaxed) {
            bar.abandon();
            let saved = run.save_checkpoint()?.or(run.latest_checkpoint()?);
            let kept = match saved {
                Some(ck) => format!("checkpoint {}", ck.display()),
                None => "no checkpoint (no step finished yet)".to_string(),
            };
            eprintln!(
                "interrupted after step {}: metrics.jsonl holds every finished step; {kept}; continue with the same \
                 command and --resume",
                run.steps_done()
            );
            std::process::exit(130);
        }
        let m = run.step()?;
        let get = |k: &str| m.get(k).copied().unwrap_or(0.0);
        let msg = format!(
            "reward {:.3} ± {:.3}  loss {:+.4}  grad {:.3}  entropy {:.3}  zero-std {:.2}  len {:.1}  {:.0} tok/s",
            get("reward"),
            get("reward_std"),
            get("loss"),
            get("grad_norm"),
            get("entropy"),
            get("frac_reward_zero_std"),
            get("completions/mean_length"),
            get("tokens_per_second"),
        );
        report(&bar, a.quiet, run.steps_done(), msg);
        if get("prompts/clipped") > 0.0 && !a.quiet {
            bar.println(format!(
                "warning: step {}: {} prompts cut to max_prompt_length ({} tokens dropped from their start); \
                 {:.0}% of completions hit max_completion_length",
                run.steps_done(),
                get("prompts/clipped"),
                get("prompts/clipped_tokens"),
                100.0 * get("completions/clipped_ratio"),
            ));
        }
    }
    bar.finish();
    let written = run.finish()?;
    if !a.quiet {
        if let Some(dir) = written.model {
            eprintln!("merged model written to {}", dir.display());
        }
        if let Some(dir) = written.adapter {
            eprintln!("adapter written to {}", dir.display());
        }
    }
    Ok(())
}
