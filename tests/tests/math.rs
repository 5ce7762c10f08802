//! The `math` env: generator correctness (answers recomputed independently
//! from the question text), dataset loading and its errors, the env
//! contract, the reward ceiling and penalties, and snapshots.

use std::path::PathBuf;

mod common;

use envs::check::check_env;
use envs::games::math::generator::{generate, Difficulty, TEMPLATES};
use envs::{Action, EnvError, EpisodeRecord, Registry, RegistryError};

fn data(name: &str) -> String {
    PathBuf::from(env!("CARGO_MANIFEST_DIR")).join("data/math").join(name).display().to_string()
}

fn maker(opts: &[String]) -> Result<envs::EnvMaker, RegistryError> {
    let reg = Registry::builtin();
    let o = reg.options("math", opts)?;
    reg.maker("math", &o)
}

fn opts(pairs: &[&str]) -> Vec<String> {
    pairs.iter().map(|s| s.to_string()).collect()
}

// ------------------------------------------------ an independent evaluator

/// Recursive-descent evaluation of `+ - * /` with parentheses, in f64.
struct Parser<'a> {
    s: &'a [u8],
    i: usize,
}

impl Parser<'_> {
    fn peek(&mut self) -> Option<u8> {
        while self.i < self.s.len() && self.s[self.i] == b' ' {
            self.i += 1;
        }
        self.s.get(self.i).copied()
    }
    fn expr(&mut self) -> f64 {
        let mut v = self.term();
        while let Some(op @ (b'+' | b'-')) = self.peek() {
            self.i += 1;
            let r = self.term();
            v = if op == b'+' { v + r } else { v - r };
        }
        v
    }
    fn term(&mut self) -> f64 {
        let mut v = self.atom();
        while let Some(op @ (b'*' | b'/')) = self.peek() {
            self.i += 1;
            let r = self.atom();
            v = if op == b'*' { v * r } else { v / r };
        }
        v
    }
    fn atom(&mut self) -> f64 {
        if self.peek() == Some(b'(') {
            self.i += 1;
            let v = self.expr();
            assert_eq!(self.peek(), Some(b')'));
            self.i += 1;
            return v;
        }
        let start = self.i;
        while self.i < self.s.len() && self.s[self.i].is_ascii_digit() {
            self.i += 1;
        }
        std::str::from_utf8(&self.s[start..self.i]).unwrap().parse().unwrap()
    }
}

fn eval(expr: &str) -> f64 {
    let mut p = Parser { s: expr.as_bytes(), i: 0 };
    let v = p.expr();
    assert_eq!(p.peek(), None, "trailing input in {expr}");
    v
}

/// Every number in `text` (`$4.25` → 4.25, `3/4` → 3 and 4).
fn nums(text: &str) -> Vec<f64> {
    let b = text.as_bytes();
    let mut out = Vec::new();
    let mut i = 0;
    while i < b.len() {
        if b[i].is_ascii_digit() {
            let start = i;
            while i < b.len()
                && (b[i].is_ascii_digit() || (b[i] == b'.' && i + 1 < b.len() && b[i + 1].is_ascii_digit()))
            {
                i += 1;
            }
            out.push(text[start..i].parse().unwrap());
        } else {
            i += 1;
        }
    }
    out
}

