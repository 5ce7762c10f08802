//! Sudoku hot paths: unique-puzzle generation, solving hard and 17-clue
//! puzzles (uniqueness test, `count_solutions(2)`), and verification.
//!
//! `cargo bench -p envs --bench sudoku -- --warm-up-time 1 --measurement-time 3`

// `criterion_group!` generates an undocumented public function.
#![allow(missing_docs)]

use criterion::{black_box, criterion_group, criterion_main, BatchSize, Criterion, Throughput};
use envs::games::sudoku::{generate, Difficulty, Grid, Shape, Solver};
use envs::{Action, Registry};
use rand::SeedableRng;

const HARD: &[&str] = &[
    "1....7.9..3..2...8..96..5....53..9...1..8...26....4...3......1..4......7..7...3..",
    "8..........36......7..9.2...5...7.......457.....1...3...1....68..85...1..9....4..",
    "1.......2.9.4...5...6...7...5.9.3.......7.......85..4.7.....6...3...9.8...2.....1",
    "........3..1..56...9..4..7......9.5.7.......8.5.4.2....8..2..9...35..1..6........",
];

const SEVENTEEN: &[&str] = &[
    "000000010400000000020000000000050407008000300001090000300400200050100000000806000",
    "000000010400000000020000000000050604008000300001090000300400200050100000000807000",
    "000000012000035000000600070700000300000400800100000000000120000080000040050000600",
];

fn parse_all(list: &[&str]) -> Vec<Grid> {
    list.iter().map(|s| Grid::parse(Shape::NINE, s).expect("valid puzzle")).collect()
}

fn bench_generate(c: &mut Criterion) {
    let mut g = c.benchmark_group("sudoku_generate");
    g.throughput(Throughput::Elements(1));
    for (shape, d, name) in [
        (Shape::NINE, Difficulty::Easy, "9x9_easy"),
        (Shape::NINE, Difficulty::Medium, "9x9_medium"),
        (Shape::NINE, Difficulty::Hard, "9x9_hard"),
        (Shape::SIX, Difficulty::Medium, "6x6_medium"),
        (Shape::FOUR, Difficulty::Medium, "4x4_medium"),
    ] {
        let mut seed = 0u64;
        g.bench_function(name, |b| {
            b.iter(|| {
                seed += 1;
                let mut rng = rand_chacha::ChaCha8Rng::seed_from_u64(seed);
                black_box(generate(shape, d, &mut rng))
            })
        });
    }
    g.finish();
}

fn bench_solve(c: &mut Criterion) {
    let mut g = c.benchmark_group("sudoku_solve");
    for (name, puzzles) in [("hard_named_unique", parse_all(HARD)), ("17clue_unique", parse_all(SEVENTEEN))] {
        g.throughput(Throughput::Elements(puzzles.len() as u64));
        g.bench_function(name, |b| {
            b.iter(|| {
                for p in &puzzles {
                    black_box(Solver::new(black_box(p)).count_solutions(2));
                }
            })
        });
    }
    let generated: Vec<Grid> = (0..64)
        .map(|s| generate(Shape::NINE, Difficulty::Hard, &mut rand_chacha::ChaCha8Rng::seed_from_u64(s)).puzzle)
        .collect();
    g.throughput(Throughput::Elements(generated.len() as u64));
    g.bench_function("generated_hard_unique", |b| {
        b.iter(|| {
            for p in &generated {
                black_box(Solver::new(black_box(p)).count_solutions(2));
            }
        })
    });
    g.finish();
}

fn bench_verify(c: &mut Criterion) {
    let p = Grid::parse(Shape::NINE, HARD[0]).expect("valid puzzle");
    let s = Solver::new(&p).solve().expect("solvable");
    let mut g = c.benchmark_group("sudoku_verify");
    g.throughput(Throughput::Elements(1));
    g.bench_function("9x9_solves", |b| b.iter(|| black_box(black_box(&s).solves(black_box(&p)))));
    let reg = Registry::builtin();
    let make = || {
        let mut env = reg.make("sudoku", &["size=9"]).expect("sudoku");
        let _ = env.reset(1);
        env
    };
    let env = make();
    let text = env.demonstration().expect("oracle").text;
    g.bench_function("answer_step_parse_and_score", |b| {
        b.iter_batched(make, |mut env| black_box(env.step(&Action::text(text.clone())).is_ok()), BatchSize::SmallInput)
    });
    g.finish();
}

criterion_group!(benches, bench_generate, bench_solve, bench_verify);
criterion_main!(benches);
