//! Whole training runs: what `gym train` does, as a library.
//!
//! A run owns an output folder:
//!
//! * `config.toml`: the settings the run used (TRL `GRPOConfig` names);
//! * `metrics.jsonl`: one JSON object per optimizer step (TRL metric names);
//! * `checkpoint-N/` ([`crate::checkpoint`]): adapters in PEFT format,
//!   optimizer state and `trainer_state.json`, written atomically every
//!   `save_steps` and at the end, at most `save_total_limit` kept;
//! * `adapter/`: the final PEFT adapter; `model/` with `save_merged`: the
//!   base with the adapters merged in ([`models::export::write_hf`]);
//! * for toy tasks, `base-model/`: the random base the adapter belongs to.
//!
//! [`GrpoRun`] resumes from the newest checkpoint (its settings, its
//! step, metrics lines past it dropped: a killed run may have logged steps
//! it never saved). [`SftRun`] writes `metrics.jsonl` and `model/`.
//! Both are driven one step at a time ([`GrpoRun::step`], [`SftRun::step`])
//! so a caller can show progress and stop between steps; everything a
//! finished step wrote stays on disk.

use std::fs::File;
use std::io::Write;
use std::path::{Path, PathBuf};

use candle_core::Device;
use envs::Registry;
use models::export::{write_hf, Merged};
use models::{ModelConfig, ModelFiles, RandomInit};
use policies::llm::LlmPolicy;

use crate::checkpoint::{self, TrainerState};
use crate::envsource::EnvSource;
use crate::error::{Result, TrainError};
use crate::sft::{self, SftConfig, SftTrainer, SftWeights};
use crate::toy::{TinyModelSpec, ToySource, ToyTask};
use crate::trainer::{GrpoTrainer, Metrics, RolloutSource};
use crate::{GrpoConfig, Lora};

fn io_err(what: &str, path: &Path, e: impl std::fmt::Display) -> TrainError {
    TrainError::Config(format!("cannot {what} {}: {e}", path.display()))
}

/// Parses `value` as a TOML value, falling back to a string (so
/// `loss_type=dr_grpo` needs no quotes).
pub fn toml_value(value: &str) -> toml::Value {
    let doc = format!("v = {value}");
    match doc.parse::<toml::Table>() {
        Ok(mut t) => t.remove("v").unwrap_or_else(|| toml::Value::String(value.to_string())),
        Err(_) => toml::Value::String(value.to_string()),
    }
}

/// The settings of a run, in layers: the TOML `file` (on resume without a
/// file, the checkpoint's `config.toml`), then `overrides` in order (a
/// later key wins). Validated.
pub fn layered_config(
    file: Option<&Path>,
    resume_from: Option<&Path>,
    overrides: &[(String, toml::Value)],
) -> Result<GrpoConfig> {
    let mut table = toml::Table::new();
    let file = file.map(Path::to_path_buf).or_else(|| resume_from.map(|ck| ck.join("config.toml")));
    if let Some(f) = file {
        let text = std::fs::read_to_string(&f).map_err(|e| io_err("read", &f, e))?;
        table = text
            .parse::<toml::Table>()
            .map_err(|e| TrainError::Config(format!("{}: invalid TOML: {e}", f.display())))?;
    }
    for (k, v) in overrides {
        table.insert(k.clone(), v.clone());
    }
    let text = toml::to_string(&table).map_err(|e| TrainError::Config(e.to_string()))?;
    let cfg = GrpoConfig::from_toml(&text)?;
    cfg.validate()?;
    Ok(cfg)
}

/// Keeps only the metric lines of steps ≤ `step`.
fn truncate_metrics(path: &Path, step: usize) -> Result<()> {
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
    std::fs::write(path, body).map_err(|e| io_err("write", path, e))
}

fn env_source_parts(env_id: &str, env_options: &[String]) -> Result<(envs::Options, envs::EnvMaker)> {
    let reg = Registry::builtin();
    let options = reg.options(env_id, env_options).map_err(|e| TrainError::Config(e.to_string()))?;
    let maker = reg.maker(env_id, &options).map_err(|e| TrainError::Config(e.to_string()))?;
    Ok((options, maker))
}

