//! Sudoku: generator uniqueness, solver on known puzzles, env rewards in
//! both modes, the env checker, determinism and snapshots of observations
//! and rollouts with the `random`, `solver` and `oracle` policies.

use std::fmt::Write as _;

use envs::games::sudoku::{count_solutions, generate, Difficulty, Grid, Shape, Solver};
use envs::rollout::{rollout, RolloutConfig};
use envs::{Action, Env, EnvError, EpisodeRecord, Registry, SamplingParams, Step};
use rand::SeedableRng;

/// Hard 9×9 puzzles with one solution, with the guesses our solver needs.
const HARD: &[(&str, &str)] = &[
    ("AI Escargot", "1....7.9..3..2...8..96..5....53..9...1..8...26....4...3......1..4......7..7...3.."),
    ("Inkala 2012", "8..........36......7..9.2...5...7.......457.....1...3...1....68..85...1..9....4.."),
    ("Easter Monster", "1.......2.9.4...5...6...7...5.9.3.......7.......85..4.7.....6...3...9.8...2.....1"),
    ("tarek 21", "........3..1..56...9..4..7......9.5.7.......8.5.4.2....8..2..9...35..1..6........"),
];

/// 17-clue puzzles (Gordon Royle's list; `0` = blank).
const SEVENTEEN: &[&str] = &[
    "000000010400000000020000000000050407008000300001090000300400200050100000000806000",
    "000000010400000000020000000000050604008000300001090000300400200050100000000807000",
    "000000012000035000000600070700000300000400800100000000000120000080000040050000600",
];

fn make(pairs: &[&str]) -> Box<dyn Env> {
    Registry::builtin().make("sudoku", pairs).expect("valid sudoku options")
}

fn term(step: &Step, name: &str) -> f64 {
    step.info.breakdown.iter().find(|t| t.name == name).and_then(|t| t.value).expect("term present")
}

#[test]
fn generated_puzzles_are_unique_across_seeds_and_sizes() {
    for shape in [Shape::FOUR, Shape::SIX, Shape::NINE] {
        for d in [Difficulty::Easy, Difficulty::Medium, Difficulty::Hard] {
            let seeds = if shape == Shape::NINE && d == Difficulty::Hard { 20 } else { 40 };
            let mut distinct = std::collections::BTreeSet::new();
            for seed in 0..seeds {
                let p = generate(shape, d, &mut rand_chacha::ChaCha8Rng::seed_from_u64(seed));
                let r = count_solutions(&p.puzzle, 2);
                assert_eq!(r.solutions, 1, "{shape:?} {d:?} seed {seed}: {:?}", p.puzzle);
                assert_eq!(r.solution, Some(p.solution));
                assert!(p.solution.is_solved());
                distinct.insert(p.puzzle.to_line());
            }
            assert!(distinct.len() as u64 > seeds * 9 / 10, "{shape:?} {d:?}: seeds give the same puzzles");
        }
    }
}

#[test]
fn difficulty_levels_differ_in_clues_and_effort() {
    // (mean clues, puzzles singles solve, mean guesses) over 10 seeds.
    let rate = |d: Difficulty| {
        let (mut clues, mut singles, mut guesses) = (0, 0, 0);
        for seed in 0..10 {
            let p = generate(Shape::NINE, d, &mut rand_chacha::ChaCha8Rng::seed_from_u64(seed));
            clues += p.clues();
            singles += usize::from(Solver::new(&p.puzzle).solve_by_singles().is_some());
            guesses += p.guesses;
        }
        (clues as f64 / 10.0, singles, guesses as f64 / 10.0)
    };
    let (easy, medium, hard) = (rate(Difficulty::Easy), rate(Difficulty::Medium), rate(Difficulty::Hard));
    assert_eq!(easy, (40.0, 10, 0.0));
    assert_eq!(medium, (32.0, 10, 0.0));
    assert!(hard.0 < 28.0 && hard.1 == 0, "{hard:?}");
}