/// The answer recomputed from the question text alone.
fn recompute(template: &str, q: &str) -> f64 {
    let n = nums(q);
    match template {
        "arithmetic" => eval(q.strip_prefix("Evaluate the expression: ").unwrap()),
        "percent" if q.starts_with("What is") => n[0] * n[1] / 100.0,
        "percent" if q.contains("on sale") => n[0] * (1.0 - n[1] / 100.0),
        "percent" if q.contains("residents") => n[0] * (1.0 + n[1] / 100.0) * (1.0 - n[2] / 100.0),
        "percent" if q.contains("changes from") => (n[1] - n[0]) / n[0] * 100.0,
        "fractions" if q.starts_with("What is") => n[0] / n[1] * n[2],
        "fractions" if q.starts_with("Compute") => {
            let (a, b) = (n[0] / n[1], n[2] / n[3]);
            if q.contains(" + ") {
                a + b
            } else {
                a - b
            }
        }
        "fractions" if q.contains("pages") => {
            let rest = n[0] - n[0] * n[1] / n[2];
            rest - rest * n[3] / n[4]
        }
        "rates" if q.contains("pump") => n[0] * n[1] / (n[0] + n[1]),
        "rates" if q.contains("average speed") => (n[0] * n[1] + n[2] * n[3]) / (n[1] + n[3]),
        "rates" if q.contains("in total") => n[0] * n[1] + n[2] * n[3],
        "rates" => n[0] * n[1],
        "shopping" => {
            let (pairs, rest) = if q.contains("% off") {
                (&n[..n.len() - 2], &n[n.len() - 2..])
            } else if q.contains("bill") {
                (&n[..n.len() - 1], &n[n.len() - 1..])
            } else {
                (&n[..], &n[..0])
            };
            let mut total: f64 = pairs.chunks(2).map(|c| c[0] * c[1]).sum();
            match rest {
                [pct, bill] => {
                    total *= 1.0 - pct / 100.0;
                    bill - total
                }
                [bill] => bill - total,
                _ => total,
            }
        }
        "quantities" if q.contains("workers") => (n[0] * n[1] - n[2] * n[3]) / n[4] * n[5],
        "quantities" if q.contains("bags of") => (n[0] * n[1] - n[2]) / n[3],
        "quantities" => n[0] * n[1] - n[2],
        t => panic!("no recomputation for template {t}: {q}"),
    }
}

#[test]
fn generated_answers_match_an_independent_recomputation() {
    let mut seen = std::collections::BTreeSet::new();
    for d in [Difficulty::Easy, Difficulty::Medium, Difficulty::Hard] {
        for seed in 0..400 {
            let p = generate(seed, d);
            let want = recompute(p.template, &p.question);
            let got: f64 = p.answer_text().parse().unwrap();
            assert!((want - got).abs() < 1e-6, "seed {seed} {d:?}: {} -> {got}, recomputed {want}", p.question);
            seen.insert((d.name(), p.template));
        }
    }
    assert_eq!(seen.len(), 3 * TEMPLATES.len(), "every template at every difficulty was checked: {seen:?}");
}

#[test]
fn generator_is_deterministic_and_varied() {
    let m = maker(&opts(&["difficulty=medium"])).unwrap();
    let (mut a, mut b) = (m(), m());
    for seed in [0u64, 7, 99, u64::MAX] {
        assert_eq!(a.reset(seed).unwrap(), b.reset(seed).unwrap());
    }
    let questions: std::collections::BTreeSet<String> =
        (0..50).map(|s| a.reset(s).unwrap().text().to_string()).collect();
    assert!(questions.len() >= 48, "only {} distinct questions in 50 seeds", questions.len());
    let hard = maker(&opts(&["difficulty=hard"])).unwrap()().reset(0).unwrap();
    assert_ne!(hard, a.reset(0).unwrap());
}

#[test]
fn observation_states_format_and_answer_space_but_not_the_answer() {
    let mut env = maker(&opts(&["answer_tag=final", "reasoning_tag=reasoning"])).unwrap()();
    for seed in 0..30 {
        let obs = env.reset(seed).unwrap();
        let sys = &obs.messages[0].content;
        assert!(sys.contains("<reasoning>") && sys.contains("<final>"), "{sys}");
        assert_eq!(obs.state["answer_tag"], "final");
        assert_eq!(obs.state["answer_space"]["kind"], "number");
        assert_eq!(obs.state["answer_space"]["min"], 0);
        assert_eq!(obs.state["answer_space"]["max"], 1000);
        let demo = env.demonstration().unwrap().text;
        let answer = envs::rewards::extract_tag(&demo, "final").unwrap().to_string();
        assert!(!obs.state.to_string().contains(&format!("\"{answer}\"")), "state leaks the answer");
        let step = env.step(&Action::text(demo)).unwrap();
        assert_eq!(step.reward, 5.0, "oracle reply with custom tags");
        assert_eq!(step.info.success, Some(true));
    }
}

// -------------------------------------------------------------- datasets

