//! `openai:<model>`: a policy served by any OpenAI-compatible chat
//! completions endpoint (vLLM, llama.cpp's `llama-server`, Ollama, SGLang,
//! the OpenAI API).
//!
//! Base URL from [`OpenAiConfig::base_url`] (`--base-url`, else
//! `OPENAI_BASE_URL`, else `https://api.openai.com/v1`), key from
//! `OPENAI_API_KEY`. Requests run concurrently up to a limit, with a
//! timeout, and retry connection failures, 408/429 and 5xx with
//! exponential backoff; other 4xx fail at once with the server's message.

use std::sync::{Condvar, Mutex};
use std::time::Duration;

use envs::policy::{derive_seed, Completion, PolicyError, Request, SamplingParams};
use envs::{Action, Message, Policy};
use serde_json::{json, Value};

/// Where and how to reach the server.
#[derive(Debug, Clone, PartialEq)]
pub struct OpenAiConfig {
    /// The model name sent in each request.
    pub model: String,
    /// The API root, e.g. `http://127.0.0.1:8080/v1`.
    pub base_url: String,
    /// Bearer token, if any.
    pub api_key: Option<String>,
    /// Per-request timeout.
    pub timeout: Duration,
    /// Retries after the first attempt (connection errors, 408, 429, 5xx).
    pub max_retries: u32,
    /// First backoff delay; doubled on each retry.
    pub backoff: Duration,
    /// Requests in flight at once.
    pub concurrency: usize,
    /// Ask for per-token log-probs.
    pub logprobs: bool,
}

impl OpenAiConfig {
    /// Defaults for `model`, reading `OPENAI_BASE_URL` and `OPENAI_API_KEY`.
    pub fn from_env(model: &str) -> Self {
        let var = |k: &str| std::env::var(k).ok().filter(|v| !v.is_empty());
        Self {
            model: model.to_string(),
            base_url: var("OPENAI_BASE_URL").unwrap_or_else(|| "https://api.openai.com/v1".into()),
            api_key: var("OPENAI_API_KEY"),
            timeout: Duration::from_secs(300),
            max_retries: 4,
            backoff: Duration::from_millis(500),
            concurrency: 8,
            logprobs: true,
        }
    }

    fn url(&self) -> String {
        format!("{}/chat/completions", self.base_url.trim_end_matches('/'))
    }
}

/// Builds the chat-completions request body.
pub fn request_body(cfg: &OpenAiConfig, messages: &[Message], params: &SamplingParams, n: usize, seed: u64) -> Value {
    let mut body = json!({
        "model": cfg.model,
        "messages": messages,
        "n": n,
        "temperature": params.temperature,
        "top_p": params.top_p,
        "max_tokens": params.max_new_tokens,
        "seed": seed,
    });
    if !params.stop.is_empty() {
        body["stop"] = json!(params.stop);
    }
    // Not in OpenAI's API, but vLLM, llama.cpp and SGLang accept them.
    if params.top_k > 0 {
        body["top_k"] = json!(params.top_k);
    }
    if params.min_p > 0.0 {
        body["min_p"] = json!(params.min_p);
    }
    if cfg.logprobs {
        body["logprobs"] = json!(true);
    }
    body
}

/// Reads the completions out of a chat-completions response.
pub fn parse_response(v: &Value) -> Result<Vec<Completion>, String> {
    let choices = v.get("choices").and_then(Value::as_array).ok_or("response has no `choices`")?;
    let mut out: Vec<(u64, Completion)> = Vec::with_capacity(choices.len());
    for (i, c) in choices.iter().enumerate() {
        let msg = c.get("message").ok_or("choice has no `message`")?;
        // A null content (e.g. only reasoning or a refusal) is an empty reply.
        let text = msg.get("content").and_then(Value::as_str).unwrap_or("").to_string();
        let logprobs = c.get("logprobs").and_then(|l| l.get("content")).and_then(Value::as_array).map(|toks| {
            toks.iter().filter_map(|t| t.get("logprob").and_then(Value::as_f64)).map(|x| x as f32).collect()
        });
        let index = c.get("index").and_then(Value::as_u64).unwrap_or(i as u64);
        out.push((index, Completion { action: Action::text(text), logprobs, ..Completion::default() }));
    }
    out.sort_by_key(|(i, _)| *i);
    Ok(out.into_iter().map(|(_, c)| c).collect())
}

