//! `2048-strategy` and `sudoku-strategy`: replayed completions (good, random,
//! constant, board-mutating, importing, hanging, crashing, invalid, no code)
//! and snapshots of their reward breakdowns.
#![allow(missing_docs)]

#[global_allocator]
static A: sandbox::CountingAlloc = sandbox::CountingAlloc;

use envs::{rollout, EpisodeRecord, Registry, RolloutConfig, SamplingParams};

fn fixture(name: &str) -> String {
    format!("{}/data/strategy/{name}.jsonl", env!("CARGO_MANIFEST_DIR"))
}

fn run(env: &str, policy: &str, pairs: &[&str]) -> EpisodeRecord {
    let reg = Registry::builtin();
    let opts = reg.options(env, pairs).unwrap();
    let maker = reg.maker(env, &opts).unwrap();
    let policy = policies::make_policy(policy).unwrap();
    let cfg = RolloutConfig {
        env_id: env.into(),
        options: opts.to_map(),
        episodes: 1,
        seed: 0,
        group_size: 1,
        threads: 1,
        sampling: SamplingParams::default(),
        history: None,
    };
    rollout(&maker, policy.as_ref(), &cfg, &|_| {}).unwrap().remove(0)
}

/// The breakdown, reason and per-game ends of the single step, as JSON.
fn summary(rec: &EpisodeRecord) -> serde_json::Value {
    let step = &rec.steps[0];
    serde_json::json!({
        "reward": (step.reward * 1000.0).round() / 1000.0,
        "breakdown": step.breakdown.iter().map(|t| (t.name.clone(), t.value)).collect::<Vec<_>>(),
        "reason": step.reason,
        "ends": step.extra.get("ends"),
    })
}

fn replay(env: &str, name: &str, pairs: &[&str]) -> (f64, serde_json::Value) {
    let rec = run(env, &format!("replay:{}", fixture(name)), pairs);
    (rec.steps[0].reward, summary(&rec))
}

const T48: &str = "2048-strategy";

#[test]
fn good_strategy_scores_high_and_cheats_score_low() {
    let (good, good_s) = replay(T48, "good", &[]);
    insta::assert_json_snapshot!("good", good_s);
    let (random, random_s) = replay(T48, "random", &[]);
    insta::assert_json_snapshot!("random", random_s);
    let (constant, constant_s) = replay(T48, "constant", &[]);
    insta::assert_json_snapshot!("constant", constant_s);
    let (mutating, mutating_s) = replay(T48, "mutating", &[]);
    insta::assert_json_snapshot!("mutating", mutating_s);
    let (hanging, hanging_s) = replay(T48, "hanging", &[]);
    insta::assert_json_snapshot!("hanging", hanging_s);
    let (crashing, crashing_s) = replay(T48, "crashing", &[]);
    insta::assert_json_snapshot!("crashing", crashing_s);
    let (invalid, invalid_s) = replay(T48, "invalid", &[]);
    insta::assert_json_snapshot!("invalid", invalid_s);
    let (no_code, no_code_s) = replay(T48, "no_code", &[]);
    insta::assert_json_snapshot!("no_code", no_code_s);

    // Random play is graded against random play: about zero. The good
    // strategy beats it clearly; everything else is at or below it.
    assert!(good > 1.0, "good {good}");
    // Rhai has no RNG: this "random" strategy hashes the board, so it repeats
    // itself on a wasted move and stalls, scoring below random play.
    assert!(random <= 0.5, "random {random}");
    for (name, r) in [("constant", constant), ("mutating", mutating), ("hanging", hanging)] {
        assert!(r <= random + 0.5 && r < good, "{name} {r}");
    }
    // Penalty order: timeout ≤ crash ≤ invalid ≤ honest loss (constant play).
    assert!(
        hanging <= crashing && crashing <= invalid && invalid <= constant,
        "{hanging} {crashing} {invalid} {constant}"
    );
    assert!(no_code <= invalid);
}

