//! One SFT optimizer step on the bundled gym-tiny model (3 layers, hidden
//! 128): 16 examples of a 2048-strategy prompt with a generated program as
//! the reply, LoRA r 16 on all linear layers, forward + backward + AdamW.

#![allow(missing_docs)] // criterion generates undocumented items

use criterion::{criterion_group, criterion_main, Criterion};
use envs::games::strategy::programs::program_2048;
use models::lora::LoraConfig;
use trainers::sft::{text_example, SftConfig, SftTrainer, SftWeights};

fn bench(c: &mut Criterion) {
    // As the `gym` binary does at start.
    models::heap::tune_heap_for_tensors();
    let policy = policies::llm::tiny::load().expect("gym-tiny");
    let examples = (0..64)
        .map(|seed| {
            text_example(&policy, "Write a 2048 strategy for a 4x4 board", &program_2048(seed)).expect("example")
        })
        .collect();
    let cfg = SftConfig {
        // A learning rate of 0 keeps the work per step the same across iterations.
        learning_rate: 0.0,
        max_steps: 1_000_000,
        per_device_train_batch_size: 16,
        seed: 0,
        weights: SftWeights::Lora(LoraConfig { r: 16, lora_alpha: 32.0, ..LoraConfig::default() }),
        ..SftConfig::default()
    };
    let mut trainer = SftTrainer::new(policy.model().clone(), None, examples, cfg).expect("trainer");
    c.bench_function("sft_step_gym_tiny_16", |b| b.iter(|| trainer.train_step().expect("step")));
}

criterion_group! {
    name = benches;
    config = Criterion::default().sample_size(10);
    targets = bench
}
criterion_main!(benches);
