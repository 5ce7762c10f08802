//! # policies — what answers gym's envs
//!
//! Every policy implements [`envs::Policy`]. This crate provides the
//! scripted baselines (`random`, `oracle`, `replay:FILE`, and per-game
//! experts such as `expectimax` for 2048 and `solver` for Sudoku) and
//! resolves policy names given on the command line with [`make_policy`]:
//! a scripted name, or an LLM preset (`gpt-oss-20b`, `qwen3-0.6b`, ...), a
//! local model folder, or a Hugging Face repo id (see [`llm`]).

pub mod llm;
pub mod openai;
pub mod scripted;

use envs::Policy;

/// Errors resolving a policy name.
#[derive(Debug, thiserror::Error)]
#[non_exhaustive]
pub enum PolicyNameError {
    /// No policy of that name.
    #[error("unknown policy `{name}`; available policies: {}", known.join(", "))]
    Unknown {
        /// The name given.
        name: String,
        /// The names that exist.
        known: Vec<String>,
    },
    /// The policy exists but could not be built (e.g. a replay file that
    /// does not parse).
    #[error("policy `{name}`: {reason}")]
    Build {
        /// The name given.
        name: String,
        /// Why.
        reason: String,
    },
}

/// The policy names [`make_policy`] accepts, with one line of help each.
pub fn policy_names() -> Vec<(&'static str, &'static str)> {
    let mut names = scripted::NAMES.to_vec();
    names.extend([
        (
            "gym-tiny",
            "gym's own tiny LLM (0.6 M parameters, bundled, offline) trained from scratch with gym alone on \
             generated 2048-strategy programs (scripts/train_gym_tiny.sh)",
        ),
        (
            "llm:MODEL",
            "a local LLM (the `llm:` prefix is optional): a preset (gpt-oss-20b, qwen3-0.6b, \
             qwen2.5-0.5b-instruct, llama-3.2-1b-instruct) or an ORG/NAME repo id from the Hugging Face cache \
             (HF_HOME), or a model folder in Hugging Face layout",
        ),
        ("openai:MODEL", "MODEL on an OpenAI-compatible server (--base-url or OPENAI_BASE_URL; OPENAI_API_KEY)"),
    ]);
    names
}

/// Settings for policies that need more than a name (command-line flags).
#[derive(Debug, Clone, Default, PartialEq)]
pub struct PolicyOptions {
    /// The API root for `openai:` policies (overrides `OPENAI_BASE_URL`).
    pub base_url: Option<String>,
    /// Where local LLMs run (`cpu`, `cuda`, `cuda:N`, `auto`; default `auto`,
    /// see [`models::device`]).
    pub device: Option<String>,
    /// Extra chat-template variables for local LLMs (vLLM's
    /// `chat_template_kwargs`), e.g. `{"enable_thinking": false}` for Qwen3
    /// or `{"reasoning_effort": "low"}` for gpt-oss.
    pub chat_template_kwargs: Option<serde_json::Value>,
}

/// Builds a policy from its command-line name.
pub fn make_policy(name: &str) -> Result<Box<dyn Policy>, PolicyNameError> {
    make_policy_with(name, &PolicyOptions::default())
}

/// Builds a policy from its command-line name and extra settings.
pub fn make_policy_with(name: &str, opts: &PolicyOptions) -> Result<Box<dyn Policy>, PolicyNameError> {
    let local_only = |what: &str| PolicyNameError::Build {
        name: name.to_string(),
        reason: format!("chat template variables apply to local models; {what}"),
    };
    if let Some(p) = scripted::make(name)? {
        if opts.chat_template_kwargs.is_some() {
            return Err(local_only("a scripted policy has no template"));
        }
        return Ok(p);
    }
    if let Some(model) = name.strip_prefix("openai:") {
        if opts.chat_template_kwargs.is_some() {
            return Err(local_only("an openai: server renders its own template"));
        }
        if model.is_empty() {
            return Err(PolicyNameError::Build { name: name.to_string(), reason: "give a model: openai:MODEL".into() });
        }
        let mut cfg = openai::OpenAiConfig::from_env(model);
        if let Some(url) = &opts.base_url {
            cfg.base_url = url.clone();
        }
        return Ok(Box::new(openai::OpenAiPolicy::new(cfg)));
    }
    let model = name.strip_prefix("llm:").unwrap_or(name);
    if model == llm::tiny::NAME || name.starts_with("llm:") || models::looks_like_model(model) {
        let build = |e: llm::LlmError| PolicyNameError::Build { name: name.to_string(), reason: e.to_string() };
        let device = models::parse_device(opts.device.as_deref().unwrap_or("auto")).map_err(|e| build(e.into()))?;
        let mut p = llm::load_on(model, &device).map_err(build)?;
        if let Some(kwargs) = &opts.chat_template_kwargs {
            p.set_template_kwargs(kwargs.clone());
        }
        return Ok(Box::new(p));
    }
    Err(PolicyNameError::Unknown {
        name: name.to_string(),
        known: policy_names()
            .iter()
            .map(|(n, _)| n.to_string())
            .chain(models::PRESETS.iter().map(|(n, _)| n.to_string()))
            .collect(),
    })
}
