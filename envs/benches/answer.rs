//! Answer checking: reading and comparing one (gold, reply) pair, and the
//! whole answer rubric on a typical reply (the per-step cost of `math`).
//!
//! `cargo bench -p envs --bench answer -- --warm-up-time 1 --measurement-time 3`

// `criterion_group!` defines an undocumented public function.
#![allow(missing_docs)]

use std::hint::black_box;

use criterion::{criterion_group, criterion_main, Criterion};
use envs::answer::{matches, read_answer, read_gold};
use envs::rewards::{answer_rubric, RewardInput, Tags};
use envs::StepInfo;

/// Typical final answers, as models write them.
const PAIRS: [(&str, &str); 8] = [
    ("42", "42"),
    ("1200", "$1,200"),
    ("\\frac{3}{4}", "0.75"),
    ("0.5", "\\boxed{\\frac{1}{2}}"),
    ("#### 72", "The answer is 72."),
    ("1000000", "1 \\times 10^{6}"),
    ("\\frac{1}{3}", "0.3333"),
    ("42", "40 or 41 or 42"),
];

fn pairs(c: &mut Criterion) {
    c.bench_function("answer/pair/typical", |b| {
        b.iter(|| {
            for (gold, guess) in PAIRS {
                black_box(matches(&read_answer(black_box(guess)), &read_gold(black_box(gold))));
            }
        })
    });
    let long = format!("The answer is {}.", "9".repeat(10_000));
    c.bench_function("answer/pair/10000_digits", |b| {
        b.iter(|| black_box(matches(&read_answer(black_box(&long)), &read_gold(black_box(&long)))))
    });
}

fn rubric(c: &mut Criterion) {
    let tags = Tags::default();
    let rubric = answer_rubric(&tags);
    let reply = tags
        .wrap("Each box holds 12 apples and there are 3 boxes, so 12 * 3 = 36 apples; 6 are eaten, leaving 30.", "30");
    c.bench_function("answer/rubric/typical_reply", |b| {
        b.iter(|| {
            let mut info = StepInfo::default();
            rubric.score_into(&RewardInput { completion: black_box(&reply), answer: Some("30") }, &mut info);
            black_box(info)
        })
    });
}

criterion_group!(benches, pairs, rubric);
criterion_main!(benches);
