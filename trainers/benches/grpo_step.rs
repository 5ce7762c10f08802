//! One GRPO optimizer step on the L5 toy configuration (random
//! 2-layer Qwen2-shaped model, LoRA r 8 on all linear layers, 8 prompts ×
//! 8 generations, 8 new tokens): generation + scoring + backward + AdamW.

#![allow(missing_docs)] // criterion generates undocumented items

use candle_core::Device;
use criterion::{criterion_group, criterion_main, Criterion};
use trainers::config::GrpoConfig;
use trainers::optim::Schedule;
use trainers::toy::{TinyModelSpec, ToySource, ToyTask};
use trainers::GrpoTrainer;

fn bench(c: &mut Criterion) {
    // As the `gym` binary does at start.
    models::heap::tune_heap_for_tensors();
    let cfg = GrpoConfig {
        learning_rate: 3e-3,
        lr_scheduler_type: Schedule::Constant,
        max_steps: 1_000_000,
        per_device_train_batch_size: 64,
        num_generations: 8,
        max_completion_length: 8,
        lora_r: 8,
        lora_alpha: 16.0,
        seed: 0,
        ..GrpoConfig::default()
    };
    let model = TinyModelSpec::default().build(0, &Device::Cpu).expect("model");
    // A fixed LR of 0 keeps the policy (and so the work per step) unchanged across iterations.
    let mut trainer = GrpoTrainer::new(model, GrpoConfig { learning_rate: 0.0, ..cfg }).expect("trainer");
    let mut source = ToySource::new(ToyTask::CountA);
    c.bench_function("grpo_step_toy_64x8", |b| b.iter(|| trainer.train_step(&mut source).expect("step")));
}

criterion_group! {
    name = benches;
    config = Criterion::default().sample_size(10);
    targets = bench
}
criterion_main!(benches);
