//! The GRPO loss on tensors, differentiable with respect to the policy's
//! log-probs. It implements exactly the math of [`crate::grpo`] (the
//! scalar specification, tested against the golden values of TRL 1.16),
//! and the tests below check that the two agree in value and gradient.

use candle_core::{DType, Tensor, D};

use crate::error::Result;
#[cfg(doc)]
use crate::grpo::token_weights;
use crate::grpo::{IsLevel, LossConfig};

/// Everything besides the current log-probs that the loss needs, for one
/// micro-batch of `B` completions padded to `C` tokens.
#[derive(Debug, Clone)]
pub struct LossInputs {
    /// Loss mask `[B, C]` (1 = the token is trained on).
    pub mask: Tensor,
    /// One advantage per completion `[B]`.
    pub advantages: Tensor,
    /// Log-probs of the sampling policy `[B, C]`; `None` = on-policy, the
    /// ratio is `exp(lp − sg(lp))` (1 in value, gradient of `lp`).
    pub old: Option<Tensor>,
    /// Reference log-probs `[B, C]` (needed when `beta != 0`).
    pub reference: Option<Tensor>,
    /// Per-completion normaliser `[B]` from [`token_weights`].
    pub weights: Tensor,
}

impl LossInputs {
    /// Builds the inputs from host data. `weights` holds each completion's
    /// normaliser (from [`token_weights`] over the whole micro-batch, which
    /// may be larger than this slice of it).
    pub fn from_host(
        mask: &[Vec<bool>],
        advantages: &[f64],
        old: Option<&[Vec<f32>]>,
        reference: Option<&[Vec<f32>]>,
        weights: &[f64],
        dtype: DType,
        device: &candle_core::Device,
    ) -> Result<Self> {
        let b = mask.len();
        let c = mask.first().map_or(0, Vec::len);
        let flat_mask: Vec<f32> = mask.iter().flat_map(|r| r.iter().map(|m| if *m { 1.0 } else { 0.0 })).collect();
        let grid = |rows: &[Vec<f32>]| -> Result<Tensor> {
            let flat: Vec<f32> = rows.iter().flat_map(|r| r.iter().copied()).collect();
            Ok(Tensor::from_vec(flat, (b, c), device)?.to_dtype(dtype)?)
        };
        Ok(Self {
            mask: Tensor::from_vec(flat_mask, (b, c), device)?.to_dtype(dtype)?,
            advantages: Tensor::from_vec(advantages.to_vec(), b, device)?.to_dtype(dtype)?,
            old: old.map(grid).transpose()?,
            reference: reference.map(grid).transpose()?,
            weights: Tensor::from_vec(weights.to_vec(), b, device)?.to_dtype(dtype)?,
        })
    }
}

/// The loss and the statistics TRL logs from it.
#[derive(Debug, Clone)]
pub struct LossOutput {
    /// The aggregated micro-batch loss (a scalar with a graph to `lp`).
    pub loss: Tensor,
    /// Mean k3 KL over loss tokens (`kl`), when `beta != 0`.
    pub kl: Option<f64>,
    /// Fraction of loss tokens with `w < 1 − ε` and `A < 0`.
    pub clip_low: f64,
    /// Fraction of loss tokens with `w > 1 + ε_high` and `A > 0`.
    pub clip_high: f64,
    /// Fraction of loss tokens in either clipped region.
    pub clip_region: f64,
    /// Loss tokens in the micro-batch.
    pub tokens: usize,
}

/// `where(cond, a, b)` for a float 0/1 condition.
fn select(cond: &Tensor, a: &Tensor, b: &Tensor) -> Result<Tensor> {
    Ok(cond.ne(0.0)?.where_cond(a, b)?)
}

fn masked_mean(x: &Tensor, mask: &Tensor, n: f64) -> Result<f64> {
    let s = (x * mask)?.sum_all()?.to_dtype(DType::F64)?.to_scalar::<f64>()?;
    Ok(if n > 0.0 { s / n } else { 0.0 })
}