#[test]
fn python_importing_strategy_is_rejected_and_random_python_is_about_zero() {
    let (importing, s) = replay(T48, "importing", &["language=python"]);
    insta::assert_json_snapshot!("importing", s);
    let (random, s) = replay(T48, "python_random", &["language=python", "games=2"]);
    insta::assert_json_snapshot!("python_random", s);
    assert!(importing < random - 3.0, "importing {importing} random {random}");
    assert!(random.abs() < 1.5, "random python {random}");
}

#[test]
fn sudoku_strategies() {
    let (good, s) = replay("sudoku-strategy", "sudoku_good", &[]);
    insta::assert_json_snapshot!("sudoku_good", s);
    let (naive, s) = replay("sudoku-strategy", "sudoku_first_empty", &[]);
    insta::assert_json_snapshot!("sudoku_first_empty", s);
    let (hanging, _) = replay("sudoku-strategy", "hanging", &[]);
    assert!(good > 3.0, "good {good}");
    assert!(naive < good && hanging < naive, "{naive} {hanging}");
}

#[test]
fn oracle_scores_high_and_groups_share_boards() {
    let rec = run(T48, "oracle", &["games=2"]);
    assert!(rec.steps[0].reward > 1.0, "{:?}", summary(&rec));
    // Same seed → same boards → same reward.
    let again = run(T48, "oracle", &["games=2"]);
    assert_eq!(rec.steps[0].reward, again.steps[0].reward);
    let rec = run("sudoku-strategy", "oracle", &["size=4"]);
    assert!(rec.steps[0].reward > 3.0, "{:?}", summary(&rec));
}

#[test]
fn strategy_envs_pass_the_checker() {
    let reg = Registry::builtin();
    for env in [T48, "sudoku-strategy"] {
        let opts = reg.options(env, &["games=1"]).unwrap();
        let maker = reg.maker(env, &opts).unwrap();
        envs::check::check_env(&maker, 4).unwrap_or_else(|e| panic!("{env}: {e}"));
    }
}

/// A program file of `tests/data/strategy/integrity/` as a fenced reply.
fn integrity_program(file: &str) -> String {
    let path = format!("{}/data/strategy/integrity/{file}", env!("CARGO_MANIFEST_DIR"));
    let code = std::fs::read_to_string(path).unwrap();
    let lang = if file.ends_with(".py") { "python" } else { "rhai" };
    format!("```{lang}\n{code}\n```")
}

/// Mean `outcome` of `file` over env seeds 0..64 (2 games each).
fn mean_outcome(file: &str, baseline: &str) -> f64 {
    let reg = Registry::builtin();
    let lang = if file.ends_with(".py") { "language=python" } else { "language=rhai" };
    let mut env = reg.make("2048-strategy", &[&format!("baseline={baseline}"), "games=2", lang]).unwrap();
    let mut sum = 0.0;
    for seed in 0..64 {
        env.reset(seed).unwrap();
        let step = env.step(&envs::Action::text(integrity_program(file))).unwrap();
        sum += step.info.breakdown.iter().find(|t| t.name == "outcome").and_then(|t| t.value).unwrap();
    }
    sum / 64.0
}

#[test]
fn board_blind_programs_beat_random_play_but_not_the_blind_baseline() {
    // The hack: a Python program that cycles moves from a counter, never
    // reading the board, is far above random play (the default grading).
    let hack = mean_outcome("cycle.py", "random");
    assert!(hack > 1.0, "the blind cycle vs random play: {hack}");
    // Graded against the blind baseline it earns nothing, and neither does
    // any other board-blind program (Python keeps state; Rhai cannot, so its
    // "cycle" is keyed on the tile sum).
    for file in [
        "cycle.py",
        "wasd.py",
        "seeded_random.py",
        "one_direction.py",
        "one_direction.rhai",
        "sum_cycle.rhai",
        "priority.rhai",
    ] {
        let o = mean_outcome(file, "blind");
        assert!(o < 0.1, "{file} earns {o} against the blind baseline");
    }
}
