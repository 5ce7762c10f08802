//! The training loop: gradient flow, masking, determinism, checkpoints.

use candle_core::Device;
use models::sampling::SampleOptions;
use models::CausalLm;
use trainers::config::GrpoConfig;
use trainers::optim::Schedule;
use trainers::toy::{TinyModelSpec, ToySource, ToyTask, BOS};
use trainers::{checkpoint, GrpoTrainer, RolloutSource, Sequence};

/// Fixed completions with varied rewards (the trainer must not care where they come from).
struct Fixed {
    truncated: bool,
}

impl RolloutSource for Fixed {
    fn reward_names(&self) -> Vec<String> {
        vec!["fixed".into()]
    }

    fn generate(
        &mut self,
        _model: &CausalLm,
        prompts: usize,
        group: usize,
        _s: &SampleOptions,
        _seed: u64,
    ) -> trainers::Result<Vec<Sequence>> {
        let mut out = Vec::new();
        for p in 0..prompts {
            for i in 0..group {
                let completion = vec![4 + ((p + i) % 15) as u32, 16, 5 + (i % 3) as u32];
                out.push(Sequence {
                    prompt: vec![BOS, 17, 18, 15],
                    loss_mask: vec![true; completion.len()],
                    completion,
                    truncated: self.truncated,
                    rewards: vec![Some((i % 3) as f64)],
                    text: String::new(),
                    prompt_clipped: 0,
                });
            }
        }
        Ok(out)
    }
}

fn small_config(seed: u64) -> GrpoConfig {
    GrpoConfig {
        learning_rate: 0.1,
        lr_scheduler_type: Schedule::Constant,
        max_steps: 10,
        per_device_train_batch_size: 8,
        num_generations: 4,
        max_completion_length: 4,
        lora_r: 4,
        lora_alpha: 8.0,
        seed,
        ..GrpoConfig::default()
    }
}

fn weights(t: &GrpoTrainer) -> Vec<Vec<f32>> {
    t.lora().vars().iter().map(|v| v.as_tensor().flatten_all().unwrap().to_vec1::<f32>().unwrap()).collect()
}

fn model(seed: u64) -> CausalLm {
    TinyModelSpec::default().build(seed, &Device::Cpu).unwrap()
}

#[test]
fn every_adapter_parameter_changes_within_two_steps() {
    let mut t = GrpoTrainer::new(model(1), small_config(1)).unwrap();
    let before = weights(&t);
    for _ in 0..2 {
        let m = t.train_step(&mut Fixed { truncated: false }).unwrap();
        assert!(m["grad_norm"] > 0.0);
    }
    let after = weights(&t);
    for (i, (a, b)) in before.iter().zip(&after).enumerate() {
        assert!(a != b, "variable {i} ({}) did not change", t.lora().layers()[i / 2].name());
    }
}

#[test]
fn all_truncated_with_masking_leaves_weights_unchanged() {
    let cfg = GrpoConfig { mask_truncated_completions: true, ..small_config(2) };
    let mut t = GrpoTrainer::new(model(2), cfg).unwrap();
    let before = weights(&t);
    let m = t.train_step(&mut Fixed { truncated: true }).unwrap();
    assert_eq!(m["loss"], 0.0);
    assert_eq!(m["grad_norm"], 0.0);
    assert_eq!(m["completions/clipped_ratio"], 1.0);
    assert_eq!(weights(&t), before);
    // Control: without masking the same batch moves the weights.
    let mut t = GrpoTrainer::new(model(2), small_config(2)).unwrap();
    t.train_step(&mut Fixed { truncated: true }).unwrap();
    t.train_step(&mut Fixed { truncated: true }).unwrap();
    assert_ne!(weights(&t), before);
}

#[test]
fn same_seed_same_run_and_resume_continues_exactly() {
    let cfg = GrpoConfig {
        per_device_train_batch_size: 16,
        gradient_accumulation_steps: 2,
        learning_rate: 1e-2,
        ..small_config(3)
    };
    let run = |steps: usize| {
        let mut t = GrpoTrainer::new(model(3), cfg.clone()).unwrap();
        let mut src = ToySource::new(ToyTask::CountA);
        let ms: Vec<f64> = (0..steps).map(|_| t.train_step(&mut src).unwrap()["reward"]).collect();
        (t, ms)
    };
    let (full, rewards_a) = run(4);
    let (_, rewards_b) = run(4);
    assert_eq!(rewards_a, rewards_b, "same seed, same rewards");

    let dir = tempfile::tempdir().unwrap();
    let (half, _) = run(2);
    let ck = checkpoint::save(&half, dir.path(), "toy", 1).unwrap();
    assert!(ck.ends_with("checkpoint-2"));
    drop(half);
    let mut resumed = GrpoTrainer::new(model(3), cfg.clone()).unwrap();
    let latest = checkpoint::latest(dir.path()).unwrap().unwrap();
    let st = checkpoint::restore(&mut resumed, &latest).unwrap();
    assert_eq!(st.global_step, 2);
    let mut src = ToySource::new(ToyTask::CountA);
    let tail: Vec<f64> = (0..2).map(|_| resumed.train_step(&mut src).unwrap()["reward"]).collect();
    assert_eq!(tail, rewards_a[2..].to_vec());
    assert_eq!(weights(&resumed), weights(&full), "resumed run ends with the same adapters");
    // A second checkpoint with keep = 1 prunes the first.
    checkpoint::save(&resumed, dir.path(), "toy", 1).unwrap();
    let all = checkpoint::list(dir.path()).unwrap();
    assert_eq!(all.len(), 1);
    assert_eq!(all[0].0, 4);
}

