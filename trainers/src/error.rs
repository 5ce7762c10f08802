//! The trainer's error type.

/// Training failures.
#[derive(Debug, thiserror::Error)]
#[non_exhaustive]
pub enum TrainError {
    /// A tensor operation failed.
    #[error("tensor: {0}")]
    Candle(#[from] candle_core::Error),
    /// Loading, running or writing the model failed.
    #[error("model: {0}")]
    Model(#[from] models::ModelError),
    /// The policy (tokenizer, chat template) failed.
    #[error("policy: {0}")]
    Llm(#[from] policies::llm::LlmError),
    /// A file could not be read or written.
    #[error("io: {0}")]
    Io(#[from] std::io::Error),
    /// JSON (de)serialisation failed.
    #[error("json: {0}")]
    Json(#[from] serde_json::Error),
    /// Invalid settings.
    #[error("config: {0}")]
    Config(String),
    /// A training-data line is malformed (`line` 0: the file as a whole).
    #[error("{file}:{line}: {message}")]
    Data {
        /// The file.
        file: String,
        /// 1-based line number (0 = the whole file).
        line: usize,
        /// What is wrong, naming the field.
        message: String,
    },
    /// Collecting rollouts failed.
    #[error("rollout: {0}")]
    Rollout(String),
}

/// `Result` with [`TrainError`].
pub type Result<T, E = TrainError> = std::result::Result<T, E>;
