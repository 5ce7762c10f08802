//! LoRA adapters on the [`Linear`] injection points of gym's [`CausalLm`].
//!
//! Each targeted projection `y = x·Wᵀ + b` gets two trainable f32
//! [`Var`]s, `A [r, in]` (Kaiming-uniform, as PEFT) and `B [out, r]`
//! (zeros), and computes `y + (α/r)·(dropout(x)·Aᵀ)·Bᵀ`. The base weights
//! stay plain tensors (frozen, any dtype, possibly mmapped). All adapters
//! of one [`Lora`] share an *enabled* switch — the KL reference policy is
//! the same model with adapters disabled — and a *training* switch that
//! turns dropout on (dropout masks come from a seeded ChaCha stream, so a
//! run is reproducible).
//!
//! Adapters are saved and loaded in PEFT's format
//! (`adapter_config.json` + `adapter_model.safetensors`, tensor names
//! `base_model.model.<module>.lora_A.weight`).

use std::collections::{BTreeSet, HashMap};
use std::path::Path;
use std::sync::atomic::{AtomicBool, Ordering};
use std::sync::{Arc, Mutex};

use crate::model::CausalLm;
use crate::nn::{LinearAdapter, LinearKind};
use candle_core::{DType, Tensor, Var};
use rand::{Rng, SeedableRng};
use rand_chacha::ChaCha8Rng;
use serde::{Deserialize, Serialize};

use crate::error::{ModelError, Result};

/// The attention and MLP projections (PEFT's "all-linear" for decoder LLMs).
pub const ALL_LINEAR: &[&str] = &["q_proj", "k_proj", "v_proj", "o_proj", "gate_proj", "up_proj", "down_proj"];

/// LoRA settings (PEFT `LoraConfig` names).
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
#[serde(default, deny_unknown_fields)]
pub struct LoraConfig {
    /// Rank `r`.
    pub r: usize,
    /// `lora_alpha`: the update is scaled by `alpha / r` (or `alpha / √r`
    /// with `use_rslora`).
    pub lora_alpha: f64,
    /// `lora_dropout` on the adapter's input (training forward only).
    pub lora_dropout: f64,
    /// Module names to adapt (`q_proj`, …); `["all-linear"]` means
    /// [`ALL_LINEAR`].
    pub target_modules: Vec<String>,
    /// Rank-stabilised scaling `alpha / √r`.
    pub use_rslora: bool,
}

impl Default for LoraConfig {
    fn default() -> Self {
        Self {
            r: 16,
            lora_alpha: 32.0,
            lora_dropout: 0.0,
            target_modules: vec!["all-linear".into()],
            use_rslora: false,
        }
    }
}

impl LoraConfig {
    /// The multiplier on `B·A`.
    pub fn scaling(&self) -> f64 {
        if self.use_rslora {
            self.lora_alpha / (self.r as f64).sqrt()
        } else {
            self.lora_alpha / self.r as f64
        }
    }

    /// The targeted module names, with `all-linear` expanded.
    pub fn targets(&self) -> BTreeSet<String> {
        let mut out = BTreeSet::new();
        for t in &self.target_modules {
            if t == "all-linear" || t == "all_linear" {
                out.extend(ALL_LINEAR.iter().map(|s| s.to_string()));
            } else {
                out.insert(t.clone());
            }
        }
        out
    }
}

/// Switches shared by every adapter of one [`Lora`].
#[derive(Debug)]
struct Shared {
    enabled: AtomicBool,
    training: AtomicBool,
    dropout: f64,
    rng: Mutex<ChaCha8Rng>,
}

/// One adapted projection.
#[derive(Debug)]
pub struct LoraLayer {
    /// The module's full name, e.g. `model.layers.0.self_attn.q_proj`.
    name: String,
    kind: LinearKind,
    a: Var,
    b: Var,
    scale: f64,
    shared: Arc<Shared>,
}

impl LoraLayer {
    /// The module's full name.
    pub fn name(&self) -> &str {
        &self.name
    }

    /// Which projection it adapts.
    pub fn kind(&self) -> LinearKind {
        self.kind
    }

