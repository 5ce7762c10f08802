//! `gym train`: a killed run resumes and finishes exactly as an
//! uninterrupted one; metrics use TRL's names; the adapter is PEFT-shaped.

use std::path::{Path, PathBuf};
use std::process::{Command, Stdio};
use std::time::{Duration, Instant};

fn config() -> PathBuf {
    Path::new(env!("CARGO_MANIFEST_DIR")).join("../trainers/configs/toy_l5.toml")
}

fn args(out: &Path, steps: usize) -> Vec<String> {
    let c = config();
    [
        "train",
        "toy:count_a",
        "--config",
        c.to_str().unwrap(),
        "--set",
        "per_device_train_batch_size=16",
        "--set",
        "num_generations=4",
        "--max-steps",
        &steps.to_string(),
        "--save-steps",
        "1",
        "--set",
        "save_total_limit=2",
        "--quiet",
        "--output-dir",
        out.to_str().unwrap(),
    ]
    .iter()
    .map(|s| s.to_string())
    .collect()
}

fn gym(args: &[String]) {
    let out = Command::new(env!("CARGO_BIN_EXE_gym")).args(args).output().expect("gym runs");
    assert!(out.status.success(), "gym {args:?} failed: {}", String::from_utf8_lossy(&out.stderr));
}

fn metric_lines(dir: &Path) -> Vec<serde_json::Value> {
    std::fs::read_to_string(dir.join("metrics.jsonl"))
        .unwrap()
        .lines()
        .map(|l| serde_json::from_str(l).unwrap())
        .collect()
}

#[test]
fn a_killed_run_resumes_and_matches_an_uninterrupted_one() {
    let steps = 24;
    let tmp = tempfile::tempdir().unwrap();
    let (a, b) = (tmp.path().join("a"), tmp.path().join("b"));
    gym(&args(&a, steps));

    let mut child = Command::new(env!("CARGO_BIN_EXE_gym"))
        .args(args(&b, steps))
        .stdout(Stdio::null())
        .stderr(Stdio::null())
        .spawn()
        .unwrap();
    let t0 = Instant::now();
    let past_3 = |d: &Path| {
        std::fs::read_dir(d).into_iter().flatten().flatten().any(|e| {
            let n = e.file_name().to_string_lossy().to_string();
            n.strip_prefix("checkpoint-").and_then(|s| s.parse::<usize>().ok()).is_some_and(|n| n >= 3)
        })
    };
    while !past_3(&b) && t0.elapsed() < Duration::from_secs(120) {
        std::thread::sleep(Duration::from_millis(20));
    }
    child.kill().unwrap();
    child.wait().unwrap();
    gym(&[args(&b, steps), vec!["--resume".into()]].concat());

    let (ma, mb) = (metric_lines(&a), metric_lines(&b));
    assert_eq!(mb.len(), steps);
    for (i, (x, y)) in ma.iter().zip(&mb).enumerate() {
        assert_eq!(x["step"], i + 1);
        assert_eq!(y["step"], i + 1);
        assert_eq!(x["reward"], y["reward"], "step {}", i + 1);
        assert_eq!(x["loss"], y["loss"], "step {}", i + 1);
    }
    let adapter = |d: &Path| std::fs::read(d.join("adapter/adapter_model.safetensors")).unwrap();
    assert_eq!(adapter(&a), adapter(&b), "same final adapter");
    // TRL metric names.
    for k in [
        "reward",
        "reward_std",
        "rewards/count_a/mean",
        "frac_reward_zero_std",
        "completions/mean_length",
        "completions/clipped_ratio",
        "entropy",
        "clip_ratio/region_mean",
        "learning_rate",
        "grad_norm",
        "loss",
        "tokens_per_second",
        "step_time",
    ] {
        assert!(ma[0].get(k).is_some(), "metric {k} missing");
    }
    // PEFT adapter config and pruned checkpoints.
    let cfg: serde_json::Value =
        serde_json::from_str(&std::fs::read_to_string(a.join("adapter/adapter_config.json")).unwrap()).unwrap();
    assert_eq!(cfg["peft_type"], "LORA");
    assert_eq!(cfg["r"], 8);
    let ckpts: Vec<_> = std::fs::read_dir(&a)
        .unwrap()
        .filter_map(|e| e.ok())
        .filter(|e| e.file_name().to_string_lossy().starts_with("checkpoint-"))
        .collect();
    assert_eq!(ckpts.len(), 2, "save_total_limit keeps two");
    assert!(a.join("base-model/config.json").exists());

    // `gym export` finds the base through the adapter (an absolute path) and merges it.
    let merged = a.join("merged");
    gym(&["export", "--adapter", a.join("adapter").to_str().unwrap(), "--out", merged.to_str().unwrap()]
        .map(String::from));
    let load = |p: PathBuf| candle_core::safetensors::load(p, &candle_core::Device::Cpu).unwrap();
    let (base, new) = (load(a.join("base-model/model.safetensors")), load(merged.join("model.safetensors")));
    assert_eq!(base.len(), new.len());
    let diff = |k: &String| {
        let d = (&new[k] - &base[k]).unwrap().abs().unwrap().sum_all().unwrap();
        d.to_dtype(candle_core::DType::F32).unwrap().to_scalar::<f32>().unwrap()
    };
    let changed = base.keys().filter(|k| diff(k) > 0.0);
    assert!(changed.count() >= 7, "the LoRA projections of the trained adapter are merged");
    // The toy base has no tokenizer: GGUF export names the missing file.
    let out = Command::new(env!("CARGO_BIN_EXE_gym"))
        .args(["export", "--adapter", a.join("adapter").to_str().unwrap(), "--out"])
        .arg(a.join("m.gguf"))
        .args(["--format", "gguf-q8_0"])
        .output()
        .unwrap();
    assert!(!out.status.success() && String::from_utf8_lossy(&out.stderr).contains("tokenizer.json"));
    // `gym plot` draws the run's curves.
    let svg = a.join("curves.svg");
    let m = a.join("metrics.jsonl");
    gym(&["plot", m.to_str().unwrap(), "-o", svg.to_str().unwrap(), "--metrics", "reward,tokens_per_second"]
        .map(String::from));
    let text = std::fs::read_to_string(&svg).unwrap();
    assert!(text.contains("tokens_per_second") && text.contains("<polyline"));
}

