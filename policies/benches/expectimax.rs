//! Expectimax decision time on 4×4 positions from a real game.
//!
//! `cargo bench -p policies --bench expectimax -- --warm-up-time 1 --measurement-time 5`

// `criterion_group!` generates an undocumented public function.
#![allow(missing_docs)]

use std::hint::black_box;

use criterion::{criterion_group, criterion_main, Criterion, Throughput};
use envs::games::twenty48::engine::Game;
use policies::scripted::Expectimax;

/// Every 25th position of one expectimax game to 2048.
fn positions() -> Vec<Game> {
    let p = Expectimax::default();
    let mut g = Game::new(4, 1);
    let mut all = Vec::new();
    while let Some(d) = (!g.is_over()).then(|| p.choose(&g)).flatten() {
        all.push(g.clone());
        let _ = g.apply(d);
    }
    all.into_iter().step_by(25).collect()
}

fn decisions(c: &mut Criterion) {
    let boards = positions();
    let mut group = c.benchmark_group("2048_expectimax");
    group.sample_size(10);
    group.throughput(Throughput::Elements(boards.len() as u64));
    for depth in [3, 4] {
        let p = Expectimax::with_max_depth(depth);
        group.bench_function(format!("decision_depth{depth}"), |b| {
            b.iter(|| boards.iter().filter_map(|g| p.choose(black_box(g))).count())
        });
    }
    group.finish();
}

criterion_group!(benches, decisions);
criterion_main!(benches);