#[test]
fn solver_solves_known_hard_puzzles() {
    for (name, text) in HARD {
        let p = Grid::parse(Shape::NINE, text).unwrap();
        let r = Solver::new(&p).count_solutions(2);
        assert_eq!(r.solutions, 1, "{name}");
        let s = r.solution.unwrap();
        assert!(s.solves(&p), "{name}");
        assert!(r.guesses > 10, "{name} should need search, took {} guesses", r.guesses);
        assert!(Solver::new(&p).solve_by_singles().is_none(), "{name}");
    }
    for text in SEVENTEEN {
        let p = Grid::parse(Shape::NINE, text).unwrap();
        assert_eq!(p.filled(), 17);
        let r = count_solutions(&p, 2);
        assert_eq!(r.solutions, 1);
        assert!(r.solution.unwrap().solves(&p));
    }
    // A known published solution.
    let p =
        Grid::parse(Shape::NINE, "53..7....6..195....98....6.8...6...34..8.3..17...2...6.6....28....419..5....8..79")
            .unwrap();
    assert_eq!(
        Solver::new(&p).solve().unwrap().to_line(),
        "534678912672195348198342567859761423426853791713924856961537284287419635345286179"
    );
    // Removing a clue of a 17-clue puzzle (a minimal puzzle) breaks uniqueness.
    let mut p = Grid::parse(Shape::NINE, SEVENTEEN[0]).unwrap();
    p.set(0, 7, 0);
    assert_eq!(count_solutions(&p, 2).solutions, 2);
}

#[test]
fn answer_mode_rewards() {
    let mut env = make(&["size=9", "mode=answer"]);
    let obs = env.reset(11).unwrap();
    assert_eq!(obs.state["answer_tag"], "answer");
    assert_eq!(obs.state["answer_space"], serde_json::json!({"kind": "grid", "size": 9}));
    let demo = env.demonstration().unwrap();
    let body = envs::rewards::extract_tag(&demo.text, "answer").unwrap();
    let solution = Grid::parse(Shape::NINE, body).unwrap();
    let rows = obs.state["puzzle"].as_array().unwrap();
    let cells: Vec<u8> =
        rows.iter().flat_map(|r| r.as_array().unwrap().iter().map(|v| v.as_u64().unwrap() as u8)).collect();
    let puzzle = Grid::from_cells(Shape::NINE, &cells).unwrap();
    assert!(solution.solves(&puzzle));

    // The solution, written compactly on one line, solves it.
    let s = env.step(&Action::text(format!("<think>easy</think><answer>{}</answer>", solution.to_line()))).unwrap();
    assert_eq!((term(&s, "format"), term(&s, "cells"), term(&s, "solved"), term(&s, "clues")), (1.0, 1.0, 1.0, 0.0));
    assert_eq!(s.info.success, Some(true));

    // Partial credit: three blank cells left blank.
    let blanks: Vec<usize> = (0..81).filter(|&i| puzzle.cells()[i] == 0).collect();
    let mut partial = solution;
    for &i in &blanks[..3] {
        partial.set(i / 9, i % 9, 0);
    }
    env.reset(11).unwrap();
    let s = env.step(&Action::text(format!("<answer>\n{}\n</answer>", partial.render(false)))).unwrap();
    let n = blanks.len() as f64;
    assert!((term(&s, "cells") - (n - 3.0) / n).abs() < 1e-12);
    assert_eq!(term(&s, "solved"), 0.0);
    assert_eq!(s.info.success, Some(false));
    assert_eq!(s.info.reason.as_deref(), Some("3 of 49 blank cells wrong or left blank"));

    // Changing a clue (even in an otherwise valid-looking grid) zeroes the credit.
    let given = (0..81).find(|&i| puzzle.cells()[i] != 0).unwrap();
    let mut cheat = solution;
    cheat.set(given / 9, given % 9, solution.cells()[given] % 9 + 1);
    env.reset(11).unwrap();
    let s = env.step(&Action::text(format!("<answer>{}</answer>", cheat.to_rows_text()))).unwrap();
    assert_eq!((term(&s, "cells"), term(&s, "solved"), term(&s, "clues")), (0.0, 0.0, -1.0));
    assert!(s.reward < 0.0);
    assert!(s.info.reason.as_deref().unwrap().contains("changed 1 given clue"), "{:?}", s.info.reason);

    // Wrong shape.
    env.reset(11).unwrap();
    let s = env.step(&Action::text("<answer>123456789</answer>")).unwrap();
    assert_eq!(term(&s, "format"), -1.0);
    assert!(s.info.reason.as_deref().unwrap().contains("expected 9 rows of 9 cells"));
}

