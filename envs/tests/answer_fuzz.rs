//! Property test of the answer reader on arbitrary text: it never panics,
//! and the time it takes per input is measured (the longest is printed).
//!
//! CI runs 20,000 inputs; a long run sets `FUZZ_CASES`:
//! `FUZZ_CASES=10000000 cargo test --release -p envs --test answer_fuzz -- --nocapture`
//! (the figure in BENCHMARKS.md). Inputs mix arbitrary Unicode with the
//! fragments the reader treats specially (commands, braces, separators,
//! markers, tags), sometimes repeated thousands of times.

use std::cell::Cell;
use std::time::{Duration, Instant};

use envs::answer::{read_answer, read_gold, read_reply};
use envs::rewards::{answer_rubric, grade_answer, RewardInput, Tags};
use envs::StepInfo;
use proptest::prelude::*;
use proptest::test_runner::{Config, TestRunner};

const FRAGMENTS: &[&str] = &[
    "0",
    "1",
    "7",
    "42",
    "999999999999",
    ".",
    ",",
    "{,}",
    " ",
    "\u{2009}",
    "\\,",
    "e",
    "E",
    "e-",
    "%",
    "\\%",
    "-",
    "+",
    "−",
    "*",
    "/",
    "^",
    "\\times",
    "\\cdot",
    "\\div",
    "(",
    ")",
    "{",
    "}",
    "[",
    "]",
    "\\frac",
    "\\tfrac",
    "\\dfrac",
    "\\sqrt",
    "\\sqrt[",
    "\\boxed{",
    "\\fbox{",
    "\\text{",
    "\\left(",
    "\\right)",
    "\\circ",
    "$",
    "\\$",
    "####",
    "the answer is ",
    "Answer:",
    "<answer>",
    "</answer>",
    "<think>",
    "</think>",
    "\n",
    "or",
    "m^2",
    "²",
    "\\",
    "\\\\",
    "10^{",
    "1e9999",
];

fn fragment() -> impl Strategy<Value = String> {
    prop_oneof![
        4 => prop::sample::select(FRAGMENTS).prop_map(str::to_string),
        1 => any::<char>().prop_map(|c| c.to_string()),
        1 => any::<u64>().prop_map(|n| n.to_string()),
    ]
}

fn input() -> impl Strategy<Value = String> {
    prop_oneof![
        prop::collection::vec(any::<char>(), 0..200).prop_map(|v| v.into_iter().collect::<String>()),
        prop::collection::vec(fragment(), 0..60).prop_map(|v| v.concat()),
        (prop::collection::vec(fragment(), 1..4), 1..6000usize, prop::collection::vec(fragment(), 0..8))
            .prop_map(|(a, n, b)| format!("{}{}", a.concat().repeat(n), b.concat())),
    ]
}

#[test]
fn reading_any_text_never_panics() {
    let cases: u32 = std::env::var("FUZZ_CASES").ok().and_then(|v| v.parse().ok()).unwrap_or(20_000);
    let mut runner = TestRunner::new(Config { cases, failure_persistence: None, ..Config::default() });
    let tags = Tags::default();
    let rubric = answer_rubric(&tags);
    let longest = Cell::new((Duration::ZERO, 0usize));
    let runs = Cell::new(0u64);
    runner
        .run(&input(), |text| {
            let t = Instant::now();
            let _ = read_answer(&text);
            let _ = read_gold(&text);
            let _ = read_reply(&text, "think");
            let _ = grade_answer(&text, "42");
            let _ = grade_answer("42", &text);
            let mut info = StepInfo::default();
            rubric.score_into(&RewardInput { completion: &text, answer: Some("\\frac{3}{4}") }, &mut info);
            let spent = t.elapsed();
            if spent > longest.get().0 {
                if let Ok(path) = std::env::var("FUZZ_SLOWEST") {
                    std::fs::write(path, &text).ok();
                }
                longest.set((spent, text.len()));
            }
            runs.set(runs.get() + 1);
            Ok(())
        })
        .unwrap_or_else(|e| panic!("the answer reader failed: {e}"));
    let (spent, len) = longest.get();
    println!("{} inputs, 0 panics; longest {:?} for a {len}-byte input", runs.get(), spent);
}
