//! The `2048` env end to end: rendered observations, short rollouts with
//! scripted policies, the conformance checker, and baseline strength.

use envs::{rollout, EpisodeRecord, Registry, RolloutConfig, SamplingParams, Summary};

fn maker(opts: &[&str]) -> envs::EnvMaker {
    let r = Registry::builtin();
    let o = r.options("2048", opts).expect("valid options");
    r.maker("2048", &o).expect("2048 builds")
}

fn run(policy: &str, opts: &[&str], episodes: usize, seed: u64) -> Vec<EpisodeRecord> {
    let p = policies::make_policy(policy).expect("policy exists");
    let cfg = RolloutConfig {
        env_id: "2048".into(),
        options: Default::default(),
        episodes,
        seed,
        group_size: 1,
        threads: 2,
        sampling: SamplingParams::default(),
        history: None,
    };
    rollout(&maker(opts), p.as_ref(), &cfg, &|_| {}).expect("rollout runs")
}

/// A readable rendering of the first `steps` steps of an episode and its
/// final step.
fn render(ep: &EpisodeRecord, steps: usize) -> String {
    let mut out = format!("policy {} seed {}\n", ep.policy, ep.seed);
    let n = ep.steps.len();
    let shown = (0..n).filter(|&i| i < steps || i + 1 == n);
    for (i, s) in shown.map(|i| (i, &ep.steps[i])) {
        out.push_str(&format!("--- step {i}\n{}\n>>> {}\n", s.observation, s.action));
        let terms: Vec<String> = s
            .breakdown
            .iter()
            .map(|t| format!("{}={}x{}", t.name, t.value.map_or("none".into(), |v| format!("{v:.3}")), t.weight))
            .collect();
        out.push_str(&format!("reward {:.3} [{}]", s.reward, terms.join(", ")));
        if let Some(r) = &s.reason {
            out.push_str(&format!(" reason: {r}"));
        }
        out.push_str(&format!(" score={} max_tile={}\n", s.extra["score"], s.extra["max_tile"]));
    }
    let last = ep.steps.last().map(|s| &s.extra);
    out.push_str(&format!(
        "=== {} steps, total reward {:.3}, success {}, outcome {}, baseline progress {}\n",
        n,
        ep.total_reward,
        ep.success,
        last.map_or("-".into(), |e| e["outcome"].to_string()),
        last.map_or("-".into(), |e| e["baseline_progress"].to_string())
    ));
    out
}

#[test]
fn initial_observations() {
    let mut env = maker(&[])();
    let obs = env.reset(1).unwrap();
    insta::assert_snapshot!("system_prompt", obs.messages[0].content);
    insta::assert_snapshot!("initial_seed_1", obs.text());
    insta::assert_json_snapshot!("initial_state_seed_1", obs.state);
    let mut env = maker(&["size=6", "target=4096"])();
    insta::assert_snapshot!("initial_6x6_seed_7", env.reset(7).unwrap().text());
}

#[test]
fn random_rollout_first_steps() {
    let eps = run("random", &[], 1, 3);
    insta::assert_snapshot!("random_seed_3", render(&eps[0], 5));
}

#[test]
fn expectimax_rollout_first_steps() {
    let eps = run("expectimax", &["target=64"], 1, 3);
    insta::assert_snapshot!("expectimax_seed_3", render(&eps[0], 5));
    let last = eps[0].steps.last().unwrap();
    assert!(eps[0].success, "expectimax reaches 64");
    assert_eq!(last.extra["outcome"], "won");
}

/// The expectimax baseline wins real 4×4 games to 2048.
#[test]
fn expectimax_reaches_2048() {
    let eps = run("expectimax", &[], 2, 1);
    for e in &eps {
        let last = e.steps.last().unwrap();
        assert!(e.success, "seed {}: best tile {}", e.seed, last.extra["max_tile"]);
        assert_eq!(last.extra["max_tile"], 2048);
        // Reaching 2048 is worth > +3 over random play (2048 vs a median 128).
        assert!(e.total_reward > 3.0, "seed {}: reward {}", e.seed, e.total_reward);
    }
}