#[test]
fn bad_settings_are_clear_errors() {
    let tmp = tempfile::tempdir().unwrap();
    let out = Command::new(env!("CARGO_BIN_EXE_gym"))
        .args(["train", "toy:count_a", "--set", "learning_rat=1", "--output-dir"])
        .arg(tmp.path())
        .output()
        .unwrap();
    assert!(!out.status.success());
    assert!(String::from_utf8_lossy(&out.stderr).contains("learning_rat"));
    let out = Command::new(env!("CARGO_BIN_EXE_gym"))
        .args(["train", "toy:count_a", "--num-generations", "3", "--output-dir"])
        .arg(tmp.path())
        .output()
        .unwrap();
    assert!(!out.status.success());
    assert!(String::from_utf8_lossy(&out.stderr).contains("divisible"));
    let out = Command::new(env!("CARGO_BIN_EXE_gym"))
        .args(["train", "toy:count_a", "--resume", "--output-dir"])
        .arg(tmp.path().join("nothing"))
        .output()
        .unwrap();
    assert!(!out.status.success());
    assert!(String::from_utf8_lossy(&out.stderr).contains("no checkpoint"));
}

/// Multi-turn training on 2048: episodes of several replies become one
/// sequence each, env tokens masked; two runs of a seed write the same
/// metrics.
#[test]
fn trains_on_multi_turn_2048_deterministically() {
    let tmp = tempfile::tempdir().unwrap();
    // tiny-qwen2 with a longer context: its 360-symbol vocabulary spells 2048's prompt in ~450 tokens, past the
    // fixture's 256 positions (the model uses RoPE, so any context length is valid).
    let model = tmp.path().join("tiny-qwen2-long");
    std::fs::create_dir(&model).unwrap();
    let fixture = Path::new(env!("CARGO_MANIFEST_DIR")).join("../policies/tests/fixtures/tiny-qwen2");
    for f in std::fs::read_dir(&fixture).unwrap() {
        let f = f.unwrap().path();
        std::fs::copy(&f, model.join(f.file_name().unwrap())).unwrap();
    }
    let config = std::fs::read_to_string(model.join("config.json")).unwrap();
    let patched = config.replace("\"max_position_embeddings\": 256", "\"max_position_embeddings\": 4096");
    assert_ne!(config, patched);
    std::fs::write(model.join("config.json"), patched).unwrap();
    let run = |out: &Path| {
        let m = model.to_str().unwrap();
        let o = out.to_str().unwrap();
        gym(&[
            "train",
            "2048",
            "--model",
            m,
            "--opt",
            "size=3",
            "--opt",
            "invalid_allowance=2",
            "--max-steps",
            "2",
            "--set",
            "per_device_train_batch_size=4",
            "--set",
            "num_generations=2",
            "--set",
            "max_completion_length=320",
            "--set",
            "max_turn_tokens=6",
            // The 2048 prompt is ~800 tokens with this fixture's tokenizer; prompts are cut
            // before sampling now, and a step whose every prompt is cut is an error.
            "--set",
            "max_prompt_length=1024",
            "--quiet",
            "--output-dir",
            o,
        ]
        .map(String::from));
        metric_lines(out)
    };
    let (a, b) = (run(&tmp.path().join("a")), run(&tmp.path().join("b")));
    assert_eq!(a.len(), 2);
    let timeless = |m: &serde_json::Value| -> serde_json::Map<String, serde_json::Value> {
        let mut m = m.as_object().unwrap().clone();
        m.retain(|k, _| !k.contains("time") && !k.contains("per_second"));
        m
    };
    for (x, y) in a.iter().zip(&b) {
        assert_eq!(timeless(x), timeless(y), "same seed, same metrics");
        // The random model's replies are invalid moves: the game ends after two of them. Each reply is cut at
        // max_turn_tokens, and lengths count policy tokens only (env tokens between the turns do not count).
        assert_eq!(x["completions/mean_turns"], 2.0, "{x}");
        assert_eq!(x["completions/mean_length"], 12.0, "{x}");
        for k in ["reward", "rewards/invalid/mean", "loss", "entropy", "num_tokens"] {
            assert!(x.get(k).is_some(), "metric {k} missing: {x}");
        }
    }
    // The prompts and both env segments were processed: far more tokens than the 12 generated per completion.
    assert!(a[0]["num_tokens"].as_f64().unwrap() > 4.0 * 300.0, "{}", a[0]);
}