/// What a GRPO run trains and where.
#[derive(Debug, Clone)]
pub struct GrpoRunSpec {
    /// An env id, or a toy task (`toy:count_a`, `toy:echo`).
    pub target: String,
    /// Env options, `name=value`.
    pub env_options: Vec<String>,
    /// The model (preset, folder or repo id); toy tasks build their own
    /// (`None` or `tiny`).
    pub model: Option<String>,
    /// Where to train.
    pub device: Device,
    /// Rollout worker threads (env targets).
    pub rollout_threads: usize,
    /// The output folder.
    pub output_dir: PathBuf,
    /// Also write `model/`, the base with the adapters merged in.
    pub save_merged: bool,
    /// Start over in a folder that holds an earlier run's checkpoints
    /// (they are deleted); without it such a folder is refused, so that a
    /// later `--resume` can never pick a stale checkpoint.
    pub overwrite: bool,
    /// Resume even when settings that shape training differ from the
    /// checkpoint's (see [`RESUMABLE_CHANGES`]).
    pub allow_config_change: bool,
}

/// Settings a resumed run may change freely: how long it runs, how often it
/// saves and logs. Any other difference from the checkpoint's settings is
/// refused unless [`GrpoRunSpec::allow_config_change`] is set, since the
/// resumed run would no longer be the run it continues.
pub const RESUMABLE_CHANGES: &[&str] = &["max_steps", "save_steps", "save_total_limit", "logging_steps"];

/// The settings (other than [`RESUMABLE_CHANGES`]) in which `new` differs
/// from the checkpoint `ck`'s `config.toml`, as `key: old → new`.
pub fn config_changes(ck: &Path, new: &GrpoConfig) -> Result<Vec<String>> {
    let path = ck.join("config.toml");
    let text = std::fs::read_to_string(&path).map_err(|e| io_err("read", &path, e))?;
    let parse = |t: &str, what: &Path| {
        t.parse::<toml::Table>().map_err(|e| TrainError::Config(format!("{}: invalid TOML: {e}", what.display())))
    };
    let old = parse(&text, &path)?;
    let new = parse(&new.to_toml()?, Path::new("the new settings"))?;
    let mut keys: Vec<&String> = old.keys().chain(new.keys()).collect();
    keys.sort();
    keys.dedup();
    let show = |v: Option<&toml::Value>| v.map_or("unset".to_string(), |v| v.to_string());
    Ok(keys
        .into_iter()
        .filter(|k| !RESUMABLE_CHANGES.contains(&k.as_str()) && old.get(*k) != new.get(*k))
        .map(|k| format!("{k}: {} → {}", show(old.get(k)), show(new.get(k))))
        .collect())
}

/// A GRPO run in progress.
pub struct GrpoRun {
    trainer: GrpoTrainer,
    source: Box<dyn RolloutSource>,
    base_name: String,
    cfg: GrpoConfig,
    out: PathBuf,
    metrics: File,
    save_merged: bool,
    resumed: Option<(PathBuf, TrainerState)>,
}

impl std::fmt::Debug for GrpoRun {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("GrpoRun").field("out", &self.out).field("base", &self.base_name).finish_non_exhaustive()
    }
}

/// What a finished run wrote.
#[derive(Debug, Clone, PartialEq)]
pub struct RunOutputs {
    /// The final PEFT adapter (GRPO and LoRA SFT).
    pub adapter: Option<PathBuf>,
    /// The loadable model folder, when one was written.
    pub model: Option<PathBuf>,
}

impl GrpoRun {
    /// The checkpoint a resumed run in `output_dir` continues from: the
    /// newest one, or an error when there is none.
    pub fn resume_point(output_dir: &Path) -> Result<PathBuf> {
        checkpoint::latest(output_dir)?
            .ok_or_else(|| TrainError::Config(format!("--resume: no checkpoint in {}", output_dir.display())))
    }

