//! Finding a model's files: a local folder in Hugging Face layout, or a repo
//! id (or preset) resolved offline in the Hugging Face hub cache.

use std::path::{Path, PathBuf};

use crate::error::{read_json, ModelError, Result};

/// Named presets and the Hugging Face repos they stand for.
pub const PRESETS: &[(&str, &str)] = &[
    ("gpt-oss-20b", "openai/gpt-oss-20b"),
    ("qwen3-0.6b", "Qwen/Qwen3-0.6B"),
    ("qwen2.5-0.5b-instruct", "Qwen/Qwen2.5-0.5B-Instruct"),
    ("llama-3.2-1b-instruct", "meta-llama/Llama-3.2-1B-Instruct"),
];

/// The repo id a preset stands for.
pub fn preset_repo(name: &str) -> Option<&'static str> {
    PRESETS.iter().find(|(n, _)| *n == name).map(|(_, r)| *r)
}

/// The files of one model in Hugging Face layout.
#[derive(Debug, Clone, PartialEq)]
pub struct ModelFiles {
    /// The folder holding them.
    pub dir: PathBuf,
    /// `config.json`.
    pub config: PathBuf,
    /// `tokenizer.json`.
    pub tokenizer: PathBuf,
    /// `tokenizer_config.json`, if present.
    pub tokenizer_config: Option<PathBuf>,
    /// `chat_template.jinja`, if present.
    pub chat_template: Option<PathBuf>,
    /// `generation_config.json`, if present.
    pub generation_config: Option<PathBuf>,
    /// The safetensors files (one, or the shards named by the index).
    pub weights: Vec<PathBuf>,
}

fn optional(dir: &Path, name: &str) -> Option<PathBuf> {
    let p = dir.join(name);
    p.is_file().then_some(p)
}

fn required(dir: &Path, name: &str, hint: &str) -> Result<PathBuf> {
    let p = dir.join(name);
    if p.is_file() {
        Ok(p)
    } else {
        Err(ModelError::MissingFile { what: name.to_string(), path: p, hint: hint.to_string() })
    }
}

/// The safetensors files of a model folder: the shards named by
/// `model.safetensors.index.json`, or `model.safetensors`.
pub fn weight_files(dir: &Path) -> Result<Vec<PathBuf>> {
    if let Some(index) = optional(dir, "model.safetensors.index.json") {
        let v = read_json(&index)?;
        let map = v.get("weight_map").and_then(|m| m.as_object()).ok_or_else(|| ModelError::Config {
            file: index.display().to_string(),
            message: "missing field `weight_map`".into(),
        })?;
        let mut shards: Vec<String> = map.values().filter_map(|s| s.as_str().map(str::to_string)).collect();
        shards.sort();
        shards.dedup();
        shards.iter().map(|s| required(dir, s, "a shard named by model.safetensors.index.json is missing")).collect()
    } else if let Some(single) = optional(dir, "model.safetensors") {
        Ok(vec![single])
    } else {
        Err(ModelError::MissingFile {
            what: "model.safetensors (or model.safetensors.index.json)".into(),
            path: dir.join("model.safetensors"),
            hint: "weights must be in safetensors format".into(),
        })
    }
}

impl ModelFiles {
    /// Reads a folder in Hugging Face layout.
    pub fn from_dir(dir: &Path) -> Result<Self> {
        let hint = "a Hugging Face model folder needs config.json, tokenizer.json and safetensors weights";
        let config = required(dir, "config.json", hint)?;
        let tokenizer = required(dir, "tokenizer.json", hint)?;
        let weights = weight_files(dir)?;
        Ok(Self {
            dir: dir.to_path_buf(),
            config,
            tokenizer,
            tokenizer_config: optional(dir, "tokenizer_config.json"),
            chat_template: optional(dir, "chat_template.jinja"),
            generation_config: optional(dir, "generation_config.json"),
            weights,
        })
    }

    /// Resolves a preset name, a local folder, or a repo id (`org/name`) in
    /// the hub cache, offline.
    pub fn resolve(name: &str) -> Result<Self> {
        let path = Path::new(name);
        if path.is_dir() {
            return Self::from_dir(path);
        }
        let repo = preset_repo(name).unwrap_or(name);
        let caches = hub_cache_dirs();
        match find_snapshot(repo, &caches) {
            Some(dir) => Self::from_dir(&dir),
            None => Err(ModelError::NotDownloaded {
                name: name.to_string(),
                repo: repo.to_string(),
                looked: caches.iter().map(|c| c.join(repo_folder(repo))).collect(),
            }),
        }
    }
}

