//! Multi-turn GRPO: sequences built from multi-step episodes (the tokens the
//! policy conditioned on, env tokens masked), and a loss, normalisers and
//! metrics that ignore env tokens.

use std::path::{Path, PathBuf};
use std::sync::Arc;

use candle_core::{DType, Device, Tensor, Var};
use envs::{Action, Env, EnvError, EnvMaker, EnvSpec, History, Message, Observation, Registry, Step, StepInfo};
use models::sampling::SampleOptions;
use models::CausalLm;
use policies::llm::LlmPolicy;
use trainers::config::GrpoConfig;
use trainers::envsource::EnvSource;
use trainers::grpo::{aggregate, per_token_losses, token_weights, LossConfig, LossType};
use trainers::loss::{grpo_loss, LossInputs};
use trainers::optim::Schedule;
use trainers::score::{score, Activations, ScoreBatch};
use trainers::toy::{TinyModelSpec, BOS};
use trainers::{GrpoTrainer, RolloutSource, Sequence};

/// Three turns of small talk: reward `length` = reply characters ÷ 20
/// (capped at 1) per turn, and `never` (no reward).
struct Talk {
    turn: Option<usize>,
    history: History,
}

fn talk_obs(text: String) -> Observation {
    Observation { messages: vec![Message::system("Talk."), Message::user(text)], ..Observation::default() }
}

impl Env for Talk {
    fn reset(&mut self, seed: u64) -> Result<Observation, EnvError> {
        self.turn = Some(0);
        Ok(talk_obs(format!("Seed {seed}, turn 1.")))
    }

    fn step(&mut self, action: &Action) -> Result<Step, EnvError> {
        let turn = self.turn.as_mut().ok_or(EnvError::NotReset)?;
        *turn += 1;
        let mut info = StepInfo::default();
        info.term("length", Some((action.text.chars().count() as f64 / 20.0).min(1.0)), 1.0);
        info.term("never", None, 0.5);
        let done = *turn == 3;
        Ok(Step::new(talk_obs(format!("Turn {}.", *turn + 1)), info, done, false))
    }

    fn history(&self) -> History {
        self.history
    }
}

fn talk_maker() -> EnvMaker {
    talk_maker_with(History::Full)
}

fn talk_maker_with(history: History) -> EnvMaker {
    let mut reg = Registry::new();
    reg.register(
        EnvSpec { id: "talk", version: 1, description: "talk", max_steps: 10, options: vec![], ..EnvSpec::default() },
        move |_| Ok(Arc::new(move || Box::new(Talk { turn: None, history }) as Box<dyn Env>) as EnvMaker),
    );
    let options = reg.options("talk", &[] as &[&str]).unwrap();
    reg.maker("talk", &options).unwrap()
}

fn fixture() -> PathBuf {
    Path::new(env!("CARGO_MANIFEST_DIR")).join("../policies/tests/fixtures/tiny-qwen2")
}

fn source(dir: &Path, turn_tokens: usize) -> EnvSource {
    let policy = LlmPolicy::load(dir.to_str().unwrap()).unwrap();
    EnvSource::new("talk", Default::default(), talk_maker(), policy).with_max_turn_tokens(Some(turn_tokens))
}

fn sampling(budget: usize) -> SampleOptions {
    SampleOptions { max_new_tokens: budget, ..SampleOptions::default() }
}

/// Maximal runs of `value` in `mask`, as index ranges.
fn runs(mask: &[bool], value: bool) -> Vec<std::ops::Range<usize>> {
    let mut out = Vec::new();
    let mut start = None;
    for (i, m) in mask.iter().copied().chain(std::iter::once(!value)).enumerate() {
        match (start, m == value) {
            (None, true) => start = Some(i),
            (Some(s), false) => {
                out.push(s..i);
                start = None;
            }
            _ => {}
        }
    }
    out
}