/// The GRPO loss of one micro-batch: per-token clipped surrogate
/// (`epsilon`, `epsilon_high`, `delta`), plus `beta`·k3 KL, aggregated per
/// `loss_type` with the normalisers in `inputs.weights`. `lp` is `[B, C]`.
///
/// Masked positions are replaced by constants before any nonlinearity, so
/// padding can hold any value and receives an exact zero gradient.
pub fn grpo_loss(lp: &Tensor, inputs: &LossInputs, cfg: &LossConfig) -> Result<LossOutput> {
    let mask = &inputs.mask;
    let zeros = lp.zeros_like()?;
    let lp_m = select(mask, lp, &zeros)?;
    let old_m = match &inputs.old {
        Some(o) => select(mask, o, &zeros)?,
        None => lp_m.detach(),
    };
    let diff = (&lp_m - &old_m)?;
    let log_w = match cfg.level {
        IsLevel::Token => diff,
        IsLevel::Sequence => {
            let n = mask.sum_keepdim(D::Minus1)?.clamp(1.0, f64::INFINITY)?;
            (diff * mask)?.sum_keepdim(D::Minus1)?.broadcast_div(&n)?.broadcast_as(lp.shape())?.contiguous()?
        }
    };
    let w = log_w.exp()?;
    let adv = inputs.advantages.unsqueeze(1)?.broadcast_as(lp.shape())?.contiguous()?;
    let lo = 1.0 - cfg.epsilon;
    let hi = 1.0 + cfg.epsilon_high;
    let lo_t = Tensor::full(lo, lp.shape(), lp.device())?.to_dtype(lp.dtype())?;
    let hi_t = Tensor::full(hi, lp.shape(), lp.device())?.to_dtype(lp.dtype())?;
    let w_clip = w.lt(lo)?.where_cond(&lo_t, &w.gt(hi)?.where_cond(&hi_t, &w)?)?;
    let w_d = match cfg.delta {
        Some(d) => w.gt(d)?.where_cond(&Tensor::full(d, lp.shape(), lp.device())?.to_dtype(lp.dtype())?, &w)?,
        None => w.clone(),
    };
    let unclipped = (&w_d * &adv)?;
    let clipped = (&w_clip * &adv)?;
    let pg = unclipped.le(&clipped)?.where_cond(&unclipped, &clipped)?.neg()?;
    let (per_token, kl_tok) = if cfg.beta != 0.0 {
        let reference = match &inputs.reference {
            Some(r) => select(mask, r, &zeros)?,
            None => {
                return Err(crate::error::TrainError::Config("beta != 0 needs reference log-probs".into()));
            }
        };
        let d = (reference - &lp_m)?;
        let k3 = ((d.exp()? - &d)? - 1.0)?;
        let k3 = if cfg.bias_correction_kl { (&w * k3)? } else { k3 };
        ((&pg + (&k3 * cfg.beta)?)?, Some(k3))
    } else {
        (pg, None)
    };
    let loss = (per_token * mask)?.broadcast_mul(&inputs.weights.unsqueeze(1)?)?.sum_all()?;

    // Statistics (no gradient).
    let n = mask.sum_all()?.to_dtype(DType::F64)?.to_scalar::<f64>()?;
    let wd = w.detach();
    let low = (wd.lt(lo)?.to_dtype(lp.dtype())? * adv.lt(0.0)?.to_dtype(lp.dtype())?)?;
    let high = (wd.gt(hi)?.to_dtype(lp.dtype())? * adv.gt(0.0)?.to_dtype(lp.dtype())?)?;
    let clip_low = masked_mean(&low, mask, n)?;
    let clip_high = masked_mean(&high, mask, n)?;
    let kl = match kl_tok {
        Some(k) => Some(masked_mean(&k.detach(), mask, n)?),
        None => None,
    };
    Ok(LossOutput { loss, kl, clip_low, clip_high, clip_region: clip_low + clip_high, tokens: n as usize })
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::grpo::{aggregate, per_token_losses, token_weights, LossType};
    use candle_core::{Device, Var};

    type Golden = (Vec<Vec<f64>>, Vec<Vec<f64>>, Vec<Vec<f64>>, Vec<Vec<bool>>, Vec<f64>);

    /// the golden case of `grpo.rs`, with a deliberately wild value in the padded slot.
    fn golden() -> Golden {
        (
            vec![vec![-1.0, -0.5, -2.0], vec![-0.3, -1.2, -80.0]],
            vec![vec![-1.1, -0.5, -1.5], vec![-0.3, -1.0, 30.0]],
            vec![vec![-1.2, -0.4, -2.0], vec![-0.5, -1.2, 50.0]],
            vec![vec![true, true, true], vec![true, true, false]],
            vec![0.865875, -0.865875],
        )
    }

    fn cfg(loss_type: LossType) -> LossConfig {
        LossConfig {
            epsilon: 0.2,
            epsilon_high: 0.28,
            beta: 0.04,
            bias_correction_kl: false,
            loss_type,
            max_completion_length: 4,
            ..LossConfig::default()
        }
    }

    fn to_f32(x: &[Vec<f64>]) -> Vec<Vec<f32>> {
        x.iter().map(|r| r.iter().map(|v| *v as f32).collect()).collect()
    }

    fn tensor_loss(lp: &[Vec<f64>], cfg: &LossConfig, dtype: DType, on_policy: bool) -> (f64, Vec<Vec<f64>>) {
        let (_, old, rf, mask, adv) = golden();
        let dev = Device::Cpu;
        let flat: Vec<f64> = lp.iter().flatten().copied().collect();
        let v = Var::from_tensor(&Tensor::from_vec(flat, (2, 3), &dev).unwrap().to_dtype(dtype).unwrap()).unwrap();
        let (old32, rf32) = (to_f32(&old), to_f32(&rf));
        let inputs = LossInputs::from_host(
            &mask,
            &adv,
            (!on_policy).then_some(old32.as_slice()),
            Some(&rf32),
            &token_weights(&mask, cfg, 5),
            dtype,
            &dev,
        )
        .unwrap();
        let out = grpo_loss(v.as_tensor(), &inputs, cfg).unwrap();
        let value = out.loss.to_dtype(DType::F64).unwrap().to_scalar::<f64>().unwrap();
        let g = out.loss.backward().unwrap();
        let grad = g.get(v.as_tensor()).unwrap().to_dtype(DType::F64).unwrap().to_vec2::<f64>().unwrap();
        (value, grad)
    }

    #[test]
    fn tensor_loss_matches_the_scalar_reference_and_golden_values() {
        let (lp, old, rf, mask, adv) = golden();
        for (lt, want) in [
            (LossType::Grpo, 0.002713),
            (LossType::Bnpo, -0.154299),
            (LossType::Dapo, -0.154299),
            (LossType::DrGrpo, -0.096437),
        ] {
            for level in [IsLevel::Token, IsLevel::Sequence] {
                for bias in [false, true] {
                    let c = LossConfig { level, bias_correction_kl: bias, ..cfg(lt) };
                    let scalar = aggregate(&per_token_losses(&lp, &old, Some(&rf), &mask, &adv, &c), &mask, &c, 5);
                    if level == IsLevel::Token && !bias {
                        assert!((scalar - want).abs() < 1e-6, "{lt:?}: scalar {scalar} vs golden {want}");
                    }
                    for dtype in [DType::F64, DType::F32] {
                        let (v, _) = tensor_loss(&lp, &c, dtype, false);
                        assert!((v - scalar).abs() < 1e-6, "{lt:?} {level:?} {bias} {dtype:?}: {v} vs {scalar}");
                    }
                }
            }
        }
    }

    #[test]
    fn autograd_gradient_equals_the_analytic_one() {
        let (lp, old, rf, mask, adv) = golden();
        for lt in [LossType::Grpo, LossType::Bnpo, LossType::Dapo, LossType::DrGrpo] {
            for bias in [false, true] {
                let c = LossConfig { bias_correction_kl: bias, ..cfg(lt) };
                let per = per_token_losses(&lp, &old, Some(&rf), &mask, &adv, &c);
                let w = token_weights(&mask, &c, 5);
                for dtype in [DType::F64, DType::F32] {
                    let (_, g) = tensor_loss(&lp, &c, dtype, false);
                    for i in 0..2 {
                        for t in 0..3 {
                            let want = per[i][t].grad * w[i];
                            assert!((g[i][t] - want).abs() < 1e-6, "{lt:?} {bias} [{i}][{t}]: {} vs {want}", g[i][t]);
                        }
                    }
                    assert_eq!(g[1][2], 0.0, "padding gets an exact zero gradient");
                }
            }
        }
    }

    #[test]
    fn sequence_level_gradient_matches_finite_differences_of_the_reference() {
        let (lp, old, rf, mask, adv) = golden();
        let c = LossConfig { level: IsLevel::Sequence, ..cfg(LossType::Grpo) };
        let (_, g) = tensor_loss(&lp, &c, DType::F64, false);
        let f = |lp: &[Vec<f64>]| aggregate(&per_token_losses(lp, &old, Some(&rf), &mask, &adv, &c), &mask, &c, 5);
        for i in 0..2 {
            for t in 0..3 {
                if !mask[i][t] {
                    continue;
                }
                let h = 1e-6;
                let mut a = lp.clone();
                a[i][t] += h;
                let mut b = lp.clone();
                b[i][t] -= h;
                let fd = (f(&a) - f(&b)) / (2.0 * h);
                assert!((fd - g[i][t]).abs() < 1e-6, "[{i}][{t}]: fd {fd} vs autograd {}", g[i][t]);
            }
        }
    }

    #[test]
    fn on_policy_without_kl_is_reinforce_with_the_group_baseline() {
        let (lp, _, _, mask, adv) = golden();
        let c = LossConfig { beta: 0.0, ..cfg(LossType::Dapo) };
        let (v, g) = tensor_loss(&lp, &c, DType::F64, true);
        // Value: −Σ m·A / N; gradient: −A / N per loss token.
        let want = -(3.0 * adv[0] + 2.0 * adv[1]) / 5.0;
        assert!((v - want).abs() < 1e-9, "{v} vs {want}");
        for i in 0..2 {
            for t in 0..3 {
                let want = if mask[i][t] { -adv[i] / 5.0 } else { 0.0 };
                assert!((g[i][t] - want).abs() < 1e-9);
            }
        }
    }

    #[test]
    fn clip_statistics_follow_trl_definitions() {
        let (lp, old, rf, mask, adv) = golden();
        let dev = Device::Cpu;
        let c = cfg(LossType::Dapo);
        let flat: Vec<f32> = lp.iter().flatten().map(|v| *v as f32).collect();
        let lp = Tensor::from_vec(flat, (2, 3), &dev).unwrap();
        let inputs = LossInputs::from_host(
            &mask,
            &adv,
            Some(&to_f32(&old)),
            Some(&to_f32(&rf)),
            &token_weights(&mask, &c, 5),
            DType::F32,
            &dev,
        )
        .unwrap();
        let out = grpo_loss(&lp, &inputs, &c).unwrap();
        // s0 t2: w = 0.61 < 0.8 but A > 0 (not clipped); s1 t1: w = 0.82 ≥ 0.8: nothing is clipped.
        assert_eq!((out.clip_low, out.clip_high), (0.0, 0.0));
        assert_eq!(out.tokens, 5);
        // k3 mean over the 5 loss tokens (the golden table in `grpo.rs`).
        let k3 = (0.018731 + 0.005171 + 0.0 + 0.018731 + 0.0) / 5.0;
        assert!((out.kl.unwrap() - k3).abs() < 1e-5);
        // With ε = 0.1 the s1 t1 token (w = 0.82, A < 0) is clipped low.
        let c = LossConfig { epsilon: 0.1, ..c };
        let out = grpo_loss(&lp, &inputs, &c).unwrap();
        assert!((out.clip_low - 0.2).abs() < 1e-9);
    }
}