    /// Builds the model, adapters and rollout source, writes `config.toml`
    /// and opens `metrics.jsonl`; with `resume_from`, restores that
    /// checkpoint and drops metric lines past it.
    pub fn start(spec: &GrpoRunSpec, cfg: GrpoConfig, resume_from: Option<&Path>) -> Result<Self> {
        let out = spec.output_dir.clone();
        std::fs::create_dir_all(&out).map_err(|e| io_err("create", &out, e))?;
        if let Some(ck) = resume_from.filter(|_| !spec.allow_config_change) {
            let changes = config_changes(ck, &cfg)?;
            if !changes.is_empty() {
                return Err(TrainError::Config(format!(
                    "--resume from {} with different settings ({}); only {} may change: pass \
                     --allow-config-change to resume anyway",
                    ck.display(),
                    changes.join(", "),
                    RESUMABLE_CHANGES.join(", ")
                )));
            }
        }
        if resume_from.is_none() {
            let old = checkpoint::list(&out)?;
            if let Some((step, _)) = old.last() {
                if !spec.overwrite {
                    return Err(TrainError::Config(format!(
                        "{} holds checkpoints of an earlier run (newest: checkpoint-{step}): pass --resume to \
                         continue it, or --overwrite to start over (its checkpoints are deleted)",
                        out.display()
                    )));
                }
                for (_, dir) in &old {
                    std::fs::remove_dir_all(dir).map_err(|e| io_err("remove", dir, e))?;
                }
            }
        }
        let (mut trainer, source, base_name): (GrpoTrainer, Box<dyn RolloutSource>, String) = if let Some(task) =
            spec.target.strip_prefix("toy:")
        {
            let task = match task {
                "count_a" => ToyTask::CountA,
                "echo" => ToyTask::Echo,
                other => return Err(TrainError::Config(format!("unknown toy task `{other}` (toy:count_a, toy:echo)"))),
            };
            if spec.model.as_deref().is_some_and(|m| m != "tiny") {
                return Err(TrainError::Config("toy tasks train their own random model (--model tiny)".into()));
            }
            let tiny = TinyModelSpec::default();
            models::device::cap_cpu_threads(tiny.hidden, &spec.device);
            let base_dir = out.join("base-model");
            tiny.save(cfg.seed, &base_dir)?;
            let model = tiny.build(cfg.seed, &spec.device)?;
            let trainer = GrpoTrainer::new(model, cfg.clone())?;
            let recorded = std::fs::canonicalize(&base_dir).unwrap_or(base_dir);
            (trainer, Box::new(ToySource::new(task)), recorded.display().to_string())
        } else {
            let (options, maker) = env_source_parts(&spec.target, &spec.env_options)?;
            let name = spec
                .model
                .clone()
                .ok_or_else(|| TrainError::Config("--model is required for env training (a local HF model)".into()))?;
            let mut policy = policies::llm::load_on(&name, &spec.device)
                .map_err(|e| TrainError::Config(format!("cannot load model `{name}`: {e}")))?;
            models::device::cap_cpu_threads(policy.model().config().hidden_size, &spec.device);
            let lora = Lora::attach(policy.model_mut(), &cfg.lora(), envs::policy::derive_seed(cfg.seed, 0x10a))?;
            let trainer = GrpoTrainer::with_lora(policy.model().clone(), lora, cfg.clone())?;
            let source = EnvSource::new(&spec.target, options.to_map(), maker, policy)
                .with_max_turn_tokens(cfg.max_turn_tokens)
                .with_threads(spec.rollout_threads);
            // A local folder is recorded as an absolute path, so `gym export` finds it from anywhere.
            let recorded = match std::fs::canonicalize(&name) {
                Ok(p) if p.is_dir() => p.display().to_string(),
                _ => name,
            };
            (trainer, Box::new(source), recorded)
        };
        std::fs::write(out.join("config.toml"), cfg.to_toml()?)?;
        let metrics_path = out.join("metrics.jsonl");
        let resumed = match resume_from {
            Some(ck) => {
                let st = checkpoint::restore(&mut trainer, ck)?;
                truncate_metrics(&metrics_path, st.global_step)?;
                Some((ck.to_path_buf(), st))
            }
            None => {
                std::fs::write(&metrics_path, "").map_err(|e| io_err("create", &metrics_path, e))?;
                None
            }
        };
        let metrics = std::fs::OpenOptions::new()
            .append(true)
            .create(true)
            .open(&metrics_path)
            .map_err(|e| io_err("open", &metrics_path, e))?;
        Ok(Self { trainer, source, base_name, cfg, out, metrics, save_merged: spec.save_merged, resumed })
    }

    /// The checkpoint and state this run resumed from.
    pub fn resumed(&self) -> Option<(&Path, &TrainerState)> {
        self.resumed.as_ref().map(|(p, s)| (p.as_path(), s))
    }

    /// The settings.
    pub fn config(&self) -> &GrpoConfig {
        &self.cfg
    }

    /// Optimizer steps taken (including those before a resume).
    pub fn steps_done(&self) -> usize {
        self.trainer.step()
    }