#[test]
fn multi_turn_sequences_are_exactly_what_the_policy_sampled_from() {
    let mut src = source(&fixture(), 5);
    let eps = src.episodes(4, 2, &sampling(200), 11).unwrap();
    assert_eq!(src.reward_names(), ["length", "never"]);
    let policy = src.policy();
    let eos = policy.eos_token_ids().to_vec();
    for (ep, seq) in &eps {
        assert_eq!(ep.steps.len(), 3, "every episode plays its three turns");
        assert_eq!(seq.loss_mask.len(), seq.completion.len());
        // The prompt is the chat rendering of the first observation.
        assert_eq!(seq.prompt, policy.encode(&policy.render_prompt(&ep.prompt).unwrap()).unwrap());
        // Policy tokens: exactly the sampled replies, in order, one run per turn.
        let replies = runs(&seq.loss_mask, true);
        assert_eq!(replies.len(), 3);
        for (r, step) in replies.iter().zip(&ep.steps) {
            assert_eq!(Some(&seq.completion[r.clone()].to_vec()), step.token_ids.as_ref());
        }
        // Env tokens: the template's turn change around the next observation.
        let env = runs(&seq.loss_mask, false);
        assert_eq!(env.len(), 2);
        for (k, r) in env.iter().enumerate() {
            let text = policy.tokenizer().decode(&seq.completion[r.clone()], false).unwrap();
            assert!(text.contains(&format!("<|im_start|>user\nTurn {}.<|im_end|>", k + 2)), "{text:?}");
            assert!(text.ends_with("<|im_start|>assistant\n"), "{text:?}");
            let reply_ended = eos.contains(&seq.completion[r.start - 1]);
            assert_eq!(text.starts_with("<|im_end|>"), !reply_ended, "the end of turn is written once: {text:?}");
        }
        // The return: per function, the sum over steps.
        let length: f64 = ep.steps.iter().map(|s| s.breakdown[0].value.unwrap()).sum();
        assert_eq!(seq.rewards, vec![Some(length), None]);
        assert_eq!(seq.truncated, !eos.contains(seq.completion.last().unwrap()));
        assert!(seq.completion.len() <= 200);
    }
    // Token in, token out: scoring the sequence reproduces the sampler's
    // log-probs at every policy token, so each turn was sampled from exactly
    // this prefix.
    let model = src.policy().model();
    for (ep, seq) in &eps {
        let batch = ScoreBatch::new(&[&seq.prompt], &[&seq.completion], model.device()).unwrap();
        let lp: Vec<f32> = score(model, &batch, 1.0, 64, Activations::None, &|_| {})
            .unwrap()
            .logprobs
            .squeeze(0)
            .unwrap()
            .to_vec1()
            .unwrap();
        let sampled: Vec<f32> = ep.steps.iter().flat_map(|s| s.logprobs.clone().unwrap()).collect();
        let trained: Vec<f32> = lp.iter().zip(&seq.loss_mask).filter(|(_, m)| **m).map(|(l, _)| *l).collect();
        assert_eq!(sampled.len(), trained.len());
        for (a, b) in sampled.iter().zip(&trained) {
            assert!((a - b).abs() < 1e-3, "sampled {a} vs scored {b}");
        }
    }
}

#[test]
fn multi_turn_sequences_are_deterministic_across_threads() {
    let one = source(&fixture(), 5).episodes(6, 2, &sampling(200), 3).unwrap();
    let again = source(&fixture(), 5).episodes(6, 2, &sampling(200), 3).unwrap();
    let two = source(&fixture(), 5).with_threads(2).episodes(6, 2, &sampling(200), 3).unwrap();
    assert_eq!(one, again);
    assert_eq!(one, two);
}

#[test]
fn the_token_budget_cuts_episodes_and_counts_env_tokens() {
    let mut src = source(&fixture(), 5);
    let first = src.episodes(2, 2, &sampling(200), 5).unwrap();
    let full = first[0].1.completion.len();
    let env2 = runs(&first[0].1.loss_mask, false)[1].clone();
    // A budget that ends inside the second env segment: two turns, then cut.
    let budget = env2.end - 1;
    let cut = src.episodes(2, 2, &sampling(budget), 5).unwrap();
    for (ep, seq) in &cut {
        assert!(seq.completion.len() <= budget && seq.completion.len() < full);
        assert!(ep.steps.last().unwrap().truncated, "the episode ends truncated where the budget ran out");
        assert!(seq.truncated);
    }
    let (ep, seq) = &cut[0];
    assert_eq!(runs(&seq.loss_mask, true).len(), 2, "the third turn has no room");
    assert_eq!(ep.steps.len(), 2);
    // Same seed, same first two turns.
    assert_eq!(cut[0].1.completion[..env2.start], first[0].1.completion[..env2.start]);
}

