//! GRPO math on plain arrays (TRL 1.16 semantics).
//!
//! Notation: `lp` = current log-probs, `old` = log-probs of the policy that
//! sampled, `ref` = reference policy (LoRA: adapters disabled), `mask` =
//! loss mask, `A` = per-completion advantage.

use serde::{Deserialize, Serialize};

/// Epsilon added to the standard deviation (not a clamp), as in TRL.
pub const STD_EPS: f64 = 1e-4;

/// How rewards are scaled into advantages (`scale_rewards`).
#[derive(Debug, Clone, Copy, PartialEq, Eq, Serialize, Deserialize, Default)]
#[serde(rename_all = "snake_case")]
pub enum ScaleRewards {
    /// `(R − mean_g) / (std_g + 1e-4)` (default).
    #[default]
    Group,
    /// `(R − mean_g) / (std_batch + 1e-4)`.
    Batch,
    /// `R − mean_g` (Dr. GRPO).
    None,
}

/// How per-token losses are aggregated (`loss_type`).
#[derive(Debug, Clone, Copy, PartialEq, Eq, Serialize, Deserialize, Default)]
#[serde(rename_all = "snake_case")]
pub enum LossType {
    /// Mean over sequences of per-sequence token means, then `/GA`.
    Grpo,
    /// Token mean over the micro-batch, then `/GA`.
    Bnpo,
    /// Token sum over `B · max_completion_length`, then `/GA`.
    DrGrpo,
    /// Token sum over the expected loss tokens per optimizer step (default).
    #[default]
    Dapo,
}

/// Importance-ratio level (`importance_sampling_level`).
#[derive(Debug, Clone, Copy, PartialEq, Eq, Serialize, Deserialize, Default)]
#[serde(rename_all = "snake_case")]
pub enum IsLevel {
    /// Per token (default).
    #[default]
    Token,
    /// Per sequence, geometric mean of token ratios (GSPO).
    Sequence,
}

/// Combines per-function rewards (`n × k`, `None` = not applicable) with
/// `reward_weights` into one reward per completion; `None` when every
/// function returned `None` (an unscorable row).
pub fn combine_rewards(per_fn: &[Vec<Option<f64>>], weights: &[f64]) -> Vec<Option<f64>> {
    per_fn
        .iter()
        .map(|row| {
            let mut any = false;
            let mut s = 0.0;
            for (k, v) in row.iter().enumerate() {
                if let Some(v) = v.filter(|v| !v.is_nan()) {
                    any = true;
                    s += weights.get(k).copied().unwrap_or(1.0) * v;
                }
            }
            any.then_some(s)
        })
        .collect()
}

fn nan_mean_std(xs: impl Iterator<Item = Option<f64>>) -> (f64, f64, usize) {
    let v: Vec<f64> = xs.flatten().collect();
    let n = v.len();
    if n == 0 {
        return (0.0, 0.0, 0);
    }
    let mean = v.iter().sum::<f64>() / n as f64;
    let std = if n > 1 { (v.iter().map(|x| (x - mean).powi(2)).sum::<f64>() / (n - 1) as f64).sqrt() } else { 0.0 };
    (mean, std, n)
}

/// Advantages and the group statistics GRPO logs.
#[derive(Debug, Clone, PartialEq)]
pub struct Advantages {
    /// One advantage per completion (0 for unscorable rows).
    pub values: Vec<f64>,
    /// Fraction of groups whose rewards have zero std (`frac_reward_zero_std`).
    pub frac_zero_std: f64,
    /// Indices of unscorable rows (every reward function returned `None`).
    pub unscorable: Vec<usize>,
}

/// Group-normalised advantages for consecutive groups of `group` completions.
pub fn advantages(rewards: &[Option<f64>], group: usize, scale: ScaleRewards) -> Advantages {
    let group = group.max(1);
    let (_, batch_std, _) = nan_mean_std(rewards.iter().copied());
    let mut values = vec![0.0; rewards.len()];
    let mut zero = 0usize;
    let mut groups = 0usize;
    for (g, chunk) in rewards.chunks(group).enumerate() {
        groups += 1;
        let (mean, std, _) = nan_mean_std(chunk.iter().copied());
        if std.abs() < 1e-8 {
            zero += 1;
        }
        for (j, r) in chunk.iter().enumerate() {
            if let Some(r) = r {
                let centred = r - mean;
                values[g * group + j] = match scale {
                    ScaleRewards::Group => centred / (std + STD_EPS),
                    ScaleRewards::Batch => centred / (batch_std + STD_EPS),
                    ScaleRewards::None => centred,
                };
            }
        }
    }
    let unscorable = rewards.iter().enumerate().filter(|(_, r)| r.is_none()).map(|(i, _)| i).collect();
    Advantages { values, frac_zero_std: if groups == 0 { 0.0 } else { zero as f64 / groups as f64 }, unscorable }
}