    /// `A [r, in]`.
    pub fn a(&self) -> &Var {
        &self.a
    }

    /// `B [out, r]`.
    pub fn b(&self) -> &Var {
        &self.b
    }

    /// The adapter's weight update `scale·B·A` (`[out, in]`, f32), what
    /// merging adds to the base weight.
    pub fn delta(&self) -> candle_core::Result<Tensor> {
        self.b.as_tensor().matmul(self.a.as_tensor())? * self.scale
    }

    fn dropout(&self, x: &Tensor) -> candle_core::Result<Tensor> {
        let p = self.shared.dropout;
        if p <= 0.0 || !self.shared.training.load(Ordering::Relaxed) {
            return Ok(x.clone());
        }
        let n = x.elem_count();
        let keep = 1.0 / (1.0 - p);
        let mask: Vec<f32> = {
            let mut rng = self.shared.rng.lock().unwrap_or_else(|e| e.into_inner());
            (0..n).map(|_| if rng.gen::<f64>() < p { 0.0 } else { keep as f32 }).collect()
        };
        let mask = Tensor::from_vec(mask, x.shape(), x.device())?.to_dtype(x.dtype())?;
        x * mask
    }
}

impl LinearAdapter for LoraLayer {
    fn forward(&self, x: &Tensor, base: &Tensor) -> candle_core::Result<Tensor> {
        if !self.shared.enabled.load(Ordering::Relaxed) {
            return Ok(base.clone());
        }
        let dims = x.dims().to_vec();
        let inp = dims[dims.len() - 1];
        let rows = x.elem_count() / inp.max(1);
        let xf = self.dropout(&x.reshape((rows, inp))?.to_dtype(DType::F32)?)?;
        let h = xf.matmul(&self.a.as_tensor().t()?)?;
        let y = (h.matmul(&self.b.as_tensor().t()?)? * self.scale)?;
        let mut out_dims = dims[..dims.len() - 1].to_vec();
        out_dims.push(y.dim(1)?);
        base + y.reshape(out_dims)?.to_dtype(base.dtype())?
    }
}

/// The adapters attached to one model.
#[derive(Debug, Clone)]
pub struct Lora {
    config: LoraConfig,
    layers: Vec<Arc<LoraLayer>>,
    shared: Arc<Shared>,
}

/// Disables a [`Lora`] until dropped (the KL reference forward).
#[derive(Debug)]
pub struct DisabledGuard<'a> {
    lora: &'a Lora,
    was: bool,
}

impl Drop for DisabledGuard<'_> {
    fn drop(&mut self) {
        self.lora.shared.enabled.store(self.was, Ordering::Relaxed);
    }
}

impl Lora {
    /// Creates adapters on every targeted projection of `model` and
    /// attaches them. `A` is drawn from `U(−1/√in, 1/√in)` (PEFT's
    /// `kaiming_uniform_(a=√5)`) with a ChaCha stream seeded by `seed`;
    /// `B` is zero, so the adapted model starts equal to the base.
    pub fn attach(model: &mut CausalLm, config: &LoraConfig, seed: u64) -> Result<Self> {
        if config.r == 0 {
            return Err(ModelError::Invalid("LoRA rank r must be at least 1".into()));
        }
        if !(0.0..1.0).contains(&config.lora_dropout) {
            return Err(ModelError::Invalid(format!("lora_dropout {} is not in [0, 1)", config.lora_dropout)));
        }
        let targets = config.targets();
        let known: BTreeSet<&str> = model.linears().iter().map(|l| l.kind().module_name()).collect();
        if let Some(bad) = targets.iter().find(|t| !known.contains(t.as_str())) {
            return Err(ModelError::Invalid(format!(
                "target module `{bad}` is not in this model (adaptable: {})",
                known.into_iter().collect::<Vec<_>>().join(", ")
            )));
        }
        let shared = Arc::new(Shared {
            enabled: AtomicBool::new(true),
            training: AtomicBool::new(false),
            dropout: config.lora_dropout,
            rng: Mutex::new(ChaCha8Rng::seed_from_u64(seed ^ 0x5eed_d40f)),
        });
        let mut rng = ChaCha8Rng::seed_from_u64(seed);
        let device = model.device().clone();
        let mut layers = Vec::new();
        for lin in model.linears_mut() {
            if !targets.contains(lin.kind().module_name()) {
                continue;
            }
            let (inp, out) = lin.dims();
            let bound = 1.0 / (inp as f64).sqrt();
            let a: Vec<f32> = (0..config.r * inp).map(|_| rng.gen_range(-bound..bound) as f32).collect();
            let a = Var::from_vec(a, (config.r, inp), &device)?;
            let b = Var::zeros((out, config.r), DType::F32, &device)?;
            let layer = Arc::new(LoraLayer {
                name: lin.name().to_string(),
                kind: lin.kind(),
                a,
                b,
                scale: config.scaling(),
                shared: shared.clone(),
            });
            lin.set_adapter(Some(layer.clone()));
            layers.push(layer);
        }
        Ok(Self { config: config.clone(), layers, shared })
    }

