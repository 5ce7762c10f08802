//! CPU generation throughput of gym's decoder on a random-init model of
//! Qwen2.5-0.5B's shape (24 layers, hidden 896, 14/2 heads, vocab 151936,
//! tied embeddings), f32: prefill of 64 tokens, and decode of 16 new
//! tokens (after a 16-token prompt) for one sample and for a group of 8
//! sharing the prompt's cache.
//!
//! `cargo bench -p policies --bench generate -- --warm-up-time 1 --measurement-time 3`
#![allow(missing_docs)] // criterion_group! generates undocumented public items

use candle_core::{Device, Tensor};
use criterion::{criterion_group, criterion_main, Criterion, Throughput};
use policies::llm::sampling::Detokenize;
use policies::llm::{generate, CausalLm, ModelConfig, RandomInit, SampleOptions};

/// No stop strings are used, so the text is not needed.
struct NoText;

impl Detokenize for NoText {
    fn detokenize(&self, _ids: &[u32]) -> Result<String, policies::llm::LlmError> {
        Ok(String::new())
    }
}

fn qwen25_05b() -> ModelConfig {
    let v = serde_json::json!({"model_type": "qwen2", "vocab_size": 151936, "hidden_size": 896,
        "intermediate_size": 4864, "num_hidden_layers": 24, "num_attention_heads": 14, "num_key_value_heads": 2,
        "max_position_embeddings": 32768, "rope_theta": 1000000.0, "rms_norm_eps": 1e-6,
        "tie_word_embeddings": true, "hidden_act": "silu"});
    ModelConfig::from_json(&v).expect("valid config")
}

fn bench(c: &mut Criterion) {
    let cfg = qwen25_05b();
    let model = CausalLm::random(&cfg, RandomInit::default(), &Device::Cpu).expect("random model");
    let prompt: Vec<u32> = (0..64u32).map(|i| i * 2311 % 151936).collect();
    let mut g = c.benchmark_group("qwen2.5-0.5b-shape");
    g.sample_size(10);
    g.throughput(Throughput::Elements(64));
    g.bench_function("prefill_64_b1", |b| {
        let ids = Tensor::new(prompt.as_slice(), &Device::Cpu).unwrap().unsqueeze(0).unwrap();
        b.iter(|| model.forward_last(&ids, Some(&mut model.new_cache())).unwrap())
    });
    let opts = SampleOptions { max_new_tokens: 16, seed: 1, ..SampleOptions::default() };
    for n in [1usize, 8] {
        g.throughput(Throughput::Elements(16 * n as u64));
        g.bench_function(format!("prompt16_decode16_n{n}"), |b| {
            b.iter(|| {
                let s = generate(&model, &NoText, &prompt[..16], n, &opts).unwrap();
                assert!(s.iter().all(|s| s.token_ids.len() == 16));
            })
        });
    }
    g.finish();
}

criterion_group!(benches, bench);
criterion_main!(benches);
