//! `gym bench model`: raw speed of gym's decoder and GRPO step on a
//! random-init model of a real shape, on the CPU or a GPU — the numbers
//! BENCHMARKS.md compares with HF transformers and TRL
//! (`scripts/bench_gpu.sh` runs both sides in one call on the GPU machine).
//!
//! ```text
//! gym bench model --shape qwen2.5-0.5b --what gen  --device cuda --prompt-len 128 --new-tokens 256 --group 8
//! gym bench model --shape qwen3-4b     --what grpo --device cuda --new-tokens 256 --group 8 --lora-r 16
//! ```
//!
//! Prints one JSON object: for `gen`, prefill and decode tokens/s (prefill
//! of one prompt, then `group` samples sharing its cache); for `grpo`, the
//! time of each optimizer step (generation + scoring + backward + AdamW,
//! G completions of one prompt, β = 0, LoRA on all linear layers).

use std::time::Instant;

use anyhow::{bail, Context};
use candle_core::Tensor;
use envs::policy::derive_seed;
use models::sampling::{generate, FinishReason, NoText, SampleOptions};
use models::{default_dtype, parse_device, random, CausalLm, ModelConfig, RandomInit};
use rand::{Rng, SeedableRng};
use rand_chacha::ChaCha8Rng;
use trainers::{GrpoConfig, GrpoTrainer, RolloutSource, Sequence};

/// Arguments of `gym bench model`.
#[derive(Debug, clap::Args)]
pub struct ModelBenchArgs {
    /// Model shape: `qwen2.5-0.5b`, `qwen3-4b`, or a `config.json` path
    /// (random-init weights).
    #[arg(long, default_value = "qwen2.5-0.5b")]
    pub shape: String,
    /// A real model instead of a random shape: a preset, a model folder or
    /// an ORG/NAME repo id in the Hugging Face cache (its weights, in the
    /// device's dtype).
    #[arg(long)]
    pub model: Option<String>,
    /// The device's peak memory bandwidth in GB/s (H200: 4800, H100 SXM:
    /// 3350): `gen` then reports the fraction of the decode bound.
    #[arg(long)]
    pub bandwidth_gbs: Option<f64>,
    /// `gen` (generation tokens/s) or `grpo` (GRPO step time).
    #[arg(long, default_value = "gen")]
    pub what: String,
    /// `auto`, `cpu`, `cuda` or `cuda:N`.
    #[arg(long, default_value = "auto")]
    pub device: String,
    /// Prompt tokens.
    #[arg(long, default_value_t = 128)]
    pub prompt_len: usize,
    /// New tokens per sample (no EOS: every sample runs to this length).
    #[arg(long, default_value_t = 256)]
    pub new_tokens: usize,
    /// Samples per prompt (the GRPO group size G).
    #[arg(long, default_value_t = 8)]
    pub group: usize,
    /// Timed repetitions (after one warm-up).
    #[arg(long, default_value_t = 3)]
    pub reps: usize,
    /// LoRA rank for `grpo` (α = 2r).
    #[arg(long, default_value_t = 16)]
    pub lora_r: usize,
    /// Completions per scoring micro-batch for `grpo` (0 = the whole group).
    #[arg(long, default_value_t = 0)]
    pub micro_batch: usize,
    /// `grpo`: recompute each decoder block in the backward pass instead
    /// of keeping its activations (TRL's default, as here).
    #[arg(long, default_value_t = true, action = clap::ArgAction::Set)]
    pub gradient_checkpointing: bool,
    /// `gen`: attach LoRA adapters of rank `--lora-r` while sampling (as
    /// the GRPO step samples).
    #[arg(long)]
    pub gen_lora: bool,
}

/// Config of a named shape or a `config.json` path.
fn shape_config(shape: &str) -> anyhow::Result<ModelConfig> {
    if let Some(cfg) = random::shape(shape) {
        return Ok(cfg);
    }
    if !shape.ends_with(".json") {
        bail!("unknown shape `{shape}`; expected {} or a config.json path", random::SHAPES.join(", "));
    }
    let text = std::fs::read_to_string(shape).with_context(|| format!("cannot read {shape}"))?;
    let v: serde_json::Value = serde_json::from_str(&text).with_context(|| format!("{shape}: invalid JSON"))?;
    Ok(ModelConfig::from_json(&v)?)
}

fn prompt(len: usize, vocab: usize, seed: u64) -> Vec<u32> {
    let mut rng = ChaCha8Rng::seed_from_u64(seed);
    (0..len).map(|_| rng.gen_range(0..vocab as u32)).collect()
}

