//! Sampling on the device: only token ids and their log-probs cross to the
//! host, never a row of logits.
//!
//! For a batch of logits `[rows, vocab]` this computes, with tensor ops on
//! the logits' device:
//!
//! * the log-probs `log_softmax(logits / T)` (T = 1 when greedy) and the
//!   chosen token's entry — the same quantity as the host sampler and TRL;
//! * the kept set of top-k, then top-p over the top-k mass, then min-p
//!   (relative to the most likely token), as the host sampler keeps it.
//!   There is no vocabulary-wide sort on the device (candle's CUDA sort
//!   holds a row in shared memory and fails above 8,192 columns), so the
//!   k-th largest probability and the nucleus threshold are found by
//!   bisection on the probability value: 32 halvings, exact up to ties
//!   closer than 2⁻³² (tied tokens at the boundary are all kept);
//! * a draw from the renormalised kept distribution by the Gumbel-max
//!   trick: `argmax(log p + g)` over kept tokens, `g = −log(−log u)`.
//!
//! Reproducibility: the uniform noise `u` comes from the device's generator,
//! seeded for every step from the batch's seed and the step, so a batch is
//! reproducible for a fixed seed and batch composition; a row's draws depend
//! on which rows share its batch. (The host sampler, which the CPU uses,
//! draws each row from its own stream.) Greedy decoding is deterministic.

use candle_core::{DType, Device, Tensor, D};

use crate::error::Result;
use crate::sampling::SampleOptions;

const BISECTION_STEPS: usize = 32;

/// Tokens and log-probs sampled for each row of `logits` (`[rows, vocab]`,
/// any float dtype), with noise seeded by `seed` (one seed per step).
pub fn sample(logits: &Tensor, o: &SampleOptions, seed: u64) -> Result<(Vec<u32>, Vec<f32>)> {
    let logits = logits.to_dtype(DType::F32)?;
    let t = if o.temperature > 0.0 { o.temperature as f64 } else { 1.0 };
    let scaled = (&logits / t)?;
    let max = scaled.max_keepdim(D::Minus1)?;
    let shifted = scaled.broadcast_sub(&max)?;
    let lse = shifted.exp()?.sum_keepdim(D::Minus1)?.log()?;
    let logp = shifted.broadcast_sub(&lse)?;
    let ids = if o.temperature <= 0.0 {
        logits.argmax_keepdim(D::Minus1)?
    } else {
        let noise = uniform(logp.dims2()?, logp.device(), seed)?;
        let gumbel = noise.clamp(1e-20f32, 1.0 - 1e-7)?.log()?.neg()?.log()?.neg()?;
        let score = (&logp + gumbel)?;
        // Without a filter (GRPO's default) every token is kept: no mask work on the decode path.
        let score = match kept(&logp.exp()?, o)? {
            Some(keep) => {
                let neg_inf = Tensor::full(f32::NEG_INFINITY, logp.shape(), logp.device())?;
                keep.where_cond(&score, &neg_inf)?
            }
            None => score,
        };
        score.argmax_keepdim(D::Minus1)?
    };
    let lp = logp.gather(&ids, D::Minus1)?;
    let ids: Vec<u32> = ids.flatten_all()?.to_vec1()?;
    let lp: Vec<f32> = lp.flatten_all()?.to_vec1()?;
    Ok((ids, lp))
}

/// Uniform noise in `[0, 1)` of `shape`, from the device generator seeded
/// with `seed`. On the CPU, where candle's generator cannot be seeded, the
/// noise comes from a seeded ChaCha stream on the host.
fn uniform(shape: (usize, usize), dev: &Device, seed: u64) -> Result<Tensor> {
    if dev.is_cpu() {
        use rand::{Rng, SeedableRng};
        let mut rng = rand_chacha::ChaCha8Rng::seed_from_u64(seed);
        let v: Vec<f32> = (0..shape.0 * shape.1).map(|_| rng.gen::<f32>()).collect();
        return Ok(Tensor::from_vec(v, shape, dev)?);
    }
    dev.set_seed(seed)?;
    Ok(Tensor::rand(0f32, 1f32, shape, dev)?)
}