    /// Removes the adapters from `model` (the base model again).
    pub fn detach(model: &mut CausalLm) {
        for lin in model.linears_mut() {
            lin.set_adapter(None);
        }
    }

    /// The settings.
    pub fn config(&self) -> &LoraConfig {
        &self.config
    }

    /// A copy of `model` for sampling, with every adapter merged into its
    /// base weight (`W + scale·B·A`) and detached, or `None` when merging
    /// does not apply: the adapters are disabled, or a base weight is not
    /// f32 on the CPU (merging into bf16 would round small updates away;
    /// GPUs keep the unmerged path). The copy shares every other tensor
    /// with `model`; the merged weights cost one matrix per adapted layer.
    ///
    /// Decoding with the copy skips two small matmuls, a scale and an add
    /// per adapted layer and token; the distribution is the same up to
    /// float rounding.
    pub fn merged_copy(&self, model: &CausalLm) -> Result<Option<CausalLm>> {
        if !self.enabled() {
            return Ok(None);
        }
        let mut copy = model.clone();
        let mut merged = 0;
        for lin in copy.linears_mut() {
            let Some(layer) = self.layers.iter().find(|l| l.name == lin.name()) else { continue };
            let w = lin.weight();
            if w.dtype() != DType::F32 || !w.device().is_cpu() {
                return Ok(None);
            }
            let new = (w + layer.delta()?)?.detach();
            lin.set_weight(new)?;
            lin.set_adapter(None);
            merged += 1;
        }
        Ok((merged == self.layers.len()).then_some(copy))
    }

    /// The adapted layers, in model order.
    pub fn layers(&self) -> &[Arc<LoraLayer>] {
        &self.layers
    }

    /// Every trainable variable: `A` then `B` of each layer, in model order.
    pub fn vars(&self) -> Vec<Var> {
        self.layers.iter().flat_map(|l| [l.a.clone(), l.b.clone()]).collect()
    }

    /// Whether the adapters are on.
    pub fn enabled(&self) -> bool {
        self.shared.enabled.load(Ordering::Relaxed)
    }

