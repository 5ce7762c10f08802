//! AdamW (PyTorch semantics), learning-rate schedules as in Hugging Face
//! `transformers`, and global-norm gradient clipping.

use std::collections::HashMap;

use candle_core::{DType, Tensor, Var};
use serde::{Deserialize, Serialize};

use crate::error::{Result, TrainError};

/// AdamW hyper-parameters (HF `TrainingArguments` names and defaults).
#[derive(Debug, Clone, Copy, PartialEq)]
pub struct AdamWConfig {
    /// β₁ (`adam_beta1`, 0.9).
    pub beta1: f64,
    /// β₂ (`adam_beta2`, 0.999).
    pub beta2: f64,
    /// ε (`adam_epsilon`, 1e-8).
    pub eps: f64,
    /// Decoupled weight decay (`weight_decay`, 0.0).
    pub weight_decay: f64,
}

impl Default for AdamWConfig {
    fn default() -> Self {
        Self { beta1: 0.9, beta2: 0.999, eps: 1e-8, weight_decay: 0.0 }
    }
}

/// AdamW over a fixed list of f32 variables, with its moments exposed for
/// checkpoints.
#[derive(Debug)]
pub struct AdamW {
    vars: Vec<Var>,
    m: Vec<Tensor>,
    v: Vec<Tensor>,
    t: usize,
    cfg: AdamWConfig,
}

impl AdamW {
    /// An optimizer with zero moments.
    pub fn new(vars: Vec<Var>, cfg: AdamWConfig) -> Result<Self> {
        let m = vars.iter().map(|v| v.zeros_like()).collect::<candle_core::Result<Vec<_>>>()?;
        let v = m.clone();
        Ok(Self { vars, m, v, t: 0, cfg })
    }

    /// Steps taken.
    pub fn steps(&self) -> usize {
        self.t
    }

    /// One update with `grads` (one per variable, in order) at `lr`:
    /// `p ← p − lr·λ·p`, then the bias-corrected Adam step.
    pub fn step(&mut self, grads: &[Tensor], lr: f64) -> Result<()> {
        if grads.len() != self.vars.len() {
            return Err(TrainError::Config("one gradient per variable expected".into()));
        }
        self.t += 1;
        let c = self.cfg;
        let bc1 = 1.0 - c.beta1.powi(self.t as i32);
        let bc2 = 1.0 - c.beta2.powi(self.t as i32);
        for (i, (var, g)) in self.vars.iter().zip(grads).enumerate() {
            let m = ((&self.m[i] * c.beta1)? + (g * (1.0 - c.beta1))?)?;
            let v = ((&self.v[i] * c.beta2)? + (g.sqr()? * (1.0 - c.beta2))?)?;
            let p = var.as_tensor();
            let p = if c.weight_decay != 0.0 { (p * (1.0 - lr * c.weight_decay))? } else { p.clone() };
            let denom = ((&v / bc2)?.sqrt()? + c.eps)?;
            let update = ((&m / bc1)? / denom)?;
            var.set(&(p - (update * lr)?)?)?;
            self.m[i] = m;
            self.v[i] = v;
        }
        Ok(())
    }

    /// The moments as named tensors (`m.N`, `v.N`) for a checkpoint.
    pub fn state(&self) -> HashMap<String, Tensor> {
        let mut out = HashMap::new();
        for (i, (m, v)) in self.m.iter().zip(&self.v).enumerate() {
            out.insert(format!("m.{i}"), m.clone());
            out.insert(format!("v.{i}"), v.clone());
        }
        out
    }

    /// Restores moments saved by [`AdamW::state`] after `steps` updates.
    pub fn load_state(&mut self, state: &HashMap<String, Tensor>, steps: usize) -> Result<()> {
        for i in 0..self.vars.len() {
            for (prefix, slot) in [("m", &mut self.m[i]), ("v", &mut self.v[i])] {
                let t = state
                    .get(&format!("{prefix}.{i}"))
                    .ok_or_else(|| TrainError::Config(format!("optimizer state lacks `{prefix}.{i}`")))?;
                if t.dims() != slot.dims() {
                    return Err(TrainError::Config(format!("optimizer state `{prefix}.{i}` has the wrong shape")));
                }
                *slot = t.to_dtype(DType::F32)?.to_device(slot.device())?;
            }
        }
        self.t = steps;
        Ok(())
    }
}

/// Learning-rate schedule (`lr_scheduler_type`).
#[derive(Debug, Clone, Copy, PartialEq, Eq, Serialize, Deserialize, Default)]
#[serde(rename_all = "snake_case")]
pub enum Schedule {
    /// Linear warm-up then linear decay to 0 at `max_steps` (HF default).
    #[default]
    Linear,
    /// Linear warm-up then half a cosine down to 0.
    Cosine,
    /// The base rate throughout (no warm-up, as HF's `constant`).
    Constant,
    /// Linear warm-up then the base rate.
    ConstantWithWarmup,
}