#[test]
fn ctrl_c_saves_the_last_finished_step_and_resume_matches_an_uninterrupted_run() {
    // No periodic checkpoints (`save_steps` 0): only the interrupt saves one.
    let steps = 24;
    let no_saves = |out: &Path| {
        let mut v = args(out, steps);
        let i = v.iter().position(|s| s == "--save-steps").unwrap();
        v[i + 1] = "0".into();
        v
    };
    let tmp = tempfile::tempdir().unwrap();
    let (a, b) = (tmp.path().join("a"), tmp.path().join("b"));
    gym(&no_saves(&a));
    let child = Command::new(env!("CARGO_BIN_EXE_gym"))
        .args(no_saves(&b))
        .stdout(Stdio::null())
        .stderr(Stdio::piped())
        .spawn()
        .unwrap();
    let t0 = Instant::now();
    let lines = |d: &Path| std::fs::read_to_string(d.join("metrics.jsonl")).map(|t| t.lines().count()).unwrap_or(0);
    while lines(&b) < 3 && t0.elapsed() < Duration::from_secs(120) {
        std::thread::sleep(Duration::from_millis(20));
    }
    // SAFETY: sending a signal to our own child process.
    assert_eq!(unsafe { libc::kill(child.id() as i32, libc::SIGINT) }, 0);
    let out = child.wait_with_output().unwrap();
    let stderr = String::from_utf8_lossy(&out.stderr);
    assert_eq!(out.status.code(), Some(130), "{stderr}");
    let done = lines(&b);
    assert!((3..steps).contains(&done), "{done} steps before the interrupt took effect");
    assert!(b.join(format!("checkpoint-{done}")).is_dir(), "{stderr}");
    assert!(stderr.contains(&format!("interrupted after step {done}")) && stderr.contains("--resume"), "{stderr}");

    // A fresh run may not reuse the folder (a later --resume would find a stale checkpoint).
    let fresh = Command::new(env!("CARGO_BIN_EXE_gym")).args(no_saves(&b)).output().unwrap();
    let err = String::from_utf8_lossy(&fresh.stderr);
    assert!(!fresh.status.success() && err.contains("--overwrite") && err.contains("--resume"), "{err}");

    gym(&[no_saves(&b), vec!["--resume".into()]].concat());
    let (ma, mb) = (metric_lines(&a), metric_lines(&b));
    assert_eq!(mb.len(), steps);
    for (i, (x, y)) in ma.iter().zip(&mb).enumerate() {
        assert_eq!(x["reward"], y["reward"], "step {}", i + 1);
        assert_eq!(x["loss"], y["loss"], "step {}", i + 1);
    }
    let adapter = |d: &Path| std::fs::read(d.join("adapter/adapter_model.safetensors")).unwrap();
    assert_eq!(adapter(&a), adapter(&b), "same final adapter");

    // --overwrite starts over.
    gym(&[no_saves(&b), vec!["--overwrite".into()]].concat());
    assert_eq!(metric_lines(&b).len(), steps);
}

