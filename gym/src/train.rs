//! `gym train`: GRPO with LoRA on an env (or a built-in toy task).
//!
//! ```text
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

use std::io::Write;
use std::path::{Path, PathBuf};

use anyhow::{bail, Context};
use envs::Registry;
use policies::llm::LlmPolicy;
use trainers::checkpoint;
use trainers::envsource::EnvSource;
use trainers::toy::{TinyModelSpec, ToySource, ToyTask};
use trainers::{GrpoConfig, GrpoTrainer, Lora, RolloutSource};

/// Arguments of `gym train`.
#[derive(Debug, clap::Args)]
pub struct TrainArgs {
    /// What to train on: an env id (see `gym list`) or a toy task
    /// (`toy:count_a`, `toy:echo`).
    pub target: String,
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
    /// No progress line.
    #[arg(long)]
    pub quiet: bool,
}

/// Parses `value` as a TOML value, falling back to a string.
fn toml_value(value: &str) -> toml::Value {
    let doc = format!("v = {value}");
    match doc.parse::<toml::Table>() {
        Ok(mut t) => t.remove("v").unwrap_or_else(|| toml::Value::String(value.to_string())),
        Err(_) => toml::Value::String(value.to_string()),
    }
}

/// The settings: file (or the checkpoint's), then `--set`, then flags.
pub fn build_config(a: &TrainArgs, resume_from: Option<&Path>) -> anyhow::Result<GrpoConfig> {
    let mut table = toml::Table::new();
    let file = match (&a.config, resume_from) {
        (Some(f), _) => Some(f.clone()),
        (None, Some(ck)) => Some(ck.join("config.toml")),
        _ => None,
    };
    if let Some(f) = file {
        let text = std::fs::read_to_string(&f).with_context(|| format!("cannot read {}", f.display()))?;
        table = text.parse::<toml::Table>().with_context(|| format!("{}: invalid TOML", f.display()))?;
    }
    for kv in &a.set {
        let (k, v) = kv.split_once('=').with_context(|| format!("--set {kv}: expected KEY=VALUE"))?;
        table.insert(k.trim().to_string(), toml_value(v.trim()));
    }
    let mut flag = |k: &str, v: Option<toml::Value>| {
        if let Some(v) = v {
            table.insert(k.to_string(), v);
        }
    };
    flag("learning_rate", a.learning_rate.map(toml::Value::Float));
    flag("max_steps", a.max_steps.map(|v| toml::Value::Integer(v as i64)));
    flag("num_generations", a.num_generations.map(|v| toml::Value::Integer(v as i64)));
    flag("per_device_train_batch_size", a.per_device_train_batch_size.map(|v| toml::Value::Integer(v as i64)));
    flag("max_completion_length", a.max_completion_length.map(|v| toml::Value::Integer(v as i64)));
    flag("beta", a.beta.map(toml::Value::Float));
    flag("loss_type", a.loss_type.clone().map(toml::Value::String));
    flag("temperature", a.temperature.map(toml::Value::Float));
    flag("save_steps", a.save_steps.map(|v| toml::Value::Integer(v as i64)));
    flag("seed", a.seed.map(|v| toml::Value::Integer(v as i64)));
    let cfg = GrpoConfig::from_toml(&toml::to_string(&table)?)?;
    cfg.validate()?;
    Ok(cfg)
}

/// Keeps only the metric lines of steps ≤ `step` (a killed run may have
/// logged past its last checkpoint).
fn truncate_metrics(path: &Path, step: usize) -> anyhow::Result<()> {
    let Ok(text) = std::fs::read_to_string(path) else { return Ok(()) };
    let kept: Vec<&str> = text
        .lines()
        .filter(|l| {
            serde_json::from_str::<serde_json::Value>(l)
                .ok()
                .and_then(|v| v.get("step").and_then(|s| s.as_u64()))
                .is_some_and(|s| s as usize <= step)
        })
        .collect();
    let mut body = kept.join("\n");
    if !body.is_empty() {
        body.push('\n');
    }
    std::fs::write(path, body)?;
    Ok(())
}

