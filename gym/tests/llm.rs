//! The `gym` binary with local LLMs: `gym run math` with a tiny fixture
//! model logs rewards, and `gym chat` with piped input prints exactly the
//! replies the library generates for the same conversation.

use std::path::{Path, PathBuf};

mod common;

use common::gym_with_input;
use envs::policy::derive_seed;
use envs::Message;
use models::SampleOptions;
use policies::llm::LlmPolicy;

fn fixture(name: &str) -> PathBuf {
    Path::new(env!("CARGO_MANIFEST_DIR")).join("../policies/tests/fixtures").join(name)
}

#[test]
fn run_math_with_a_fixture_model_logs_rewards() {
    let dir = tempfile::tempdir().unwrap();
    let out = dir.path().join("traj.jsonl");
    let model = fixture("tiny-qwen2").display().to_string();
    let args = ["run", "math", "--policy", &model, "--episodes", "2", "--max-new-tokens", "8", "--threads", "2"];
    let (ok, stdout, stderr) = gym_with_input(&[&args[..], &["--out", &out.display().to_string()]].concat(), "");
    assert!(ok, "{stderr}");
    assert!(stdout.contains("mean reward") && stdout.contains("episodes"), "{stdout}");
    let text = std::fs::read_to_string(&out).unwrap();
    let lines: Vec<serde_json::Value> =
        text.lines().map(|l| serde_json::from_str(l).unwrap()).filter(|v| !envs::rollout::is_summary_line(v)).collect();
    assert_eq!(lines.len(), 2);
    for ep in &lines {
        let step = &ep["steps"][0];
        // The reward is logged with its per-function breakdown, which sums to it.
        let reward = step["reward"].as_f64().expect("a reward");
        let parts = step["breakdown"].as_array().expect("a breakdown");
        assert!(parts.iter().any(|p| p["name"] == "correctness"), "{step}");
        let sum: f64 = parts.iter().map(|p| p["value"].as_f64().unwrap() * p["weight"].as_f64().unwrap()).sum();
        assert!((sum - reward).abs() < 1e-6, "{step}");
        let ids = step["token_ids"].as_array().expect("a local model records token ids");
        assert!(!ids.is_empty() && ids.len() <= 8, "{step}");
    }
    // The same command with one thread writes the same bytes.
    let out1 = dir.path().join("traj1.jsonl");
    let args1 = ["run", "math", "--policy", &model, "--episodes", "2", "--max-new-tokens", "8", "--threads", "1"];
    let (ok, _, stderr) = gym_with_input(&[&args1[..], &["--out", &out1.display().to_string()]].concat(), "");
    assert!(ok, "{stderr}");
    assert_eq!(text, std::fs::read_to_string(&out1).unwrap());
}

/// The library's reply to `history` at turn `t` with gym chat's settings.
fn library_reply(p: &LlmPolicy, history: &[Message], seed: u64, t: u64, max_new_tokens: usize) -> String {
    let g = p.generation_config();
    let opts = SampleOptions {
        temperature: 0.0,
        top_p: g.top_p.unwrap_or(1.0),
        top_k: g.top_k.unwrap_or(0),
        min_p: g.min_p.unwrap_or(0.0),
        max_new_tokens,
        stop: Vec::new(),
        eos_token_ids: p.eos_token_ids().to_vec(),
        seed: derive_seed(seed, t),
        max_prompt_tokens: 0,
    };
    let s = p.sample_chat(history, 1, &opts).unwrap().remove(0);
    assert!(!s.text.trim_start().starts_with("<think>"), "gym chat would split this reply: {:?}", s.text);
    // What an env and gym chat see: the reply without control tokens.
    p.reply_text(&s)
}

