//! Writes gym's logits for a base model + PEFT adapter, for
//! `trainers/scripts/peft_check.py` to compare with Python `peft`.
//!
//! `cargo run -p trainers --example peft_logits -- BASE_DIR ADAPTER_DIR OUT.json`

use std::path::PathBuf;

use candle_core::{DType, Device, Tensor};
use candle_nn::VarBuilder;
use models::{CausalLm, ModelConfig};
use trainers::Lora;

fn main() -> Result<(), Box<dyn std::error::Error>> {
    let args: Vec<PathBuf> = std::env::args().skip(1).map(PathBuf::from).collect();
    let [base, adapter, out] = args.as_slice() else {
        return Err("usage: peft_logits BASE_DIR ADAPTER_DIR OUT.json".into());
    };
    let cfg_json: serde_json::Value = serde_json::from_str(&std::fs::read_to_string(base.join("config.json"))?)?;
    let cfg = ModelConfig::from_json(&cfg_json)?;
    // SAFETY: read-only mmap of a file nobody modifies while we run.
    let vb =
        unsafe { VarBuilder::from_mmaped_safetensors(&[base.join("model.safetensors")], DType::F32, &Device::Cpu)? };
    let mut model = CausalLm::load(&cfg, vb)?;
    let ids: Vec<Vec<u32>> = vec![vec![1, 17, 18, 17, 15, 16, 16, 16], vec![1, 7, 15, 7, 7, 3, 4, 5]];
    let t = Tensor::new(ids.clone(), &Device::Cpu)?;
    let base_logits: Vec<Vec<Vec<f32>>> = model.forward(&t, None)?.to_vec3()?;
    let lora = Lora::attach(&mut model, &Lora::read_peft_config(adapter)?, 0)?;
    lora.load_peft(adapter)?;
    let logits: Vec<Vec<Vec<f32>>> = model.forward(&t, None)?.to_vec3()?;
    let v = serde_json::json!({"input_ids": ids, "logits": logits, "base_logits": base_logits});
    std::fs::write(out, serde_json::to_string(&v)?)?;
    Ok(())
}
