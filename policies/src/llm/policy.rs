//! [`LlmPolicy`]: a local model (any supported architecture) answering envs.

use candle_core::{DType, Device};
use candle_nn::VarBuilder;
use envs::policy::{Completion, PolicyError, Request, SamplingParams};
use envs::{Action, Message, Policy};

use models::config::{id_list, Arch, ModelConfig};
use models::error::read_json;
use models::sampling::{generate, Detokenize, Sample, SampleOptions};
use models::{CausalLm, ModelFiles};

use super::chat::{parse_harmony, ChatTemplate};
use super::error::{LlmError, Result};

/// A tokenizer as a [`Detokenize`] for [`models::generate`] (stop strings).
#[derive(Debug, Clone, Copy)]
pub struct TokenizerText<'a>(pub &'a tokenizers::Tokenizer);

impl Detokenize for TokenizerText<'_> {
    fn detokenize(&self, ids: &[u32]) -> models::Result<String> {
        self.0.decode(ids, false).map_err(|e| models::ModelError::Tokenizer(e.to_string()))
    }
}

/// Sampling defaults from `generation_config.json`.
#[derive(Debug, Clone, Default, PartialEq)]
pub struct GenerationConfig {
    /// Token ids that end a completion.
    pub eos_token_ids: Vec<u32>,
    /// Suggested temperature.
    pub temperature: Option<f32>,
    /// Suggested top-p.
    pub top_p: Option<f32>,
    /// Suggested top-k.
    pub top_k: Option<usize>,
    /// Suggested min-p.
    pub min_p: Option<f32>,
}

impl GenerationConfig {
    /// Reads `generation_config.json`.
    pub fn from_json(v: &serde_json::Value) -> Self {
        let f = |k: &str| v.get(k).and_then(|x| x.as_f64()).map(|x| x as f32);
        Self {
            eos_token_ids: id_list(v.get("eos_token_id")),
            temperature: f("temperature"),
            top_p: f("top_p"),
            top_k: v.get("top_k").and_then(|x| x.as_u64()).map(|x| x as usize),
            min_p: f("min_p"),
        }
    }
}

/// A local LLM: weights, tokenizer, chat template and generation defaults.
#[derive(Debug)]
pub struct LlmPolicy {
    name: String,
    model: CausalLm,
    tokenizer: tokenizers::Tokenizer,
    template: Option<ChatTemplate>,
    generation: GenerationConfig,
    eos_token_ids: Vec<u32>,
    template_kwargs: serde_json::Value,
    /// The text of every special token (`<|im_end|>`, `<|assistant|>`, …),
    /// longest first: removed from replies, as vLLM's
    /// `skip_special_tokens` does — except tag-shaped ones (`<think>`), which
    /// envs and `gym chat` read.
    special: Vec<String>,
}

impl LlmPolicy {
    /// Loads a model by preset name, local folder or hub repo id on the
    /// default device ([`models::device::default_device`]: the first CUDA GPU
    /// in a `cuda` build when one answers, else the CPU) in its dtype
    /// (bf16 on GPUs, f32 on CPUs). `gym-tiny` is [`super::load_on`]'s.
    pub fn load(name: &str) -> Result<Self> {
        Self::load_on(name, &models::device::default_device())
    }

    /// Loads a model on `device`, in [`models::device::default_dtype`].
    pub fn load_on(name: &str, device: &Device) -> Result<Self> {
        let files = ModelFiles::resolve(name)?;
        Self::from_files(name, &files, device, models::device::default_dtype(device))
    }

    /// Loads a model from resolved files.
    pub fn from_files(name: &str, files: &ModelFiles, device: &Device, dtype: DType) -> Result<Self> {
        let cfg = ModelConfig::from_json(&read_json(&files.config)?)?;
        // SAFETY: the safetensors files are memory-mapped read-only; like every
        // mmap-based loader we assume nobody truncates them while we run.
        let vb = unsafe { VarBuilder::from_mmaped_safetensors(&files.weights, dtype, device)? };
        let model = CausalLm::load(&cfg, vb)?;
        let tokenizer =
            tokenizers::Tokenizer::from_file(&files.tokenizer).map_err(|e| LlmError::Tokenizer(e.to_string()))?;
        let template = ChatTemplate::from_files(files)?;
        let generation = match &files.generation_config {
            Some(p) => GenerationConfig::from_json(&read_json(p)?),
            None => GenerationConfig::default(),
        };
        let gpt_oss = cfg.arch == Arch::GptOss;
        let mut p = Self::from_parts(name, model, tokenizer, template, generation);
        if gpt_oss {
            // Harmony: `<|return|>` ends the turn, `<|call|>` a tool call.
            for t in ["<|return|>", "<|call|>"] {
                if let Some(id) = p.tokenizer.token_to_id(t) {
                    if !p.eos_token_ids.contains(&id) {
                        p.eos_token_ids.push(id);
                    }
                }
            }
        }
        Ok(p)
    }