/// Waits for queued GPU work (a tiny device→host copy), so timings are real.
fn sync(model: &CausalLm) -> anyhow::Result<()> {
    model.device().synchronize()?;
    Ok(())
}

/// Random prompts of `len` tokens; reward = fraction of even token ids (any
/// non-constant function: only the work per step matters).
struct RandomPrompts {
    len: usize,
    vocab: usize,
}

impl RolloutSource for RandomPrompts {
    fn reward_names(&self) -> Vec<String> {
        vec!["even".into()]
    }

    fn generate(
        &mut self,
        model: &CausalLm,
        prompts: usize,
        group: usize,
        sampling: &SampleOptions,
        seed: u64,
    ) -> trainers::Result<Vec<Sequence>> {
        let mut out = Vec::new();
        for g in 0..prompts {
            let p = prompt(self.len, self.vocab, derive_seed(seed, g as u64));
            let opts = SampleOptions { seed: derive_seed(seed, 1000 + g as u64), ..sampling.clone() };
            for s in generate(model, &NoText, &p, group, &opts)? {
                let even = s.token_ids.iter().filter(|t| *t % 2 == 0).count() as f64;
                let seen = opts.clip_prompt(&p);
                out.push(Sequence {
                    prompt: seen.to_vec(),
                    loss_mask: vec![true; s.token_ids.len()],
                    rewards: vec![Some(even / s.token_ids.len().max(1) as f64)],
                    truncated: s.finish == FinishReason::Length,
                    completion: s.token_ids,
                    text: String::new(),
                    prompt_clipped: p.len() - seen.len(),
                });
            }
        }
        Ok(out)
    }
}

fn median(mut v: Vec<f64>) -> f64 {
    v.sort_by(|a, b| a.total_cmp(b));
    v[v.len() / 2]
}

/// Bytes a decode step must read — every weight once plus each row's keys
/// and values at the mean context `ctx` — and, given the bandwidth in GB/s,
/// the tokens/s at which a batch of `rows` would be bound by memory
/// bandwidth alone: `rows / (bytes / bandwidth)`. (For MoE models this
/// counts every expert, an over-estimate of the bytes.)
fn decode_bound(model: &CausalLm, cfg: &ModelConfig, rows: usize, ctx: usize, gbs: Option<f64>) -> (f64, Option<f64>) {
    let bytes = |t: &Tensor| (t.elem_count() * t.dtype().size_in_bytes()) as f64;
    // Every projection and the output head; the input embedding is gathered, not read whole.
    let weights: f64 = model.linears().iter().map(|l| bytes(l.weight())).sum::<f64>() + bytes(model.lm_head().weight());
    let dsize = model.embeddings().dtype().size_in_bytes() as f64;
    let kv = (cfg.num_hidden_layers * 2 * cfg.num_key_value_heads * cfg.head_dim) as f64 * dsize * ctx as f64;
    let step = weights + rows as f64 * kv;
    (step, gbs.map(|g| rows as f64 / (step / (g * 1e9))))
}

