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

/// The live progress line of a training run (hidden with `--quiet`).
fn progress_bar(quiet: bool, steps: usize) -> indicatif::ProgressBar {
    let bar = if quiet { indicatif::ProgressBar::hidden() } else { indicatif::ProgressBar::new(steps as u64) };
    bar.set_style(
        indicatif::ProgressStyle::with_template("{pos}/{len} [{elapsed_precise}] {msg}")
            .unwrap_or_else(|_| indicatif::ProgressStyle::default_bar()),
    );
    bar
}

/// Caps candle's CPU threads for a small model (see
/// [`policies::llm::device::cpu_threads_for`]) unless `RAYON_NUM_THREADS`
/// is set. Called before any tensor work, while this is the only thread.
fn cap_cpu_threads(hidden_size: usize, device: &candle_core::Device) {
    if !device.is_cpu() || std::env::var_os("RAYON_NUM_THREADS").is_some() {
        return;
    }
    let cores = std::thread::available_parallelism().map_or(1, |n| n.get());
    let n = policies::llm::device::cpu_threads_for(hidden_size, cores);
    if n < cores {
        // candle reads RAYON_NUM_THREADS on every op; rayon's pool at its start.
        std::env::set_var("RAYON_NUM_THREADS", n.to_string());
    }
}

/// `gym train --sft`.
pub fn train_sft(a: &TrainArgs, source: &str) -> anyhow::Result<()> {
    use policies::llm::{ModelConfig, ModelFiles, RandomInit};
    use trainers::sft::{self, SftConfig, SftTrainer, SftWeights};
    let out = a.output_dir.clone();
    let name = a.model.clone().context("--sft needs --model (a local Hugging Face model folder, preset or repo id)")?;
    let files = ModelFiles::resolve(&name).with_context(|| format!("cannot find model `{name}`"))?;
    let device = policies::llm::parse_device(&a.device)?;
    let policy = LlmPolicy::from_files(&name, &files, &device, policies::llm::default_dtype(&device))
        .with_context(|| format!("cannot load model `{name}`"))?;
    // LoRA settings (and seed) from the GRPO config keys, so `--set lora_r=8` works for both.
    let gcfg = build_config(a, None)?;
    let full = a.sft_full || a.from_scratch;
    let examples = if Path::new(source).is_file() || source.ends_with(".jsonl") {
        sft::jsonl_examples(Path::new(source), &policy)?
    } else {
        let (env_id, generated) = match source.strip_prefix("programs:") {
            Some(id) => (id, true),
            None => (source, false),
        };
        if generated && env_id != "2048-strategy" {
            bail!("generated programs exist for 2048-strategy only (--sft programs:2048-strategy)");
        }
        let reg = Registry::builtin();
        let options = reg.options(env_id, &a.opts)?;
        let maker = reg.maker(env_id, &options)?;
        let reply = |env: &dyn envs::Env, seed: u64| -> Option<String> {
            if generated {
                Some(envs::games::strategy::programs::program_2048(seed))
            } else {
                env.demonstration().map(|d| d.text)
            }
        };
        sft::env_examples(env_id, &maker, 0..a.sft_examples, &policy, &reply)?
    };
    let cfg = SftConfig {
        learning_rate: a.learning_rate.unwrap_or(if full { 1e-3 } else { 2e-4 }),
        max_steps: a.max_steps.unwrap_or(100),
        per_device_train_batch_size: a.per_device_train_batch_size.unwrap_or(8),
        seed: gcfg.seed,
        weights: if full { SftWeights::Full } else { SftWeights::Lora(gcfg.lora()) },
        ..SftConfig::default()
    };
    let mcfg = ModelConfig::from_json(&serde_json::from_str(&std::fs::read_to_string(&files.config)?)?)?;
    cap_cpu_threads(mcfg.hidden_size, &device);
    let (model, varmap) = if full {
        let tensors = if a.from_scratch {
            let init = RandomInit { std: 0.02, embed_std: 0.02, seed: cfg.seed };
            policies::llm::random_weights(&mcfg, init, &device)?
        } else {
            sft::load_weights(&files)?
        };
        let (m, vm) = sft::trainable_model(&mcfg, tensors, &device)?;
        (m, Some(vm))
    } else {
        (policy.model().clone(), None)
    };
    let n_examples = examples.len();
    let mut trainer = SftTrainer::new(model, varmap, examples, cfg.clone())?;
    std::fs::create_dir_all(&out).with_context(|| format!("cannot create {}", out.display()))?;
    let metrics_path = out.join("metrics.jsonl");
    let mut metrics =
        std::fs::File::create(&metrics_path).with_context(|| format!("cannot create {}", metrics_path.display()))?;
    let bar = progress_bar(a.quiet, cfg.max_steps);
    while trainer.step() < cfg.max_steps {
        let m = trainer.train_step()?;
        writeln!(metrics, "{}", serde_json::to_string(&m)?)?;
        metrics.flush()?;
        bar.set_message(format!(
            "loss {:.4}  acc {:.3}  grad {:.3}  lr {:.2e}",
            m.get("loss").copied().unwrap_or(0.0),
            m.get("mean_token_accuracy").copied().unwrap_or(0.0),
            m.get("grad_norm").copied().unwrap_or(0.0),
            m.get("learning_rate").copied().unwrap_or(0.0),
        ));
        bar.set_position(trainer.step() as u64);
    }
    bar.finish();
    trainer.save(&files, &out.join("model"))?;
    if !a.quiet {
        eprintln!("SFT on {n_examples} examples done; model written to {}", out.join("model").display());
    }
    Ok(())
}

