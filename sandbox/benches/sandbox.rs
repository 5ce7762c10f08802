//! Sandbox costs: jailed `python3` start vs bare `python3 -I -S -c pass`,
//! per-move round trip to a running Python strategy, Rhai calls/s, and full
//! 2048 games/s per backend for a simple strategy.
//!
//! `cargo bench -p sandbox --bench sandbox -- --warm-up-time 1 --measurement-time 3`
#![allow(missing_docs)]

use std::process::Command;
use std::time::Duration;

use criterion::{criterion_group, criterion_main, Criterion, Throughput};
use sandbox::{start, Language, Limits, Session};
use serde_json::json;

#[global_allocator]
static A: sandbox::CountingAlloc = sandbox::CountingAlloc;

const PY_SIMPLE: &str = "def strategy(board, turn):\n    return ('down', 'left', 'down', 'right', 'up')[turn % 5]\n";
const RHAI_SIMPLE: &str = "fn strategy(board, turn) { [\"down\", \"left\", \"down\", \"right\", \"up\"][turn % 5] }";

/// A minimal 4×4 2048 (host side) for the games/s benchmark.
struct Board {
    cells: [[u64; 4]; 4],
    rng: u64,
}

impl Board {
    fn new(seed: u64) -> Self {
        let mut b = Board { cells: [[0; 4]; 4], rng: seed.wrapping_mul(0x9E37_79B9_7F4A_7C15) | 1 };
        b.spawn();
        b.spawn();
        b
    }
    fn next(&mut self) -> u64 {
        self.rng ^= self.rng << 13;
        self.rng ^= self.rng >> 7;
        self.rng ^= self.rng << 17;
        self.rng
    }
    fn spawn(&mut self) {
        let empty: Vec<(usize, usize)> =
            (0..16).map(|i| (i / 4, i % 4)).filter(|&(r, c)| self.cells[r][c] == 0).collect();
        if !empty.is_empty() {
            let (r, c) = empty[(self.next() % empty.len() as u64) as usize];
            self.cells[r][c] = if self.next() < u64::MAX / 10 { 4 } else { 2 };
        }
    }
    fn slid(&self, dir: usize) -> [[u64; 4]; 4] {
        let mut out = [[0; 4]; 4];
        for k in 0..4 {
            let idx = |j: usize| match dir {
                0 => (j, k),
                1 => (k, 3 - j),
                2 => (3 - j, k),
                _ => (k, j),
            };
            let tiles: Vec<u64> = (0..4).map(&idx).map(|(r, c)| self.cells[r][c]).filter(|&v| v != 0).collect();
            let mut line = Vec::new();
            let mut i = 0;
            while i < tiles.len() {
                if i + 1 < tiles.len() && tiles[i] == tiles[i + 1] {
                    line.push(tiles[i] * 2);
                    i += 2;
                } else {
                    line.push(tiles[i]);
                    i += 1;
                }
            }
            for (j, v) in line.into_iter().enumerate() {
                let (r, c) = idx(j);
                out[r][c] = v;
            }
        }
        out
    }
    fn json(&self) -> serde_json::Value {
        json!(self.cells)
    }
}

fn play_game(s: &mut dyn Session, seed: u64) -> u64 {
    let mut b = Board::new(seed);
    let mut turn = 0u64;
    let mut wasted = 0;
    loop {
        if (0..4).all(|d| b.slid(d) == b.cells) || wasted >= 16 {
            return turn;
        }
        let a = s.call(&[b.json(), json!(turn)]).expect("simple strategy answers");
        turn += 1;
        let dir = match a.as_str() {
            "up" => 0,
            "right" => 1,
            "down" => 2,
            _ => 3,
        };
        let next = b.slid(dir);
        if next == b.cells {
            wasted += 1;
        } else {
            wasted = 0;
            b.cells = next;
            b.spawn();
        }
    }
}

fn limits() -> Limits {
    Limits { total_cpu: Duration::from_secs(60), total_wall: Duration::from_secs(600), ..Limits::default() }
}

fn bench(c: &mut Criterion) {
    let l = limits();
    let mut g = c.benchmark_group("python_start");
    g.sample_size(20);
    g.bench_function("bare_python3_-I_-S_-c_pass", |b| {
        b.iter(|| Command::new("/usr/bin/python3").args(["-I", "-S", "-c", "pass"]).status().unwrap())
    });
    g.bench_function("jailed_python3_runner_ready", |b| {
        b.iter(|| start(Language::Python, PY_SIMPLE, "strategy", &l).unwrap())
    });
    g.finish();

    let board = json!([[2, 0, 0, 2], [0, 4, 0, 0], [0, 0, 8, 0], [2, 0, 0, 16]]);
    let mut g = c.benchmark_group("per_move");
    g.throughput(Throughput::Elements(1));
    let mut py = start(Language::Python, PY_SIMPLE, "strategy", &l).unwrap();
    g.bench_function("python_round_trip", |b| b.iter(|| py.call(&[board.clone(), json!(3)]).unwrap()));
    let mut rh = start(Language::Rhai, RHAI_SIMPLE, "strategy", &l).unwrap();
    g.bench_function("rhai_call", |b| b.iter(|| rh.call(&[board.clone(), json!(3)]).unwrap()));
    g.finish();

    let mut g = c.benchmark_group("game_2048_simple_strategy");
    g.sample_size(10);
    g.throughput(Throughput::Elements(1));
    let mut seed = 0;
    g.bench_function("rhai", |b| {
        b.iter(|| {
            seed += 1;
            let mut s = start(Language::Rhai, RHAI_SIMPLE, "strategy", &l).unwrap();
            play_game(s.as_mut(), seed)
        })
    });
    g.bench_function("python", |b| {
        b.iter(|| {
            seed += 1;
            let mut s = start(Language::Python, PY_SIMPLE, "strategy", &l).unwrap();
            play_game(s.as_mut(), seed)
        })
    });
    g.finish();
}

criterion_group!(benches, bench);
criterion_main!(benches);