/// Loss settings (TRL `GRPOConfig` names).
#[derive(Debug, Clone, Copy, PartialEq)]
pub struct LossConfig {
    /// `epsilon`: lower clip.
    pub epsilon: f64,
    /// `epsilon_high`: upper clip.
    pub epsilon_high: f64,
    /// `delta`: two-sided clip of the unclipped branch, if set.
    pub delta: Option<f64>,
    /// `beta`: KL coefficient.
    pub beta: f64,
    /// `use_bias_correction_kl`: multiply k3 by the ratio.
    pub bias_correction_kl: bool,
    /// `importance_sampling_level`.
    pub level: IsLevel,
    /// `loss_type`.
    pub loss_type: LossType,
    /// `max_completion_length` (the Dr. GRPO constant).
    pub max_completion_length: usize,
    /// `gradient_accumulation_steps`.
    pub grad_accum: usize,
    /// `steps_per_generation`.
    pub steps_per_generation: usize,
}

impl Default for LossConfig {
    fn default() -> Self {
        Self {
            epsilon: 0.2,
            epsilon_high: 0.2,
            delta: None,
            beta: 0.0,
            bias_correction_kl: true,
            level: IsLevel::Token,
            loss_type: LossType::Dapo,
            max_completion_length: 512,
            grad_accum: 1,
            steps_per_generation: 1,
        }
    }
}

/// One token's loss and its derivative with respect to its own `lp`.
#[derive(Debug, Clone, Copy, PartialEq)]
pub struct TokenLoss {
    /// The importance ratio `w`.
    pub ratio: f64,
    /// The k3 KL estimate (0 when `beta` is 0).
    pub kl: f64,
    /// `ℓ = ℓ_pg + β·k3` (before aggregation).
    pub loss: f64,
    /// `∂ℓ/∂lp` for token-level ratios (for sequence level, the
    /// sequence's tokens share the ratio; see [`per_token_losses`]).
    pub grad: f64,
    /// Whether the clipped branch was selected (`low` or `high` region).
    pub clipped: Option<Clip>,
}

/// Which clip region a token fell into.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Clip {
    /// `w < 1 − ε` with `A < 0`.
    Low,
    /// `w > 1 + ε_high` with `A > 0`.
    High,
}

/// The geometric-mean sequence log-ratio used by GSPO.
pub fn sequence_log_ratio(lp: &[f64], old: &[f64], mask: &[bool]) -> f64 {
    let n = mask.iter().filter(|m| **m).count().max(1) as f64;
    lp.iter().zip(old).zip(mask).filter(|(_, m)| **m).map(|((a, b), _)| a - b).sum::<f64>() / n
}

