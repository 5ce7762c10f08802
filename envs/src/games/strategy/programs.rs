//! Procedurally generated 2048 strategy programs (Rhai), for supervised
//! warm-up of small models on `2048-strategy`.
//!
//! [`program_2048`] draws, from a seed, one short program (≈ 900
//! characters, ≈ 70 vocabulary pieces) that only *chooses moves*: for each direction it reads the
//! board's lines in that direction, checks whether the move changes
//! anything, and scores it with a weighted sum of heuristics, then returns
//! the best direction that moves. What varies between programs (and makes
//! their quality vary, from worse than random to clearly better):
//!
//! * the weights of the features: empty cells after the move, merge gain,
//!   the largest tile landing in a corner-ward line, and a per-direction
//!   preference bias (a move-preference order when the bias dominates);
//! * the order in which directions are tried (tie-breaking) and the
//!   fallback move;
//! * a one-step lookahead on empty cells or not (a greedy merge count).
//!
//! Weights may be negative, so some programs prefer fewer empty cells or
//! avoid merges — bad strategies a reward signal should learn to avoid.
//! Every program compiles and defines `strategy(board)` (tested over many
//! seeds against the sandbox's compile check and by playing games).

use rand::seq::SliceRandom;
use rand::{Rng, SeedableRng};
use rand_chacha::ChaCha8Rng;

/// The text pieces every generated program is made of, in order of first
/// use; between them go only numbers, `-` and `, ` (the knobs). gym-tiny's
/// vocabulary has one token per piece.
pub const FRAGMENTS: &[&str] = &[
    "```rhai\n",
    "\n```",
    "fn slide(t) {\n",
    "  let o = []; let g = 0; let i = 0;\n",
    "  while i < t.len() {\n",
    "    if i + 1 < t.len() && t[i] == t[i + 1] { o.push(t[i] * 2); g += t[i]; i += 2; }\n",
    "    else { o.push(t[i]); i += 1; }\n",
    "  }\n",
    "  [o, g]\n",
    "}\n",
    "fn value(b, d) {\n",
    "  let n = b.len(); let mv = false; let e = 0; let g = 0; let m = 0;\n",
    "  for k in 0..n {\n",
    "    let t = []; let z = false;\n",
    "    for j in 0..n {\n",
    "      let v = if d == 0 { b[j][k] } else if d == 1 { b[k][n-1-j] } else if d == 2 { b[n-1-j][k] } else { b[k][j] };\n",
    "      if v == 0 { z = true; } else { if z { mv = true; } t.push(v); }\n",
    "    }\n",
    "    let r = slide(t);\n",
    "    if r[0].len() < t.len() { mv = true; }\n",
    "    g += r[1];\n",
    "    e += n - r[0].len();\n",
    "    if r[0].len() > 0 && r[0][0] > m { m = r[0][0]; }\n",
    "  if !mv { return -99999; }\n",
    "  ",
    " * e + ",
    " * g + ",
    " * m + [",
    "][d]\n",
    "fn strategy(b) {\n",
    "  let best = ",
    "; let top = -99999;\n",
    "  for d in [",
    "] { let v = value(b, d); if v > top { top = v; best = d; } }\n",
    "  [\"up\", \"right\", \"down\", \"left\"][best]\n",
    "}",
    ", ",
];

/// One generated program's knobs (exposed for tests and docs).
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Knobs {
    /// Weight of the empty cells after the move (may be negative).
    pub empty: i64,
    /// Weight of the merge gain (may be negative).
    pub gain: i64,
    /// Weight of the largest tile ending in the first cell of a line.
    pub edge: i64,
    /// Per-direction bias, indexed 0 up, 1 right, 2 down, 3 left.
    pub bias: [i64; 4],
    /// Order in which directions are tried.
    pub order: [usize; 4],
    /// Whether empty cells are counted (else only merges are counted).
    pub lookahead: bool,
}

impl Knobs {
    /// Draws knobs from `seed`.
    pub fn sample(seed: u64) -> Self {
        let mut rng = ChaCha8Rng::seed_from_u64(seed ^ 0x2048_9a0b_c0de);
        let mut order = [0, 1, 2, 3];
        order.shuffle(&mut rng);
        let mut pref = [0usize, 1, 2, 3];
        pref.shuffle(&mut rng);
        let scale = [0, 1, 5, 20, 100][rng.gen_range(0..5)];
        let mut bias = [0i64; 4];
        for (rank, &d) in pref.iter().enumerate() {
            bias[d] = (3 - rank as i64) * scale;
        }
        Self {
            empty: rng.gen_range(-3..=9),
            gain: rng.gen_range(-2..=4),
            edge: rng.gen_range(-1..=3),
            bias,
            order,
            lookahead: rng.gen_bool(0.75),
        }
    }
}

/// The Rhai source of the program with `knobs`.
pub fn render(k: &Knobs) -> String {
    let f = FRAGMENTS;
    // slide(), then value() up to the merge gain.
    let mut s: String = f[2..21].concat();
    if k.lookahead {
        s.push_str(f[21]);
    }
    s.push_str(f[22]);
    s.push_str(f[7]);
    s.push_str(f[23]);
    let list = |v: &[i64]| v.iter().map(|x| x.to_string()).collect::<Vec<_>>().join(", ");
    s.push_str(&format!("  {} * e + {} * g + {} * m + [{}][d]\n}}\n", k.empty * 10, k.gain, k.edge, list(&k.bias)));
    let order: Vec<i64> = k.order.iter().map(|&d| d as i64).collect();
    s.push_str(&format!("{}{}{}{}{}{}{}", f[29], f[30], k.order[0], f[31], f[32], list(&order), f[33]));
    s.push_str(f[34]);
    s.push_str(f[35]);
    s
}

/// The seeded program, as a reply: one fenced ```` ```rhai ```` block.
pub fn program_2048(seed: u64) -> String {
    format!("```rhai\n{}\n```", render(&Knobs::sample(seed)))
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn programs_compile_vary_and_are_short() {
        let mut distinct = std::collections::BTreeSet::new();
        for seed in 0..200 {
            let p = render(&Knobs::sample(seed));
            sandbox::rhai_backend::compile_check(&p, "strategy", Some(1))
                .unwrap_or_else(|v| panic!("seed {seed}: {v}\n{p}"));
            assert!(p.len() < 1000, "seed {seed}: {} chars", p.len());
            distinct.insert(p);
        }
        assert!(distinct.len() > 190, "only {} distinct programs", distinct.len());
        assert_eq!(program_2048(7), program_2048(7));
        assert!(program_2048(7).starts_with("```rhai\nfn slide"));
        // Only fragments, digits, `-` and `, ` between them.
        for seed in 0..50 {
            let mut rest = render(&Knobs::sample(seed));
            let mut pieces = 0;
            while !rest.is_empty() {
                pieces += 1;
                if let Some(f) = FRAGMENTS.iter().filter(|f| rest.starts_with(**f)).max_by_key(|f| f.len()) {
                    rest = rest[f.len()..].to_string();
                } else {
                    let c = rest.chars().next().unwrap();
                    assert!(c.is_ascii_digit() || c == '-', "seed {seed}: unexpected `{c}` in {rest}");
                    rest = rest[1..].to_string();
                }
            }
            assert!(pieces < 100, "seed {seed}: {pieces} pieces");
        }
    }
}
