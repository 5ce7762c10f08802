//! `gym chat`: talk to a model — a quick check that a local model (or one
//! behind an OpenAI-compatible server) loads, renders its chat template and
//! answers.
//!
//! One user message per line of standard input; the conversation (an
//! [`envs::Conversation`], the record `gym run` and `gym train` use) is kept
//! between turns. `/reset` starts over (the `--system` message stays),
//! `/exit` or end of input quits. Standard output carries only the replies,
//! one per turn followed by a newline; prompts and notices go to standard
//! error, so `printf 'hi\nmore\n' | gym chat --policy …` prints exactly the
//! two replies. For gpt-oss (harmony) the reply is the `final` channel; the
//! `analysis` channel (and a `<think>…</think>` block of other models) is
//! shown dimmed on a terminal, and as `[reasoning] …` lines elsewhere with
//! `--show-reasoning`.
//!
//! Turn `t` (counted from 0, restarting at `/reset`) samples with seed
//! `derive_seed(--seed, t)`, so a conversation is reproducible.

use std::io::{BufRead, IsTerminal, Write};

use anyhow::Context;
use envs::policy::derive_seed;
use envs::{Conversation, Message, Observation, Policy, Request, RequestKey, SamplingParams};
use models::{FinishReason, SampleOptions};
use policies::llm::{parse_harmony, LlmPolicy};

/// Arguments of `gym chat`.
#[derive(Debug, clap::Args)]
pub struct ChatArgs {
    /// The model: a preset, a model folder, an ORG/NAME repo id (Hugging Face cache), or `openai:MODEL`.
    #[arg(long)]
    pub policy: String,
    /// A system message that opens the conversation (kept across `/reset`).
    #[arg(long)]
    pub system: Option<String>,
    /// Sampling temperature, 0 = greedy (default: the model's generation_config.json, else 1).
    #[arg(long)]
    pub temperature: Option<f32>,
    /// Nucleus sampling mass (default: the model's generation_config.json, else 1 = off).
    #[arg(long)]
    pub top_p: Option<f32>,
    /// Maximum new tokens per reply.
    #[arg(long, default_value_t = 512)]
    pub max_new_tokens: usize,
    /// The seed; turn t samples with a seed derived from (seed, t).
    #[arg(long, default_value_t = 0)]
    pub seed: u64,
    /// Print the reasoning (harmony analysis channel, `<think>` block) even when stdout is not a terminal.
    #[arg(long)]
    pub show_reasoning: bool,
    /// API root for `openai:` models (default: OPENAI_BASE_URL; key from OPENAI_API_KEY).
    #[arg(long)]
    pub base_url: Option<String>,
    /// Where a local model runs: `auto` (a CUDA GPU when built with `cuda`
    /// and one answers, else the CPU), `cpu`, `cuda` or `cuda:N`.
    #[arg(long, default_value = "auto")]
    pub device: String,
    /// Extra chat-template variables for a local model, as a JSON object
    /// (vLLM's `chat_template_kwargs`), e.g. '{"enable_thinking": false}'.
    #[arg(long, value_name = "JSON", value_parser = crate::run::parse_template_kwargs)]
    pub chat_template_kwargs: Option<serde_json::Value>,
}

/// A reply split into what is shown as the answer and the reasoning before it.
#[derive(Debug, Clone, Default, PartialEq, Eq)]
pub struct Reply {
    /// The answer (what goes back into the conversation).
    pub text: String,
    /// The reasoning, if the model showed any.
    pub reasoning: String,
    /// A note for the user (e.g. the reply was cut at `--max-new-tokens`).
    pub note: Option<String>,
}

/// Splits a `<think>…</think>` block off the front of a reply.
fn split_think(text: &str) -> (String, String) {
    let t = text.trim_start();
    if let Some(rest) = t.strip_prefix("<think>") {
        if let Some(end) = rest.find("</think>") {
            return (rest[..end].trim().to_string(), rest[end + "</think>".len()..].trim_start().to_string());
        }
    }
    (String::new(), text.to_string())
}

/// What answers: a local model (with access to its raw output), or any policy.
enum Backend {
    Local(Box<LlmPolicy>),
    Remote(Box<dyn Policy>),
}

/// Sampling settings of a chat.
#[derive(Debug, Clone, PartialEq)]
pub struct ChatSampling {
    /// Temperature (None: the model's default, else 1).
    pub temperature: Option<f32>,
    /// Top-p (None: the model's default, else 1).
    pub top_p: Option<f32>,
    /// Maximum new tokens per reply.
    pub max_new_tokens: usize,
    /// The conversation seed.
    pub seed: u64,
}

/// A conversation with a model.
pub struct Chat {
    backend: Backend,
    system: Option<String>,
    conversation: Conversation,
    turn: u64,
    sampling: ChatSampling,
}

