//! One-step env throughput: problem generation, scene rendering, PNG
//! encoding, and a full reset + step with the rubric.
//!
//! `cargo bench -p envs --bench onestep -- --warm-up-time 1 --measurement-time 3`

// `criterion_group!` defines an undocumented public function.
#![allow(missing_docs)]

use std::hint::black_box;

use criterion::{criterion_group, criterion_main, Criterion};
use envs::games::math::generator::{generate, Difficulty};
use envs::games::vision::scenes::{BarChart, ShapeScene};
use envs::{Action, Registry};
use rand::SeedableRng;
use rand_chacha::ChaCha8Rng;

fn math(c: &mut Criterion) {
    let mut seed = 0u64;
    c.bench_function("math/generate/hard", |b| {
        b.iter(|| {
            seed += 1;
            black_box(generate(seed, Difficulty::Hard))
        })
    });
    let reg = Registry::builtin();
    let mut env = reg.make("math", &["difficulty=medium"]).expect("math env");
    let mut seed = 0u64;
    c.bench_function("math/reset_step_oracle/medium", |b| {
        b.iter(|| {
            seed += 1;
            env.reset(seed).expect("reset");
            let a = env.demonstration().expect("demonstration");
            black_box(env.step(&a).expect("step").reward)
        })
    });
    let mut seed = 0u64;
    c.bench_function("math/reset_step_garbage/medium", |b| {
        b.iter(|| {
            seed += 1;
            env.reset(seed).expect("reset");
            black_box(env.step(&Action::text("I think it is 12, maybe <answer>")).expect("step").reward)
        })
    });
}

fn vision(c: &mut Criterion) {
    let mut seed = 0u64;
    c.bench_function("vision/render_count/256", |b| {
        b.iter(|| {
            seed += 1;
            let mut rng = ChaCha8Rng::seed_from_u64(seed);
            black_box(ShapeScene::random(&mut rng, 256).render())
        })
    });
    let mut seed = 0u64;
    c.bench_function("vision/render_bar/256", |b| {
        b.iter(|| {
            seed += 1;
            let mut rng = ChaCha8Rng::seed_from_u64(seed);
            black_box(BarChart::random(&mut rng, 256).render())
        })
    });
    let mut rng = ChaCha8Rng::seed_from_u64(7);
    let count = ShapeScene::random(&mut rng, 256).render();
    let bar = BarChart::random(&mut rng, 256).render();
    c.bench_function("vision/png_count/256", |b| b.iter(|| black_box(count.to_png())));
    c.bench_function("vision/png_bar/256", |b| b.iter(|| black_box(bar.to_png())));
    let reg = Registry::builtin();
    let mut env = reg.make("vision-qa", &["task=mixed", "size=256"]).expect("vision env");
    let mut seed = 0u64;
    c.bench_function("vision/reset_step_oracle/mixed_256", |b| {
        b.iter(|| {
            seed += 1;
            env.reset(seed).expect("reset");
            let a = env.demonstration().expect("demonstration");
            black_box(env.step(&a).expect("step").reward)
        })
    });
}

criterion_group!(benches, math, vision);
criterion_main!(benches);
