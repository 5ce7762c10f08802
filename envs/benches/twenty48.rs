//! 2048 engine and env throughput.
//!
//! `cargo bench -p envs --bench twenty48 -- --warm-up-time 1 --measurement-time 3`

// `criterion_group!` generates an undocumented public function.
#![allow(missing_docs)]

use std::hint::black_box;
use std::time::{Duration, Instant};

use criterion::{criterion_group, criterion_main, Criterion, Throughput};
use envs::games::twenty48::engine::{self, Dir, Game};
use envs::{Action, Registry};
use rand::{Rng, SeedableRng};
use rand_chacha::ChaCha8Rng;

/// Boards from random games, so the tables see realistic rows.
fn sample_boards(n: usize) -> Vec<u64> {
    let mut boards = Vec::with_capacity(n);
    let mut seed = 0;
    let mut rng = ChaCha8Rng::seed_from_u64(1);
    while boards.len() < n {
        let mut g = Game::new(4, seed);
        seed += 1;
        while !g.is_over() && boards.len() < n {
            boards.push(g.bitboard().unwrap_or(0));
            let legal = g.legal_moves();
            let _ = g.apply(legal[rng.gen_range(0..legal.len())]);
        }
    }
    boards
}

fn raw_moves(c: &mut Criterion) {
    engine::init_tables();
    let boards = sample_boards(4096);
    let mut group = c.benchmark_group("2048_raw");
    group.throughput(Throughput::Elements(4 * boards.len() as u64));
    group.bench_function("table_moves", |b| {
        b.iter(|| {
            let mut acc = 0u64;
            for &board in &boards {
                for d in Dir::ALL {
                    acc ^= engine::move_board(black_box(board), d);
                }
            }
            acc
        })
    });
    group.throughput(Throughput::Elements(boards.len() as u64));
    group.bench_function("count_empty", |b| {
        b.iter(|| boards.iter().map(|&x| engine::count_empty(black_box(x))).sum::<u32>())
    });
    group.finish();
}

/// One uniformly random game on the `Game` API: (moves, final score).
fn random_game(seed: u64) -> (u64, u64) {
    let mut g = Game::new(4, seed);
    let mut rng = ChaCha8Rng::seed_from_u64(seed ^ 0xABCD);
    while let Some(d) = g.random_move(&mut rng) {
        let _ = g.apply(d);
    }
    (g.moves(), g.score())
}

fn games(c: &mut Criterion) {
    engine::init_tables();
    let moves_per_game = (0..200).map(|s| random_game(s).0).sum::<u64>() as f64 / 200.0;
    eprintln!("random 4x4 game: {moves_per_game:.1} moves on average");
    let mut group = c.benchmark_group("2048_game");
    group.throughput(Throughput::Elements(1));
    let mut seed = 0;
    group.bench_function("random_game_4x4", |b| {
        b.iter(|| {
            seed += 1;
            random_game(seed)
        })
    });
    group.bench_function("random_game_6x6_array_engine", |b| {
        b.iter(|| {
            seed += 1;
            let mut g = Game::new(6, seed);
            let mut rng = ChaCha8Rng::seed_from_u64(seed);
            while g.moves() < 300 {
                let Some(d) = g.random_move(&mut rng) else { break };
                let _ = g.apply(d);
            }
            g.score()
        })
    });
    group.finish();
}

fn env_step(c: &mut Criterion) {
    let reg = Registry::builtin();
    let opts = reg.options::<&str>("2048", &[]).expect("default options");
    let maker = reg.maker("2048", &opts).expect("2048 builds");
    let mut group = c.benchmark_group("2048_env");
    group.throughput(Throughput::Elements(1));
    group.bench_function("reset_with_baseline", |b| {
        let mut env = maker();
        let mut seed = 0;
        b.iter(|| {
            seed += 1;
            env.reset(seed)
        })
    });
    group.bench_function("step", |b| {
        b.iter_custom(|iters| {
            let mut env = maker();
            let mut seed = 0;
            let mut obs = env.reset(seed).expect("reset");
            let mut spent = Duration::ZERO;
            for i in 0..iters {
                let a = Action::text(obs.legal_actions[i as usize % obs.legal_actions.len()].clone());
                let t = Instant::now();
                let s = env.step(black_box(&a)).expect("step");
                spent += t.elapsed();
                obs = s.observation;
                if s.terminated || s.truncated {
                    seed += 1;
                    obs = env.reset(seed).expect("reset");
                }
            }
            spent
        })
    });
    group.finish();
}

criterion_group!(benches, raw_moves, games, env_step);
criterion_main!(benches);