impl Chat {
    /// Sets extra chat-template variables (local models only: a remote
    /// server renders its own template).
    pub fn set_template_kwargs(&mut self, kwargs: serde_json::Value) -> anyhow::Result<()> {
        match &mut self.backend {
            Backend::Local(p) => {
                p.set_template_kwargs(kwargs);
                Ok(())
            }
            Backend::Remote(_) => {
                anyhow::bail!(
                    "--chat-template-kwargs applies to local models; an openai: server renders its own template"
                )
            }
        }
    }

    /// Loads the model named `policy` (see [`ChatArgs::policy`]).
    pub fn open(
        policy: &str,
        base_url: Option<String>,
        device: &str,
        system: Option<String>,
        sampling: ChatSampling,
    ) -> anyhow::Result<Self> {
        let backend = if policy.starts_with("openai:") {
            Backend::Remote(policies::make_policy_with(
                policy,
                &policies::PolicyOptions { base_url, ..Default::default() },
            )?)
        } else {
            let model = policy.strip_prefix("llm:").unwrap_or(policy);
            if !policy.starts_with("llm:") && !models::looks_like_model(model) {
                let presets: Vec<&str> = models::PRESETS.iter().map(|(n, _)| *n).collect();
                anyhow::bail!(
                    "`{policy}` is not a model: gym chat takes a preset ({}), a model folder, an ORG/NAME repo id \
                     or openai:MODEL",
                    presets.join(", ")
                );
            }
            let device = models::parse_device(device)?;
            let p = policies::llm::load_on(model, &device).with_context(|| format!("cannot load model `{model}`"))?;
            Backend::Local(Box::new(p))
        };
        let mut chat = Self { backend, system, conversation: Conversation::default(), turn: 0, sampling };
        chat.reset();
        Ok(chat)
    }

    /// The model's name.
    pub fn name(&self) -> &str {
        match &self.backend {
            Backend::Local(p) => p.name(),
            Backend::Remote(p) => p.name(),
        }
    }

    /// Forgets the conversation (keeps the system message) and restarts the turn count.
    pub fn reset(&mut self) {
        self.conversation = Conversation::new(self.system.iter().map(|s| Message::system(s.clone())).collect());
        self.turn = 0;
    }

    /// The conversation so far.
    pub fn history(&self) -> &[Message] {
        self.conversation.messages()
    }

    /// Sends a user message and returns the reply; the conversation keeps
    /// both only when generation succeeds.
    pub fn send(&mut self, user: &str) -> anyhow::Result<Reply> {
        self.conversation.user(user);
        let seed = derive_seed(self.sampling.seed, self.turn);
        let r = self.reply(seed);
        match r {
            Ok(reply) => {
                self.conversation.reply(reply.text.clone());
                self.turn += 1;
                Ok(reply)
            }
            Err(e) => {
                self.conversation.pop();
                Err(e)
            }
        }
    }

    fn reply(&self, seed: u64) -> anyhow::Result<Reply> {
        let s = &self.sampling;
        match &self.backend {
            Backend::Local(p) => {
                let g = p.generation_config();
                let opts = SampleOptions {
                    temperature: s.temperature.or(g.temperature).unwrap_or(1.0),
                    top_p: s.top_p.or(g.top_p).unwrap_or(1.0),
                    top_k: g.top_k.unwrap_or(0),
                    min_p: g.min_p.unwrap_or(0.0),
                    max_new_tokens: s.max_new_tokens,
                    stop: Vec::new(),
                    eos_token_ids: p.eos_token_ids().to_vec(),
                    seed,
                    max_prompt_tokens: 0,
                };
                let sample =
                    p.sample_chat(self.conversation.messages(), 1, &opts)?.into_iter().next().context("no sample")?;
                let cut = (sample.finish == FinishReason::Length)
                    .then(|| format!("(cut at --max-new-tokens {})", s.max_new_tokens));
                if p.is_harmony() {
                    let h = parse_harmony(&sample.text);
                    let note = match (&h.final_text, cut) {
                        (None, c) => Some(c.unwrap_or_else(|| "(no final channel in the reply)".into())),
                        (Some(_), c) => c,
                    };
                    return Ok(Reply { text: p.reply_text(&sample), reasoning: h.analysis, note });
                }
                let (reasoning, text) = split_think(&p.reply_text(&sample));
                Ok(Reply { text, reasoning, note: cut })
            }
            Backend::Remote(p) => {
                let obs = Observation::default();
                let key = RequestKey { env: "chat", seed: s.seed, sample: 0, step: self.turn as usize };
                let params = SamplingParams {
                    n: 1,
                    temperature: s.temperature.unwrap_or(1.0),
                    top_p: s.top_p.unwrap_or(1.0),
                    max_new_tokens: s.max_new_tokens,
                    ..SamplingParams::default()
                };
                let messages = self.conversation.messages();
                let out = p.generate(&[Request { observation: &obs, messages, oracle: None, seed, key }], &params)?;
                let c =
                    out.into_iter().next().and_then(|g| g.into_iter().next()).context("the server sent no reply")?;
                let (reasoning, text) = split_think(&c.action.text);
                Ok(Reply { text, reasoning, note: None })
            }
        }
    }
}

