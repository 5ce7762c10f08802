//! Small statistics for benchmark reports: confidence intervals and percentiles.

/// Two-sided 95% Student-t critical value for `df` degrees of freedom
/// (the nearest tabulated df at or below `df`, so never optimistic).
pub fn t95(df: usize) -> f64 {
    const TABLE: [(usize, f64); 20] = [
        (1, 12.706),
        (2, 4.303),
        (3, 3.182),
        (4, 2.776),
        (5, 2.571),
        (6, 2.447),
        (7, 2.365),
        (8, 2.306),
        (9, 2.262),
        (10, 2.228),
        (12, 2.179),
        (15, 2.131),
        (20, 2.086),
        (25, 2.060),
        (30, 2.042),
        (40, 2.021),
        (60, 2.000),
        (120, 1.980),
        (1000, 1.962),
        (usize::MAX, 1.960),
    ];
    let mut t = f64::INFINITY;
    for (d, v) in TABLE {
        if d <= df {
            t = v;
        }
    }
    t
}

/// Mean and its 95% confidence interval (Student t). One value gives a
/// zero-width interval; no values give zeros.
pub fn mean_ci(xs: &[f64]) -> (f64, f64, f64) {
    let n = xs.len();
    if n == 0 {
        return (0.0, 0.0, 0.0);
    }
    let mean = xs.iter().sum::<f64>() / n as f64;
    if n == 1 {
        return (mean, mean, mean);
    }
    let var = xs.iter().map(|x| (x - mean).powi(2)).sum::<f64>() / (n - 1) as f64;
    let half = t95(n - 1) * (var / n as f64).sqrt();
    (mean, mean - half, mean + half)
}

/// Wilson score 95% interval for `k` successes in `n` trials.
pub fn wilson(k: usize, n: usize) -> (f64, f64) {
    if n == 0 {
        return (0.0, 0.0);
    }
    let z = 1.959_964f64;
    let (k, n) = (k as f64, n as f64);
    let p = k / n;
    let denom = 1.0 + z * z / n;
    let centre = (p + z * z / (2.0 * n)) / denom;
    let half = z * (p * (1.0 - p) / n + z * z / (4.0 * n * n)).sqrt() / denom;
    ((centre - half).max(0.0), (centre + half).min(1.0))
}

/// The `q`-quantile (0..=1) of sorted values, nearest-rank.
pub fn percentile(sorted: &[f64], q: f64) -> f64 {
    if sorted.is_empty() {
        return 0.0;
    }
    let rank = (q * sorted.len() as f64).ceil() as usize;
    sorted[rank.clamp(1, sorted.len()) - 1]
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn wilson_matches_known_values() {
        // 8/10: Wilson 95% = [0.4902, 0.9433].
        let (lo, hi) = wilson(8, 10);
        assert!((lo - 0.4902).abs() < 1e-3 && (hi - 0.9433).abs() < 1e-3, "{lo} {hi}");
        assert_eq!(wilson(0, 0), (0.0, 0.0));
        let (lo, hi) = wilson(0, 20);
        assert!(lo == 0.0 && hi > 0.1 && hi < 0.2);
    }

    #[test]
    fn mean_ci_uses_t() {
        let (m, lo, hi) = mean_ci(&[1.0, 2.0, 3.0]);
        assert_eq!(m, 2.0);
        // sd 1, n 3, t(2) = 4.303 -> half 2.484
        assert!((hi - m - 2.484).abs() < 1e-3 && (m - lo - 2.484).abs() < 1e-3);
        assert_eq!(mean_ci(&[5.0]), (5.0, 5.0, 5.0));
        assert_eq!(t95(11), 2.228);
        assert_eq!(t95(100_000), 1.962);
    }

    #[test]
    fn percentiles_nearest_rank() {
        let v: Vec<f64> = (1..=100).map(f64::from).collect();
        assert_eq!(percentile(&v, 0.5), 50.0);
        assert_eq!(percentile(&v, 0.99), 99.0);
        assert_eq!(percentile(&v, 1.0), 100.0);
        assert_eq!(percentile(&[3.0], 0.99), 3.0);
    }
}