/// Per-token losses of a batch of completions. `reference` is needed only
/// when `beta != 0`. Masked tokens get a zero loss and gradient.
pub fn per_token_losses(
    lp: &[Vec<f64>],
    old: &[Vec<f64>],
    reference: Option<&[Vec<f64>]>,
    mask: &[Vec<bool>],
    adv: &[f64],
    cfg: &LossConfig,
) -> Vec<Vec<TokenLoss>> {
    (0..lp.len())
        .map(|i| {
            let seq_log_w = sequence_log_ratio(&lp[i], &old[i], &mask[i]);
            let n_tok = mask[i].iter().filter(|m| **m).count().max(1) as f64;
            (0..lp[i].len())
                .map(|t| {
                    if !mask[i][t] {
                        return TokenLoss { ratio: 1.0, kl: 0.0, loss: 0.0, grad: 0.0, clipped: None };
                    }
                    let a = adv[i];
                    let (log_w, dlogw_dlp) = match cfg.level {
                        IsLevel::Token => (lp[i][t] - old[i][t], 1.0),
                        IsLevel::Sequence => (seq_log_w, 1.0 / n_tok),
                    };
                    let w = log_w.exp();
                    let w_d = cfg.delta.map_or(w, |d| w.min(d));
                    let w_c = w.clamp(1.0 - cfg.epsilon, 1.0 + cfg.epsilon_high);
                    let unclipped = w_d * a;
                    let clipped_v = w_c * a;
                    let (pg, dpg, clipped) = if unclipped <= clipped_v {
                        let d_wd = if cfg.delta.is_some_and(|d| w > d) { 0.0 } else { w * dlogw_dlp };
                        (-unclipped, -a * d_wd, None)
                    } else {
                        let region = if a < 0.0 { Clip::Low } else { Clip::High };
                        let at_bound = w < 1.0 - cfg.epsilon || w > 1.0 + cfg.epsilon_high;
                        (-clipped_v, if at_bound { 0.0 } else { -a * w * dlogw_dlp }, at_bound.then_some(region))
                    };
                    let (kl, dkl) = match (cfg.beta != 0.0, reference) {
                        (true, Some(r)) => {
                            let d = r[i][t] - lp[i][t];
                            let k3 = d.exp() - d - 1.0;
                            let dk3 = 1.0 - d.exp();
                            if cfg.bias_correction_kl {
                                (w * k3, w * dk3 + k3 * w * dlogw_dlp)
                            } else {
                                (k3, dk3)
                            }
                        }
                        _ => (0.0, 0.0),
                    };
                    TokenLoss { ratio: w, kl, loss: pg + cfg.beta * kl, grad: dpg + cfg.beta * dkl, clipped }
                })
                .collect()
        })
        .collect()
}

/// The normaliser each token's loss is divided by, per `loss_type`, for one
/// micro-batch. `n_gen_tokens` is the number of loss tokens in the whole
/// generation batch (used by `dapo`). Returns one divisor per completion.
pub fn token_weights(mask: &[Vec<bool>], cfg: &LossConfig, n_gen_tokens: usize) -> Vec<f64> {
    let b = mask.len().max(1) as f64;
    let ga = cfg.grad_accum.max(1) as f64;
    let local: usize = mask.iter().map(|m| m.iter().filter(|x| **x).count()).sum();
    mask.iter()
        .map(|m| {
            let len = m.iter().filter(|x| **x).count().max(1) as f64;
            match cfg.loss_type {
                LossType::Grpo => 1.0 / (b * len * ga),
                LossType::Bnpo => 1.0 / (local.max(1) as f64 * ga),
                LossType::DrGrpo => 1.0 / (b * cfg.max_completion_length.max(1) as f64 * ga),
                LossType::Dapo => {
                    let spg = cfg.steps_per_generation.max(1) as f64;
                    let denom = n_gen_tokens as f64 * ga / spg;
                    if denom > 0.0 {
                        1.0 / denom
                    } else {
                        0.0
                    }
                }
            }
        })
        .collect()
}

/// Aggregates per-token losses into the micro-batch loss.
pub fn aggregate(losses: &[Vec<TokenLoss>], mask: &[Vec<bool>], cfg: &LossConfig, n_gen_tokens: usize) -> f64 {
    let w = token_weights(mask, cfg, n_gen_tokens);
    losses
        .iter()
        .zip(mask)
        .zip(&w)
        .map(|((l, m), w)| l.iter().zip(m).filter(|(_, m)| **m).map(|(t, _)| t.loss).sum::<f64>() * w)
        .sum()
}

#[cfg(test)]
mod tests {
    use super::*;

    fn close(a: f64, b: f64) {
        assert!((a - b).abs() < 1e-6, "{a} != {b}");
    }

    #[test]
    fn group_advantages_use_unbiased_std() {
        let r = [Some(1.0), Some(0.0), Some(0.0), Some(1.0)];
        let a = advantages(&r, 4, ScaleRewards::Group);
        for (x, y) in a.values.iter().zip([0.865875, -0.865875, -0.865875, 0.865875]) {
            close(*x, y);
        }
        let a = advantages(&r, 4, ScaleRewards::None);
        assert_eq!(a.values, vec![0.5, -0.5, -0.5, 0.5]);
        assert_eq!(a.frac_zero_std, 0.0);
    }

    #[test]
    fn batch_scaling_keeps_group_means() {
        let r = [Some(1.0), Some(0.0), Some(3.0), Some(3.0)];
        let a = advantages(&r, 2, ScaleRewards::Batch);
        let (_, std, _) = nan_mean_std(r.iter().copied());
        close(a.values[0], 0.5 / (std + STD_EPS));
        assert_eq!(&a.values[2..], &[0.0, 0.0]);
        assert_eq!(a.frac_zero_std, 0.5);
    }