/// The kept tokens (`u8` mask `[rows, vocab]`) of probabilities `p` under
/// top-k, top-p (over the top-k mass) and min-p; `None` when no filter is
/// on (every token kept).
pub fn kept(p: &Tensor, o: &SampleOptions) -> Result<Option<Tensor>> {
    let vocab = p.dim(D::Minus1)?;
    let pmax = p.max_keepdim(D::Minus1)?;
    // Masks are u8 0/1: `a * b` is their intersection.
    let both = |a: Option<Tensor>, b: Tensor| -> Result<Tensor> {
        Ok(match a {
            Some(a) => (a * b)?,
            None => b,
        })
    };
    let mut keep: Option<Tensor> = None;
    if o.top_k > 0 && o.top_k < vocab {
        // The largest τ with #{p ≥ τ} ≥ k is the k-th largest probability.
        let k = o.top_k as f64;
        let tau = bisect(p, &pmax, |mask| Ok(mask.to_dtype(DType::F32)?.sum_keepdim(D::Minus1)?.ge(k)?))?;
        keep = Some(p.broadcast_ge(&tau)?);
    }
    if o.top_p < 1.0 {
        // The largest τ with mass{p ≥ τ, kept} ≥ top_p × kept mass: the smallest nucleus.
        let kept_p = match &keep {
            Some(k) => (p * k.to_dtype(DType::F32)?)?,
            None => p.clone(),
        };
        let need = (kept_p.sum_keepdim(D::Minus1)? * o.top_p as f64)?;
        let tau = bisect(&kept_p, &pmax, |mask| {
            let mass = (&kept_p * mask.to_dtype(DType::F32)?)?.sum_keepdim(D::Minus1)?;
            Ok(mass.ge(&need)?)
        })?;
        keep = Some(both(keep, kept_p.broadcast_ge(&tau)?)?);
    }
    if o.min_p > 0.0 {
        let floor = (&pmax * o.min_p as f64)?;
        keep = Some(both(keep, p.broadcast_ge(&floor)?)?);
    }
    Ok(keep)
}

/// The largest threshold `τ ∈ [0, pmax]` per row for which `ok(p ≥ τ)`
/// holds (`ok` is monotone: true at τ = 0), by bisection on the device.
fn bisect(p: &Tensor, pmax: &Tensor, ok: impl Fn(&Tensor) -> Result<Tensor>) -> Result<Tensor> {
    let mut lo = pmax.zeros_like()?;
    let mut hi = pmax.clone();
    // τ = pmax itself may already hold (a single dominant token).
    let top = ok(&p.broadcast_ge(pmax)?)?;
    for _ in 0..BISECTION_STEPS {
        let mid = ((&lo + &hi)? * 0.5)?;
        let good = ok(&p.broadcast_ge(&mid)?)?;
        lo = good.where_cond(&mid, &lo)?;
        hi = good.where_cond(&hi, &mid)?;
    }
    Ok(top.where_cond(pmax, &lo)?)
}

#[cfg(test)]
mod tests {
    use super::*;

    fn opts(top_k: usize, top_p: f32, min_p: f32) -> SampleOptions {
        SampleOptions { top_k, top_p, min_p, ..SampleOptions::default() }
    }

    /// The host sampler's kept set for one row of probabilities.
    fn host_kept(p: &[f32], o: &SampleOptions) -> Vec<bool> {
        let mut m = vec![false; p.len()];
        crate::sampling::candidates(p, o).into_iter().for_each(|i| m[i] = true);
        m
    }

    fn random_logits(rows: usize, vocab: usize, seed: u64) -> Tensor {
        use rand::{Rng, SeedableRng};
        let mut rng = rand_chacha::ChaCha8Rng::seed_from_u64(seed);
        let v: Vec<f32> = (0..rows * vocab).map(|_| rng.gen_range(-4.0f32..4.0)).collect();
        Tensor::from_vec(v, (rows, vocab), &Device::Cpu).unwrap()
    }