/// `gym train`.
pub fn train(a: TrainArgs) -> anyhow::Result<()> {
    let out = a.output_dir.clone();
    let resume_from = if a.resume {
        Some(checkpoint::latest(&out)?.with_context(|| format!("--resume: no checkpoint in {}", out.display()))?)
    } else {
        None
    };
    let cfg = build_config(&a, resume_from.as_deref())?;
    std::fs::create_dir_all(&out).with_context(|| format!("cannot create {}", out.display()))?;

    let device = policies::llm::parse_device(&a.device)?;
    let (mut trainer, mut source, base_name): (GrpoTrainer, Box<dyn RolloutSource>, String) =
        if let Some(task) = a.target.strip_prefix("toy:") {
            let task = match task {
                "count_a" => ToyTask::CountA,
                "echo" => ToyTask::Echo,
                other => bail!("unknown toy task `{other}` (toy:count_a, toy:echo)"),
            };
            if a.model.as_deref().is_some_and(|m| m != "tiny") {
                bail!("toy tasks train their own random model (--model tiny)");
            }
            let spec = TinyModelSpec::default();
            let base_dir = out.join("base-model");
            spec.save(cfg.seed, &base_dir)?;
            let model = spec.build(cfg.seed, &device)?;
            let trainer = GrpoTrainer::new(model, cfg.clone())?;
            let recorded = std::fs::canonicalize(&base_dir).unwrap_or(base_dir);
            (trainer, Box::new(ToySource::new(task)), recorded.display().to_string())
        } else {
            let reg = Registry::builtin();
            let options = reg.options(&a.target, &a.opts)?;
            let maker = reg.maker(&a.target, &options)?;
            let name = a.model.clone().context("--model is required for env training (a local HF model)")?;
            let mut policy = LlmPolicy::load_on(&name, &device).with_context(|| format!("cannot load model `{name}`"))?;
            let lora = Lora::attach(policy.model_mut(), &cfg.lora(), envs::policy::derive_seed(cfg.seed, 0x10a))?;
            let trainer = GrpoTrainer::with_lora(policy.model().clone(), lora, cfg.clone())?;
            let source =
                EnvSource::new(&a.target, options.to_map(), maker, policy).with_max_turn_tokens(cfg.max_turn_tokens);
            // A local folder is recorded as an absolute path, so `gym export` finds it from anywhere.
            let recorded = match std::fs::canonicalize(&name) {
                Ok(p) if p.is_dir() => p.display().to_string(),
                _ => name,
            };
            (trainer, Box::new(source), recorded)
        };
    std::fs::write(out.join("config.toml"), cfg.to_toml()?)?;

    let metrics_path = out.join("metrics.jsonl");
    if let Some(ck) = &resume_from {
        let st = checkpoint::restore(&mut trainer, ck)?;
        truncate_metrics(&metrics_path, st.global_step)?;
        if !a.quiet {
            eprintln!("resumed from {} (step {})", ck.display(), st.global_step);
        }
    } else {
        std::fs::write(&metrics_path, "")?;
    }
    let mut metrics = std::fs::OpenOptions::new()
        .append(true)
        .create(true)
        .open(&metrics_path)
        .with_context(|| format!("cannot open {}", metrics_path.display()))?;

    let bar =
        if a.quiet { indicatif::ProgressBar::hidden() } else { indicatif::ProgressBar::new(cfg.max_steps as u64) };
    bar.set_style(
        indicatif::ProgressStyle::with_template("{pos}/{len} [{elapsed_precise}] {msg}")
            .unwrap_or_else(|_| indicatif::ProgressStyle::default_bar()),
    );
    bar.set_position(trainer.step() as u64);
    while trainer.step() < cfg.max_steps {
        let m = trainer.train_step(source.as_mut())?;
        let mut line = serde_json::Map::new();
        line.insert("step".into(), serde_json::json!(trainer.step()));
        for (k, v) in &m {
            if k != "step" {
                line.insert(k.clone(), serde_json::json!(v));
            }
        }
        writeln!(metrics, "{}", serde_json::Value::Object(line))?;
        metrics.flush()?;
        bar.set_message(format!(
            "reward {:.3} ± {:.3}  loss {:+.4}  grad {:.3}  entropy {:.3}  zero-std {:.2}  len {:.1}  {:.0} tok/s",
            m.get("reward").copied().unwrap_or(0.0),
            m.get("reward_std").copied().unwrap_or(0.0),
            m.get("loss").copied().unwrap_or(0.0),
            m.get("grad_norm").copied().unwrap_or(0.0),
            m.get("entropy").copied().unwrap_or(0.0),
            m.get("frac_reward_zero_std").copied().unwrap_or(0.0),
            m.get("completions/mean_length").copied().unwrap_or(0.0),
            m.get("tokens_per_second").copied().unwrap_or(0.0),
        ));
        bar.set_position(trainer.step() as u64);
        let last = trainer.step() == cfg.max_steps;
        if (last || (cfg.save_steps > 0 && trainer.step().is_multiple_of(cfg.save_steps)))
            && trainer.at_generation_boundary()
        {
            checkpoint::save(&trainer, &out, &base_name, cfg.save_total_limit)?;
        }
    }
    bar.finish();
    trainer.lora().save_peft(&out.join("adapter"), &base_name)?;
    if !a.quiet {
        eprintln!("adapter written to {}", out.join("adapter").display());
    }
    Ok(())
}