#[test]
fn invalid_replies_are_penalised_with_reasons() {
    let mut env = maker(&["invalid_allowance=2"])();
    env.reset(5).unwrap();
    let s = env.step(&envs::Action::text("<answer>sideways</answer>")).unwrap();
    assert_eq!(s.info.reason.as_deref(), Some("`sideways` is not a move; answer up, down, left or right"));
    assert!(s.reward < 0.0 && !s.terminated);
    let s = env.step(&envs::Action::text("")).unwrap();
    assert!(s.terminated && s.info.success == Some(false));
    insta::assert_json_snapshot!("invalid_final_step_info", s.info);
}

#[test]
fn passes_the_env_checker_on_several_sizes() {
    for opts in [&[][..], &["size=3", "target=128"], &["size=5", "target=256"], &["size=8", "target=64"]] {
        envs::check::check_env(&maker(opts), 5000).unwrap_or_else(|e| panic!("{opts:?}: {e}"));
    }
}

#[test]
fn trajectories_do_not_depend_on_thread_count() {
    let p = policies::make_policy("greedy-merge").unwrap();
    let mut cfg = RolloutConfig {
        env_id: "2048".into(),
        options: Default::default(),
        episodes: 4,
        seed: 10,
        group_size: 2,
        threads: 1,
        sampling: SamplingParams::default(),
        history: None,
    };
    let m = maker(&["target=256"]);
    let a = rollout(&m, p.as_ref(), &cfg, &|_| {}).unwrap();
    cfg.threads = 2;
    let b = rollout(&m, p.as_ref(), &cfg, &|_| {}).unwrap();
    assert_eq!(a, b);
}

/// Random play must not look good; every baseline that plays better than
/// random must score above it, in the order of strength.
#[test]
fn rewards_rank_the_baselines() {
    let opts = ["target=512"];
    let mean = |p: &str| Summary::of(&run(p, &opts, 12, 100)).mean_reward;
    let (random, corner, greedy, expectimax) =
        (mean("random"), mean("corner"), mean("greedy-merge"), mean("expectimax"));
    assert!(random.abs() < 0.35, "random {random}");
    assert!(corner > random + 0.5, "corner {corner} random {random}");
    assert!(greedy > random + 0.8, "greedy {greedy}");
    assert!(expectimax > greedy + 1.0, "expectimax {expectimax} greedy {greedy}");
}

/// Full-strength figures (release build): `cargo test --release -p gym-tests
/// --test twenty48 -- --ignored --nocapture`.
#[test]
#[ignore = "slow: plays 20 full games per policy"]
fn baseline_strength_report() {
    for (p, n) in [
        ("random", 20),
        ("random", 500),
        ("corner", 500),
        ("greedy-merge", 500),
        ("expectimax", 20),
        ("expectimax", 100),
    ] {
        let t = std::time::Instant::now();
        let eps = run(p, &[], n, 1);
        let s = Summary::of(&eps);
        let mut tiles: Vec<u64> =
            eps.iter().map(|e| e.steps.last().unwrap().extra["max_tile"].as_u64().unwrap()).collect();
        tiles.sort_unstable();
        let score: f64 = eps.iter().map(|e| e.steps.last().unwrap().extra["score"].as_f64().unwrap()).sum::<f64>()
            / eps.len() as f64;
        println!(
            "{p:>12} x{n}: mean reward {:.3}, success {:.0} %, mean score {score:.0}, median max tile {}, mean moves {:.0}, {:.1} s",
            s.mean_reward,
            100.0 * s.success_rate,
            tiles[tiles.len() / 2],
            s.mean_steps,
            t.elapsed().as_secs_f64()
        );
    }
}