#[test]
fn gsm8k_is_loaded_with_gold_after_hashes() {
    let mut env = maker(&opts(&["source=gsm8k", &format!("path={}", data("gsm8k_sample.jsonl"))])).unwrap()();
    let obs = env.reset(1).unwrap();
    assert!(obs.text().starts_with("Tom earns $15"));
    assert_eq!(obs.state["source"], "gsm8k");
    assert_eq!(obs.state["index"], 1);
    assert_eq!(obs.state["answer_space"], serde_json::json!({"kind": "number", "min": -5, "max": 1200}));
    let demo = env.demonstration().unwrap().text;
    assert!(demo.contains("<answer>1200</answer>"), "{demo}");
    assert!(!demo.contains("<<") && !demo.contains("####"), "{demo}");
    // seed % len: 4 items, seed 5 is item 1 again; seed 3 is the negative answer.
    assert_eq!(env.reset(5).unwrap().text(), obs.text());
    env.reset(3).unwrap();
    let s = env.step(&Action::text("<think>4 - 9</think>\n<answer>-5</answer>")).unwrap();
    assert_eq!(s.reward, 5.0);
    let mut env2 = maker(&opts(&["source=gsm8k", &format!("path={}", data("gsm8k_sample.jsonl"))])).unwrap()();
    env2.reset(1).unwrap();
    // "1,200" earns full number credit and 0.8 correctness.
    let s = env2.step(&Action::text("<think>15*8*10</think><answer>1,200</answer>")).unwrap();
    assert_eq!(s.info.success, Some(true));
    assert!(s.reward > 4.0 && s.reward < 5.0, "{}", s.reward);
}

#[test]
fn generic_jsonl_accepts_numbers_and_text_answers() {
    let mut env = maker(&opts(&["source=jsonl", &format!("path={}", data("generic.jsonl"))])).unwrap()();
    let obs = env.reset(0).unwrap();
    assert_eq!(obs.state["answer_space"]["kind"], "choice", "a non-numeric answer makes the space a choice");
    assert!(!obs.messages[0].content.contains("single number"));
    let s = env.step(&env.demonstration().unwrap()).unwrap();
    assert_eq!(s.reward, 5.0);
    env.reset(1).unwrap();
    let s = env.step(&Action::text("<think>halve</think><answer>3/4</answer>")).unwrap();
    assert_eq!(s.reward, 5.0);
    env.reset(1).unwrap();
    let s = env.step(&Action::text("<think>halve</think><answer>0.75</answer>")).unwrap();
    assert_eq!(s.info.success, Some(true), "0.75 equals 3/4 numerically");
}

fn build_error(source: &str, file: &str) -> String {
    let path = data(file);
    match maker(&opts(&[&format!("source={source}"), &format!("path={path}")])) {
        Err(e @ RegistryError::Build { source: EnvError::File { .. }, .. }) => {
            let msg = e.to_string();
            assert!(msg.contains(&path), "error names the file: {msg}");
            msg
        }
        Err(e) => panic!("expected a file error, got {e}"),
        Ok(_) => panic!("{file} should not load"),
    }
}

#[test]
fn malformed_files_fail_at_build_time_naming_file_and_line() {
    let e = build_error("gsm8k", "gsm8k_no_final_answer.jsonl");
    assert!(e.contains("line 2") && e.contains("####"), "{e}");
    let e = build_error("gsm8k", "gsm8k_bad_json.jsonl");
    assert!(e.contains("line 3") && e.contains("invalid JSON"), "{e}");
    let e = build_error("jsonl", "generic_missing_answer.jsonl");
    assert!(e.contains("line 2") && e.contains("missing field `answer`"), "{e}");
    let e = build_error("gsm8k", "generic.jsonl");
    assert!(e.contains("line 1") && e.contains("`question`"), "{e}");
    let e = build_error("jsonl", "empty.jsonl");
    assert!(e.contains("no items"), "{e}");
    let e = build_error("jsonl", "does_not_exist.jsonl");
    assert!(e.contains("cannot read"), "{e}");
    match maker(&opts(&["source=gsm8k"])) {
        Err(RegistryError::Build { source: EnvError::BadOption { name, .. }, .. }) => assert_eq!(name, "path"),
        other => panic!("expected a missing-path error, got {:?}", other.err()),
    }
}

// -------------------------------------------------------- contract, rewards

#[test]
fn check_env_passes_for_every_source() {
    for o in [
        opts(&[]),
        opts(&["difficulty=medium"]),
        opts(&["difficulty=hard"]),
        opts(&["source=gsm8k", &format!("path={}", data("gsm8k_sample.jsonl"))]),
        opts(&["source=jsonl", &format!("path={}", data("generic.jsonl"))]),
    ] {
        check_env(&maker(&o).unwrap(), 1).unwrap_or_else(|e| panic!("{o:?}: {e}"));
    }
}