/// A counting semaphore for the concurrency limit.
#[derive(Debug)]
struct Slots {
    free: Mutex<usize>,
    cv: Condvar,
}

impl Slots {
    fn acquire(&self) {
        let mut f = self.free.lock().unwrap_or_else(|e| e.into_inner());
        while *f == 0 {
            f = self.cv.wait(f).unwrap_or_else(|e| e.into_inner());
        }
        *f -= 1;
    }

    fn release(&self) {
        *self.free.lock().unwrap_or_else(|e| e.into_inner()) += 1;
        self.cv.notify_one();
    }
}

/// A policy answering through an OpenAI-compatible server.
#[derive(Debug)]
pub struct OpenAiPolicy {
    name: String,
    cfg: OpenAiConfig,
    agent: ureq::Agent,
    slots: Slots,
}

impl OpenAiPolicy {
    /// A policy for this config.
    pub fn new(cfg: OpenAiConfig) -> Self {
        let agent: ureq::Agent =
            ureq::Agent::config_builder().timeout_global(Some(cfg.timeout)).http_status_as_error(false).build().into();
        let slots = Slots { free: Mutex::new(cfg.concurrency.max(1)), cv: Condvar::new() };
        Self { name: format!("openai:{}", cfg.model), cfg, agent, slots }
    }

    /// The config.
    pub fn config(&self) -> &OpenAiConfig {
        &self.cfg
    }

    /// One request with retries; returns the parsed completions.
    pub fn complete(&self, body: &Value) -> Result<Vec<Completion>, PolicyError> {
        self.slots.acquire();
        let r = self.complete_inner(body);
        self.slots.release();
        r
    }

    fn complete_inner(&self, body: &Value) -> Result<Vec<Completion>, PolicyError> {
        let url = self.cfg.url();
        let mut delay = self.cfg.backoff;
        let mut attempt = 0;
        loop {
            let mut req = self.agent.post(&url).header("Content-Type", "application/json");
            if let Some(k) = &self.cfg.api_key {
                req = req.header("Authorization", &format!("Bearer {k}"));
            }
            let (retryable, msg) = match req.send_json(body) {
                Ok(mut resp) => {
                    let status = resp.status().as_u16();
                    let text = resp.body_mut().read_to_string().unwrap_or_default();
                    if (200..300).contains(&status) {
                        let v: Value = serde_json::from_str(&text).map_err(|e| {
                            PolicyError::Other(format!("{}: {url} returned invalid JSON: {e}", self.name))
                        })?;
                        return parse_response(&v)
                            .map_err(|e| PolicyError::Other(format!("{}: {url}: {e}", self.name)));
                    }
                    let detail = serde_json::from_str::<Value>(&text)
                        .ok()
                        .and_then(|v| {
                            v.get("error")
                                .and_then(|e| e.get("message").or(Some(e)))
                                .map(|m| m.as_str().map_or_else(|| m.to_string(), str::to_string))
                        })
                        .unwrap_or(text);
                    let retryable = status == 408 || status == 429 || status >= 500;
                    (retryable, format!("HTTP {status} from {url}: {detail}"))
                }
                Err(e) => (true, format!("request to {url} failed: {e}")),
            };
            if !retryable || attempt >= self.cfg.max_retries {
                let tries = if retryable { format!(" (after {} attempts)", attempt + 1) } else { String::new() };
                return Err(PolicyError::Other(format!("{}: {msg}{tries}", self.name)));
            }
            std::thread::sleep(delay);
            delay = (delay * 2).min(Duration::from_secs(30));
            attempt += 1;
        }
    }