#[test]
fn a_template_that_rewrites_earlier_turns_is_an_error() {
    let tmp = tempfile::tempdir().unwrap();
    for f in std::fs::read_dir(fixture()).unwrap() {
        let f = f.unwrap().path();
        std::fs::copy(&f, tmp.path().join(f.file_name().unwrap())).unwrap();
    }
    let tpl = tmp.path().join("chat_template.jinja");
    let text = std::fs::read_to_string(&tpl).unwrap();
    // Earlier assistant turns are re-rendered as a fixed summary (as templates that strip reasoning do).
    let patched = text.replace(
        "{{- '<|im_start|>' + message.role + '\\n' + message.content + '<|im_end|>' + '\\n' }}",
        "{%- if message.role == 'assistant' %}{{- '<|im_start|>assistant\\n(reply)<|im_end|>\\n' }}{%- else %}\
         {{- '<|im_start|>' + message.role + '\\n' + message.content + '<|im_end|>' + '\\n' }}{%- endif %}",
    );
    assert_ne!(patched, text, "the fixture's template changed: update this test");
    std::fs::write(&tpl, patched).unwrap();
    let err = source(tmp.path(), 5).episodes(2, 2, &sampling(200), 1).unwrap_err().to_string();
    assert!(err.contains("not prefix-preserving") && err.contains("turn 2"), "{err}");
}

/// A hand-built multi-turn batch: `[policy ×a, env ×e, policy ×b]` per
/// completion, with env tokens that would change every normaliser if they
/// counted.
fn multi_turn_batch() -> Vec<Sequence> {
    let shapes = [(2, 5, 1), (3, 2, 2), (1, 6, 3), (4, 1, 1)];
    shapes
        .iter()
        .enumerate()
        .map(|(i, &(a, e, b))| {
            let mut completion = Vec::new();
            let mut loss_mask = Vec::new();
            for (n, policy) in [(a, true), (e, false), (b, true)] {
                for k in 0..n {
                    completion.push(4 + ((i * 7 + k * 3 + usize::from(policy)) % 14) as u32);
                    loss_mask.push(policy);
                }
            }
            Sequence {
                prompt: vec![BOS, 17, 18, 15],
                completion,
                loss_mask,
                truncated: false,
                rewards: vec![Some([1.0, 0.0, 2.0, 0.5][i])],
                text: String::new(),
                prompt_clipped: 0,
            }
        })
        .collect()
}

struct Fixed(Vec<Sequence>);

impl RolloutSource for Fixed {
    fn reward_names(&self) -> Vec<String> {
        vec!["r".into()]
    }

    fn generate(
        &mut self,
        _: &CausalLm,
        p: usize,
        g: usize,
        _: &SampleOptions,
        _: u64,
    ) -> trainers::Result<Vec<Sequence>> {
        assert_eq!(p * g, self.0.len());
        Ok(self.0.clone())
    }
}

#[test]
fn normalisers_count_policy_tokens_only() {
    let masks: Vec<Vec<bool>> = multi_turn_batch().into_iter().map(|s| s.loss_mask).collect();
    let policy: Vec<f64> = masks.iter().map(|m| m.iter().filter(|x| **x).count() as f64).collect();
    assert_eq!(policy, [3.0, 5.0, 4.0, 5.0]);
    let total: f64 = policy.iter().sum();
    let b = 4.0;
    for (loss_type, want) in [
        (LossType::Grpo, policy.iter().map(|n| 1.0 / (b * n)).collect::<Vec<_>>()),
        (LossType::Bnpo, vec![1.0 / total; 4]),
        (LossType::DrGrpo, vec![1.0 / (b * 16.0); 4]),
        (LossType::Dapo, vec![1.0 / total; 4]),
    ] {
        let cfg = LossConfig { loss_type, max_completion_length: 16, ..LossConfig::default() };
        assert_eq!(token_weights(&masks, &cfg, total as usize), want, "{loss_type:?}");
    }
}