fn run(opts: &[String], policy: &str, episodes: usize, seed: u64) -> Vec<EpisodeRecord> {
    common::rollout_env("math", opts, policy, episodes, seed)
}

#[test]
fn oracle_earns_the_full_reward_everywhere() {
    for o in [
        opts(&["difficulty=easy"]),
        opts(&["difficulty=medium"]),
        opts(&["difficulty=hard"]),
        opts(&["source=gsm8k", &format!("path={}", data("gsm8k_sample.jsonl"))]),
        opts(&["source=jsonl", &format!("path={}", data("generic.jsonl"))]),
    ] {
        for ep in run(&o, "oracle", 60, 1000) {
            assert_eq!(ep.total_reward, 5.0, "{o:?} seed {}: {:?}", ep.seed, ep.steps[0]);
            assert!(ep.success);
            assert_eq!(ep.steps[0].reason, None);
        }
    }
}

#[test]
fn empty_and_garbage_replies_are_penalised_with_reasons() {
    let m = maker(&opts(&[])).unwrap();
    let cases = [
        ("", -4.5, "empty reply"),
        ("the answer is probably 12", -3.0, "no <answer>"),
        ("\u{0}\u{7f} ### <answer>", -3.5, "no <answer>"),
        ("<answer>banana</answer>", -2.0, "wrong answer `banana`"),
    ];
    for (reply, max_reward, why) in cases {
        let mut env = m();
        env.reset(11).unwrap();
        let s = env.step(&Action::text(reply)).unwrap();
        assert!(s.reward <= max_reward, "{reply:?}: {} > {max_reward}", s.reward);
        assert!(s.terminated && s.info.success == Some(false));
        let reason = s.info.reason.unwrap_or_default();
        assert!(reason.contains(why), "{reply:?}: reason {reason:?}");
    }
}

#[test]
fn random_baseline_is_far_below_the_oracle() {
    let eps = run(&opts(&[]), "random", 200, 0);
    let mean = eps.iter().map(|e| e.total_reward).sum::<f64>() / eps.len() as f64;
    let wins = eps.iter().filter(|e| e.success).count();
    assert!(mean < 2.0, "random mean {mean}");
    assert!(wins < 10, "random solved {wins} of 200");
}

// ------------------------------------------------------------- snapshots

fn view(eps: &[EpisodeRecord]) -> serde_json::Value {
    eps.iter()
        .map(|e| {
            let s = &e.steps[0];
            serde_json::json!({
                "seed": e.seed,
                "question": e.prompt[1].content,
                "reply": s.action,
                "reward": s.reward,
                "breakdown": s.breakdown.iter().map(|t| format!("{}={:?}x{}", t.name, t.value, t.weight)).collect::<Vec<_>>(),
                "reason": s.reason,
                "success": e.success,
            })
        })
        .collect()
}

#[test]
fn snapshot_prompts() {
    let mut out = String::new();
    for d in ["easy", "medium", "hard"] {
        let mut env = maker(&opts(&[&format!("difficulty={d}")])).unwrap()();
        for seed in 0..6 {
            let obs = env.reset(seed).unwrap();
            if seed == 0 && d == "easy" {
                out.push_str(&format!("SYSTEM: {}\n\n", obs.messages[0].content));
            }
            out.push_str(&format!("[{d} {seed} {}] {}\n", obs.state["template"].as_str().unwrap(), obs.text()));
        }
    }
    let mut env = maker(&opts(&["source=gsm8k", &format!("path={}", data("gsm8k_sample.jsonl"))])).unwrap()();
    env.reset(0).unwrap();
    out.push_str(&format!("\n[gsm8k 0 demonstration]\n{}\n", env.demonstration().unwrap().text));
    insta::assert_snapshot!(out);
}

#[test]
fn snapshot_rollouts() {
    insta::assert_json_snapshot!("math_oracle", view(&run(&opts(&["difficulty=medium"]), "oracle", 3, 0)));
    insta::assert_json_snapshot!("math_random", view(&run(&opts(&["difficulty=medium"]), "random", 3, 0)));
    let gsm = opts(&["source=gsm8k", &format!("path={}", data("gsm8k_sample.jsonl"))]);
    insta::assert_json_snapshot!("math_gsm8k_random", view(&run(&gsm, "random", 2, 0)));
}