#[test]
fn move_mode_rewards_and_invalid_placements() {
    let mut env = make(&["size=4", "mode=move", "difficulty=easy"]);
    let obs = env.reset(2).unwrap();
    let grid = &obs.state["grid"];
    let blank = (0..16).find(|&i| grid[i / 4][i % 4] == 0).unwrap();
    let given = (0..16).find(|&i| grid[i / 4][i % 4] != 0).unwrap();
    let demo = env.demonstration().unwrap();
    let s = env.step(&demo).unwrap();
    assert!(!s.done());
    assert!((term(&s, "placement") - 1.0 / 6.0).abs() < 1e-12, "{:?}", s.info);
    assert_eq!(s.info.success, None);
    let invalid = [
        "".to_string(),
        "<answer>five</answer>".to_string(),
        "<answer>5 1 1</answer>".to_string(),
        format!("<answer>{} {} 1</answer>", given / 4 + 1, given % 4 + 1),
    ];
    for reply in invalid {
        let mut env = make(&["size=4", "mode=move", "difficulty=easy"]);
        env.reset(2).unwrap();
        let s = env.step(&Action::text(reply.clone())).unwrap();
        assert!(s.terminated && s.info.success == Some(false), "{reply}");
        assert_eq!(term(&s, "penalty"), -1.0, "{reply}");
        assert!(s.info.reason.is_some());
        assert!(matches!(env.step(&Action::text("")), Err(EnvError::EpisodeOver)));
    }
    // Every wrong digit in a blank cell is a smaller penalty.
    let mut env = make(&["size=4", "mode=move", "difficulty=easy"]);
    let mut wrong_seen = 0;
    for d in 1..=4 {
        env.reset(2).unwrap();
        let s = env.step(&Action::text(format!("<answer>{} {} {d}</answer>", blank / 4 + 1, blank % 4 + 1))).unwrap();
        if term(&s, "penalty") < 0.0 {
            wrong_seen += 1;
            assert_eq!(term(&s, "penalty"), -0.5);
            assert!(s.terminated);
        } else {
            assert!(term(&s, "placement") > 0.0);
        }
    }
    assert_eq!(wrong_seen, 3);
}

#[test]
fn env_check_passes_for_each_size_and_mode() {
    let reg = Registry::builtin();
    let spec = reg.spec("sudoku").unwrap().clone();
    for size in ["4", "6", "9"] {
        for mode in ["answer", "move"] {
            for diff in ["easy", "hard"] {
                let opts = reg
                    .options("sudoku", &[format!("size={size}"), format!("mode={mode}"), format!("difficulty={diff}")])
                    .unwrap();
                let maker = reg.maker("sudoku", &opts).unwrap();
                envs::check::check_env(&maker, spec.max_steps)
                    .unwrap_or_else(|e| panic!("size={size} mode={mode} difficulty={diff}: {e}"));
            }
        }
    }
}

fn run(policy: &str, pairs: &[&str], episodes: usize, threads: usize) -> Vec<EpisodeRecord> {
    let reg = Registry::builtin();
    let opts = reg.options("sudoku", pairs).unwrap();
    let maker = reg.maker("sudoku", &opts).unwrap();
    let policy = policies::make_policy(policy).unwrap();
    let cfg = RolloutConfig {
        env_id: "sudoku".into(),
        options: opts.to_map(),
        episodes,
        seed: 0,
        group_size: 1,
        threads,
        sampling: SamplingParams::default(),
        history: None,
    };
    rollout(&maker, policy.as_ref(), &cfg, &|_| {}).unwrap()
}

