//! Exports: LoRA merged into the base (Hugging Face folder read back by
//! gym's own loader, logits equal to base + adapter) and GGUF (read back
//! with candle here, and with the `gguf` Python package in a venv the test
//! creates — never skipped: a missing Python or a failed `pip install`
//! fails it).

use std::path::{Path, PathBuf};
use std::process::Command;

use candle_core::quantized::gguf_file;
use candle_core::{DType, Device, Tensor};
use models::export::{self, ExportFormat};
use policies::llm::LlmPolicy;
use rand::{Rng, SeedableRng};
use rand_chacha::ChaCha8Rng;
use trainers::{Lora, LoraConfig};

fn fixture(name: &str) -> PathBuf {
    Path::new(env!("CARGO_MANIFEST_DIR")).join("../policies/tests/fixtures").join(name)
}

const IDS: [u32; 9] = [1, 40, 41, 200, 7, 99, 300, 18, 250];

fn logits(p: &LlmPolicy) -> Vec<f32> {
    let ids = Tensor::new(&[IDS], &Device::Cpu).unwrap();
    p.model().forward(&ids, None).unwrap().flatten_all().unwrap().to_vec1().unwrap()
}

fn max_diff(a: &[f32], b: &[f32]) -> f32 {
    assert_eq!(a.len(), b.len());
    a.iter().zip(b).map(|(x, y)| (x - y).abs()).fold(0.0, f32::max)
}

/// Attaches a LoRA with random non-zero A and B to the fixture, saves it in
/// PEFT format under `dir/adapter`, and returns the base+adapter logits
/// and the base logits.
fn trained_adapter(name: &str, dir: &Path, seed: u64) -> (Vec<f32>, Vec<f32>) {
    let mut p = LlmPolicy::load(fixture(name).to_str().unwrap()).unwrap();
    let base = logits(&p);
    // gpt-oss: attention only (its experts are not LoRA targets).
    let targets =
        if name == "tiny-gpt-oss" { vec!["q_proj", "k_proj", "v_proj", "o_proj"] } else { vec!["all-linear"] };
    let cfg = LoraConfig {
        r: 4,
        lora_alpha: 8.0,
        use_rslora: seed % 2 == 1,
        target_modules: targets.into_iter().map(String::from).collect(),
        ..LoraConfig::default()
    };
    let lora = Lora::attach(p.model_mut(), &cfg, seed).unwrap();
    let mut rng = ChaCha8Rng::seed_from_u64(seed);
    for l in lora.layers() {
        let (o, r) = l.b().dims2().unwrap();
        let v: Vec<f32> = (0..o * r).map(|_| rng.gen_range(-0.2..0.2)).collect();
        l.b().set(&Tensor::from_vec(v, (o, r), &Device::Cpu).unwrap()).unwrap();
    }
    let adapted = logits(&p);
    lora.save_peft(&dir.join("adapter"), fixture(name).to_str().unwrap()).unwrap();
    (adapted, base)
}

#[test]
fn merged_hf_export_loads_in_gym_with_the_adapted_logits() {
    for (i, name) in ["tiny-qwen2", "tiny-qwen3", "tiny-llama", "tiny-gpt-oss"].into_iter().enumerate() {
        let tmp = tempfile::tempdir().unwrap();
        let (adapted, base) = trained_adapter(name, tmp.path(), 10 + i as u64);
        assert!(max_diff(&adapted, &base) > 1e-2, "{name}: the adapter must change the logits");
        let out = tmp.path().join("merged");
        export::export(&fixture(name), Some(&tmp.path().join("adapter")), &out, ExportFormat::Hf, Some(DType::F32))
            .unwrap();
        for f in ["config.json", "model.safetensors", "tokenizer.json", "generation_config.json"] {
            assert!(out.join(f).is_file(), "{name}: {f} missing");
        }
        let merged = LlmPolicy::load(out.to_str().unwrap()).unwrap();
        let d = max_diff(&logits(&merged), &adapted);
        assert!(d < 1e-5, "{name}: merged logits differ from base+adapter by {d}");
        // The chat template comes along (file or tokenizer_config.json).
        assert_eq!(
            merged.chat_template().is_some(),
            LlmPolicy::load(fixture(name).to_str().unwrap()).unwrap().chat_template().is_some()
        );
        let cfg: serde_json::Value =
            serde_json::from_str(&std::fs::read_to_string(out.join("config.json")).unwrap()).unwrap();
        assert_eq!(cfg["dtype"], "float32", "{name}");
    }
}

