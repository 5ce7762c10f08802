//! Rollout engine properties: byte-identical trajectories whatever the
//! thread count, groups share an initial state, every policy copes with
//! every env.

use envs::{Registry, RolloutConfig, SamplingParams};

fn run(env: &str, policy: &str, threads: usize, group: usize, episodes: usize) -> Vec<u8> {
    let reg = Registry::builtin();
    let opts = reg.options(env, &[] as &[&str]).unwrap();
    let maker = reg.maker(env, &opts).unwrap();
    let p = policies::make_policy(policy).unwrap();
    let cfg = RolloutConfig {
        env_id: env.into(),
        options: opts.to_map(),
        episodes,
        seed: 7,
        group_size: group,
        threads,
        sampling: SamplingParams::default(),
        history: None,
    };
    let eps = envs::rollout(&maker, p.as_ref(), &cfg, &|_| {}).unwrap();
    assert_eq!(eps.len(), episodes);
    let mut buf = Vec::new();
    envs::rollout::write_jsonl(&mut buf, &eps).unwrap();
    buf
}

#[test]
fn trajectories_are_identical_across_thread_counts() {
    for env in Registry::builtin().ids() {
        let one = run(&env, "random", 1, 2, 6);
        let two = run(&env, "random", 2, 2, 6);
        let four = run(&env, "random", 4, 2, 6);
        assert!(one == two && two == four, "{env}: trajectories differ across thread counts");
        assert!(!one.is_empty());
    }
}

#[test]
fn a_group_shares_its_initial_state() {
    let reg = Registry::builtin();
    for env in reg.ids() {
        let bytes = run(&env, "random", 2, 4, 8);
        let eps: Vec<envs::EpisodeRecord> =
            String::from_utf8(bytes).unwrap().lines().map(|l| serde_json::from_str(l).unwrap()).collect();
        for g in eps.chunks(4) {
            assert!(g.iter().all(|e| e.seed == g[0].seed), "{env}");
            assert!(g.iter().all(|e| e.steps[0].observation == g[0].steps[0].observation), "{env}");
            assert_eq!(g.iter().map(|e| e.sample).collect::<Vec<_>>(), vec![0, 1, 2, 3]);
        }
        assert_ne!(eps[0].seed, eps[4].seed, "{env}: groups must use different seeds");
    }
}

#[test]
fn every_scripted_policy_runs_or_refuses_cleanly_on_every_env() {
    let reg = Registry::builtin();
    for env in reg.ids() {
        for (name, _) in policies::policy_names() {
            if name.contains(':') {
                continue;
            }
            let p = policies::make_policy(name).unwrap();
            let opts = reg.options(&env, &[] as &[&str]).unwrap();
            let maker = reg.maker(&env, &opts).unwrap();
            let cfg = RolloutConfig {
                env_id: env.clone(),
                options: opts.to_map(),
                episodes: 2,
                seed: 1,
                group_size: 1,
                threads: 1,
                sampling: SamplingParams::default(),
                history: None,
            };
            match envs::rollout(&maker, p.as_ref(), &cfg, &|_| {}) {
                Ok(eps) => assert!(eps.iter().all(|e| e.total_reward.is_finite() && !e.steps.is_empty())),
                // A policy that cannot serve an env says so; it never breaks the env.
                Err(e) => assert!(matches!(e, envs::rollout::RolloutError::Policy { .. }), "{env} {name}: {e}"),
            }
        }
    }
}

#[test]
fn oracle_beats_random_on_one_step_envs() {
    let reg = Registry::builtin();
    for env in reg.specs().filter(|s| s.max_steps == 1).map(|s| s.id.to_string()) {
        let mean = |policy: &str| {
            let bytes = run(&env, policy, 2, 1, 16);
            let eps: Vec<envs::EpisodeRecord> =
                String::from_utf8(bytes).unwrap().lines().map(|l| serde_json::from_str(l).unwrap()).collect();
            let succ = eps.iter().filter(|e| e.success).count();
            (eps.iter().map(|e| e.total_reward).sum::<f64>() / eps.len() as f64, succ)
        };
        let (oracle, oracle_succ) = mean("oracle");
        let (random, _) = mean("random");
        assert!(oracle > random, "{env}: oracle {oracle} <= random {random}");
        assert_eq!(oracle_succ, 16, "{env}: oracle must always succeed");
    }
}

/// A policy with a bug: it panics on every request.
struct Panicking;