/// The learning rate of optimizer step `step` (0-based) of `total`, after
/// `warmup` warm-up steps (HF's `get_scheduler` formulas).
pub fn learning_rate(base: f64, schedule: Schedule, step: usize, total: usize, warmup: usize) -> f64 {
    let s = step as f64;
    if schedule != Schedule::Constant && step < warmup {
        return base * s / (warmup.max(1) as f64);
    }
    match schedule {
        Schedule::Constant | Schedule::ConstantWithWarmup => base,
        Schedule::Linear => {
            let span = total.saturating_sub(warmup).max(1) as f64;
            base * ((total as f64 - s) / span).max(0.0)
        }
        Schedule::Cosine => {
            let span = total.saturating_sub(warmup).max(1) as f64;
            let progress = ((s - warmup as f64) / span).clamp(0.0, 1.0);
            base * 0.5 * (1.0 + (std::f64::consts::PI * progress).cos())
        }
    }
}

/// The global L2 norm of `grads`.
pub fn global_norm(grads: &[Tensor]) -> Result<f64> {
    let mut s = 0.0;
    for g in grads {
        s += g.sqr()?.sum_all()?.to_dtype(DType::F64)?.to_scalar::<f64>()?;
    }
    Ok(s.sqrt())
}

/// Scales `grads` so their global norm is at most `max_norm` (PyTorch's
/// `clip_grad_norm_`: factor `max_norm / (norm + 1e-6)` capped at 1).
/// Returns the norm before clipping.
pub fn clip_grad_norm(grads: &mut [Tensor], max_norm: f64) -> Result<f64> {
    let norm = global_norm(grads)?;
    if max_norm > 0.0 {
        let coef = max_norm / (norm + 1e-6);
        if coef < 1.0 {
            for g in grads.iter_mut() {
                *g = (&*g * coef)?;
            }
        }
    }
    Ok(norm)
}

#[cfg(test)]
mod tests {
    use super::*;
    use candle_core::Device;

    #[test]
    fn adamw_matches_hand_computed_pytorch_steps() {
        let v = Var::from_vec(vec![1.0f32, -2.0], 2, &Device::Cpu).unwrap();
        let cfg = AdamWConfig { weight_decay: 0.1, ..Default::default() };
        let mut opt = AdamW::new(vec![v.clone()], cfg).unwrap();
        let g = Tensor::new(&[0.5f32, -0.25], &Device::Cpu).unwrap();
        opt.step(std::slice::from_ref(&g), 0.01).unwrap();
        // Step 1: p(1 − lr·wd) − lr·sign(g) (m̂/√v̂ = ±1).
        let p: Vec<f32> = v.as_tensor().to_vec1().unwrap();
        assert!((p[0] - (1.0 * 0.999 - 0.01)).abs() < 1e-6, "{p:?}");
        assert!((p[1] - (-2.0 * 0.999 + 0.01)).abs() < 1e-6);
        opt.step(&[g], 0.01).unwrap();
        let p2: Vec<f32> = v.as_tensor().to_vec1().unwrap();
        assert!((p2[0] - (p[0] * 0.999 - 0.01)).abs() < 1e-5);
        assert_eq!(opt.steps(), 2);
        // State round trip.
        let st = opt.state();
        let mut fresh = AdamW::new(vec![v.clone()], cfg).unwrap();
        fresh.load_state(&st, 2).unwrap();
        assert_eq!(fresh.state()["m.0"].to_vec1::<f32>().unwrap(), st["m.0"].to_vec1::<f32>().unwrap());
    }

    #[test]
    fn zero_gradients_leave_weights_unchanged_without_decay() {
        let v = Var::from_vec(vec![0.3f32, 0.7], 2, &Device::Cpu).unwrap();
        let mut opt = AdamW::new(vec![v.clone()], AdamWConfig::default()).unwrap();
        opt.step(&[Tensor::zeros(2, DType::F32, &Device::Cpu).unwrap()], 1.0).unwrap();
        assert_eq!(v.as_tensor().to_vec1::<f32>().unwrap(), vec![0.3, 0.7]);
    }

    #[test]
    fn schedules_follow_hf_formulas() {
        assert_eq!(learning_rate(1.0, Schedule::Constant, 0, 10, 5), 1.0);
        assert_eq!(learning_rate(1.0, Schedule::ConstantWithWarmup, 2, 10, 4), 0.5);
        assert_eq!(learning_rate(1.0, Schedule::Linear, 0, 10, 0), 1.0);
        assert_eq!(learning_rate(1.0, Schedule::Linear, 5, 10, 0), 0.5);
        assert_eq!(learning_rate(1.0, Schedule::Linear, 6, 10, 2), 0.5);
        assert!((learning_rate(1.0, Schedule::Cosine, 5, 10, 0) - 0.5).abs() < 1e-12);
        assert_eq!(learning_rate(1.0, Schedule::Cosine, 1, 10, 2), 0.5);
    }

    #[test]
    fn clipping_scales_to_the_max_norm() {
        let mut g = vec![Tensor::new(&[3.0f32, 4.0], &Device::Cpu).unwrap()];
        let n = clip_grad_norm(&mut g, 1.0).unwrap();
        assert!((n - 5.0).abs() < 1e-9);
        assert!((global_norm(&g).unwrap() - 1.0).abs() < 1e-5);
        let n = clip_grad_norm(&mut g, 10.0).unwrap();
        assert!((n - 1.0).abs() < 1e-5);
    }
}
