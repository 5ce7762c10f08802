//! GPU checks (build with `--features cuda`; run on a machine with an NVIDIA
//! GPU, e.g. through `scripts/gpu_test.sh`): the tiny fixtures' logits on
//! CUDA match the CPU (f32 on CUDA to 1e-3, bf16 weights within bf16
//! tolerance) and greedy generation agrees.
//!
//! Without a GPU these tests fail (they never pass silently); the normal
//! test suite does not build them (no `cuda` feature).
#![cfg(feature = "cuda")]

use std::path::PathBuf;

use candle_core::{DType, Device, Tensor};
use models::{ModelFiles, SampleOptions};
use policies::llm::LlmPolicy;

/// The fixtures folder: `$GYM_REPO/policies/tests/fixtures`, else the
/// source tree this was built from, else `./policies/tests/fixtures`.
fn fixtures() -> PathBuf {
    if let Ok(r) = std::env::var("GYM_REPO") {
        return PathBuf::from(r).join("policies/tests/fixtures");
    }
    let built = PathBuf::from(env!("CARGO_MANIFEST_DIR")).join("tests/fixtures");
    if built.exists() {
        built
    } else {
        PathBuf::from("policies/tests/fixtures")
    }
}

fn gpu() -> Device {
    Device::new_cuda(0).expect("a CUDA GPU (these tests need one)")
}

fn load(name: &str, device: &Device, dtype: DType) -> LlmPolicy {
    let files = ModelFiles::from_dir(&fixtures().join(name)).unwrap();
    LlmPolicy::from_files(name, &files, device, dtype).unwrap()
}

fn prompts(name: &str) -> Vec<String> {
    let text = std::fs::read_to_string(fixtures().join(name).join("expected.json")).unwrap();
    let v: serde_json::Value = serde_json::from_str(&text).unwrap();
    v["prompts"].as_array().unwrap().iter().map(|p| p["text"].as_str().unwrap().to_string()).collect()
}

fn logits(p: &LlmPolicy, ids: &[u32]) -> Tensor {
    let x = Tensor::new(ids, p.model().device()).unwrap().unsqueeze(0).unwrap();
    p.model()
        .forward(&x, None)
        .unwrap()
        .squeeze(0)
        .unwrap()
        .to_dtype(DType::F32)
        .unwrap()
        .to_device(&Device::Cpu)
        .unwrap()
}

fn max_abs(t: &Tensor) -> f32 {
    t.abs().unwrap().max_all().unwrap().to_scalar().unwrap()
}

fn check(name: &str) {
    let moe = name.contains("gpt-oss");
    let dev = gpu();
    let cpu = load(name, &Device::Cpu, DType::F32);
    let f32_gpu = load(name, &dev, DType::F32);
    let bf16_gpu = load(name, &dev, DType::BF16);
    for (i, text) in prompts(name).iter().enumerate() {
        let ids = cpu.encode(text).unwrap();
        let want = logits(&cpu, &ids);
        let scale = max_abs(&want).max(1.0);
        let d32 = max_abs(&(logits(&f32_gpu, &ids) - &want).unwrap());
        assert!(d32 < 1e-3 * scale, "{name} prompt {i}: f32 CUDA vs CPU max |diff| {d32} (scale {scale})");
        let diff16 = (logits(&bf16_gpu, &ids) - &want).unwrap();
        let d16 = max_abs(&diff16);
        let mean16: f32 = diff16.abs().unwrap().mean_all().unwrap().to_scalar().unwrap();
        println!(
            "{name} prompt {i}: max |logit diff| f32 {d32:.2e}, bf16 {d16:.2e} (mean {mean16:.2e}; max |logit| {scale:.2})"
        );
        if moe {
            // Mixture of experts: bf16 rounding of the router's inputs can
            // flip a top-k expert choice at a position, which moves that
            // position's logits a lot (so does HF transformers in bf16), so
            // the bound is on the mean difference.
            assert!(mean16 < 0.05 * scale, "{name} prompt {i}: bf16 CUDA vs CPU mean |diff| {mean16} (scale {scale})");
        } else {
            // bf16 keeps 8 significant bits: a few ulps of the largest logit
            // after a handful of layers.
            assert!(d16 < 0.05 * scale, "{name} prompt {i}: bf16 CUDA vs CPU max |diff| {d16} (scale {scale})");
        }

        // Greedy: identical tokens in f32; in bf16 a different token is
        // allowed only where the CPU's top two were within bf16 error.
        let opts = SampleOptions { temperature: 0.0, max_new_tokens: 12, ..Default::default() };
        let want_tokens = cpu.sample_ids(&ids, 1, &opts).unwrap().remove(0).token_ids;
        let got32 = f32_gpu.sample_ids(&ids, 2, &opts).unwrap();
        for s in &got32 {
            assert_eq!(s.token_ids, want_tokens, "{name} prompt {i}: f32 CUDA greedy tokens");
        }
        let got16 = bf16_gpu.sample_ids(&ids, 1, &opts).unwrap().remove(0).token_ids;
        if let Some(k) = got16.iter().zip(&want_tokens).position(|(a, b)| a != b) {
            let mut prefix = ids.clone();
            prefix.extend(&want_tokens[..k]);
            let l = logits(&cpu, &prefix);
            let last = l.get(l.dim(0).unwrap() - 1).unwrap().to_vec1::<f32>().unwrap();
            let margin = (last[want_tokens[k] as usize] - last[got16[k] as usize]).abs();
            assert!(
                moe || margin < 0.05 * scale,
                "{name} prompt {i}: bf16 greedy diverged at token {k} although the CPU margin was {margin}"
            );
            println!("{name} prompt {i}: bf16 greedy diverged at token {k} (CPU margin {margin:.3}, a near tie)");
        }
    }
}

#[test]
fn qwen2_on_cuda_matches_cpu() {
    check("tiny-qwen2");
}

#[test]
fn qwen3_on_cuda_matches_cpu() {
    check("tiny-qwen3");
}

#[test]
fn llama3_on_cuda_matches_cpu() {
    check("tiny-llama");
}

#[test]
fn gpt_oss_on_cuda_matches_cpu() {
    check("tiny-gpt-oss");
}