    #[test]
    fn kept_sets_equal_the_host_samplers() {
        let logits = random_logits(6, 300, 1);
        let p = candle_nn::ops::softmax_last_dim(&logits).unwrap();
        let rows: Vec<Vec<f32>> = p.to_vec2().unwrap();
        for o in [
            opts(0, 1.0, 0.0),
            opts(5, 1.0, 0.0),
            opts(0, 0.9, 0.0),
            opts(40, 0.5, 0.0),
            opts(0, 1.0, 0.2),
            opts(20, 0.8, 0.1),
            opts(1, 1.0, 0.0),
        ] {
            let got: Option<Vec<Vec<u8>>> = kept(&p, &o).unwrap().map(|k| k.to_vec2().unwrap());
            for (r, row) in rows.iter().enumerate() {
                let want = host_kept(row, &o);
                let got: Vec<bool> = match &got {
                    Some(g) => g[r].iter().map(|&b| b == 1).collect(),
                    None => vec![true; row.len()],
                };
                assert_eq!(got, want, "row {r}, {o:?}");
            }
        }
    }

    #[test]
    fn greedy_and_logprobs_match_the_host_formula() {
        let logits = random_logits(4, 50, 2);
        let o = SampleOptions { temperature: 0.0, ..SampleOptions::default() };
        let (ids, lps) = sample(&logits, &o, 0).unwrap();
        let rows: Vec<Vec<f32>> = logits.to_vec2().unwrap();
        for (r, row) in rows.iter().enumerate() {
            let best = (0..row.len()).max_by(|&a, &b| row[a].total_cmp(&row[b])).unwrap();
            assert_eq!(ids[r] as usize, best);
            let lse = row.iter().map(|l| (l - row[best]).exp()).sum::<f32>().ln();
            assert!((lps[r] - (0.0 - lse)).abs() < 1e-5);
        }
        // Sampled: the log-prob is that of the temperature-scaled distribution.
        let o = SampleOptions { temperature: 0.7, top_k: 10, ..SampleOptions::default() };
        let (ids, lps) = sample(&logits, &o, 3).unwrap();
        for (r, row) in rows.iter().enumerate() {
            let s: Vec<f32> = row.iter().map(|l| l / 0.7).collect();
            let m = s.iter().copied().fold(f32::NEG_INFINITY, f32::max);
            let lse = m + s.iter().map(|x| (x - m).exp()).sum::<f32>().ln();
            assert!((lps[r] - (s[ids[r] as usize] - lse)).abs() < 1e-5);
            assert!(
                host_kept(
                    &candle_nn::ops::softmax_last_dim(&Tensor::new(s.as_slice(), &Device::Cpu).unwrap())
                        .unwrap()
                        .to_vec1::<f32>()
                        .unwrap(),
                    &o
                )[ids[r] as usize]
            );
        }
        assert_eq!(sample(&logits, &o, 3).unwrap(), (ids, lps), "same seed, same draws");
    }

    #[test]
    fn draws_follow_the_kept_distribution() {
        // One row, five tokens; top-p 0.9 keeps the three most likely.
        let logits = Tensor::new(&[[2.0f32, 1.0, 0.5, -1.0, -3.0]], &Device::Cpu).unwrap();
        let o = opts(0, 0.9, 0.0);
        let p: Vec<f32> = candle_nn::ops::softmax_last_dim(&logits).unwrap().squeeze(0).unwrap().to_vec1().unwrap();
        let kept_mass: f32 = p[..3].iter().sum();
        let mut counts = [0usize; 5];
        let n = 4000;
        for seed in 0..n {
            counts[sample(&logits, &o, seed as u64).unwrap().0[0] as usize] += 1;
        }
        assert_eq!(counts[3] + counts[4], 0, "outside the nucleus: {counts:?}");
        for i in 0..3 {
            let want = p[i] / kept_mass;
            let got = counts[i] as f32 / n as f32;
            assert!((got - want).abs() < 0.03, "token {i}: {got} vs {want}");
        }
    }
}