#[test]
fn default_dtype_is_the_base_dtype_and_base_only_export_is_the_base() {
    let tmp = tempfile::tempdir().unwrap();
    let out = tmp.path().join("copy");
    export::export(&fixture("tiny-qwen2"), None, &out, ExportFormat::Hf, None).unwrap();
    let t = candle_core::safetensors::load(out.join("model.safetensors"), &Device::Cpu).unwrap();
    assert!(t.values().all(|t| t.dtype() == DType::BF16));
    let a = LlmPolicy::load(out.to_str().unwrap()).unwrap();
    let b = LlmPolicy::load(fixture("tiny-qwen2").to_str().unwrap()).unwrap();
    assert_eq!(logits(&a), logits(&b));
}

#[test]
fn bad_inputs_are_named() {
    let tmp = tempfile::tempdir().unwrap();
    let e = export::merge(&fixture("tiny-qwen2"), Some(tmp.path())).unwrap_err().to_string();
    assert!(e.contains("adapter_config.json"), "{e}");
    // An adapter of another model: shapes do not fit.
    trained_adapter("tiny-qwen3", tmp.path(), 3);
    let e = export::merge(&fixture("tiny-qwen2"), Some(&tmp.path().join("adapter"))).unwrap_err().to_string();
    assert!(e.contains("shape") && e.contains("k_proj.weight") && e.contains("another model"), "{e}");
    std::fs::remove_file(tmp.path().join("adapter/adapter_model.safetensors")).unwrap();
    let e = export::merge(&fixture("tiny-qwen3"), Some(&tmp.path().join("adapter"))).unwrap_err().to_string();
    assert!(e.contains("adapter_model.safetensors"), "{e}");
    let e = export::merge(tmp.path(), None).unwrap_err().to_string();
    assert!(e.contains("config.json"), "{e}");
    let e = export::export(&fixture("tiny-gpt-oss"), None, &tmp.path().join("x.gguf"), ExportFormat::GgufF16, None)
        .unwrap_err()
        .to_string();
    assert!(e.contains("not supported") && e.contains("qwen3"), "{e}");
}

#[test]
fn file_errors_name_the_file_and_are_not_config_errors() {
    let tmp = tempfile::tempdir().unwrap();
    // The output folder cannot be created: a file is in the way.
    let blocker = tmp.path().join("blocker");
    std::fs::write(&blocker, "not a folder").unwrap();
    let out = blocker.join("merged");
    let e = export::export(&fixture("tiny-qwen2"), None, &out, ExportFormat::Hf, None).unwrap_err();
    assert!(matches!(e, models::ModelError::File { .. }), "{e:?}");
    let msg = e.to_string();
    assert!(msg.contains(&out.display().to_string()) && !msg.starts_with("config"), "{msg}");
    // An unreadable config.json is a file error that names it.
    let base = tmp.path().join("base");
    std::fs::create_dir(&base).unwrap();
    std::fs::write(base.join("config.json"), "{ not json").unwrap();
    let e = export::merge(&base, None).unwrap_err();
    assert!(matches!(e, models::ModelError::File { .. }), "{e:?}");
    assert!(e.to_string().contains("config.json") && e.to_string().contains("invalid JSON"), "{e}");
}

/// f16 and q8_0 GGUFs plus the f32 HF merge of one fixture with an adapter.
fn gguf_exports(name: &str, dir: &Path, seed: u64) -> (PathBuf, PathBuf, PathBuf) {
    trained_adapter(name, dir, seed);
    let adapter = dir.join("adapter");
    let hf = dir.join("merged");
    export::export(&fixture(name), Some(&adapter), &hf, ExportFormat::Hf, Some(DType::F32)).unwrap();
    let f16 = export::export(&fixture(name), Some(&adapter), dir, ExportFormat::GgufF16, None).unwrap();
    let q8 = export::export(&fixture(name), Some(&adapter), &dir.join("q.gguf"), ExportFormat::GgufQ8_0, None).unwrap();
    assert_eq!(f16, dir.join("model-f16.gguf"));
    (hf, f16, q8)
}