    /// Whether `max_steps` is reached.
    pub fn is_done(&self) -> bool {
        self.trainer.step() >= self.cfg.max_steps
    }

    /// One optimizer step: its metrics line is appended to
    /// `metrics.jsonl`, and a checkpoint is written when due.
    pub fn step(&mut self) -> Result<Metrics> {
        let m = self.trainer.train_step(self.source.as_mut())?;
        let mut line = serde_json::Map::new();
        line.insert("step".into(), serde_json::json!(self.trainer.step()));
        for (k, v) in &m {
            if k != "step" {
                line.insert(k.clone(), serde_json::json!(v));
            }
        }
        writeln!(self.metrics, "{}", serde_json::Value::Object(line))?;
        self.metrics.flush()?;
        let step = self.trainer.step();
        let due = step == self.cfg.max_steps || (self.cfg.save_steps > 0 && step.is_multiple_of(self.cfg.save_steps));
        if due && self.trainer.at_generation_boundary() {
            checkpoint::save(&self.trainer, &self.out, &self.base_name, self.cfg.save_total_limit)?;
        }
        Ok(m)
    }

    /// Saves a checkpoint of the last finished step now (an interrupted run
    /// keeps its work), unless one exists for it. `None` when the trainer is
    /// between the steps of one generation batch, where a checkpoint could
    /// not be resumed exactly; the newest earlier checkpoint then stands.
    pub fn save_checkpoint(&self) -> Result<Option<PathBuf>> {
        let step = self.trainer.step();
        let path = self.out.join(format!("checkpoint-{step}"));
        if step == 0 || !self.trainer.at_generation_boundary() {
            return Ok(None);
        }
        if checkpoint::list(&self.out)?.iter().any(|(n, _)| *n == step) {
            return Ok(Some(path));
        }
        checkpoint::save(&self.trainer, &self.out, &self.base_name, self.cfg.save_total_limit).map(Some)
    }

    /// The newest checkpoint in the output folder.
    pub fn latest_checkpoint(&self) -> Result<Option<PathBuf>> {
        checkpoint::latest(&self.out)
    }

    /// Writes `adapter/` and, with `save_merged`, `model/`.
    pub fn finish(self) -> Result<RunOutputs> {
        let adapter = self.out.join("adapter");
        self.trainer.lora().save_peft(&adapter, &self.base_name)?;
        let model = if self.save_merged {
            let files = ModelFiles::resolve(&self.base_name).map_err(|e| {
                TrainError::Config(format!("--save-merged: cannot find the files of `{}`: {e}", self.base_name))
            })?;
            let mut merged = Merged::load(&files.dir)?;
            merged.add_lora(self.trainer.lora())?;
            let dir = self.out.join("model");
            write_hf(&merged, &dir, None)?;
            Some(dir)
        } else {
            None
        };
        Ok(RunOutputs { adapter: Some(adapter), model })
    }
}

/// What an SFT run trains on and where.
#[derive(Debug, Clone)]
pub struct SftRunSpec {
    /// A JSONL file in TRL's formats, an env id (its demonstrations), or
    /// `programs:2048-strategy` (generated strategy programs).
    pub source: String,
    /// Env options, `name=value` (env sources).
    pub env_options: Vec<String>,
    /// Examples from an env: seeds `0..env_examples`.
    pub env_examples: u64,
    /// The model (preset, folder or repo id).
    pub model: String,
    /// Train every weight instead of LoRA adapters.
    pub full: bool,
    /// Start from random weights of the model's shape (implies `full`).
    pub from_scratch: bool,
    /// Where to train.
    pub device: Device,
    /// The output folder.
    pub output_dir: PathBuf,
    /// Learning rate (default 1e-3 full, 2e-4 LoRA).
    pub learning_rate: Option<f64>,
    /// Optimizer steps (default 100).
    pub max_steps: Option<usize>,
    /// Examples per step (default 8).
    pub batch_size: Option<usize>,
}

/// An SFT run in progress.
pub struct SftRun {
    trainer: SftTrainer,
    files: ModelFiles,
    out: PathBuf,
    metrics: File,
    max_steps: usize,
    examples: usize,
}

impl std::fmt::Debug for SftRun {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("SftRun").field("out", &self.out).field("examples", &self.examples).finish_non_exhaustive()
    }
}