#[test]
fn kl_and_off_policy_paths_run_and_report() {
    let cfg = GrpoConfig {
        beta: 0.04,
        num_iterations: 2,
        epsilon_high: Some(0.28),
        loss_type: trainers::grpo::LossType::Grpo,
        ..small_config(4)
    };
    let mut t = GrpoTrainer::new(model(4), cfg).unwrap();
    let mut src = Fixed { truncated: false };
    let m1 = t.train_step(&mut src).unwrap();
    // First use of the batch: policy == reference == old, so KL is 0.
    assert!(m1["kl"].abs() < 1e-6, "kl {}", m1["kl"]);
    assert!(!t.at_generation_boundary());
    let m2 = t.train_step(&mut src).unwrap();
    // Second iteration on the same batch: the policy moved (lr 0.1), ratios ≠ 1, KL > 0.
    assert!(m2["kl"] > 0.0);
    assert!(m2["loss"] != 0.0);
    assert!(t.at_generation_boundary());
}

#[test]
fn tokens_per_second_counts_the_completion_tokens_of_the_step() {
    let cfg = small_config(4);
    let per_step = cfg.per_device_train_batch_size * cfg.gradient_accumulation_steps.max(1) * 3;
    let mut t = GrpoTrainer::new(model(4), cfg).unwrap();
    for _ in 0..2 {
        let m = t.train_step(&mut Fixed { truncated: false }).unwrap();
        assert!(m["step_time"] > 0.0 && m["tokens_per_second"] > 0.0, "{m:?}");
        // Fixed completions have 3 tokens each.
        let tokens = m["tokens_per_second"] * m["step_time"];
        assert!((tokens - per_step as f64).abs() < 1e-6 * per_step as f64, "{tokens} vs {per_step}");
        assert!(m["generated_tokens_per_second"] > 0.0);
    }
}

/// Prompts are cut to `max_prompt_length` before sampling: the trainer scores
/// exactly the context the model sampled from, reports the cut, and refuses a
/// step where every prompt had to be cut.
#[test]
fn prompts_are_cut_before_sampling_and_an_all_cut_step_is_an_error() {
    // Toy prompts are BOS + a few characters: a limit of 2 cuts every one.
    let cfg = GrpoConfig { max_prompt_length: 2, ..small_config(4) };
    let mut t = GrpoTrainer::new(model(4), cfg).unwrap();
    let e = t.train_step(&mut ToySource::new(ToyTask::CountA)).unwrap_err().to_string();
    assert!(e.contains("every prompt") && e.contains("max_prompt_length = 2"), "{e}");

    // A generous limit: nothing cut, and the metrics say so.
    let mut t = GrpoTrainer::new(model(4), small_config(4)).unwrap();
    let m = t.train_step(&mut ToySource::new(ToyTask::CountA)).unwrap();
    assert_eq!((m["prompts/clipped"], m["prompts/clipped_tokens"]), (0.0, 0.0));

    // The source samples from the cut prompt and returns it: a sequence's prompt is its last tokens.
    let mut src = ToySource::new(ToyTask::CountA);
    let opts = SampleOptions { max_prompt_tokens: 3, max_new_tokens: 4, ..SampleOptions::default() };
    let cut = src.generate(&model(4), 2, 2, &opts, 9).unwrap();
    let full = src.generate(&model(4), 2, 2, &SampleOptions { max_prompt_tokens: 0, ..opts.clone() }, 9).unwrap();
    for (c, f) in cut.iter().zip(&full) {
        assert_eq!(c.prompt.len(), 3);
        assert_eq!(c.prompt_clipped, f.prompt.len() - 3);
        assert_eq!(c.prompt.as_slice(), &f.prompt[f.prompt.len() - 3..]);
    }
}
