//! Errors from loading, running and writing models.

use std::path::PathBuf;

/// What can go wrong loading, running or writing a model.
#[derive(Debug, thiserror::Error)]
#[non_exhaustive]
pub enum ModelError {
    /// A file the model needs is absent.
    #[error("missing {what}: {} ({hint})", path.display())]
    MissingFile {
        /// Which file (e.g. `config.json`).
        what: String,
        /// Where it was looked for.
        path: PathBuf,
        /// How to get it.
        hint: String,
    },
    /// A model named by preset or repo id is not in the local cache.
    #[error(
        "model `{name}` ({repo}) is not available locally; looked in {}. Get it with `huggingface-cli download {repo}` \
         (or `hf download {repo}`), or set HF_HOME / HF_HUB_CACHE to the cache that holds it, or pass a local folder \
         in Hugging Face layout",
        looked.iter().map(|p| p.display().to_string()).collect::<Vec<_>>().join(", ")
    )]
    NotDownloaded {
        /// The name given.
        name: String,
        /// The Hugging Face repo id.
        repo: String,
        /// The folders searched.
        looked: Vec<PathBuf>,
    },
    /// A config field is missing or malformed.
    #[error("{file}: {message}")]
    Config {
        /// The file (e.g. `config.json`).
        file: String,
        /// What is wrong.
        message: String,
    },
    /// The model uses an architecture or feature gym does not implement.
    #[error("unsupported: {0}")]
    Unsupported(String),
    /// A tensor operation failed (shape mismatch, missing weight, ...).
    #[error("tensor error: {0}")]
    Candle(#[from] candle_core::Error),
    /// Decoding token ids to text failed, or a prompt had no tokens.
    #[error("tokenizer: {0}")]
    Tokenizer(String),
    /// Invalid settings or data (a LoRA rank of 0, an adapter for another
    /// model, ...).
    #[error("{0}")]
    Invalid(String),
    /// A named file or folder could not be read, parsed or written.
    #[error("{path}: {reason}")]
    File {
        /// The file or folder.
        path: String,
        /// What went wrong.
        reason: String,
    },
    /// Writing a file failed (the path is in the context of the call).
    #[error("io: {0}")]
    Write(#[from] std::io::Error),
    /// JSON (de)serialisation failed.
    #[error("json: {0}")]
    Json(#[from] serde_json::Error),
    /// The requested device is unknown or unavailable.
    #[error("{0}")]
    Device(String),
    /// Reading a file failed.
    #[error("{}: {source}", path.display())]
    Io {
        /// The file.
        path: PathBuf,
        /// The error.
        source: std::io::Error,
    },
}

/// Short alias.
pub type Result<T, E = ModelError> = std::result::Result<T, E>;

/// Reads a text file; errors name the file.
pub fn read_to_string(path: &std::path::Path) -> Result<String> {
    std::fs::read_to_string(path).map_err(|source| ModelError::Io { path: path.to_path_buf(), source })
}

/// Reads a JSON file; errors name the file.
pub fn read_json(path: &std::path::Path) -> Result<serde_json::Value> {
    let text = read_to_string(path)?;
    serde_json::from_str(&text)
        .map_err(|e| ModelError::Config { file: path.display().to_string(), message: format!("invalid JSON: {e}") })
}