#[test]
fn solver_and_oracle_reach_the_ceiling() {
    for (pairs, ceiling) in [
        (&["size=9", "mode=answer", "difficulty=hard"][..], 3.5),
        (&["size=6", "mode=answer"][..], 3.5),
        (&["size=9", "mode=move", "difficulty=hard"][..], 3.0),
        (&["size=6", "mode=move"][..], 3.0),
    ] {
        for policy in ["solver", "oracle"] {
            for ep in run(policy, pairs, 4, 2) {
                assert!(ep.success, "{policy} {pairs:?}");
                assert!((ep.total_reward - ceiling).abs() < 1e-9, "{policy} {pairs:?}: {}", ep.total_reward);
            }
        }
        let random = run("random", pairs, 8, 2);
        assert!(random.iter().all(|e| !e.success && e.total_reward < ceiling / 2.0), "random {pairs:?}");
    }
}

#[test]
fn rollouts_are_deterministic_across_threads() {
    for pairs in [&["size=9", "mode=answer"][..], &["size=6", "mode=move"][..]] {
        for policy in ["random", "solver"] {
            assert_eq!(run(policy, pairs, 6, 1), run(policy, pairs, 6, 2), "{policy} {pairs:?}");
        }
    }
    let mut a = make(&["size=9"]);
    let mut b = make(&["size=9"]);
    assert_eq!(a.reset(99).unwrap(), b.reset(99).unwrap());
    assert_ne!(a.reset(99).unwrap(), b.reset(100).unwrap());
}

#[test]
fn snapshot_initial_observations() {
    for (size, mode) in [("4", "answer"), ("6", "answer"), ("9", "answer"), ("9", "move")] {
        let obs = make(&[&format!("size={size}"), &format!("mode={mode}")]).reset(7).unwrap();
        let mut out = String::new();
        for m in &obs.messages {
            writeln!(out, "--- {:?} ---\n{}", m.role, m.content).unwrap();
        }
        let mut state = obs.state.clone();
        // Grids are shown above; keep the state's scalar fields readable.
        state["grid"] = serde_json::json!("(rows)");
        state["puzzle"] = serde_json::json!("(rows)");
        writeln!(out, "--- state ---\n{}", serde_json::to_string_pretty(&state).unwrap()).unwrap();
        writeln!(out, "--- legal_actions: {} ---", obs.legal_actions.len()).unwrap();
        insta::assert_snapshot!(format!("sudoku_obs_size{size}_{mode}"), out);
    }
}

fn describe(eps: &[EpisodeRecord]) -> String {
    let mut out = String::new();
    for ep in eps {
        writeln!(out, "== {} seed={} total={:.4} success={} ==", ep.policy, ep.seed, ep.total_reward, ep.success)
            .unwrap();
        for (t, s) in ep.steps.iter().enumerate() {
            let terms: Vec<String> = s
                .breakdown
                .iter()
                .map(|b| format!("{}={}x{}", b.name, b.value.map_or("none".into(), |v| format!("{v:.4}")), b.weight))
                .collect();
            writeln!(out, "[{t}] action: {:?}", s.action).unwrap();
            writeln!(out, "    reward {:.4} = {}", s.reward, terms.join(" + ")).unwrap();
            if let Some(r) = &s.reason {
                writeln!(out, "    reason: {r}").unwrap();
            }
            if s.terminated || s.truncated {
                writeln!(
                    out,
                    "    terminated={} truncated={} extra={}",
                    s.terminated,
                    s.truncated,
                    serde_json::Value::Object(s.extra.clone())
                )
                .unwrap();
            }
        }
    }
    out
}

#[test]
fn snapshot_rollouts() {
    for (name, pairs) in [
        ("answer_size9", &["size=9", "mode=answer"][..]),
        ("answer_size4", &["size=4", "mode=answer"][..]),
        ("move_size4", &["size=4", "mode=move"][..]),
        ("move_size6_easy", &["size=6", "mode=move", "difficulty=easy"][..]),
    ] {
        let mut out = String::new();
        for policy in ["random", "solver", "oracle"] {
            out.push_str(&describe(&run(policy, pairs, 2, 1)));
        }
        insta::assert_snapshot!(format!("sudoku_rollout_{name}"), out);
    }
}
