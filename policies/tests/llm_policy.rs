//! `LlmPolicy` end to end: `make_policy` on a model folder, a rollout over
//! a one-step env (the math-style answer rubric), determinism for a seed,
//! and the group sharing one prompt.

use std::collections::BTreeMap;
use std::path::Path;
use std::sync::Arc;

use envs::onestep::{OneStepEnv, TaskItem, TaskSource};
use envs::rewards::{answer_rubric, Tags};
use envs::{rollout, EnvError, EnvMaker, RolloutConfig, SamplingParams};
use models::{FinishReason, SampleOptions};
use policies::llm::LlmPolicy;

struct Sums;

impl TaskSource for Sums {
    fn item(&self, seed: u64) -> Result<TaskItem, EnvError> {
        let (a, b) = (seed % 50, seed * 7 % 50);
        Ok(TaskItem {
            question: format!("What is {a} + {b}?"),
            answer: (a + b).to_string(),
            demonstration: format!("<think>add</think>\n<answer>{}</answer>", a + b),
            ..TaskItem::default()
        })
    }
}

fn fixture(name: &str) -> String {
    Path::new(env!("CARGO_MANIFEST_DIR")).join("tests/fixtures").join(name).display().to_string()
}

fn maker() -> EnvMaker {
    let tags = Tags::default();
    let rubric = Arc::new(answer_rubric(&tags));
    let system = tags.instruction();
    Arc::new(move || Box::new(OneStepEnv::new(Arc::new(Sums), rubric.clone(), system.clone(), "correctness", 1.0)))
}

#[test]
fn rollout_with_a_local_model_is_deterministic() {
    let policy = policies::make_policy(&fixture("tiny-qwen2")).expect("a model folder is a policy");
    let cfg = RolloutConfig {
        env_id: "sums".into(),
        options: BTreeMap::new(),
        episodes: 4,
        seed: 3,
        group_size: 2,
        threads: 2,
        sampling: SamplingParams { max_new_tokens: 12, temperature: 1.0, ..SamplingParams::default() },
        history: None,
    };
    let a = rollout(&maker(), policy.as_ref(), &cfg, &|_| {}).unwrap();
    let b = rollout(&maker(), policy.as_ref(), &cfg, &|_| {}).unwrap();
    assert_eq!(a, b, "same seed, same trajectories");
    assert_eq!(a.len(), 4);
    for ep in &a {
        let step = &ep.steps[0];
        let ids = step.token_ids.as_ref().expect("token ids recorded");
        let lps = step.logprobs.as_ref().expect("logprobs recorded");
        assert!(!ids.is_empty() && ids.len() <= 12);
        assert_eq!(ids.len(), lps.len());
        assert!(lps.iter().all(|l| l.is_finite() && *l <= 0.0));
        assert!(!step.breakdown.is_empty(), "the rubric scored the reply");
    }
    // Samples of one group differ (independent streams).
    assert_ne!(a[0].steps[0].token_ids, a[1].steps[0].token_ids);
}

#[test]
fn group_samples_share_the_prompt_and_respect_stops() {
    let p = LlmPolicy::load(&fixture("tiny-qwen3")).unwrap();
    let msgs = vec![envs::Message::user("What is 12 + 30?")];
    let opts = SampleOptions { max_new_tokens: 10, seed: 11, ..SampleOptions::default() };
    let group = p.sample_chat(&msgs, 8, &opts).unwrap();
    assert_eq!(group.len(), 8);
    // Sample i of a group equals the same sample drawn alone: sharing the
    // prefilled cache changes nothing but speed.
    let alone = p.sample_chat(&msgs, 1, &opts).unwrap();
    assert_eq!(alone[0].token_ids, group[0].token_ids);
    for s in &group {
        if s.finish == FinishReason::Length {
            assert_eq!(s.token_ids.len(), 10);
            assert_eq!(s.text, p.tokenizer().decode(&s.token_ids, false).unwrap());
        }
    }
    let distinct: std::collections::BTreeSet<_> = group.iter().map(|s| s.token_ids.clone()).collect();
    assert!(distinct.len() > 1);
    // Stop strings cut the text; eos ids end the completion.
    let first_text = &group[0].text;
    if let Some(c) = first_text.chars().nth(1) {
        let stop = SampleOptions { stop: vec![c.to_string()], ..opts.clone() };
        let s = &p.sample_chat(&msgs, 1, &stop).unwrap()[0];
        assert_eq!(s.finish, FinishReason::Stop);
        assert!(!s.text.contains(c));
    }
    let eos_tok = group[0].token_ids[0];
    let eos = SampleOptions { eos_token_ids: vec![eos_tok], ..opts };
    let s = &p.sample_chat(&msgs, 1, &eos).unwrap()[0];
    assert_eq!(s.finish, FinishReason::Eos);
    assert_eq!(s.token_ids, vec![eos_tok]);
    assert_eq!(s.text, "");
}

#[test]
fn names_resolve_or_explain() {
    // An empty hub cache, whatever the machine has downloaded.
    let empty = tempfile::tempdir().unwrap();
    for k in ["HF_HOME", "HF_HUB_CACHE", "HUGGINGFACE_HUB_CACHE", "XDG_CACHE_HOME", "HOME"] {
        std::env::set_var(k, empty.path());
    }
    let e = policies::make_policy("gpt-oss-20b").err().expect("weights are not in the test environment");
    let msg = e.to_string();
    assert!(msg.contains("openai/gpt-oss-20b") && msg.contains("huggingface-cli download"), "{msg}");
    let e = policies::make_policy("no-such-policy").err().unwrap().to_string();
    assert!(e.contains("random") && e.contains("gpt-oss-20b"), "{e}");
    assert!(policies::make_policy("random").is_ok());
    let p = policies::make_policy(&format!("llm:{}", fixture("tiny-llama"))).unwrap();
    assert_eq!(p.name(), fixture("tiny-llama"));
    // Every listed name without a parameter builds (the conformance suites rely on it).
    for (name, _) in policies::policy_names() {
        if !name.contains(':') {
            assert!(policies::make_policy(name).is_ok(), "{name}");
        }
    }
}
