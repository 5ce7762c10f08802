//! gym's LLM stack against Hugging Face transformers.
//!
//! The fixtures under `tests/fixtures/tiny-*` were made by
//! `tests/fixtures/make_fixtures.py` with transformers (tiny random-weight
//! models, f32 eager attention). Here gym must reproduce transformers'
//! logits at every position (within 1e-4), its greedy continuations (same
//! tokens, through gym's KV-cached sampler), the `tokenizers` encodings and
//! the rendered chat templates (same strings).

use std::path::{Path, PathBuf};

use candle_core::{DType, Device, Tensor};
use models::{ModelFiles, SampleOptions};
use policies::llm::LlmPolicy;
use serde_json::Value;

fn fixture(name: &str) -> PathBuf {
    Path::new(env!("CARGO_MANIFEST_DIR")).join("tests").join("fixtures").join(name)
}

fn expected(dir: &Path) -> (Value, std::collections::HashMap<String, Tensor>) {
    let json: Value = serde_json::from_str(&std::fs::read_to_string(dir.join("expected.json")).unwrap()).unwrap();
    let logits = candle_core::safetensors::load(dir.join("expected.safetensors"), &Device::Cpu).unwrap();
    (json, logits)
}

fn load(dir: &Path, files: Option<ModelFiles>) -> LlmPolicy {
    let files = files.unwrap_or_else(|| ModelFiles::from_dir(dir).unwrap());
    LlmPolicy::from_files("fixture", &files, &Device::Cpu, DType::F32).unwrap()
}

fn check_logits_and_greedy(p: &LlmPolicy, exp: &Value, logits: &std::collections::HashMap<String, Tensor>) {
    for (i, prompt) in exp["prompts"].as_array().unwrap().iter().enumerate() {
        let want_ids: Vec<u32> = serde_json::from_value(prompt["ids"].clone()).unwrap();
        let ids = p.encode(prompt["text"].as_str().unwrap()).unwrap();
        assert_eq!(ids, want_ids, "prompt {i}: token ids");
        let x = Tensor::new(ids.as_slice(), &Device::Cpu).unwrap().unsqueeze(0).unwrap();
        let got = p.model().forward(&x, None).unwrap().squeeze(0).unwrap();
        let want = &logits[&format!("logits_{i}")];
        assert_eq!(got.dims(), want.dims(), "prompt {i}: logits shape");
        let diff: f32 = (got - want).unwrap().abs().unwrap().max_all().unwrap().to_scalar().unwrap();
        assert!(diff < 1e-4, "prompt {i}: max |logit diff| = {diff}");
        let want_greedy: Vec<u32> = serde_json::from_value(prompt["greedy"].clone()).unwrap();
        let opts = SampleOptions { temperature: 0.0, max_new_tokens: want_greedy.len(), ..Default::default() };
        let samples = p.sample_ids(&ids, 2, &opts).unwrap();
        for s in &samples {
            assert_eq!(s.token_ids, want_greedy, "prompt {i}: greedy tokens (KV-cached decode)");
            assert_eq!(s.logprobs.len(), want_greedy.len());
        }
    }
}

fn check_tokenizer_and_template(p: &LlmPolicy, exp: &Value) {
    for e in exp["encodings"].as_array().unwrap() {
        let want: Vec<u32> = serde_json::from_value(e["ids"].clone()).unwrap();
        assert_eq!(p.encode(e["text"].as_str().unwrap()).unwrap(), want, "encoding of {}", e["text"]);
        let text = p.tokenizer().decode(&want, false).unwrap();
        assert_eq!(text, e["decoded"].as_str().unwrap());
    }
    let t = p.chat_template().expect("fixture has a chat template");
    for (i, c) in exp["chats"].as_array().unwrap().iter().enumerate() {
        let got = t.render(&c["messages"], c["add_generation_prompt"].as_bool().unwrap(), &c["kwargs"]).unwrap();
        assert_eq!(got, c["rendered"].as_str().unwrap(), "chat {i}");
    }
}

fn check(name: &str) {
    let dir = fixture(name);
    let (exp, logits) = expected(&dir);
    let p = load(&dir, None);
    check_tokenizer_and_template(&p, &exp);
    check_logits_and_greedy(&p, &exp, &logits);
}

#[test]
fn qwen2_matches_transformers() {
    check("tiny-qwen2");
}

#[test]
fn qwen3_matches_transformers() {
    check("tiny-qwen3");
}

#[test]
fn llama3_matches_transformers() {
    check("tiny-llama");
}

#[test]
fn gpt_oss_matches_transformers() {
    check("tiny-gpt-oss");
}

#[test]
fn gpt_oss_mxfp4_checkpoint_matches_transformers() {
    let dir = fixture("tiny-gpt-oss");
    let (exp, logits) = expected(&dir);
    let mut files = ModelFiles::from_dir(&dir).unwrap();
    files.weights = vec![dir.join("mxfp4").join("model.safetensors")];
    let p = load(&dir, Some(files));
    check_logits_and_greedy(&p, &exp, &logits);
}