    #[test]
    fn unscorable_rows_get_zero_advantage_and_are_excluded() {
        let per_fn = vec![vec![Some(1.0), None], vec![None, None], vec![Some(0.0), Some(0.0)]];
        let r = combine_rewards(&per_fn, &[1.0, 1.0]);
        assert_eq!(r, vec![Some(1.0), None, Some(0.0)]);
        let a = advantages(&r, 3, ScaleRewards::Group);
        assert_eq!(a.values[1], 0.0);
        assert_eq!(a.unscorable, vec![1]);
        close(a.values[0], 0.5 / (std::f64::consts::FRAC_1_SQRT_2 + STD_EPS));
    }

    #[test]
    fn reward_weights_weight_the_sum() {
        let r = combine_rewards(&[vec![Some(1.0), Some(0.0)]], &[0.7, 0.3]);
        close(r[0].unwrap(), 0.7);
    }

    type Golden = (Vec<Vec<f64>>, Vec<Vec<f64>>, Vec<Vec<f64>>, Vec<Vec<bool>>, Vec<f64>);

    /// lp, old, ref, mask, advantages of the golden case (TRL 1.16's formulas).
    fn golden() -> Golden {
        (
            vec![vec![-1.0, -0.5, -2.0], vec![-0.3, -1.2, 0.0]],
            vec![vec![-1.1, -0.5, -1.5], vec![-0.3, -1.0, 0.0]],
            vec![vec![-1.2, -0.4, -2.0], vec![-0.5, -1.2, 0.0]],
            vec![vec![true, true, true], vec![true, true, false]],
            vec![0.865875, -0.865875],
        )
    }