#[test]
fn chat_prints_the_library_replies_and_resets() {
    let model = fixture("tiny-qwen3");
    let p = LlmPolicy::load(&model.display().to_string()).unwrap();
    let (seed, max) = (5, 12);
    let mut history = vec![Message::system("Be brief.")];
    history.push(Message::user("Hello!"));
    let r1 = library_reply(&p, &history, seed, 0, max);
    history.push(Message::assistant(r1.clone()));
    history.push(Message::user("What is 2 + 2?"));
    let r2 = library_reply(&p, &history, seed, 1, max);
    assert_ne!(r1, r2, "the two turns should differ, or the test shows nothing");
    assert!(!r1.contains('\n') && !r2.contains('\n'), "one line per reply keeps the comparison exact");

    let model = model.display().to_string();
    let args = [
        "chat",
        "--policy",
        &model,
        "--system",
        "Be brief.",
        "--temperature",
        "0",
        "--max-new-tokens",
        "12",
        "--seed",
        "5",
        "--device",
        "cpu",
    ];
    // Two turns, a reset, the first turn again (same reply), then /exit
    // ends the chat before the last line.
    let input = "Hello!\nWhat is 2 + 2?\n/reset\nHello!\n/exit\nnever sent\n";
    let (ok, stdout, stderr) = gym_with_input(&args, input);
    assert!(ok, "{stderr}");
    assert_eq!(stdout, format!("{r1}\n{r2}\n{r1}\n"), "stderr: {stderr}");
    assert!(stderr.contains("conversation reset"), "{stderr}");

    // End of input ends the chat too.
    let (ok, stdout, stderr) = gym_with_input(&args, "Hello!\n");
    assert!(ok, "{stderr}");
    assert_eq!(stdout, format!("{r1}\n"));
}

#[test]
fn chat_rejects_what_is_not_a_model() {
    let (ok, _, err) = gym_with_input(&["chat", "--policy", "expectimax"], "hi\n");
    assert!(!ok);
    assert!(err.contains("expectimax") && err.contains("qwen3-0.6b") && err.contains("openai:MODEL"), "{err}");
    let missing = fixture("no-such-model").display().to_string();
    let (ok, _, err) = gym_with_input(&["chat", "--policy", &missing], "hi\n");
    assert!(!ok);
    assert!(err.contains("no-such-model") && !err.contains("panicked"), "{err}");
    let tiny = fixture("tiny-qwen2").display().to_string();
    let (ok, _, err) = gym_with_input(&["chat", "--policy", &tiny, "--device", "tpu"], "hi\n");
    assert!(!ok);
    assert!(err.contains("unknown device `tpu`") && err.contains("cuda:N"), "{err}");
}

#[test]
fn base_url_flag_reaches_the_openai_policy() {
    // A port nobody listens on: the error names the URL given on the command line.
    let port = std::net::TcpListener::bind("127.0.0.1:0").unwrap().local_addr().unwrap().port();
    let url = format!("http://127.0.0.1:{port}/v1");
    let args = ["run", "math", "--policy", "openai:m", "--base-url", &url, "--episodes", "1", "--threads", "1"];
    let (ok, _, err) = gym_with_input(&args, "");
    assert!(!ok);
    assert!(err.contains(&format!("{url}/chat/completions")) && err.contains("attempts"), "{err}");
}

#[test]
fn chat_template_kwargs_reach_the_template_in_the_library_and_gym_chat() {
    let model = fixture("tiny-qwen3");
    let mut p = LlmPolicy::load(&model.display().to_string()).unwrap();
    let history = vec![Message::user("Hello!")];
    let plain = p.render_prompt(&history).unwrap();
    p.set_template_kwargs(serde_json::json!({"enable_thinking": false}));
    let off = p.render_prompt(&history).unwrap();
    assert!(!plain.contains("<think>") && off.ends_with("<think>\n\n</think>\n\n"), "{plain:?} / {off:?}");
    let reply = library_reply(&p, &history, 5, 0, 12);

    let model = model.display().to_string();
    let args = ["chat", "--policy", &model, "--temperature", "0", "--max-new-tokens", "12", "--seed", "5"];
    let kwargs = ["--chat-template-kwargs", r#"{"enable_thinking": false}"#];
    let (ok, stdout, stderr) = gym_with_input(&[&args[..], &kwargs[..]].concat(), "Hello!\n");
    assert!(ok, "{stderr}");
    assert_eq!(stdout.trim_end(), reply.trim_end(), "stderr: {stderr}");

    let bad = ["--chat-template-kwargs", "enable_thinking=false"];
    let (ok, _, err) = gym_with_input(&[&args[..], &bad[..]].concat(), "Hello!\n");
    assert!(!ok && err.contains("is not JSON"), "{err}");
    let (ok, _, err) = gym_with_input(&["run", "math", "--policy", &model, "--chat-template-kwargs", "[1]"], "");
    assert!(!ok && err.contains("not a JSON object"), "{err}");
    let kwargs = r#"{"enable_thinking": false}"#;
    let (ok, _, err) = gym_with_input(&["run", "math", "--policy", "random", "--chat-template-kwargs", kwargs], "");
    assert!(!ok && err.contains("apply to local models"), "{err}");
}
