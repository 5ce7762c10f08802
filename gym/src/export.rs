//! `gym export`: a trained LoRA adapter merged into its base model, written
//! as a Hugging Face folder or a GGUF file for llama.cpp.
//!
//! ```text
//! gym export --adapter runs/math/adapter --out runs/math/merged                      # HF folder
//! gym export --adapter runs/math/adapter --out runs/math/model-q8_0.gguf --format gguf-q8_0
//! gym export --base Qwen/Qwen2.5-0.5B-Instruct --adapter runs/x/adapter --out m.gguf --format gguf-f16
//! ```
//!
//! `--base` defaults to the adapter's `base_model_name_or_path` (what
//! `gym train` recorded: the model name, or `<run>/base-model` for toy
//! tasks). Without `--adapter` the base alone is converted. `--dtype` sets
//! the safetensors dtype of an `hf` export (default: the base's). See
//! [`models::export`] for the layouts.

use std::path::{Path, PathBuf};

use anyhow::Context;
use models::export::{self, ExportFormat};

/// Arguments of `gym export`.
#[derive(Debug, clap::Args)]
pub struct ExportArgs {
    /// The base model (preset, local HF folder or cached repo id); default:
    /// the adapter's `base_model_name_or_path`.
    #[arg(long)]
    pub base: Option<String>,
    /// A PEFT adapter folder (`adapter_config.json` + `adapter_model.safetensors`).
    #[arg(long)]
    pub adapter: Option<PathBuf>,
    /// Output: a folder for `hf`; a `.gguf` file (or a folder to put
    /// `model-<type>.gguf` in) for GGUF.
    #[arg(long)]
    pub out: PathBuf,
    /// `hf`, `gguf-f16` or `gguf-q8_0`.
    #[arg(long, default_value = "hf")]
    pub format: String,
    /// Tensor dtype of an `hf` export: `f32`, `bf16` or `f16` (default: the base's).
    #[arg(long)]
    pub dtype: Option<String>,
}

/// The base model named in an adapter's `adapter_config.json`.
fn adapter_base(adapter: &Path) -> anyhow::Result<String> {
    let path = adapter.join("adapter_config.json");
    let text = std::fs::read_to_string(&path).with_context(|| format!("cannot read {}", path.display()))?;
    let v: serde_json::Value =
        serde_json::from_str(&text).with_context(|| format!("{}: invalid JSON", path.display()))?;
    v.get("base_model_name_or_path")
        .and_then(|b| b.as_str())
        .filter(|b| !b.is_empty())
        .map(str::to_string)
        .with_context(|| format!("{}: no `base_model_name_or_path`; pass --base", path.display()))
}

/// `gym export`.
pub fn export(a: ExportArgs) -> anyhow::Result<()> {
    let format: ExportFormat = a.format.parse()?;
    let dtype = a.dtype.as_deref().map(export::parse_dtype).transpose()?;
    if dtype.is_some() && format != ExportFormat::Hf {
        anyhow::bail!("--dtype applies to --format hf only (GGUF exports are f16 or q8_0)");
    }
    if let Some(ad) = &a.adapter {
        if !ad.is_dir() {
            anyhow::bail!("adapter folder not found: {}", ad.display());
        }
    }
    let (base_name, from_adapter) = match (&a.base, &a.adapter) {
        (Some(b), _) => (b.clone(), false),
        (None, Some(ad)) => (adapter_base(ad)?, true),
        (None, None) => anyhow::bail!("give --base, --adapter, or both"),
    };
    // The bundled gym-tiny lives in the binary: write it out as a folder first.
    let bundled = (base_name == policies::llm::tiny::NAME).then(|| {
        let nanos = std::time::SystemTime::now().duration_since(std::time::UNIX_EPOCH).map_or(0, |d| d.as_nanos());
        std::env::temp_dir().join(format!("gym-tiny-base-{}-{nanos}", std::process::id()))
    });
    if let Some(dir) = &bundled {
        policies::llm::tiny::write_folder(dir).with_context(|| format!("cannot write {}", dir.display()))?;
    }
    let base = match &bundled {
        Some(dir) => Ok(dir.clone()),
        None => export::base_dir(&base_name),
    }
    .with_context(|| {
        if from_adapter {
            format!(
                "cannot find the adapter's base model `{base_name}` (its base_model_name_or_path; a relative path is \
                 read from the current directory): pass --base"
            )
        } else {
            format!("cannot find base model `{base_name}`")
        }
    })?;
    let written = export::export(&base, a.adapter.as_deref(), &a.out, format, dtype);
    if let Some(dir) = &bundled {
        let _ = std::fs::remove_dir_all(dir);
    }
    let written = written?;
    eprintln!("wrote {} ({}, base {})", written.display(), format.name(), base_name);
    Ok(())
}