#[test]
fn the_loss_and_its_gradient_ignore_env_token_logprobs() {
    let masks: Vec<Vec<bool>> = multi_turn_batch().into_iter().map(|s| s.loss_mask).collect();
    let c = masks.iter().map(Vec::len).max().unwrap();
    let masks: Vec<Vec<bool>> = masks
        .into_iter()
        .map(|mut m| {
            m.resize(c, false);
            m
        })
        .collect();
    let n_gen = masks.iter().flatten().filter(|m| **m).count();
    let grid = |f: &dyn Fn(usize, usize) -> f32| -> Vec<Vec<f32>> {
        (0..masks.len()).map(|i| (0..c).map(|t| f(i, t)).collect()).collect()
    };
    let lp = grid(&|i, t| -0.3 - 0.11 * ((i * 5 + t * 3) % 7) as f32);
    let old = grid(&|i, t| -0.35 - 0.1 * ((i * 3 + t) % 5) as f32);
    let rf = grid(&|i, t| -0.4 - 0.09 * ((i + t * 2) % 6) as f32);
    // Wild values at env positions only.
    let wild = |x: &[Vec<f32>], v: f32| -> Vec<Vec<f32>> {
        x.iter().zip(&masks).map(|(r, m)| r.iter().zip(m).map(|(a, m)| if *m { *a } else { v }).collect()).collect()
    };
    let adv = [0.9, -1.1, 0.4, -0.2];
    let dev = Device::Cpu;
    for loss_type in [LossType::Grpo, LossType::Bnpo, LossType::DrGrpo, LossType::Dapo] {
        let cfg = LossConfig { loss_type, beta: 0.04, max_completion_length: 16, ..LossConfig::default() };
        let run = |lp: &[Vec<f32>], old: &[Vec<f32>], rf: &[Vec<f32>]| -> (f32, Vec<Vec<f32>>) {
            let flat: Vec<f32> = lp.iter().flatten().copied().collect();
            let v = Var::from_tensor(&Tensor::from_vec(flat, (masks.len(), c), &dev).unwrap()).unwrap();
            let w = token_weights(&masks, &cfg, n_gen);
            let inputs = LossInputs::from_host(&masks, &adv, Some(old), Some(rf), &w, DType::F32, &dev).unwrap();
            let out = grpo_loss(v.as_tensor(), &inputs, &cfg).unwrap();
            assert_eq!(out.tokens, n_gen);
            let g = out.loss.backward().unwrap().remove(v.as_tensor()).unwrap();
            (out.loss.to_scalar().unwrap(), g.to_vec2().unwrap())
        };
        let (l0, g0) = run(&lp, &old, &rf);
        let (l1, g1) = run(&wild(&lp, 40.0), &wild(&old, -60.0), &wild(&rf, 25.0));
        assert_eq!(l0, l1, "{loss_type:?}: env-token log-probs changed the loss");
        assert_eq!(g0, g1, "{loss_type:?}: env-token log-probs changed the gradient");
        for (gr, m) in g0.iter().zip(&masks) {
            for (g, m) in gr.iter().zip(m) {
                if !m {
                    assert_eq!(*g, 0.0, "{loss_type:?}: an env token got a gradient");
                }
            }
        }
        assert!(g0.iter().flatten().any(|g| *g != 0.0));
        // The reference math on the policy tokens gives the same value.
        let f64s = |x: &[Vec<f32>]| x.iter().map(|r| r.iter().map(|v| *v as f64).collect()).collect::<Vec<Vec<f64>>>();
        let want = aggregate(
            &per_token_losses(&f64s(&lp), &f64s(&old), Some(&f64s(&rf)), &masks, &adv, &cfg),
            &masks,
            &cfg,
            n_gen,
        );
        assert!((l0 as f64 - want).abs() < 1e-5, "{loss_type:?}: {l0} vs reference {want}");
    }
}

