//! # `2048`
//!
//! The sliding-tile game on a 4×4 board (sizes 3–8 as options), played one
//! move per turn. The engine ([`engine`]) is public so other envs and
//! servers can reuse it: a 64-bit bitboard with 65,536-entry row tables for
//! 4×4, an array engine with identical rules for the other sizes.
//!
//! ## Protocol
//! * **Observation**: a system prompt with the rules and reply format, and a
//!   user message with the move number, score, best tile, target, the board
//!   as an aligned grid (`.` = empty) and the legal moves. Each turn shows
//!   only the current position (the game is Markov). After an invalid reply
//!   the message starts with `Invalid reply: <reason>`.
//! * **Reply**: one move inside `<answer>…</answer>`: `up`, `down`, `left`,
//!   `right` or `W`, `S`, `A`, `D`, case-insensitive. Only the last
//!   `<answer>` tag is read; inside it, the text split on non-alphanumeric
//!   characters must be exactly one move word (`[Left]`, `**up**`, `down.`
//!   are accepted; `move left` is not). A structured action
//!   `{"action_id": 0..3}` (OpenSpiel ids: 0 up, 1 right, 2 down, 3 left)
//!   is accepted instead of text.
//! * **Legal actions**: the legal moves written as replies, e.g.
//!   `<answer>up</answer>`, in action-id order.
//! * **State** (`observation.state`): `board` (rows of tile values), `size`,
//!   `score`, `max_tile`, `target`, `moves`, `legal_moves` (names),
//!   `invalid_left`.
//! * **Invalid replies** (no tag, not exactly one move word, a move that
//!   changes nothing, a bad structured action) leave the board unchanged, cost
//!   the `invalid` penalty and give a `reason`. `invalid_allowance`
//!   (default 3) invalid replies **in a row** end the episode (terminated,
//!   not a success); a valid move resets the count.
//! * **End**: terminated when a tile reaches `target` (success) or no move
//!   is possible; truncated after `max_turns` replies (default 5000, the
//!   spec's `max_steps`). Final rewards are given on the final step in
//!   every case.
//! * **Demonstration**: the greedy move (largest merge score, ties broken
//!   down > left > right > up), so the `oracle` policy plays the greedy
//!   baseline; stronger play comes from the `expectimax` policy.
//!
//! ## Rewards
//! Random play must not look good, so the outcome is graded against random
//! play **from the same initial position**: at `reset` the env plays
//! `baseline_games` (default 32) uniformly random games from it (legal
//! moves only, same target and turn cap, fixed RNG streams derived from the
//! seed; ≈ 0.4 ms on 4×4) and records their mean *progress* and the
//! fraction that reached the target.
//!
//! *Progress* counts tile doublings: a won game is worth `log2(target)`; a
//! game that did not win is worth `r + min(1, (S − M)/M)` where `M = 2^r` is
//! its largest tile and `S` the sum of its tiles (a lone 128 is 7, a 128
//! with 128 more on the board is 8, like a 256). It is graded on the tiles
//! built rather than the score, because a faster win has a *lower* score
//! than a slow one, and random games that win easy targets dawdle.
//!
//! | term | when | value | weight |
//! |---|---|---|---|
//! | `invalid` | every step | −1 if the reply was invalid, else 0 | 0.1 |
//! | `vs_random` | final step | progress − the random games' mean progress, floored at −3 | 1 |
//! | `success` | final step | `1[target reached] − p`, `p` = the random games' success rate | 1 |
//!
//! Both final terms have expectation ≈ 0 under random play (the baseline
//! estimates random play's own mean progress and success rate), so a policy
//! earns reward only by beating random play: +1 per doubling of the tiles
//! it builds, plus the success bonus where random play rarely wins. Over 20
//! 4×4 games (target 2048, `cargo test --release -p gym-tests --test
//! twenty48 -- --ignored --nocapture`): random ≈ 0, corner ≈ +0.9,
//! greedy-merge ≈ +1.1 (500 games each), expectimax ≈ +4.5 (100 % wins). On an easy board
//! (6×6 with target 2048, which random play wins 99 % of the time) reaching
//! the target is worth almost nothing.
//!
//! `info.extra` holds `score`, `max_tile`, `moves`, `merge` (this move's
//! merge score), `progress`, `baseline_progress`, `baseline_score` (the
//! random games' mean score) and `baseline_success`, plus `outcome` (`won`,
//! `lost`, `invalid`, `turn_limit`) on the final step; `info.success` is set
//! on the final step.