impl envs::Policy for Panicking {
    fn name(&self) -> &str {
        "panicking"
    }
    fn generate(
        &self,
        _requests: &[envs::policy::Request<'_>],
        _params: &SamplingParams,
    ) -> Result<Vec<Vec<envs::policy::Completion>>, envs::PolicyError> {
        panic!("policy bug: index out of range")
    }
}

#[test]
fn a_panicking_worker_is_reported_as_a_panic_with_its_message() {
    let reg = Registry::builtin();
    let opts = reg.options("math", &[] as &[&str]).unwrap();
    let maker = reg.maker("math", &opts).unwrap();
    let cfg = RolloutConfig {
        env_id: "math".into(),
        options: opts.to_map(),
        episodes: 4,
        seed: 11,
        group_size: 2,
        threads: 2,
        sampling: SamplingParams::default(),
        history: None,
    };
    let err = envs::rollout(&maker, &Panicking, &cfg, &|_| {}).unwrap_err();
    assert!(matches!(err, envs::rollout::RolloutError::Panicked { .. }), "{err}");
    let msg = err.to_string();
    assert!(msg.contains("panicked") && msg.contains("policy bug: index out of range"), "{msg}");
    assert!(!msg.contains("wrong number of completions"), "{msg}");
}

/// A policy that records the messages of every request and plays the
/// first legal move.
struct Recorder(std::sync::Mutex<Vec<Vec<envs::Message>>>);

impl envs::Policy for Recorder {
    fn name(&self) -> &str {
        "recorder"
    }
    fn generate(
        &self,
        requests: &[envs::Request<'_>],
        _: &SamplingParams,
    ) -> Result<Vec<Vec<envs::Completion>>, envs::PolicyError> {
        let mut seen = self.0.lock().unwrap();
        Ok(requests
            .iter()
            .map(|r| {
                seen.push(r.messages.to_vec());
                vec![envs::Completion::text(r.observation.legal_actions[0].clone())]
            })
            .collect())
    }
}

fn conversations(history: Option<envs::History>) -> (Vec<Vec<envs::Message>>, Vec<envs::EpisodeRecord>) {
    let reg = Registry::builtin();
    let opts = reg.options("2048", &["size=3", "target=16"]).unwrap();
    let maker = reg.maker("2048", &opts).unwrap();
    let rec = Recorder(std::sync::Mutex::new(Vec::new()));
    let cfg = RolloutConfig {
        env_id: "2048".into(),
        options: opts.to_map(),
        episodes: 1,
        seed: 3,
        group_size: 1,
        threads: 1,
        sampling: SamplingParams::default(),
        history,
    };
    let eps = envs::rollout(&maker, &rec, &cfg, &|_| {}).unwrap();
    (rec.0.into_inner().unwrap(), eps)
}

#[test]
fn a_multi_turn_policy_sees_the_whole_conversation_unless_told_otherwise() {
    use envs::{Message, Role};
    let (seen, eps) = conversations(None);
    let ep = &eps[0];
    assert!(ep.steps.len() >= 3, "a game of several moves");
    // Turn t shows the first observation, then (reply, observation text) for every earlier turn:
    // the conversation gym train samples from (trainers/src/envsource.rs).
    for (t, msgs) in seen.iter().enumerate() {
        assert_eq!(&msgs[..ep.prompt.len()], ep.prompt.as_slice(), "turn {t} starts with the first observation");
        let rest = &msgs[ep.prompt.len()..];
        assert_eq!(rest.len(), 2 * t, "turn {t}");
        for (k, pair) in rest.chunks(2).enumerate() {
            assert_eq!(pair[0], Message::assistant(ep.steps[k].action.clone()));
            assert_eq!(pair[1].role, Role::User);
            assert_eq!(pair[1].content, ep.steps[k + 1].observation, "turn {t}: observation {}", k + 1);
        }
    }
    // --history latest: each turn shows only the latest observation; the game is the same.
    let (latest, eps2) = conversations(Some(envs::History::Latest));
    assert_eq!(eps2, eps);
    assert_eq!(latest[0], seen[0]);
    for (t, msgs) in latest.iter().enumerate().skip(1) {
        assert!(msgs.len() <= ep.prompt.len(), "turn {t} shows one observation");
        assert_eq!(msgs.last().map(|m| m.content.as_str()), Some(ep.steps[t].observation.as_str()));
    }
}
