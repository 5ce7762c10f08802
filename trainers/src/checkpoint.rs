//! Checkpoints: adapters (PEFT format), optimizer moments, counters and
//! the seed from which every random stream derives, written atomically
//! (a temporary folder renamed into place), so a killed run can always
//! resume from the newest complete `checkpoint-N`.

use std::fs;
use std::path::{Path, PathBuf};

use serde::{Deserialize, Serialize};

use crate::error::{Result, TrainError};
use crate::trainer::GrpoTrainer;

/// `trainer_state.json`.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
pub struct TrainerState {
    /// Optimizer steps done.
    pub global_step: usize,
    /// Micro-steps done.
    pub micro_step: usize,
    /// Generation batches produced.
    pub generations: usize,
    /// Tokens seen (prompt + completion), TRL's `num_tokens`.
    pub num_tokens: f64,
    /// The run's seed; the sampling, shuffling and dropout streams derive
    /// from it and the counters above, so this is the whole RNG state.
    pub seed: u64,
    /// The base model the adapters belong to.
    pub base_model: String,
}

const STATE: &str = "trainer_state.json";
const OPTIMIZER: &str = "optimizer.safetensors";

/// Writes `dir/checkpoint-<step>` atomically and prunes old checkpoints
/// beyond `keep` (0 = keep all). Returns the checkpoint's path.
pub fn save(trainer: &GrpoTrainer, dir: &Path, base_model: &str, keep: usize) -> Result<PathBuf> {
    if !trainer.at_generation_boundary() {
        return Err(TrainError::Config(
            "checkpoints are written between generation batches (num_iterations / steps_per_generation cycle)".into(),
        ));
    }
    fs::create_dir_all(dir)?;
    let (step, micro, generations, num_tokens) = trainer.counters();
    let final_path = dir.join(format!("checkpoint-{step}"));
    let tmp = dir.join(format!(".checkpoint-{step}.tmp"));
    if tmp.exists() {
        fs::remove_dir_all(&tmp)?;
    }
    fs::create_dir_all(&tmp)?;
    trainer.lora().save_peft(&tmp, base_model)?;
    candle_core::safetensors::save(&trainer.optimizer().state(), tmp.join(OPTIMIZER))?;
    let state = TrainerState {
        global_step: step,
        micro_step: micro,
        generations,
        num_tokens,
        seed: trainer.config().seed,
        base_model: base_model.to_string(),
    };
    fs::write(tmp.join(STATE), serde_json::to_string_pretty(&state)?)?;
    fs::write(tmp.join("config.toml"), trainer.config().to_toml()?)?;
    for entry in fs::read_dir(&tmp)? {
        fs::File::open(entry?.path())?.sync_all()?;
    }
    if final_path.exists() {
        fs::remove_dir_all(&final_path)?;
    }
    fs::rename(&tmp, &final_path)?;
    if let Ok(d) = fs::File::open(dir) {
        // Persist the rename (best effort: not every platform can fsync a directory).
        let _ = d.sync_all();
    }
    if keep > 0 {
        let mut all = list(dir)?;
        while all.len() > keep {
            let (_, p) = all.remove(0);
            fs::remove_dir_all(p)?;
        }
    }
    Ok(final_path)
}

/// Complete checkpoints in `dir`, oldest first.
pub fn list(dir: &Path) -> Result<Vec<(usize, PathBuf)>> {
    let mut out = Vec::new();
    let Ok(rd) = fs::read_dir(dir) else { return Ok(out) };
    for e in rd {
        let e = e?;
        let name = e.file_name().to_string_lossy().to_string();
        if let Some(n) = name.strip_prefix("checkpoint-").and_then(|s| s.parse::<usize>().ok()) {
            if e.path().join(STATE).exists() {
                out.push((n, e.path()));
            }
        }
    }
    out.sort();
    Ok(out)
}

/// The newest complete checkpoint in `dir`.
pub fn latest(dir: &Path) -> Result<Option<PathBuf>> {
    Ok(list(dir)?.pop().map(|(_, p)| p))
}

/// Reads `trainer_state.json` of a checkpoint.
pub fn read_state(ckpt: &Path) -> Result<TrainerState> {
    Ok(serde_json::from_str(&fs::read_to_string(ckpt.join(STATE))?)?)
}

/// Restores adapters, optimizer moments and counters from `ckpt` into a
/// trainer built with the same model and config.
pub fn restore(trainer: &mut GrpoTrainer, ckpt: &Path) -> Result<TrainerState> {
    let state = read_state(ckpt)?;
    if state.seed != trainer.config().seed {
        return Err(TrainError::Config(format!(
            "checkpoint seed {} differs from the config's seed {}",
            state.seed,
            trainer.config().seed
        )));
    }
    trainer.lora().load_peft(ckpt)?;
    let opt = candle_core::safetensors::load(ckpt.join(OPTIMIZER), trainer.model().device())?;
    trainer.optimizer_mut().load_state(&opt, state.global_step)?;
    trainer.restore(state.global_step, state.micro_step, state.generations, state.num_tokens);
    Ok(state)
}
