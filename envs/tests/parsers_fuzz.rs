//! Property tests of every parser that reads model output: each env's
//! answer extraction (a reset and a step of every text env with arbitrary
//! text), the strategy-program extraction and action parsers, and the
//! Sudoku grid reader. None may panic on any input; errors are fine.
//!
//! CI runs 2,000 inputs per target; `FUZZ_CASES=N` sets more:
//! `FUZZ_CASES=1000000 cargo test --release -p envs --test parsers_fuzz -- --nocapture`.

use envs::games::strategy::{extract_code, parse_2048, parse_sudoku};
use envs::games::sudoku::{Grid, Shape};
use envs::games::twenty48::parse_reply;
use envs::{Action, Registry};
use proptest::prelude::*;
use proptest::test_runner::{Config, TestRunner};

/// Fragments the parsers treat specially, mixed with arbitrary characters.
const FRAGMENTS: &[&str] = &[
    "<answer>",
    "</answer>",
    "<think>",
    "</think>",
    "<final>",
    "```",
    "```rhai\n",
    "```python\n",
    "\n```",
    "fn strategy(b) {",
    "def strategy(board):",
    "up",
    "down",
    "LEFT",
    "d",
    "w",
    "1",
    "9",
    "0",
    " ",
    "\n",
    "|",
    "-",
    "+",
    ".",
    ",",
    "[",
    "]",
    "1 2 3",
    "[0, 0, 5]",
    "\\boxed{",
    "}",
    "####",
    "42",
    "-1",
    "99999999999999999999",
];

fn input() -> impl Strategy<Value = String> {
    let fragment = prop_oneof![
        4 => prop::sample::select(FRAGMENTS).prop_map(str::to_string),
        1 => any::<char>().prop_map(|c| c.to_string()),
    ];
    prop_oneof![
        prop::collection::vec(any::<char>(), 0..300).prop_map(|v| v.into_iter().collect::<String>()),
        prop::collection::vec(fragment.clone(), 0..80).prop_map(|v| v.concat()),
        (prop::collection::vec(fragment, 1..4), 1..3000usize).prop_map(|(a, n)| a.concat().repeat(n)),
    ]
}

fn cases() -> u32 {
    std::env::var("FUZZ_CASES").ok().and_then(|v| v.parse().ok()).unwrap_or(2_000)
}

fn run(name: &str, check: impl Fn(&str)) {
    let mut runner = TestRunner::new(Config { cases: cases(), failure_persistence: None, ..Config::default() });
    let slowest = std::cell::Cell::new((std::time::Duration::ZERO, 0usize));
    runner
        .run(&input(), |text| {
            let t = std::time::Instant::now();
            check(&text);
            if t.elapsed() > slowest.get().0 {
                slowest.set((t.elapsed(), text.len()));
            }
            Ok(())
        })
        .unwrap_or_else(|e| panic!("{name}: {e}"));
    let (spent, len) = slowest.get();
    println!("{name}: {} inputs, 0 panics; slowest {spent:?} for a {len}-byte input", cases());
}

#[test]
fn every_text_env_steps_on_any_reply() {
    let reg = Registry::builtin();
    for (id, opts) in [
        ("2048", vec![]),
        ("sudoku", vec![]),
        ("sudoku", vec!["mode=move"]),
        ("math", vec![]),
        ("vision-qa", vec!["size=128"]),
        ("echo", vec![]),
    ] {
        let maker = reg.maker(id, &reg.options(id, &opts).unwrap()).unwrap();
        run(id, |text| {
            let mut env = maker();
            env.reset(7).unwrap();
            let _ = env.step(&Action::text(text));
        });
    }
}

#[test]
fn strategy_program_extraction_and_actions() {
    run("extract_code", |text| {
        let _ = extract_code(text, sandbox::Language::Rhai);
        let _ = extract_code(text, sandbox::Language::Python);
    });
    run("parse_2048 / parse_sudoku / parse_reply", |text| {
        let _ = parse_2048(text);
        for n in [4, 6, 9] {
            let _ = parse_sudoku(text, n);
        }
        let _ = parse_reply(text);
    });
}

#[test]
fn sudoku_grids() {
    run("Grid::parse", |text| {
        for n in [4, 6, 9] {
            let _ = Grid::parse(Shape::of_size(n).unwrap(), text);
        }
    });
}