/// `gym bench model`.
pub fn run(a: ModelBenchArgs) -> anyhow::Result<()> {
    let device = parse_device(&a.device)?;
    let dtype = default_dtype(&device);
    anyhow::ensure!(a.reps > 0 && a.group > 0 && a.new_tokens > 0 && a.prompt_len > 0, "sizes must be positive");
    let t0 = Instant::now();
    let (cfg, mut model) = match &a.model {
        Some(name) => {
            let files = models::ModelFiles::resolve(name).with_context(|| format!("cannot find model `{name}`"))?;
            let cfg = ModelConfig::from_json(&models::error::read_json(&files.config)?)?;
            // SAFETY: the safetensors files are memory-mapped read-only and not modified while we run.
            let vb = unsafe { candle_nn::VarBuilder::from_mmaped_safetensors(&files.weights, dtype, &device)? };
            let model = CausalLm::load(&cfg, vb).with_context(|| format!("cannot load `{name}`"))?;
            (cfg, model)
        }
        None => {
            let cfg = shape_config(&a.shape)?;
            let model = CausalLm::random_with_dtype(&cfg, RandomInit::default(), &device, dtype)?;
            (cfg, model)
        }
    };
    // `gen --gen-lora`: sample with (zero-initialised) LoRA adapters
    // attached, as the GRPO step does.
    let _lora = if a.what == "gen" && a.gen_lora {
        let lc = trainers::LoraConfig { r: a.lora_r, lora_alpha: 2.0 * a.lora_r as f64, ..Default::default() };
        Some(trainers::Lora::attach(&mut model, &lc, 0)?)
    } else {
        None
    };
    sync(&model)?;
    let load_s = t0.elapsed().as_secs_f64();
    let dev_name = models::device::device_name(&device);
    let head = serde_json::json!({"shape": a.model.as_deref().unwrap_or(&a.shape), "weights": if a.model.is_some() { "real" } else { "random" }, "device": dev_name, "dtype": format!("{dtype:?}"), "gen_lora": a.gen_lora,
        "model": a.model, "prompt_len": a.prompt_len, "new_tokens": a.new_tokens, "group": a.group, "init_seconds": load_s});
    let report = match a.what.as_str() {
        "gen" => {
            let p = prompt(a.prompt_len, cfg.vocab_size, 7);
            let ids = Tensor::new(p.as_slice(), &device)?.unsqueeze(0)?;
            let opts = SampleOptions { max_new_tokens: a.new_tokens, seed: 1, ..SampleOptions::default() };
            let (mut pre, mut total) = (Vec::new(), Vec::new());
            for rep in 0..=a.reps {
                let t = Instant::now();
                model.forward_last(&ids, Some(&mut model.new_cache()))?;
                sync(&model)?;
                let tp = t.elapsed().as_secs_f64();
                let t = Instant::now();
                let s = generate(&model, &NoText, &p, a.group, &opts)?;
                sync(&model)?;
                let tt = t.elapsed().as_secs_f64();
                anyhow::ensure!(s.iter().all(|s| s.token_ids.len() == a.new_tokens), "a sample stopped early");
                if rep > 0 {
                    pre.push(tp);
                    total.push(tt);
                }
            }
            let (tp, tt) = (median(pre), median(total));
            let decode_s = (tt - tp).max(1e-9);
            let decode_tps = (a.group * a.new_tokens) as f64 / decode_s;
            let bound = decode_bound(&model, &cfg, a.group, a.prompt_len + a.new_tokens / 2, a.bandwidth_gbs);
            serde_json::json!({"what": "gen", "prefill_seconds": tp, "prefill_tokens_per_s": a.prompt_len as f64 / tp,
                "generate_seconds": tt, "decode_tokens_per_s": decode_tps,
                "end_to_end_tokens_per_s": (a.group * a.new_tokens) as f64 / tt,
                "decode_bytes_per_step": bound.0, "bandwidth_bound_tokens_per_s": bound.1,
                "fraction_of_bandwidth_bound": bound.1.map(|b| decode_tps / b),
                "gpu_memory_used_mib": models::device::gpu_memory_used(&device).map(|b| b >> 20)})
        }
        "grpo" => {
            let mb = if a.micro_batch == 0 { a.group } else { a.micro_batch.min(a.group) };
            anyhow::ensure!(a.group.is_multiple_of(mb), "--micro-batch must divide --group");
            let gc = GrpoConfig {
                learning_rate: 1e-5,
                max_steps: 1_000_000,
                num_generations: a.group,
                per_device_train_batch_size: mb,
                gradient_accumulation_steps: a.group / mb,
                max_completion_length: a.new_tokens,
                max_prompt_length: a.prompt_len,
                beta: 0.0,
                lora_r: a.lora_r,
                lora_alpha: 2.0 * a.lora_r as f64,
                temperature: 1.0,
                seed: 0,
                gradient_checkpointing: a.gradient_checkpointing,
                ..GrpoConfig::default()
            };
            let mut trainer = GrpoTrainer::new(model, gc)?;
            let mut source = RandomPrompts { len: a.prompt_len, vocab: cfg.vocab_size };
            let mut steps = Vec::new();
            let mut gen = Vec::new();
            for rep in 0..=a.reps {
                let t = Instant::now();
                let m = trainer.train_step(&mut source)?;
                sync(trainer.model())?;
                if rep > 0 {
                    steps.push(t.elapsed().as_secs_f64());
                    gen.push(m.get("generation_time").copied().unwrap_or(f64::NAN));
                }
            }
            serde_json::json!({"what": "grpo", "step_seconds": median(steps.clone()), "steps": steps,
                "generation_seconds": median(gen), "lora_r": a.lora_r, "micro_batch": mb,
                "gradient_checkpointing": a.gradient_checkpointing})
        }
        other => bail!("unknown --what `{other}`; expected gen or grpo"),
    };
    let mut out = head;
    if let (Some(o), Some(r)) = (out.as_object_mut(), report.as_object()) {
        o.extend(r.clone());
    }
    println!("{}", serde_json::to_string(&out)?);
    Ok(())
}