    /// Disables the adapters until the guard is dropped.
    pub fn disabled(&self) -> DisabledGuard<'_> {
        let was = self.shared.enabled.swap(false, Ordering::Relaxed);
        DisabledGuard { lora: self, was }
    }

    /// Training mode: dropout is applied (when `lora_dropout > 0`).
    pub fn set_training(&self, on: bool) {
        self.shared.training.store(on, Ordering::Relaxed);
    }

    /// Reseeds the dropout stream (the trainer does this per micro-step so
    /// that a resumed run draws the same masks).
    pub fn reseed_dropout(&self, seed: u64) {
        *self.shared.rng.lock().unwrap_or_else(|e| e.into_inner()) = ChaCha8Rng::seed_from_u64(seed);
    }

    /// The adapter tensors under PEFT names
    /// (`base_model.model.<module>.lora_{A,B}.weight`).
    pub fn peft_tensors(&self) -> HashMap<String, Tensor> {
        let mut out = HashMap::new();
        for l in &self.layers {
            out.insert(format!("base_model.model.{}.lora_A.weight", l.name), l.a.as_detached_tensor());
            out.insert(format!("base_model.model.{}.lora_B.weight", l.name), l.b.as_detached_tensor());
        }
        out
    }

    /// Loads adapter tensors (PEFT names) into the variables. Every adapter
    /// must be present with its shape.
    pub fn load_tensors(&self, tensors: &HashMap<String, Tensor>) -> Result<()> {
        for l in &self.layers {
            for (suffix, var) in [("lora_A", &l.a), ("lora_B", &l.b)] {
                let key = format!("base_model.model.{}.{suffix}.weight", l.name);
                let t = tensors.get(&key).ok_or_else(|| ModelError::Invalid(format!("adapter file lacks `{key}`")))?;
                if t.dims() != var.dims() {
                    return Err(ModelError::Invalid(format!(
                        "`{key}` has shape {:?}, expected {:?}",
                        t.dims(),
                        var.dims()
                    )));
                }
                var.set(&t.to_dtype(DType::F32)?.to_device(var.device())?)?;
            }
        }
        Ok(())
    }

    /// PEFT's `adapter_config.json` for these adapters.
    pub fn peft_config(&self, base_model: &str) -> serde_json::Value {
        let mut modules: Vec<&str> =
            self.layers.iter().map(|l| l.kind.module_name()).collect::<BTreeSet<_>>().into_iter().collect();
        modules.sort_unstable();
        serde_json::json!({
            "peft_type": "LORA",
            "task_type": "CAUSAL_LM",
            "base_model_name_or_path": base_model,
            "r": self.config.r,
            "lora_alpha": self.config.lora_alpha,
            "lora_dropout": self.config.lora_dropout,
            "target_modules": modules,
            "use_rslora": self.config.use_rslora,
            "bias": "none",
            "fan_in_fan_out": false,
            "inference_mode": true,
            "init_lora_weights": true,
            "modules_to_save": null,
            "use_dora": false,
            "lora_bias": false,
            "layers_to_transform": null,
            "layers_pattern": null,
            "rank_pattern": {},
            "alpha_pattern": {},
            "revision": null,
        })
    }

    /// Writes `adapter_config.json` and `adapter_model.safetensors` into
    /// `dir` (created if needed).
    pub fn save_peft(&self, dir: &Path, base_model: &str) -> Result<()> {
        std::fs::create_dir_all(dir)?;
        let cfg = serde_json::to_string_pretty(&self.peft_config(base_model))?;
        std::fs::write(dir.join("adapter_config.json"), cfg)?;
        candle_core::safetensors::save(&self.peft_tensors(), dir.join("adapter_model.safetensors"))?;
        Ok(())
    }

    /// Loads `adapter_model.safetensors` from a PEFT adapter folder into
    /// these adapters (which must have the same targets and rank).
    pub fn load_peft(&self, dir: &Path) -> Result<()> {
        let t = candle_core::safetensors::load(dir.join("adapter_model.safetensors"), &candle_core::Device::Cpu)?;
        self.load_tensors(&t)
    }

    /// Reads a PEFT `adapter_config.json` into a [`LoraConfig`].
    pub fn read_peft_config(dir: &Path) -> Result<LoraConfig> {
        let v: serde_json::Value = serde_json::from_str(&std::fs::read_to_string(dir.join("adapter_config.json"))?)?;
        let get_f = |k: &str| v.get(k).and_then(|x| x.as_f64());
        let r = v
            .get("r")
            .and_then(|x| x.as_u64())
            .ok_or_else(|| ModelError::Invalid("adapter_config.json: no `r`".into()))? as usize;
        let target_modules = match v.get("target_modules") {
            Some(serde_json::Value::Array(a)) => a.iter().filter_map(|x| x.as_str().map(String::from)).collect(),
            Some(serde_json::Value::String(s)) => vec![s.clone()],
            _ => vec!["all-linear".into()],
        };
        Ok(LoraConfig {
            r,
            lora_alpha: get_f("lora_alpha").unwrap_or(8.0),
            lora_dropout: get_f("lora_dropout").unwrap_or(0.0),
            target_modules,
            use_rslora: v.get("use_rslora").and_then(|x| x.as_bool()).unwrap_or(false),
        })
    }
}