pub mod engine;
mod env;

pub use env::{
    greedy_move, parse_reply, progress, random_baseline, vs_random, Baseline, Config, Twenty48Env, INVALID_WEIGHT,
    VS_RANDOM_FLOOR,
};

use std::sync::Arc;

use crate::env::{Env, EnvError};
use crate::registry::{ActionIds, EnvSpec, OptionKind, OptionSpec, Options, Registry};

/// The spec's step limit (and the largest `max_turns`).
pub const MAX_STEPS: usize = 5000;

/// The `2048` spec.
pub fn spec() -> EnvSpec {
    EnvSpec {
        id: "2048",
        version: 1,
        description:
            "2048 sliding-tile game, one move per turn; reward = tiles built vs random play from the same start",
        max_steps: MAX_STEPS,
        options: vec![
            OptionSpec {
                name: "size",
                kind: OptionKind::Int { min: engine::MIN_SIZE as i64, max: engine::MAX_SIZE as i64 },
                default: "4",
                help: "board side length",
            },
            OptionSpec {
                name: "target",
                kind: OptionKind::Int { min: 4, max: 1 << 30 },
                default: "2048",
                help: "tile that wins the game (a power of two)",
            },
            OptionSpec {
                name: "invalid_allowance",
                kind: OptionKind::Int { min: 1, max: 100 },
                default: "3",
                help: "invalid replies in a row that end the episode",
            },
            OptionSpec {
                name: "max_turns",
                kind: OptionKind::Int { min: 1, max: MAX_STEPS as i64 },
                default: "5000",
                help: "replies after which the episode is truncated (final rewards still given)",
            },
            OptionSpec {
                name: "baseline_games",
                kind: OptionKind::Int { min: 1, max: 1000 },
                default: "32",
                help: "random games played at reset to set the reward baseline",
            },
        ],
        action_ids: Some(ActionIds {
            names: &["up", "right", "down", "left"],
            reply: "<answer>{}</answer>",
            board_field: Some("board"),
        }),
    }
}

/// Turns validated options into a [`Config`], checking that `target` is a
/// power of two.
pub fn config(opts: &Options) -> Result<Config, EnvError> {
    let target = opts.int("target");
    if target < 4 || !(target as u64).is_power_of_two() {
        return Err(EnvError::BadOption {
            name: "target".into(),
            reason: format!("{target} is not a power of two >= 4"),
        });
    }
    Ok(Config {
        size: opts.int("size").clamp(engine::MIN_SIZE as i64, engine::MAX_SIZE as i64) as usize,
        target: target as u64,
        invalid_allowance: opts.int("invalid_allowance").clamp(1, 100) as u32,
        max_turns: opts.int("max_turns").clamp(1, MAX_STEPS as i64) as u64,
        baseline_games: opts.int("baseline_games").clamp(1, 1000) as usize,
    })
}

/// Registers this module's envs.
pub fn register(r: &mut Registry) {
    r.register(spec(), |opts| {
        let cfg = config(opts)?;
        engine::init_tables();
        Ok(Arc::new(move || Box::new(Twenty48Env::new(cfg.clone())) as Box<dyn Env>))
    });
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn registered_env_passes_the_checker() {
        let mut r = Registry::new();
        register(&mut r);
        let opts = r.options::<&str>("2048", &[]).unwrap();
        let maker = r.maker("2048", &opts).unwrap();
        crate::check::check_env(&maker, MAX_STEPS).unwrap();
        let opts = r.options("2048", &["size=3", "target=64"]).unwrap();
        crate::check::check_env(&r.maker("2048", &opts).unwrap(), MAX_STEPS).unwrap();
    }

    #[test]
    fn bad_targets_are_rejected() {
        let mut r = Registry::new();
        register(&mut r);
        let opts = r.options("2048", &["target=1000"]).unwrap();
        assert!(r.maker("2048", &opts).is_err());
        assert!(r.options("2048", &["size=9"]).is_err());
    }
}
