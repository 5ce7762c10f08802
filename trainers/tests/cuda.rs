//! GPU checks for the trainer (build with `--features cuda`, run on an
//! NVIDIA GPU through `scripts/gpu_test.sh`): GRPO on `count_a` behaves on
//! CUDA as on the CPU — the first steps agree (same samples up to float
//! noise, same loss and gradient norm) and the run reaches the CPU target
//! (reward ≥ 0.9 by step 40). Fails without a GPU.
#![cfg(feature = "cuda")]

use candle_core::Device;
use trainers::config::GrpoConfig;
use trainers::optim::Schedule;
use trainers::toy::{TinyModelSpec, ToySource, ToyTask};
use trainers::{GrpoTrainer, Metrics};

fn config(max_steps: usize) -> GrpoConfig {
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
        seed: 0,
        ..GrpoConfig::default()
    }
}

fn run(device: &Device, steps: usize) -> Vec<Metrics> {
    let model = TinyModelSpec::default().build(0, device).unwrap();
    let mut trainer = GrpoTrainer::new(model, config(steps)).unwrap();
    let mut source = ToySource::new(ToyTask::CountA);
    (0..steps).map(|_| trainer.train_step(&mut source).unwrap()).collect()
}

#[test]
fn count_a_on_cuda_behaves_like_on_cpu() {
    let gpu = Device::new_cuda(0).expect("a CUDA GPU (this test needs one)");
    let cpu_log = run(&Device::Cpu, 3);
    let gpu_log = run(&gpu, 40);
    for (i, (c, g)) in cpu_log.iter().zip(&gpu_log).enumerate() {
        println!(
            "step {}: reward cpu {:.4} gpu {:.4}  loss cpu {:+.5} gpu {:+.5}  grad_norm cpu {:.5} gpu {:.5}",
            i + 1,
            c["reward"],
            g["reward"],
            c["loss"],
            g["loss"],
            c["grad_norm"],
            g["grad_norm"]
        );
    }
    // Step 1 samples from identical weights: the same completions unless a
    // float difference flips a draw, so rewards and gradients agree closely.
    let (c, g) = (&cpu_log[0], &gpu_log[0]);
    assert!((c["reward"] - g["reward"]).abs() <= 0.02, "step 1 reward cpu {} gpu {}", c["reward"], g["reward"]);
    let rel = (c["grad_norm"] - g["grad_norm"]).abs() / c["grad_norm"].max(1e-9);
    assert!(rel < 0.05, "step 1 grad_norm cpu {} gpu {}", c["grad_norm"], g["grad_norm"]);
    let tail: f64 = gpu_log[35..40].iter().map(|m| m["reward"]).sum::<f64>() / 5.0;
    for (i, m) in gpu_log.iter().enumerate().skip(3) {
        println!(
            "step {}: reward gpu {:.4}  entropy {:.4}  step_time {:.3}s",
            i + 1,
            m["reward"],
            m["entropy"],
            m["step_time"]
        );
    }
    assert!(tail >= 0.9, "count_a on CUDA: mean reward over steps 36-40 is {tail:.3} (CPU reaches ≥ 0.9)");
}