#[test]
fn the_trainer_trains_on_policy_tokens_only() {
    let batch = multi_turn_batch();
    let masks: Vec<Vec<bool>> = batch.iter().map(|s| s.loss_mask.clone()).collect();
    let all: Vec<Vec<bool>> = masks.iter().map(|m| vec![true; m.len()]).collect();
    let rewards = [1.0, 0.0, 2.0, 0.5];
    // On-policy, beta 0: every token's loss is −A; group of 4, unbiased std (+1e-4).
    let mean = rewards.iter().sum::<f64>() / 4.0;
    let std = (rewards.iter().map(|r| (r - mean).powi(2)).sum::<f64>() / 3.0).sqrt();
    let adv: Vec<f64> = rewards.iter().map(|r| (r - mean) / (std + 1e-4)).collect();
    let c = masks.iter().map(Vec::len).max().unwrap();
    let pad = |m: &[Vec<bool>]| -> Vec<Vec<bool>> {
        m.iter()
            .map(|r| {
                let mut r = r.clone();
                r.resize(c, false);
                r
            })
            .collect()
    };
    let same = vec![vec![-1.0; c]; 4];
    for loss_type in [LossType::Grpo, LossType::Bnpo, LossType::DrGrpo, LossType::Dapo] {
        let cfg = GrpoConfig {
            per_device_train_batch_size: 4,
            num_generations: 4,
            max_completion_length: 16,
            loss_type,
            lr_scheduler_type: Schedule::Constant,
            lora_r: 4,
            lora_alpha: 8.0,
            seed: 3,
            ..GrpoConfig::default()
        };
        let lc = cfg.loss();
        let reference = |m: &[Vec<bool>]| {
            let m = pad(m);
            let n = m.iter().flatten().filter(|x| **x).count();
            aggregate(&per_token_losses(&same, &same, None, &m, &adv, &lc), &m, &lc, n)
        };
        let (want, wrong) = (reference(&masks), reference(&all));
        let model = TinyModelSpec::default().build(3, &Device::Cpu).unwrap();
        let mut t = GrpoTrainer::new(model, cfg).unwrap();
        let m = t.train_step(&mut Fixed(batch.clone())).unwrap();
        assert!((m["loss"] - want).abs() < 1e-5, "{loss_type:?}: loss {} vs reference {want}", m["loss"]);
        if loss_type != LossType::Grpo {
            // (grpo's loss is −mean(A) = 0 whatever the lengths; its normaliser is checked above.)
            assert!((want - wrong).abs() > 1e-3, "{loss_type:?}: the case cannot tell the masks apart");
        }
        assert_eq!(m["completions/mean_length"], 17.0 / 4.0, "lengths count policy tokens");
        assert_eq!(m["completions/mean_turns"], 2.0);
        // Entropy: the mean over policy tokens, computed independently.
        if loss_type == LossType::Dapo {
            let prompts: Vec<&[u32]> = batch.iter().map(|s| s.prompt.as_slice()).collect();
            let comps: Vec<&[u32]> = batch.iter().map(|s| s.completion.as_slice()).collect();
            let sb = ScoreBatch::new(&prompts, &comps, t.model().device()).unwrap();
            let fresh = TinyModelSpec::default().build(3, &Device::Cpu).unwrap();
            let e0: Vec<Vec<f32>> =
                score(&fresh, &sb, 1.0, 64, Activations::None, &|_| {}).unwrap().entropy.to_vec2().unwrap();
            let masked = |e: &[Vec<f32>]| -> f64 {
                let p = pad(&masks);
                let s: f64 =
                    e.iter().flatten().zip(p.iter().flatten()).filter(|(_, m)| **m).map(|(x, _)| *x as f64).sum();
                s / 17.0
            };
            // The step scored with zero-initialised LoRA B, i.e. the base model.
            assert!((m["entropy"] - masked(&e0)).abs() < 1e-4, "entropy {} vs {}", m["entropy"], masked(&e0));
        }
    }
}

#[test]
fn an_env_showing_only_its_latest_observation_is_refused_for_training() {
    let policy = LlmPolicy::load(fixture().to_str().unwrap()).unwrap();
    let mut src = EnvSource::new("talk", Default::default(), talk_maker_with(History::Latest), policy);
    let e = src.episodes(2, 2, &sampling(50), 1).unwrap_err().to_string();
    assert!(e.contains("latest observation") && e.contains("talk"), "{e}");
}
