//! CPU generation throughput of gym's decoder on a random-init model of
//! Qwen2.5-0.5B's shape (24 layers, hidden 896, 14/2 heads, vocab 151936,
//! tied embeddings), f32: prefill of 64 tokens, and decode of 16 new
//! tokens (after a 16-token prompt) for one sample and for a group of 8
//! sharing the prompt's cache.
//!
//! `cargo bench -p models --bench generate -- --warm-up-time 1 --measurement-time 3`
#![allow(missing_docs)] // criterion_group! generates undocumented public items

use candle_core::{Device, Tensor};
use criterion::{criterion_group, criterion_main, Criterion, Throughput};
use models::sampling::NoText;
use models::{generate, random, CausalLm, RandomInit, SampleOptions};

fn bench(c: &mut Criterion) {
    let cfg = random::shape("qwen2.5-0.5b").expect("known shape");
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