/// `gym train`.
pub fn train(a: TrainArgs) -> anyhow::Result<()> {
    if let Some(src) = a.sft.clone() {
        return train_sft(&a, &src);
    }
    let out = a.output_dir.clone();
    let resume_from = if a.resume {
        Some(checkpoint::latest(&out)?.with_context(|| format!("--resume: no checkpoint in {}", out.display()))?)
    } else {
        None
    };
    let cfg = build_config(&a, resume_from.as_deref())?;
    std::fs::create_dir_all(&out).with_context(|| format!("cannot create {}", out.display()))?;

    let device = policies::llm::parse_device(&a.device)?;
    let (mut trainer, mut source, base_name): (GrpoTrainer, Box<dyn RolloutSource>, String) = if let Some(task) =
        a.target.strip_prefix("toy:")
    {
        let task = match task {
            "count_a" => ToyTask::CountA,
            "echo" => ToyTask::Echo,
            other => bail!("unknown toy task `{other}` (toy:count_a, toy:echo)"),
        };
        if a.model.as_deref().is_some_and(|m| m != "tiny") {
            bail!("toy tasks train their own random model (--model tiny)");
        }
        let spec = TinyModelSpec::default();
        cap_cpu_threads(spec.hidden, &device);
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
        cap_cpu_threads(policy.model().config().hidden_size, &device);
        let lora = Lora::attach(policy.model_mut(), &cfg.lora(), envs::policy::derive_seed(cfg.seed, 0x10a))?;
        let trainer = GrpoTrainer::with_lora(policy.model().clone(), lora, cfg.clone())?;
        let source = EnvSource::new(&a.target, options.to_map(), maker, policy)
            .with_max_turn_tokens(cfg.max_turn_tokens)
            .with_threads(a.rollout_threads);
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

    let bar = progress_bar(a.quiet, cfg.max_steps);
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
    if a.save_merged {
        let files = policies::llm::ModelFiles::resolve(&base_name)
            .with_context(|| format!("--save-merged: cannot find the files of `{base_name}`"))?;
        let mut tensors = trainers::sft::load_weights(&files)?;
        trainers::sft::merge_lora(trainer.lora(), &mut tensors)?;
        trainers::sft::save_model_folder(&files, &tensors, &out.join("model"))?;
        if !a.quiet {
            eprintln!("merged model written to {}", out.join("model").display());
        }
    }
    if !a.quiet {
        eprintln!("adapter written to {}", out.join("adapter").display());
    }
    Ok(())
}