/// Whether `name` looks like something [`ModelFiles::resolve`] could load:
/// a preset, an existing folder, or an `org/name` repo id.
pub fn looks_like_model(name: &str) -> bool {
    preset_repo(name).is_some() || Path::new(name).is_dir() || is_repo_id(name)
}

fn is_repo_id(name: &str) -> bool {
    let mut parts = name.split('/');
    let ok = |s: Option<&str>| {
        s.is_some_and(|s| {
            !s.is_empty() && s.chars().all(|c| c.is_ascii_alphanumeric() || "-_.".contains(c)) && !s.starts_with('.')
        })
    };
    ok(parts.next()) && ok(parts.next()) && parts.next().is_none()
}

/// The hub cache folders to search, most specific first: `HF_HUB_CACHE`,
/// `HUGGINGFACE_HUB_CACHE`, `$HF_HOME/hub`, `$XDG_CACHE_HOME/huggingface/hub`,
/// `~/.cache/huggingface/hub`.
pub fn hub_cache_dirs() -> Vec<PathBuf> {
    let env = |k: &str| std::env::var_os(k).filter(|v| !v.is_empty()).map(PathBuf::from);
    let mut out = Vec::new();
    if let Some(p) = env("HF_HUB_CACHE") {
        out.push(p);
    }
    if let Some(p) = env("HUGGINGFACE_HUB_CACHE") {
        out.push(p);
    }
    if let Some(p) = env("HF_HOME") {
        out.push(p.join("hub"));
    } else if let Some(p) = env("XDG_CACHE_HOME") {
        out.push(p.join("huggingface").join("hub"));
    }
    if let Some(home) = env("HOME") {
        let p = home.join(".cache").join("huggingface").join("hub");
        if !out.contains(&p) {
            out.push(p);
        }
    }
    out
}

fn repo_folder(repo: &str) -> String {
    format!("models--{}", repo.replace('/', "--"))
}

/// Finds a repo's snapshot folder in the given caches: the revision named by
/// `refs/main`, else the only snapshot there is.
pub fn find_snapshot(repo: &str, caches: &[PathBuf]) -> Option<PathBuf> {
    for cache in caches {
        let root = cache.join(repo_folder(repo));
        if let Ok(rev) = std::fs::read_to_string(root.join("refs").join("main")) {
            let snap = root.join("snapshots").join(rev.trim());
            if snap.join("config.json").is_file() {
                return Some(snap);
            }
        }
        if let Ok(entries) = std::fs::read_dir(root.join("snapshots")) {
            let snaps: Vec<PathBuf> =
                entries.filter_map(|e| e.ok().map(|e| e.path())).filter(|p| p.join("config.json").is_file()).collect();
            if snaps.len() == 1 {
                return snaps.into_iter().next();
            }
        }
    }
    None
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn resolves_repo_id_in_hub_cache_layout() {
        let tmp = tempfile::tempdir().unwrap();
        let root = tmp.path().join("models--org--tiny");
        let snap = root.join("snapshots").join("abc123");
        std::fs::create_dir_all(&snap).unwrap();
        std::fs::create_dir_all(root.join("refs")).unwrap();
        std::fs::write(root.join("refs").join("main"), "abc123\n").unwrap();
        for f in ["config.json", "tokenizer.json", "model.safetensors"] {
            std::fs::write(snap.join(f), "{}").unwrap();
        }
        let found = find_snapshot("org/tiny", &[tmp.path().to_path_buf()]).unwrap();
        assert_eq!(found, snap);
        let files = ModelFiles::from_dir(&found).unwrap();
        assert_eq!(files.weights, vec![snap.join("model.safetensors")]);
        assert!(files.chat_template.is_none());
        assert!(find_snapshot("org/other", &[tmp.path().to_path_buf()]).is_none());
    }

    #[test]
    fn missing_files_are_named() {
        let tmp = tempfile::tempdir().unwrap();
        let e = ModelFiles::from_dir(tmp.path()).unwrap_err().to_string();
        assert!(e.contains("config.json"), "{e}");
        std::fs::write(tmp.path().join("config.json"), "{}").unwrap();
        std::fs::write(tmp.path().join("tokenizer.json"), "{}").unwrap();
        let e = ModelFiles::from_dir(tmp.path()).unwrap_err().to_string();
        assert!(e.contains("model.safetensors"), "{e}");
    }

    #[test]
    fn absent_preset_says_where_and_how() {
        let e = ModelFiles::resolve("gpt-oss-20b-definitely-absent/x").unwrap_err().to_string();
        assert!(e.contains("huggingface-cli download"), "{e}");
        assert!(is_repo_id("openai/gpt-oss-20b"));
        assert!(!is_repo_id("random"));
        assert!(!is_repo_id("a/b/c"));
        assert!(looks_like_model("gpt-oss-20b"));
    }
}
