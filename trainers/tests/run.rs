//! Whole GRPO runs through `trainers::run`: the output folder, resume from
//! the newest checkpoint, and `--save-merged` writing the same folder as
//! `gym export` of the run's adapter.

use std::path::{Path, PathBuf};

use candle_core::Device;
use models::export::{self, ExportFormat};
use trainers::run::{layered_config, GrpoRun, GrpoRunSpec};

fn fixture() -> PathBuf {
    Path::new(env!("CARGO_MANIFEST_DIR")).join("../policies/tests/fixtures/tiny-qwen2")
}

fn spec(out: &Path) -> GrpoRunSpec {
    GrpoRunSpec {
        target: "math".into(),
        env_options: vec![],
        model: Some(fixture().display().to_string()),
        device: Device::Cpu,
        rollout_threads: 1,
        output_dir: out.to_path_buf(),
        save_merged: true,
        overwrite: false,
        allow_config_change: false,
    }
}

fn settings(max_steps: i64) -> Vec<(String, toml::Value)> {
    [
        ("max_steps", toml::Value::Integer(max_steps)),
        ("num_generations", toml::Value::Integer(2)),
        ("per_device_train_batch_size", toml::Value::Integer(2)),
        ("max_completion_length", toml::Value::Integer(6)),
        ("save_steps", toml::Value::Integer(1)),
    ]
    .into_iter()
    .map(|(k, v)| (k.to_string(), v))
    .collect()
}

fn metric_steps(out: &Path) -> Vec<u64> {
    std::fs::read_to_string(out.join("metrics.jsonl"))
        .unwrap()
        .lines()
        .map(|l| serde_json::from_str::<serde_json::Value>(l).unwrap()["step"].as_u64().unwrap())
        .collect()
}

#[test]
fn a_run_resumes_from_its_checkpoint_and_saves_the_merged_model_as_export_does() {
    let tmp = tempfile::tempdir().unwrap();
    let out = tmp.path().join("run");
    let mut run = GrpoRun::start(&spec(&out), layered_config(None, None, &settings(1)).unwrap(), None).unwrap();
    while !run.is_done() {
        run.step().unwrap();
    }
    run.finish().unwrap();
    assert_eq!(metric_steps(&out), [1]);
    assert!(out.join("checkpoint-1").is_dir() && out.join("config.toml").is_file());

    // A stray metrics line past the checkpoint (a killed run) is dropped on resume.
    let mut lines = std::fs::read_to_string(out.join("metrics.jsonl")).unwrap();
    lines.push_str("{\"step\": 2, \"loss\": 0.0}\n");
    std::fs::write(out.join("metrics.jsonl"), lines).unwrap();
    let ck = GrpoRun::resume_point(&out).unwrap();
    // The checkpoint's settings, then the overrides: two steps in all.
    let cfg = layered_config(None, Some(&ck), &[("max_steps".to_string(), toml::Value::Integer(2))]).unwrap();
    assert_eq!((cfg.max_completion_length, cfg.num_generations), (6, 2));
    let mut run = GrpoRun::start(&spec(&out), cfg, Some(&ck)).unwrap();
    assert_eq!(run.resumed().map(|(_, st)| st.global_step), Some(1));
    assert_eq!(run.steps_done(), 1);
    while !run.is_done() {
        run.step().unwrap();
    }
    let written = run.finish().unwrap();
    assert_eq!(metric_steps(&out), [1, 2]);

    // --save-merged wrote what `gym export` writes for the final adapter, byte for byte.
    let model = written.model.expect("save_merged writes model/");
    let exported = tmp.path().join("exported");
    export::export(&fixture(), written.adapter.as_deref(), &exported, ExportFormat::Hf, None).unwrap();
    for f in ["config.json", "model.safetensors", "tokenizer.json"] {
        assert!(
            std::fs::read(model.join(f)).unwrap() == std::fs::read(exported.join(f)).unwrap(),
            "{f} differs between --save-merged and gym export"
        );
    }
}

#[test]
fn a_resume_without_a_checkpoint_is_a_clear_error() {
    let tmp = tempfile::tempdir().unwrap();
    let e = GrpoRun::resume_point(tmp.path()).unwrap_err().to_string();
    assert!(e.contains("no checkpoint") && e.contains(&tmp.path().display().to_string()), "{e}");
}
