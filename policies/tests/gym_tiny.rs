//! The bundled `gym-tiny` policy: loads offline, answers `2048-strategy`,
//! and scores clearly above an untrained model of the same shape on
//! held-out seeds (seeds ≥ 100000 are never used by
//! `scripts/train_gym_tiny.sh` for training).

use envs::{Registry, RolloutConfig, SamplingParams};
use policies::llm::tiny;

fn mean_reward(policy: &dyn envs::Policy, seed: u64, episodes: usize) -> f64 {
    let reg = Registry::builtin();
    let options = reg.options::<&str>("2048-strategy", &[]).unwrap();
    let maker = reg.maker("2048-strategy", &options).unwrap();
    let cfg = RolloutConfig {
        env_id: "2048-strategy".into(),
        options: options.to_map(),
        episodes,
        seed,
        group_size: 1,
        threads: 1,
        sampling: SamplingParams::default(),
        history: None,
    };
    let eps = envs::rollout(&maker, policy, &cfg, &|_| {}).unwrap();
    assert_eq!(eps.len(), episodes);
    eps.iter().map(|e| e.steps.iter().map(|s| s.reward).sum::<f64>()).sum::<f64>() / episodes as f64
}

#[test]
fn gym_tiny_beats_an_untrained_model_of_its_shape_on_held_out_seeds() {
    let trained = policies::make_policy("gym-tiny").unwrap();
    assert_eq!(trained.name(), "gym-tiny");
    let random = tiny::random(7).unwrap();
    assert_eq!(random.model().config().hidden_size, tiny::config().unwrap().hidden_size);
    let seed = 200_000;
    let t = mean_reward(trained.as_ref(), seed, 4);
    let r = mean_reward(&random, seed, 4);
    // An untrained model writes no fenced program (−1 − 5 = −6); gym-tiny
    // (SFT + GRPO) writes programs that mostly compile and beat random play
    // (+1.14 on these seeds; +1.12 over 256 held-out seeds in BENCHMARKS.md).
    assert!(r <= -5.0, "untrained model scored {r}");
    assert!(t > 0.0, "gym-tiny scored {t}: no better than random play");
    assert!(t > r + 5.0, "gym-tiny {t} vs untrained {r}");
}

#[test]
fn tokenizer_has_one_token_per_program_fragment_and_round_trips() {
    use envs::games::strategy::programs::{program_2048, FRAGMENTS};
    let p = tiny::random(0).unwrap();
    let tok = p.tokenizer();
    for f in FRAGMENTS {
        let ids = tok.encode(*f, false).unwrap().get_ids().to_vec();
        assert_eq!(ids.len(), 1, "fragment {f:?} is {} tokens", ids.len());
    }
    for seed in 0..20 {
        let text = program_2048(seed);
        let ids = tok.encode(text.as_str(), false).unwrap().get_ids().to_vec();
        assert!(ids.len() < 120, "seed {seed}: {} tokens", ids.len());
        assert_eq!(tok.decode(&ids, false).unwrap(), text);
    }
    // The chat template keeps the first sentence of the user turn.
    let msgs = [envs::Message::system("rules"), envs::Message::user("Write a 2048 strategy for a 4x4 board. More.")];
    assert_eq!(p.render_prompt(&msgs).unwrap(), "<|user|>Write a 2048 strategy for a 4x4 board\n<|assistant|>");
}

#[test]
fn replies_shown_and_scored_carry_no_special_tokens() {
    let p = policies::llm::tiny::load().unwrap();
    let sample = models::sampling::Sample {
        text: "<|assistant|>```rhai\nfn strategy(b) { \"up\" }\n```<|user|>".into(),
        token_ids: vec![],
        logprobs: vec![],
        finish: models::sampling::FinishReason::Length,
    };
    assert_eq!(p.reply_text(&sample), "```rhai\nfn strategy(b) { \"up\" }\n```");
}