    fn golden_cfg(loss_type: LossType) -> LossConfig {
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

    #[test]
    fn per_token_golden_values() {
        let (lp, old, rf, mask, adv) = golden();
        let l = per_token_losses(&lp, &old, Some(&rf), &mask, &adv, &golden_cfg(LossType::Dapo));
        let want = [
            (0, 0, 1.105171, 0.018731, -0.956191, -0.956940, 0.181269),
            (0, 1, 1.0, 0.005171, -0.865669, -0.865875, -0.105171),
            (0, 2, 0.606531, 0.0, -0.525180, -0.525180, 0.0),
            (1, 0, 1.0, 0.018731, 0.866625, 0.865875, 0.181269),
            (1, 1, 0.818731, 0.0, 0.708919, 0.708919, 0.0),
        ];
        for (i, t, w, k3, loss, dpg, dk3) in want {
            let x = l[i][t];
            close(x.ratio, w);
            close(x.kl, k3);
            close(x.loss, loss);
            close(x.grad, dpg + 0.04 * dk3);
        }
        assert_eq!(l[1][2].loss, 0.0);
    }

    #[test]
    fn aggregation_golden_values() {
        let (lp, old, rf, mask, adv) = golden();
        for (lt, want) in [
            (LossType::Grpo, 0.002713),
            (LossType::Bnpo, -0.154299),
            (LossType::Dapo, -0.154299),
            (LossType::DrGrpo, -0.096437),
        ] {
            let cfg = golden_cfg(lt);
            let l = per_token_losses(&lp, &old, Some(&rf), &mask, &adv, &cfg);
            close(aggregate(&l, &mask, &cfg, 5), want);
        }
    }

    #[test]
    fn gspo_sequence_weights() {
        let (lp, old, _, mask, _) = golden();
        close(sequence_log_ratio(&lp[0], &old[0], &mask[0]), -0.133333333);
        close(sequence_log_ratio(&lp[0], &old[0], &mask[0]).exp(), 0.875173);
        close(sequence_log_ratio(&lp[1], &old[1], &mask[1]), -0.1);
        close(sequence_log_ratio(&lp[1], &old[1], &mask[1]).exp(), 0.904837);
    }

    #[test]
    fn on_policy_without_kl_is_reinforce_with_group_baseline() {
        let lp = vec![vec![-0.7, -1.3], vec![-2.0, -0.1]];
        let mask = vec![vec![true; 2]; 2];
        let adv = vec![0.5, -0.5];
        let cfg = LossConfig { beta: 0.0, ..LossConfig::default() };
        let l = per_token_losses(&lp, &lp, None, &mask, &adv, &cfg);
        for (i, row) in l.iter().enumerate() {
            for t in row {
                close(t.grad, -adv[i]);
                assert!(t.clipped.is_none());
            }
        }
        // The loss value is minus the mask-weighted mean advantage: 0 here.
        close(aggregate(&l, &mask, &cfg, 4), 0.0);
    }

    #[test]
    fn equal_rewards_give_zero_gradient() {
        let a = advantages(&[Some(2.0); 4], 4, ScaleRewards::Group);
        assert!(a.values.iter().all(|v| *v == 0.0));
        assert_eq!(a.frac_zero_std, 1.0);
        let lp = vec![vec![-1.0, -0.5]; 4];
        let l = per_token_losses(
            &lp,
            &lp,
            None,
            &[vec![true; 2], vec![true; 2], vec![true; 2], vec![true; 2]],
            &a.values,
            &LossConfig::default(),
        );
        assert!(l.iter().flatten().all(|t| t.grad == 0.0));
    }

    #[test]
    fn all_truncated_and_masked_under_dapo_is_a_zero_loss() {
        let lp = vec![vec![-1.0, -0.5]; 2];
        let mask = vec![vec![false; 2]; 2];
        let cfg = LossConfig::default();
        let l = per_token_losses(&lp, &lp, None, &mask, &[1.0, -1.0], &cfg);
        assert_eq!(aggregate(&l, &mask, &cfg, 0), 0.0);
        assert!(l.iter().flatten().all(|t| t.grad == 0.0));
        assert!(token_weights(&mask, &cfg, 0).iter().all(|w| *w == 0.0));
    }

    #[test]
    fn clipping_stops_the_gradient_only_on_the_pessimistic_side() {
        let cfg = LossConfig { epsilon: 0.2, epsilon_high: 0.2, ..LossConfig::default() };
        let mask = vec![vec![true]];
        // A > 0 and w = e^0.5 > 1.2: clipped, zero gradient, region high.
        let l = per_token_losses(&[vec![0.0]], &[vec![-0.5]], None, &mask, &[1.0], &cfg);
        assert_eq!((l[0][0].grad, l[0][0].clipped), (0.0, Some(Clip::High)));
        // A > 0 and w = e^-0.5 < 0.8: not clipped (pessimistic min), gradient −w·A.
        let l = per_token_losses(&[vec![-0.5]], &[vec![0.0]], None, &mask, &[1.0], &cfg);
        close(l[0][0].grad, -(-0.5f64).exp());
        assert!(l[0][0].clipped.is_none());
        // A < 0 and w < 0.8: clipped low.
        let l = per_token_losses(&[vec![-0.5]], &[vec![0.0]], None, &mask, &[-1.0], &cfg);
        assert_eq!((l[0][0].grad, l[0][0].clipped), (0.0, Some(Clip::Low)));
        // delta caps the unclipped side for A < 0 and large w.
        let cfg = LossConfig { delta: Some(1.5), ..cfg };
        let l = per_token_losses(&[vec![1.0]], &[vec![0.0]], None, &mask, &[-1.0], &cfg);
        close(l[0][0].loss, 1.5);
        assert_eq!(l[0][0].grad, 0.0);
    }

    #[test]
    fn analytic_gradients_match_finite_differences() {
        let (lp, old, rf, mask, adv) = golden();
        for level in [IsLevel::Token, IsLevel::Sequence] {
            for bias in [false, true] {
                let cfg = LossConfig { level, bias_correction_kl: bias, ..golden_cfg(LossType::Bnpo) };
                let l = per_token_losses(&lp, &old, Some(&rf), &mask, &adv, &cfg);
                for i in 0..2 {
                    for t in 0..3 {
                        if !mask[i][t] || level == IsLevel::Sequence {
                            continue;
                        }
                        let h = 1e-6;
                        let mut lp2 = lp.clone();
                        lp2[i][t] += h;
                        let l2 = per_token_losses(&lp2, &old, Some(&rf), &mask, &adv, &cfg);
                        let fd = (l2[i][t].loss - l[i][t].loss) / h;
                        assert!((fd - l[i][t].grad).abs() < 1e-4, "{level:?} {bias} {i} {t}: {fd} vs {}", l[i][t].grad);
                    }
                }
            }
        }
    }
}