#[test]
fn without_a_terminal_every_step_is_one_plain_line_with_an_eta() {
    let tmp = tempfile::tempdir().unwrap();
    let mut a = args(&tmp.path().join("log"), 3);
    a.retain(|s| s != "--quiet");
    let out = Command::new(env!("CARGO_BIN_EXE_gym")).args(&a).output().unwrap();
    let stderr = String::from_utf8_lossy(&out.stderr);
    assert!(out.status.success(), "{stderr}");
    for k in 1..=3 {
        assert!(stderr.contains(&format!("step {k}/3 [")), "{stderr}");
    }
    assert!(stderr.contains("eta") && stderr.contains("reward"), "{stderr}");
}

#[test]
fn the_bundled_gym_tiny_is_a_base_gym_export_resolves() {
    // An adapter trained on gym-tiny records `gym-tiny` as its base, which is
    // in the binary, not on disk: export must still find it.
    let tmp = tempfile::tempdir().unwrap();
    let out = tmp.path().join("tiny-hf");
    gym(&["export", "--base", "gym-tiny", "--out", out.to_str().unwrap()].map(String::from));
    let load = |p: PathBuf| candle_core::safetensors::load(p, &candle_core::Device::Cpu).unwrap();
    let written = load(out.join("model.safetensors"));
    let bundled =
        candle_core::safetensors::load_buffer(policies::llm::tiny::WEIGHTS, &candle_core::Device::Cpu).unwrap();
    assert_eq!(written.len(), bundled.len());
    assert!(out.join("tokenizer.json").exists() && out.join("config.json").exists());
}

#[test]
fn resume_refuses_changed_settings_unless_told() {
    let tmp = tempfile::tempdir().unwrap();
    let out = tmp.path().join("r");
    gym(&args(&out, 2));
    // Running longer is a resumable change.
    gym(&[args(&out, 3), vec!["--resume".into()]].concat());
    assert_eq!(metric_lines(&out).len(), 3);
    // A different learning rate is not: the resumed run would be another run.
    let changed = [args(&out, 4), vec!["--resume".into(), "--learning-rate".into(), "0.9".into()]].concat();
    let o = Command::new(env!("CARGO_BIN_EXE_gym")).args(&changed).output().unwrap();
    let err = String::from_utf8_lossy(&o.stderr);
    assert!(!o.status.success() && err.contains("learning_rate") && err.contains("--allow-config-change"), "{err}");
    assert_eq!(metric_lines(&out).len(), 3, "a refused resume changes nothing");
    gym(&[changed, vec!["--allow-config-change".into()]].concat());
    assert_eq!(metric_lines(&out).len(), 4);
}
