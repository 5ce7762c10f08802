//! Proof that the trainer learns: grpo.md §14's L5 recipe on the toy tasks
//! (random-init 2-layer Qwen2-shaped model, init std 0.2, LoRA r 8 α 16 on
//! all linear layers, lr 3e-3, 8 generations, 64 completions per step,
//! 8 new tokens, temperature 1, dapo, β = 0, constant LR).

use candle_core::Device;
use trainers::config::GrpoConfig;
use trainers::optim::Schedule;
use trainers::toy::{TinyModelSpec, ToySource, ToyTask};
use trainers::{GrpoTrainer, Metrics};

fn l5_config(max_steps: usize, seed: u64) -> GrpoConfig {
    GrpoConfig {
        learning_rate: 3e-3,
        lr_scheduler_type: Schedule::Constant,
        max_steps,
        per_device_train_batch_size: 64,
        num_generations: 8,
        max_completion_length: 8,
        temperature: 1.0,
        beta: 0.0,
        lora_r: 8,
        lora_alpha: 16.0,
        seed,
        ..GrpoConfig::default()
    }
}

/// Mean of `key` over the 5 logged steps ending at `step` (1-based), as grpo.md §14 reports.
fn window(log: &[Metrics], key: &str, step: usize) -> f64 {
    let lo = step.saturating_sub(5);
    log[lo..step].iter().map(|m| m[key]).sum::<f64>() / (step - lo) as f64
}

fn train(task: ToyTask, steps: usize, seed: u64, stop_at: Option<f64>) -> Vec<Metrics> {
    let model = TinyModelSpec::default().build(seed, &Device::Cpu).unwrap();
    let mut trainer = GrpoTrainer::new(model, l5_config(steps, seed)).unwrap();
    let mut source = ToySource::new(task);
    let mut log = Vec::new();
    for _ in 0..steps {
        let m = trainer.train_step(&mut source).unwrap();
        log.push(m);
        if let Some(t) = stop_at {
            if log.len() >= 5 && window(&log, "reward", log.len()) >= t {
                break;
            }
        }
    }
    for (i, m) in log.iter().enumerate() {
        eprintln!(
            "{} step {:3} reward {:.3} entropy {:.3} zero_std {:.2} grad_norm {:.3} time {:.3} gen {:.3}",
            task.name(),
            i + 1,
            m["reward"],
            m["entropy"],
            m["frac_reward_zero_std"],
            m["grad_norm"],
            m["step_time"],
            m["generation_time"]
        );
    }
    log
}

#[test]
fn count_a_reaches_0_9_by_step_40() {
    let log = train(ToyTask::CountA, 40, 0, None);
    let r = window(&log, "reward", 40);
    assert!(r >= 0.9, "count_a mean reward over steps 36-40 is {r:.3}");
    assert!(window(&log, "entropy", 40) < 0.5 * log[0]["entropy"], "entropy falls");
    // Solved: every group is all-correct, so advantages and the gradient are exactly 0.
    let last = &log[39];
    assert_eq!(last["frac_reward_zero_std"], 1.0);
    assert_eq!(last["grad_norm"], 0.0);
}

#[test]
fn echo_reaches_0_85_by_step_120() {
    let log = train(ToyTask::Echo, 120, 0, Some(0.85));
    let end = log.len();
    let r = window(&log, "reward", end);
    assert!(r >= 0.85, "echo mean reward over the last 5 of {end} steps is {r:.3}");
    assert!(window(&log, "entropy", end) < 0.5 * log[0]["entropy"], "entropy falls");
}