    /// `n` completions for one request; servers that return fewer choices
    /// than asked (some ignore `n`) are asked again for the rest.
    fn generate_one(&self, r: &Request<'_>, params: &SamplingParams) -> Result<Vec<Completion>, PolicyError> {
        let mut out = Vec::with_capacity(params.n);
        let mut round = 0u64;
        while out.len() < params.n {
            let need = params.n - out.len();
            let seed = if round == 0 { r.seed } else { derive_seed(r.seed, round) };
            let body = request_body(&self.cfg, r.messages, params, need, seed);
            let got = self.complete(&body)?;
            if got.is_empty() {
                return Err(PolicyError::Other(format!("{}: the server returned no choices", self.name)));
            }
            out.extend(got.into_iter().take(need));
            round += 1;
        }
        Ok(out)
    }
}

impl Policy for OpenAiPolicy {
    fn name(&self) -> &str {
        &self.name
    }

    fn generate(&self, requests: &[Request<'_>], params: &SamplingParams) -> Result<Vec<Vec<Completion>>, PolicyError> {
        if requests.len() <= 1 {
            return requests.iter().map(|r| self.generate_one(r, params)).collect();
        }
        // One thread per request; the semaphore bounds what is in flight.
        std::thread::scope(|s| {
            let handles: Vec<_> = requests.iter().map(|r| s.spawn(move || self.generate_one(r, params))).collect();
            handles
                .into_iter()
                .map(|h| h.join().unwrap_or_else(|_| Err(PolicyError::Other("request thread panicked".into()))))
                .collect()
        })
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn body_carries_sampling_parameters() {
        let cfg = OpenAiConfig { logprobs: true, ..OpenAiConfig::from_env("m") };
        let params = SamplingParams {
            n: 3,
            temperature: 0.5,
            top_p: 0.9,
            top_k: 20,
            min_p: 0.0,
            max_new_tokens: 64,
            stop: vec!["</answer>".into()],
        };
        let b = request_body(&cfg, &[Message::user("hi")], &params, 3, 7);
        assert_eq!(b["model"], "m");
        assert_eq!(b["messages"], json!([{"role": "user", "content": "hi"}]));
        assert_eq!((b["n"].as_u64(), b["max_tokens"].as_u64(), b["seed"].as_u64()), (Some(3), Some(64), Some(7)));
        assert_eq!(b["top_k"], 20);
        assert!(b.get("min_p").is_none());
        assert_eq!(b["stop"], json!(["</answer>"]));
        assert_eq!(b["logprobs"], true);
    }

    #[test]
    fn response_choices_and_logprobs_are_read_in_index_order() {
        let v = json!({"choices": [
            {"index": 1, "message": {"role": "assistant", "content": null}},
            {"index": 0, "message": {"role": "assistant", "content": "42"},
             "logprobs": {"content": [{"token": "4", "logprob": -0.5}, {"token": "2", "logprob": -0.25}]}}
        ]});
        let c = parse_response(&v).unwrap();
        assert_eq!(c[0].action.text, "42");
        assert_eq!(c[0].logprobs, Some(vec![-0.5, -0.25]));
        assert_eq!(c[1].action.text, "");
        assert!(parse_response(&json!({"error": "x"})).is_err());
    }

    #[test]
    fn unreachable_server_is_a_clear_error_after_retries() {
        // Port 9 (discard) on localhost: nothing listens there in a test sandbox.
        let cfg = OpenAiConfig {
            base_url: "http://127.0.0.1:9/v1".into(),
            max_retries: 1,
            backoff: Duration::from_millis(1),
            timeout: Duration::from_secs(5),
            ..OpenAiConfig::from_env("m")
        };
        let p = OpenAiPolicy::new(cfg);
        let e = p.complete(&json!({})).unwrap_err().to_string();
        assert!(e.contains("127.0.0.1:9") && e.contains("after 2 attempts"), "{e}");
    }
}