#[test]
fn gguf_reads_back_with_candle() {
    for (name, arch) in [("tiny-qwen2", "qwen2"), ("tiny-qwen3", "qwen3"), ("tiny-llama", "llama")] {
        let tmp = tempfile::tempdir().unwrap();
        let (hf, f16, q8) = gguf_exports(name, tmp.path(), 21);
        let merged = candle_core::safetensors::load(hf.join("model.safetensors"), &Device::Cpu).unwrap();
        for (path, ty) in [(&f16, 1u32), (&q8, 7)] {
            let mut f = std::fs::File::open(path).unwrap();
            let c = gguf_file::Content::read(&mut f).unwrap();
            let md = |k: &str| c.metadata.get(k).unwrap_or_else(|| panic!("{name}: no {k}"));
            assert_eq!(md("general.architecture").to_string().unwrap(), arch);
            assert_eq!(md("general.file_type").to_u32().unwrap(), ty);
            assert_eq!(md(&format!("{arch}.block_count")).to_u32().unwrap(), 2);
            assert_eq!(md("tokenizer.ggml.tokens").to_vec().unwrap().len(), 360);
            let tied = name != "tiny-qwen3";
            assert_eq!(c.tensor_infos.contains_key("output.weight"), !tied, "{name}");
            assert_eq!(c.tensor_infos.contains_key("rope_freqs.weight"), arch == "llama", "{name}");
            // v_proj is never permuted: dequantized values match the merged weight.
            let v = c.tensor(&mut f, "blk.1.attn_v.weight", &Device::Cpu).unwrap().dequantize(&Device::Cpu).unwrap();
            let want = &merged["model.layers.1.self_attn.v_proj.weight"];
            assert_eq!(v.dims(), want.dims());
            let err = (v - want).unwrap().abs().unwrap().max_all().unwrap().to_scalar::<f32>().unwrap();
            let scale = want.abs().unwrap().max_all().unwrap().to_scalar::<f32>().unwrap();
            let tol = if ty == 1 { 1e-3 * scale } else { scale / 127.0 };
            assert!(err <= tol && err > 0.0, "{name} {path:?}: error {err}, tolerance {tol}");
            let q = c.tensor(&mut f, "blk.0.attn_q.weight", &Device::Cpu).unwrap();
            let want_ty =
                if ty == 1 { candle_core::quantized::GgmlDType::F16 } else { candle_core::quantized::GgmlDType::Q8_0 };
            assert_eq!(q.dtype(), want_ty);
            let norm = c.tensor(&mut f, "blk.0.attn_norm.weight", &Device::Cpu).unwrap();
            assert_eq!(norm.dtype(), candle_core::quantized::GgmlDType::F32);
        }
    }
}

fn venv_root() -> PathBuf {
    if let Ok(d) = std::env::var("GGUF_VENV_DIR") {
        return PathBuf::from(d);
    }
    match std::env::var("CARGO_TARGET_DIR") {
        Ok(d) => PathBuf::from(d),
        Err(_) => Path::new(env!("CARGO_MANIFEST_DIR")).join("../target"),
    }
}

fn run(cmd: &mut Command) -> String {
    let out = cmd.output().unwrap_or_else(|e| panic!("cannot run {cmd:?}: {e}"));
    let text = format!("{}{}", String::from_utf8_lossy(&out.stdout), String::from_utf8_lossy(&out.stderr));
    assert!(out.status.success(), "{cmd:?} failed ({}):\n{text}", out.status);
    text
}

/// The `gguf` package version the test pins.
const GGUF_VERSION: &str = "0.19.0";