/// How replies are printed.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct Style {
    /// Standard output is a terminal: dim the reasoning and always show it.
    pub terminal: bool,
    /// Show the reasoning when not on a terminal.
    pub show_reasoning: bool,
}

/// Writes one reply: the reasoning (if shown) then the answer and a newline.
pub fn write_reply(out: &mut impl Write, r: &Reply, style: Style) -> std::io::Result<()> {
    if !r.reasoning.is_empty() {
        if style.terminal {
            writeln!(out, "\x1b[2m{}\x1b[0m", r.reasoning.trim_end())?;
        } else if style.show_reasoning {
            for line in r.reasoning.trim_end().lines() {
                writeln!(out, "[reasoning] {line}")?;
            }
        }
    }
    writeln!(out, "{}", r.text)
}

/// Runs the chat loop over `input`; replies go to `out`, prompts and notices
/// to `notes`. Generation errors end the loop unless `interactive`.
pub fn chat_loop(
    chat: &mut Chat,
    input: &mut impl BufRead,
    out: &mut impl Write,
    notes: &mut impl Write,
    style: Style,
    interactive: bool,
) -> anyhow::Result<()> {
    let mut line = String::new();
    loop {
        if interactive {
            write!(notes, "you> ")?;
            notes.flush()?;
        }
        line.clear();
        if input.read_line(&mut line).context("cannot read standard input")? == 0 {
            break;
        }
        let msg = line.trim_end_matches(['\n', '\r']);
        match msg.trim() {
            "" => continue,
            "/exit" | "/quit" => break,
            "/reset" => {
                chat.reset();
                writeln!(notes, "(conversation reset)")?;
                continue;
            }
            c if c.starts_with('/') && !c.contains(char::is_whitespace) => {
                writeln!(notes, "unknown command `{c}`; commands: /reset, /exit")?;
                continue;
            }
            _ => {}
        }
        match chat.send(msg) {
            Ok(r) => {
                write_reply(out, &r, style)?;
                out.flush()?;
                if let Some(n) = &r.note {
                    writeln!(notes, "{n}")?;
                }
            }
            Err(e) if interactive => writeln!(notes, "error: {e:#}")?,
            Err(e) => return Err(e),
        }
    }
    Ok(())
}

/// `gym chat`.
pub fn chat(a: ChatArgs) -> anyhow::Result<()> {
    let sampling =
        ChatSampling { temperature: a.temperature, top_p: a.top_p, max_new_tokens: a.max_new_tokens, seed: a.seed };
    let mut chat = Chat::open(&a.policy, a.base_url, &a.device, a.system, sampling)?;
    if let Some(kwargs) = a.chat_template_kwargs {
        chat.set_template_kwargs(kwargs)?;
    }
    let interactive = std::io::stdin().is_terminal();
    let style = Style { terminal: std::io::stdout().is_terminal(), show_reasoning: a.show_reasoning };
    let mut notes = std::io::stderr();
    if interactive {
        writeln!(notes, "chatting with {} — /reset starts over, /exit or Ctrl-D quits", chat.name())?;
    }
    let stdin = std::io::stdin();
    chat_loop(&mut chat, &mut stdin.lock(), &mut std::io::stdout().lock(), &mut notes, style, interactive)
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn think_blocks_are_split_off() {
        assert_eq!(split_think("<think>\nadd them\n</think>\n\n42"), ("add them".into(), "42".into()));
        assert_eq!(split_think("42"), (String::new(), "42".into()));
        // An unclosed block is all answer (nothing is hidden).
        assert_eq!(split_think("<think>still going"), (String::new(), "<think>still going".into()));
    }

    #[test]
    fn reasoning_is_shown_only_when_asked_off_a_terminal() {
        let r = Reply { text: "4".into(), reasoning: "2+2\nis 4".into(), note: None };
        let mut out = Vec::new();
        write_reply(&mut out, &r, Style { terminal: false, show_reasoning: false }).unwrap();
        assert_eq!(String::from_utf8(out).unwrap(), "4\n");
        let mut out = Vec::new();
        write_reply(&mut out, &r, Style { terminal: false, show_reasoning: true }).unwrap();
        assert_eq!(String::from_utf8(out).unwrap(), "[reasoning] 2+2\n[reasoning] is 4\n4\n");
        let mut out = Vec::new();
        write_reply(&mut out, &r, Style { terminal: true, show_reasoning: false }).unwrap();
        assert_eq!(String::from_utf8(out).unwrap(), "\x1b[2m2+2\nis 4\x1b[0m\n4\n");
    }
}
