//! Scripted baselines.

mod expectimax;
mod oracle;
mod random;
mod replay;
mod solver;

pub use expectimax::{corner_move, depth_for, expectimax_move, Corner, Expectimax, GreedyMerge};
pub use oracle::Oracle;
pub use random::RandomPolicy;
pub use replay::Replay;
pub use solver::{solve_reply, SudokuSolver};

use envs::Policy;

use crate::PolicyNameError;

/// The scripted policies' names and help.
pub const NAMES: &[(&str, &str)] = &[
    ("random", "uniformly random legal action, or a random answer in the expected format"),
    (
        "oracle",
        "plays the env's demonstration: the correct answer where one exists (math, vision-qa, sudoku: the reward \
         ceiling); in 2048 only the greedy-merge move, not a ceiling (expectimax is the strong 2048 baseline)",
    ),
    ("expectimax", "2048: depth-limited expectimax search on the bitboard (reaches 2048 in most 4x4 games)"),
    ("greedy-merge", "2048: the move with the largest merge score, ties broken down > left > right > up"),
    ("corner", "2048: the first legal move of down, left, right, up"),
    ("solver", "solves Sudoku itself: the full grid (mode=answer) or the next placement (mode=move)"),
    ("replay:FILE", "replays completions from a JSONL file, keyed by env/seed/sample/step"),
];

/// Builds a scripted policy by name; `Ok(None)` if the name is not scripted.
pub fn make(name: &str) -> Result<Option<Box<dyn Policy>>, PolicyNameError> {
    Ok(Some(match name {
        "random" => Box::new(RandomPolicy),
        "oracle" => Box::new(Oracle),
        "expectimax" => Box::new(Expectimax::default()),
        "greedy-merge" => Box::new(GreedyMerge),
        "corner" => Box::new(Corner),
        "solver" => Box::new(SudokuSolver),
        _ => {
            if let Some(path) = name.strip_prefix("replay:") {
                let r = Replay::from_file(std::path::Path::new(path))
                    .map_err(|reason| PolicyNameError::Build { name: name.to_string(), reason })?;
                Box::new(r)
            } else {
                return Ok(None);
            }
        }
    }))
}

/// A deterministic RNG for one request's sample `i`.
pub(crate) fn rng_for(seed: u64, sample: usize) -> rand_chacha::ChaCha8Rng {
    use rand::SeedableRng;
    rand_chacha::ChaCha8Rng::seed_from_u64(envs::policy::derive_seed(seed, sample as u64))
}