impl SftRun {
    /// Loads the model, builds the examples and opens `metrics.jsonl`.
    /// `grpo` gives the LoRA settings and the seed (the same keys as GRPO,
    /// so `--set lora_r=8` works for both).
    pub fn start(spec: &SftRunSpec, grpo: &GrpoConfig) -> Result<Self> {
        let name = &spec.model;
        let files = ModelFiles::resolve(name)?;
        let policy = LlmPolicy::from_files(name, &files, &spec.device, models::default_dtype(&spec.device))
            .map_err(|e| TrainError::Config(format!("cannot load model `{name}`: {e}")))?;
        let full = spec.full || spec.from_scratch;
        let source = spec.source.as_str();
        let examples = if Path::new(source).is_file() || source.ends_with(".jsonl") {
            sft::jsonl_examples(Path::new(source), &policy)?
        } else {
            let (env_id, generated) = match source.strip_prefix("programs:") {
                Some(id) => (id, true),
                None => (source, false),
            };
            if generated && env_id != "2048-strategy" {
                return Err(TrainError::Config(
                    "generated programs exist for 2048-strategy only (--sft programs:2048-strategy)".into(),
                ));
            }
            let (_, maker) = env_source_parts(env_id, &spec.env_options)?;
            let reply = |env: &dyn envs::Env, seed: u64| -> Option<String> {
                if generated {
                    Some(envs::games::strategy::programs::program_2048(seed))
                } else {
                    env.demonstration().map(|d| d.text)
                }
            };
            sft::env_examples(env_id, &maker, 0..spec.env_examples, &policy, &reply)?
        };
        let cfg = SftConfig {
            learning_rate: spec.learning_rate.unwrap_or(if full { 1e-3 } else { 2e-4 }),
            max_steps: spec.max_steps.unwrap_or(100),
            per_device_train_batch_size: spec.batch_size.unwrap_or(8),
            seed: grpo.seed,
            weights: if full { SftWeights::Full } else { SftWeights::Lora(grpo.lora()) },
            ..SftConfig::default()
        };
        let mcfg = ModelConfig::from_json(&models::error::read_json(&files.config)?)?;
        models::device::cap_cpu_threads(mcfg.hidden_size, &spec.device);
        let (model, varmap) = if full {
            let tensors = if spec.from_scratch {
                let init = RandomInit { std: 0.02, embed_std: 0.02, seed: cfg.seed };
                models::random_weights(&mcfg, init, &spec.device)?
            } else {
                Merged::load(&files.dir)?.tensors.into_iter().collect()
            };
            let (m, vm) = sft::trainable_model(&mcfg, tensors, &spec.device)?;
            (m, Some(vm))
        } else {
            (policy.model().clone(), None)
        };
        let n_examples = examples.len();
        let max_steps = cfg.max_steps;
        let trainer = SftTrainer::new(model, varmap, examples, cfg)?;
        let out = spec.output_dir.clone();
        std::fs::create_dir_all(&out).map_err(|e| io_err("create", &out, e))?;
        let metrics_path = out.join("metrics.jsonl");
        let metrics = File::create(&metrics_path).map_err(|e| io_err("create", &metrics_path, e))?;
        Ok(Self { trainer, files, out, metrics, max_steps, examples: n_examples })
    }

    /// Training examples.
    pub fn examples(&self) -> usize {
        self.examples
    }

    /// Optimizer steps taken.
    pub fn steps_done(&self) -> usize {
        self.trainer.step()
    }

    /// Steps in the run.
    pub fn max_steps(&self) -> usize {
        self.max_steps
    }

    /// Whether every step is done.
    pub fn is_done(&self) -> bool {
        self.trainer.step() >= self.max_steps
    }

    /// One optimizer step, its metrics appended to `metrics.jsonl`.
    pub fn step(&mut self) -> Result<Metrics> {
        let m = self.trainer.train_step()?;
        writeln!(self.metrics, "{}", serde_json::to_string(&m)?)?;
        self.metrics.flush()?;
        Ok(m)
    }

    /// Writes `model/` (and `model/adapter/` for LoRA).
    pub fn finish(self) -> Result<RunOutputs> {
        let dir = self.out.join("model");
        self.trainer.save(&self.files, &dir)?;
        let adapter = self.trainer.lora().map(|_| dir.join("adapter"));
        Ok(RunOutputs { adapter, model: Some(dir) })
    }
}