    /// A policy from an already built model, tokenizer and template (e.g.
    /// weights bundled in the binary); EOS ids come from `generation`, else
    /// the model config.
    pub fn from_parts(
        name: &str,
        model: CausalLm,
        tokenizer: tokenizers::Tokenizer,
        template: Option<ChatTemplate>,
        generation: GenerationConfig,
    ) -> Self {
        let eos_token_ids = if generation.eos_token_ids.is_empty() {
            model.config().eos_token_ids.clone()
        } else {
            generation.eos_token_ids.clone()
        };
        let mut special: Vec<String> =
            tokenizer.get_added_tokens_decoder().values().filter(|t| t.special).map(|t| t.content.clone()).collect();
        // Tag-shaped tokens (`<think>`, `</s>`) stay: envs and chat read tags.
        let tag = |t: &str| {
            let inner = t.strip_prefix("</").or_else(|| t.strip_prefix('<')).and_then(|t| t.strip_suffix('>'));
            inner.is_some_and(|w| !w.is_empty() && w.chars().all(|c| c.is_ascii_alphanumeric() || c == '_'))
        };
        special.retain(|t| !t.is_empty() && !tag(t));
        special.sort_by(|a, b| b.len().cmp(&a.len()).then(a.cmp(b)));
        Self {
            name: name.to_string(),
            model,
            tokenizer,
            template,
            generation,
            eos_token_ids,
            template_kwargs: serde_json::json!({}),
            special,
        }
    }

    /// The model.
    pub fn model(&self) -> &CausalLm {
        &self.model
    }

    /// The model, mutably (to attach adapters).
    pub fn model_mut(&mut self) -> &mut CausalLm {
        &mut self.model
    }

    /// The tokenizer.
    pub fn tokenizer(&self) -> &tokenizers::Tokenizer {
        &self.tokenizer
    }

    /// The chat template, if the model has one.
    pub fn chat_template(&self) -> Option<&ChatTemplate> {
        self.template.as_ref()
    }

    /// `generation_config.json`'s defaults.
    pub fn generation_config(&self) -> &GenerationConfig {
        &self.generation
    }

    /// The ids that end a completion.
    pub fn eos_token_ids(&self) -> &[u32] {
        &self.eos_token_ids
    }

    /// Extra chat-template variables (e.g. `{"enable_thinking": false}` or
    /// `{"reasoning_effort": "low"}`).
    pub fn set_template_kwargs(&mut self, kwargs: serde_json::Value) {
        self.template_kwargs = kwargs;
    }

    /// Whether replies use the harmony format (gpt-oss).
    pub fn is_harmony(&self) -> bool {
        self.model.config().arch == Arch::GptOss
    }

    /// Renders messages with the chat template (generation prompt added);
    /// without a template, the contents joined by blank lines.
    pub fn render_prompt(&self, messages: &[Message]) -> Result<String> {
        match &self.template {
            Some(t) => {
                let msgs = serde_json::to_value(messages).map_err(|e| LlmError::Template(e.to_string()))?;
                t.render(&msgs, true, &self.template_kwargs)
            }
            None => Ok(messages.iter().map(|m| m.content.as_str()).collect::<Vec<_>>().join("\n\n")),
        }
    }

    /// Token ids of `text` (special tokens in the text are recognised; no
    /// BOS is added: chat templates write it themselves).
    pub fn encode(&self, text: &str) -> Result<Vec<u32>> {
        let enc = self.tokenizer.encode(text, false).map_err(|e| LlmError::Tokenizer(e.to_string()))?;
        Ok(enc.get_ids().to_vec())
    }

    /// Samples `n` completions of a raw token prompt.
    pub fn sample_ids(&self, prompt: &[u32], n: usize, opts: &SampleOptions) -> Result<Vec<Sample>> {
        Ok(generate(&self.model, &TokenizerText(&self.tokenizer), prompt, n, opts)?)
    }

    /// Samples `n` replies to a chat.
    pub fn sample_chat(&self, messages: &[Message], n: usize, opts: &SampleOptions) -> Result<Vec<Sample>> {
        let prompt = self.encode(&self.render_prompt(messages)?)?;
        self.sample_ids(&prompt, n, opts)
    }

    /// The text an env sees: the harmony final channel for gpt-oss, else the
    /// reply without special tokens (a model that emits `<|assistant|>` or an
    /// end marker that is not its EOS id shows users plain text; the token
    /// ids keep them for training).
    pub fn reply_text(&self, sample: &Sample) -> String {
        if self.is_harmony() && sample.text.contains("<|channel|>") {
            return parse_harmony(&sample.text).final_text.unwrap_or_default();
        }
        let mut text = sample.text.clone();
        for t in &self.special {
            if text.contains(t.as_str()) {
                text = text.replace(t.as_str(), "");
            }
        }
        text
    }

    /// The model's sampling options for an env's [`SamplingParams`] (the one
    /// place the two meet): the same knobs, this model's EOS ids, and the
    /// request's seed.
    pub fn sample_options(&self, params: &SamplingParams, seed: u64) -> SampleOptions {
        SampleOptions {
            temperature: params.temperature,
            top_p: params.top_p,
            top_k: params.top_k,
            min_p: params.min_p,
            max_new_tokens: params.max_new_tokens,
            stop: params.stop.clone(),
            eos_token_ids: self.eos_token_ids.clone(),
            seed,
            max_prompt_tokens: 0,
        }
    }
}

impl Policy for LlmPolicy {
    fn name(&self) -> &str {
        &self.name
    }

    fn generate(&self, requests: &[Request<'_>], params: &SamplingParams) -> Result<Vec<Vec<Completion>>, PolicyError> {
        requests
            .iter()
            .map(|r| {
                let samples = self
                    .sample_chat(r.messages, params.n, &self.sample_options(params, r.seed))
                    .map_err(|e| PolicyError::Other(format!("{}: {e}", self.name)))?;
                Ok(samples
                    .into_iter()
                    .map(|s| Completion {
                        action: Action::text(self.reply_text(&s)),
                        token_ids: Some(s.token_ids),
                        logprobs: Some(s.logprobs),
                        ends_episode: false,
                    })
                    .collect())
            })
            .collect()
    }
}