/// A venv with `gguf` (and numpy) installed, reused when already there.
fn gguf_venv() -> PathBuf {
    let dir = venv_root().join("gguf-venv");
    let py = dir.join("bin/python");
    let have = Command::new(&py)
        .args(["-c", "import importlib.metadata as m, numpy; print(m.version('gguf'))"])
        .output()
        .ok()
        .filter(|o| o.status.success())
        .map(|o| String::from_utf8_lossy(&o.stdout).trim().to_string());
    if have.as_deref() == Some(GGUF_VERSION) {
        return py;
    }
    let _ = std::fs::remove_dir_all(&dir);
    std::fs::create_dir_all(venv_root()).expect("venv root");
    run(Command::new("python3").args(["-m", "venv"]).arg(&dir));
    run(Command::new(dir.join("bin/pip")).args([
        "install",
        "--quiet",
        "--disable-pip-version-check",
        &format!("gguf=={GGUF_VERSION}"),
        "numpy",
    ]));
    py
}

#[test]
fn gguf_exports_load_with_the_gguf_python_package() {
    let py = gguf_venv();
    let script = Path::new(env!("CARGO_MANIFEST_DIR")).join("../scripts/check_gguf.py");
    for (i, name) in ["tiny-qwen2", "tiny-qwen3", "tiny-llama"].into_iter().enumerate() {
        let tmp = tempfile::tempdir().unwrap();
        let (hf, f16, q8) = gguf_exports(name, tmp.path(), 30 + i as u64);
        for (file, ty) in [(f16, "f16"), (q8, "q8_0")] {
            let out = run(Command::new(&py).arg(&script).arg(&file).arg(&hf).arg(ty));
            assert!(out.contains(&format!("OK {}", file.display())), "{out}");
        }
    }
}

/// SFT's saved `model/` and `gym export` of its `model/adapter/` are the same
/// folder: one merge routine, one writer (file modes, `dtype`, files copied).
#[test]
fn sft_model_folder_equals_the_export_of_its_adapter() {
    use trainers::sft::{SftConfig, SftExample, SftTrainer, SftWeights};
    let tmp = tempfile::tempdir().unwrap();
    let base = fixture("tiny-qwen2");
    let policy = LlmPolicy::load(base.to_str().unwrap()).unwrap();
    let example = SftExample { prompt: vec![1, 40, 41], completion: vec![200, 7], mask: vec![true, true] };
    let cfg =
        SftConfig { weights: SftWeights::Lora(LoraConfig { r: 4, ..LoraConfig::default() }), ..SftConfig::default() };
    let trainer = SftTrainer::new(policy.model().clone(), None, vec![example], cfg).unwrap();
    let mut rng = ChaCha8Rng::seed_from_u64(5);
    for l in trainer.lora().unwrap().layers() {
        let (o, r) = l.b().dims2().unwrap();
        let v: Vec<f32> = (0..o * r).map(|_| rng.gen_range(-0.2..0.2)).collect();
        l.b().set(&Tensor::from_vec(v, (o, r), &Device::Cpu).unwrap()).unwrap();
    }
    let files = models::ModelFiles::from_dir(&base).unwrap();
    let saved = tmp.path().join("model");
    trainer.save(&files, &saved).unwrap();
    let exported = tmp.path().join("exported");
    export::export(&base, Some(&saved.join("adapter")), &exported, ExportFormat::Hf, None).unwrap();
    let list = |d: &Path| {
        let mut v: Vec<String> = std::fs::read_dir(d)
            .unwrap()
            .map(|e| e.unwrap().file_name().to_string_lossy().into_owned())
            .filter(|n| n != "adapter")
            .collect();
        v.sort();
        v
    };
    assert_eq!(list(&saved), list(&exported));
    for f in list(&saved) {
        let (a, b) = (std::fs::read(saved.join(&f)).unwrap(), std::fs::read(exported.join(&f)).unwrap());
        assert!(a == b, "{f} differs between SFT's model folder and gym export");
        #[cfg(unix)]
        {
            use std::os::unix::fs::PermissionsExt;
            let mode = |d: &Path| std::fs::metadata(d.join(&f)).unwrap().permissions().mode() & 0o777;
            assert_eq!(mode(&saved), mode(&exported), "{f}: file mode");
        }
    }
    let cfg: serde_json::Value =
        serde_json::from_str(&std::fs::read_to_string(saved.join("config.json")).unwrap()).unwrap();
    assert!(cfg.get("torch_dtype").or_else(|| cfg.get("dtype")).is_some(), "the saved config names its dtype");
}
