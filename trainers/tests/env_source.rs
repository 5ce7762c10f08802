//! Training on a registered env through the rollout engine, with a real
//! (tiny, random-weight) Hugging Face Qwen2 checkpoint and its tokenizer.

use std::path::Path;
use std::sync::Arc;

use envs::{Action, Env, EnvError, EnvMaker, EnvSpec, Message, Observation, Registry, Step, StepInfo};
use policies::llm::LlmPolicy;
use trainers::config::GrpoConfig;
use trainers::envsource::EnvSource;
use trainers::optim::Schedule;
use trainers::{GrpoTrainer, Lora};

/// Reward: how many characters the reply has (÷ 20, capped at 1); a second
/// function that never applies (`None`).
struct Chatty {
    seed: Option<u64>,
}

impl Env for Chatty {
    fn reset(&mut self, seed: u64) -> Result<Observation, EnvError> {
        self.seed = Some(seed);
        Ok(Observation {
            messages: vec![Message::system("Talk."), Message::user(format!("Topic {seed}."))],
            ..Observation::default()
        })
    }

    fn step(&mut self, action: &Action) -> Result<Step, EnvError> {
        self.seed.take().ok_or(EnvError::NotReset)?;
        let mut info = StepInfo::default();
        info.term("length", Some((action.text.chars().count() as f64 / 20.0).min(1.0)), 1.0);
        info.term("never", None, 0.5);
        Ok(Step::new(Observation::default(), info, true, false))
    }
}

#[test]
fn trains_on_a_registered_one_step_env() {
    let mut reg = Registry::new();
    reg.register(
        EnvSpec { id: "chatty", version: 1, description: "talk", max_steps: 1, options: vec![], ..EnvSpec::default() },
        |_| Ok(Arc::new(|| Box::new(Chatty { seed: None }) as Box<dyn Env>) as EnvMaker),
    );
    let options = reg.options("chatty", &[] as &[&str]).unwrap();
    let maker = reg.maker("chatty", &options).unwrap();
    let dir = Path::new(env!("CARGO_MANIFEST_DIR")).join("../policies/tests/fixtures/tiny-qwen2");
    let mut policy = LlmPolicy::load(dir.to_str().unwrap()).unwrap();
    let cfg = GrpoConfig {
        learning_rate: 0.05,
        lr_scheduler_type: Schedule::Constant,
        per_device_train_batch_size: 8,
        num_generations: 4,
        max_completion_length: 6,
        beta: 0.04,
        lora_r: 4,
        lora_alpha: 8.0,
        seed: 5,
        ..GrpoConfig::default()
    };
    let lora = Lora::attach(policy.model_mut(), &cfg.lora(), 1).unwrap();
    let mut trainer = GrpoTrainer::with_lora(policy.model().clone(), lora, cfg).unwrap();
    let mut source = EnvSource::new("chatty", options.to_map(), maker, policy);
    let before: Vec<Vec<f32>> =
        trainer.lora().vars().iter().map(|v| v.as_tensor().flatten_all().unwrap().to_vec1().unwrap()).collect();
    let m = trainer.train_step(&mut source).unwrap();
    for k in ["reward", "rewards/length/mean", "rewards/never/mean", "frac_reward_zero_std", "kl", "entropy"] {
        assert!(m.contains_key(k), "missing metric {k}: {m:?}");
    }
    assert!((0.0..=1.0).contains(&m["reward"]));
    assert_eq!(m["rewards/never/mean"], 0.0, "a function that never applies has no values");
    assert!(m["completions/mean_length"] <= 6.0);
    let m2 = trainer.train_step(&mut source).unwrap();
    assert!(m2["grad_norm"] > 0.0 || m["grad_norm"] > 0.0);
    let after: Vec<Vec<f32>> =
        trainer.lora().vars().iter().map(|v| v.as_tensor().flatten_all().unwrap().to_vec1().unwrap()).collect();
    assert_ne!(before, after, "the adapters the policy samples with are the ones being trained");
    // The policy's model shares the adapters: its B matrices moved too.
    assert!(source.policy().model().linears()[0].adapter().is_some());
}
