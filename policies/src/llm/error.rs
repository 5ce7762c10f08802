//! Errors from LLM policies.

/// What can go wrong loading or running an LLM policy.
#[derive(Debug, thiserror::Error)]
#[non_exhaustive]
pub enum LlmError {
    /// Loading, running or writing the network failed.
    #[error(transparent)]
    Model(#[from] models::ModelError),
    /// A tensor operation failed.
    #[error("tensor error: {0}")]
    Candle(#[from] candle_core::Error),
    /// The tokenizer failed to load or run.
    #[error("tokenizer: {0}")]
    Tokenizer(String),
    /// The chat template failed to parse or render.
    #[error("chat template: {0}")]
    Template(String),
    /// A bundled file is malformed.
    #[error("{file}: {message}")]
    Config {
        /// The file.
        file: String,
        /// What is wrong.
        message: String,
    },
}

/// Short alias.
pub type Result<T, E = LlmError> = std::result::Result<T, E>;
