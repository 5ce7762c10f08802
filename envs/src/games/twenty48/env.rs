//! The `2048` env: one move per turn, graded against random play.

use rand::SeedableRng;
use rand_chacha::ChaCha8Rng;
use serde_json::json;

use super::engine::{Dir, Game, MoveError};
use crate::env::{Env, EnvError};
use crate::policy::derive_seed;
use crate::rewards::extract_tag;
use crate::types::{Action, Message, Observation, Step, StepInfo};

/// Weight of the `invalid` term (its value is −1 per invalid reply).
pub const INVALID_WEIGHT: f64 = 0.1;
/// Floor of the `vs_random` term.
pub const VS_RANDOM_FLOOR: f64 = -3.0;

/// The env's settings (its registry options).
#[derive(Debug, Clone, PartialEq)]
pub struct Config {
    /// Board side, 3..=8.
    pub size: usize,
    /// Target tile (a power of two ≥ 4): reaching it wins.
    pub target: u64,
    /// Consecutive invalid replies that end the episode.
    pub invalid_allowance: u32,
    /// Replies (valid or not) after which the episode is truncated.
    pub max_turns: u64,
    /// Random games played from the initial position to set the baseline.
    pub baseline_games: usize,
}

impl Default for Config {
    fn default() -> Self {
        Self { size: 4, target: 2048, invalid_allowance: 3, max_turns: 5000, baseline_games: 32 }
    }
}

/// What random play achieves from an episode's initial position.
#[derive(Debug, Clone, Copy, PartialEq)]
pub struct Baseline {
    /// Mean [`progress`] of the random games.
    pub progress: f64,
    /// Mean final score of the random games (reported, not graded).
    pub score: f64,
    /// Fraction of random games that reached the target.
    pub success_rate: f64,
    /// Number of random games.
    pub games: usize,
}

/// How far a game got, in tile doublings: `log2(target)` for a won game;
/// otherwise `r + min(1, (S − M) / M)`, where `M = 2^r` is the largest tile
/// and `S` the sum of all tiles (the board's mass: once `S ≥ 2M` it holds
/// enough for the next doubling). A lost game therefore never outranks a
/// won one, winning sooner is not worse than winning later, and the measure
/// is continuous (a 128 with mass 256 counts like a 256 alone).
pub fn progress(game: &Game) -> f64 {
    if game.won() {
        return game.target().trailing_zeros() as f64;
    }
    let m = game.max_tile();
    if m == 0 {
        return 0.0;
    }
    let sum = game.cells().iter().fold(0u64, |a, &v| a.saturating_add(v));
    f64::from(m.trailing_zeros()) + (sum.saturating_sub(m) as f64 / m as f64).min(1.0)
}

/// Plays `games` uniformly random games (legal moves only, at most
/// `max_moves` moves each) from `start`. Game `k` draws its spawns from
/// `derive_seed(seed, 2·k + 1)` and its moves from `derive_seed(seed, 2·k + 2)`,
/// so the baseline is a pure function of the position, the seed and the
/// rules.
pub fn random_baseline(start: &Game, seed: u64, games: usize, max_moves: u64) -> Baseline {
    let games = games.max(1);
    let (mut progress_sum, mut score_sum) = (0.0, 0.0);
    let mut wins = 0usize;
    for k in 0..games as u64 {
        let mut g = start.clone();
        g.reseed(derive_seed(seed, 2 * k + 1));
        let mut rng = ChaCha8Rng::seed_from_u64(derive_seed(seed, 2 * k + 2));
        let mut moves = 0;
        while moves < max_moves {
            let Some(d) = g.random_move(&mut rng) else { break };
            // Legal moves always apply.
            let _ = g.apply(d);
            moves += 1;
        }
        progress_sum += progress(&g);
        score_sum += g.score() as f64;
        wins += usize::from(g.won());
    }
    let n = games as f64;
    Baseline { progress: progress_sum / n, score: score_sum / n, success_rate: wins as f64 / n, games }
}

/// The `vs_random` value of a finished game: its [`progress`] minus the
/// random games' mean progress, floored at −3.
pub fn vs_random(game: &Game, baseline: &Baseline) -> f64 {
    (progress(game) - baseline.progress).max(VS_RANDOM_FLOOR)
}

/// Parses a reply: the last `<answer>…</answer>` must hold exactly one move
/// word (`up`/`down`/`left`/`right` or `W`/`A`/`S`/`D`, any case); words are
/// split on anything that is not a letter or digit, so `[Left]`, `**up**`
/// and `down.` are accepted, `move left` and `up or down` are not.
/// Returns the move or the reason the reply is malformed.
pub fn parse_reply(text: &str) -> Result<Dir, String> {
    let Some(inner) = extract_tag(text, "answer") else {
        return Err(if text.contains("<answer>") {
            "the <answer> tag is not closed with </answer>".to_string()
        } else {
            "no <answer>...</answer> tag in the reply".to_string()
        });
    };
    let words: Vec<&str> = inner.split(|c: char| !c.is_alphanumeric()).filter(|w| !w.is_empty()).collect();
    match words.as_slice() {
        [] => Err("the <answer> tag is empty".to_string()),
        [w] => Dir::parse(w).ok_or_else(|| format!("`{}` is not a move; answer up, down, left or right", clip(w))),
        _ => Err(format!("expected exactly one move inside <answer>, got `{}`", clip(inner.trim()))),
    }
}

fn round3(x: f64) -> f64 {
    (x * 1000.0).round() / 1000.0
}

fn clip(s: &str) -> String {
    if s.chars().count() <= 40 {
        s.to_string()
    } else {
        format!("{}…", s.chars().take(40).collect::<String>())
    }
}

fn parse_structured(v: &serde_json::Value) -> Result<Dir, String> {
    v.get("action_id")
        .and_then(serde_json::Value::as_u64)
        .and_then(|id| Dir::from_id(id as usize))
        .ok_or_else(|| "a structured action must be {\"action_id\": 0..3} (0 up, 1 right, 2 down, 3 left)".to_string())
}

/// Why an episode ended.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
enum Outcome {
    Won,
    Lost,
    Invalid,
    TurnLimit,
}

impl Outcome {
    fn name(self) -> &'static str {
        match self {
            Outcome::Won => "won",
            Outcome::Lost => "lost",
            Outcome::Invalid => "invalid",
            Outcome::TurnLimit => "turn_limit",
        }
    }
}

fn system_prompt(cfg: &Config) -> String {
    let n = cfg.size;
    let t = cfg.target;
    format!(
        "You are playing 2048 on a {n}x{n} board. Each turn you slide all tiles up, down, left or right. \
Tiles move as far as they can; two equal tiles that collide merge into one tile of their sum, and a tile \
merges at most once per move. Each merge adds the new tile's value to your score. After every move a new \
tile (2 with probability 0.9, 4 with probability 0.1) appears on a random empty cell. A move that changes \
nothing is invalid. The game ends when you make a {t} tile (you win) or when no move is possible.\n\n\
Reply with exactly one move inside <answer></answer>: up, down, left or right (or the keys W, S, A, D; \
case does not matter), for example <answer>left</answer>. You may think before answering; only the last \
<answer> tag is read. {a} invalid replies in a row end the game. At the end, the tiles you built are \
compared with random play from the same start, and reaching {t} earns a bonus.",
        a = cfg.invalid_allowance
    )
}

/// The 2048 env (see the module docs for the protocol and rewards).
#[derive(Debug, Clone)]
pub struct Twenty48Env {
    cfg: Config,
    system: String,
    game: Option<Game>,
    baseline: Option<Baseline>,
    invalid_streak: u32,
    turns: u64,
    done: bool,
}

impl Twenty48Env {
    /// An env with these settings (validated by the registry).
    pub fn new(cfg: Config) -> Self {
        let system = system_prompt(&cfg);
        Self { cfg, system, game: None, baseline: None, invalid_streak: 0, turns: 0, done: false }
    }

    /// The current game, after `reset`.
    pub fn game(&self) -> Option<&Game> {
        self.game.as_ref()
    }

    /// The random-play baseline of the current episode, after `reset`.
    pub fn baseline(&self) -> Option<&Baseline> {
        self.baseline.as_ref()
    }

    fn observe(&self, game: &Game, feedback: Option<&str>, ended: Option<Outcome>) -> Observation {
        let legal = if ended.is_some() { Vec::new() } else { game.legal_moves() };
        let names: Vec<&str> = legal.iter().map(|d| d.name()).collect();
        let mut text = String::new();
        if let Some(f) = feedback {
            text.push_str(f);
            text.push_str("\n\n");
        }
        text.push_str(&format!(
            "Move {}, score {}, best tile {}, target {}.\n",
            game.moves(),
            game.score(),
            game.max_tile(),
            game.target()
        ));
        text.push_str(&game.render());
        match ended {
            None => text.push_str(&format!("Legal moves: {}.\nYour move?", names.join(", "))),
            Some(o) => text.push_str(match o {
                Outcome::Won => "You reached the target. Game over.",
                Outcome::Lost => "No move is possible. Game over.",
                Outcome::Invalid => "Too many invalid replies in a row. Game over.",
                Outcome::TurnLimit => "The turn limit is reached. Game over.",
            }),
        }
        let state = json!({
            "board": game.rows(),
            "size": game.size(),
            "score": game.score(),
            "max_tile": game.max_tile(),
            "target": game.target(),
            "moves": game.moves(),
            "legal_moves": names,
            "invalid_left": self.cfg.invalid_allowance.saturating_sub(self.invalid_streak),
        });
        Observation {
            messages: vec![Message::system(self.system.clone()), Message::user(text)],
            images: Vec::new(),
            state,
            legal_actions: legal.iter().map(|d| format!("<answer>{}</answer>", d.name())).collect(),
        }
    }
}

/// The greedy move: the largest merge score, ties broken by the corner
/// order down > left > right > up. `None` when no move is legal.
pub fn greedy_move(game: &Game) -> Option<Dir> {
    let mut best: Option<(u64, Dir)> = None;
    for d in [Dir::Down, Dir::Left, Dir::Right, Dir::Up] {
        if let Some(s) = game.preview(d) {
            if !matches!(best, Some((b, _)) if s <= b) {
                best = Some((s, d));
            }
        }
    }
    best.map(|(_, d)| d)
}

impl Env for Twenty48Env {
    fn reset(&mut self, seed: u64) -> Result<Observation, EnvError> {
        let game = Game::with_target(self.cfg.size, self.cfg.target, seed)
            .map_err(|e| EnvError::BadOption { name: "size/target".into(), reason: e.to_string() })?;
        let baseline = random_baseline(&game, derive_seed(seed, 0x2048), self.cfg.baseline_games, self.cfg.max_turns);
        self.invalid_streak = 0;
        self.turns = 0;
        self.done = false;
        let obs = self.observe(&game, None, None);
        self.game = Some(game);
        self.baseline = Some(baseline);
        Ok(obs)
    }

    fn step(&mut self, action: &Action) -> Result<Step, EnvError> {
        if self.done {
            return Err(EnvError::EpisodeOver);
        }
        let (Some(mut game), Some(baseline)) = (self.game.take(), self.baseline) else {
            return Err(EnvError::NotReset);
        };
        self.turns += 1;
        let parsed = match &action.structured {
            Some(v) => parse_structured(v),
            None => parse_reply(&action.text),
        };
        let mut info = StepInfo::default();
        let mut gained = 0;
        let reason = match parsed {
            Err(r) => Some(r),
            Ok(d) => match game.apply(d) {
                Ok(s) => {
                    gained = s;
                    None
                }
                Err(MoveError::NoChange(d)) => {
                    let legal: Vec<&str> = game.legal_moves().iter().map(|d| d.name()).collect();
                    Some(format!("moving {d} changes nothing; legal moves: {}", legal.join(", ")))
                }
                Err(MoveError::GameOver) => Some("the game is already over".to_string()),
            },
        };
        if reason.is_some() {
            self.invalid_streak += 1;
        } else {
            self.invalid_streak = 0;
        }
        info.term("invalid", Some(if reason.is_some() { -1.0 } else { 0.0 }), INVALID_WEIGHT);
        let outcome = if game.won() {
            Some(Outcome::Won)
        } else if game.is_over() {
            Some(Outcome::Lost)
        } else if self.invalid_streak >= self.cfg.invalid_allowance {
            Some(Outcome::Invalid)
        } else if self.turns >= self.cfg.max_turns {
            Some(Outcome::TurnLimit)
        } else {
            None
        };
        let extra = &mut info.extra;
        extra.insert("score".into(), json!(game.score()));
        extra.insert("max_tile".into(), json!(game.max_tile()));
        extra.insert("moves".into(), json!(game.moves()));
        extra.insert("merge".into(), json!(gained));
        extra.insert("progress".into(), json!(round3(progress(&game))));
        extra.insert("baseline_progress".into(), json!(round3(baseline.progress)));
        extra.insert("baseline_score".into(), json!(round3(baseline.score)));
        extra.insert("baseline_success".into(), json!(baseline.success_rate));
        if let Some(o) = outcome {
            let won = o == Outcome::Won;
            info.term("vs_random", Some(vs_random(&game, &baseline)), 1.0);
            info.term("success", Some(f64::from(u8::from(won)) - baseline.success_rate), 1.0);
            info.success = Some(won);
            info.extra.insert("outcome".into(), json!(o.name()));
        }
        let feedback = reason.as_ref().map(|r| {
            let left = self.cfg.invalid_allowance.saturating_sub(self.invalid_streak);
            format!("Invalid reply: {r}. The board is unchanged; {left} more invalid replies in a row end the game.")
        });
        info.reason = reason;
        let obs = self.observe(&game, feedback.as_deref(), outcome);
        self.done = outcome.is_some();
        let truncated = outcome == Some(Outcome::TurnLimit);
        let terminated = outcome.is_some() && !truncated;
        self.game = Some(game);
        Ok(Step::new(obs, info, terminated, truncated))
    }

    fn demonstration(&self) -> Option<Action> {
        let game = self.game.as_ref().filter(|_| !self.done)?;
        greedy_move(game).map(|d| Action::text(format!("<answer>{}</answer>", d.name())))
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use rand::Rng;

    fn env() -> Twenty48Env {
        Twenty48Env::new(Config::default())
    }

    #[test]
    fn replies_parse_strictly_but_forgivingly() {
        assert_eq!(parse_reply("<answer>up</answer>"), Ok(Dir::Up));
        assert_eq!(parse_reply("<think>left? no</think><answer> Right </answer>"), Ok(Dir::Right));
        assert_eq!(parse_reply("<answer>S</answer>"), Ok(Dir::Down));
        assert_eq!(parse_reply("<answer>[a]</answer>"), Ok(Dir::Left));
        assert_eq!(parse_reply("<answer>**DOWN.**</answer>"), Ok(Dir::Down));
        assert_eq!(parse_reply("<answer>up</answer> then <answer>left</answer>"), Ok(Dir::Left));
        assert!(parse_reply("up").unwrap_err().contains("no <answer>"));
        assert!(parse_reply("<answer>up").unwrap_err().contains("not closed"));
        assert!(parse_reply("<answer> </answer>").unwrap_err().contains("empty"));
        assert!(parse_reply("<answer>move left</answer>").unwrap_err().contains("exactly one move"));
        assert!(parse_reply("<answer>north</answer>").unwrap_err().contains("`north` is not a move"));
        assert!(parse_reply("<answer>\u{0}\u{7f}</answer>").is_err());
    }

    #[test]
    fn invalid_replies_are_penalised_and_end_the_episode() {
        let mut e = env();
        let obs = e.reset(3).unwrap();
        assert!(!obs.legal_actions.is_empty());
        for i in 1..=3 {
            let s = e.step(&Action::text("I think up")).unwrap();
            assert!(s.info.reason.as_deref().unwrap().contains("no <answer>"));
            assert_eq!(s.info.breakdown[0].name, "invalid");
            assert_eq!(s.info.breakdown[0].value, Some(-1.0));
            assert_eq!(s.terminated, i == 3);
            if i < 3 {
                assert!((s.reward + 0.1).abs() < 1e-12);
                assert!(s.observation.text().starts_with("Invalid reply"));
            } else {
                assert_eq!(s.info.success, Some(false));
                assert_eq!(s.info.extra["outcome"], "invalid");
                // Score 0 is far below random play.
                assert!(s.info.breakdown.iter().any(|t| t.name == "vs_random" && t.value == Some(VS_RANDOM_FLOOR)));
            }
        }
        assert!(matches!(e.step(&Action::text("<answer>up</answer>")), Err(EnvError::EpisodeOver)));
    }

    #[test]
    fn illegal_moves_name_the_legal_ones_and_valid_moves_reset_the_streak() {
        let mut e = env();
        e.reset(0).unwrap();
        let game = e.game().unwrap().clone();
        let illegal = Dir::ALL.into_iter().find(|&d| !game.can_move(d));
        let legal = game.legal_moves()[0];
        if let Some(d) = illegal {
            let s = e.step(&Action::text(format!("<answer>{d}</answer>"))).unwrap();
            assert!(s.info.reason.unwrap().contains("changes nothing; legal moves"));
        }
        let s = e.step(&Action::text(format!("<answer>{legal}</answer>"))).unwrap();
        assert_eq!(s.info.reason, None);
        assert_eq!(s.reward, 0.0);
        assert_eq!(s.observation.state["invalid_left"], 3);
        let s = e.step(&Action { text: String::new(), structured: Some(json!({"action_id": 9})) }).unwrap();
        assert!(s.info.reason.unwrap().contains("action_id"));
    }

    #[test]
    fn structured_actions_use_openspiel_ids() {
        for id in 0..4usize {
            let mut e = env();
            e.reset(11).unwrap();
            let before = e.game().unwrap().clone();
            let s = e.step(&Action { text: "ignored".into(), structured: Some(json!({ "action_id": id })) }).unwrap();
            let d = Dir::from_id(id).unwrap();
            assert_eq!(s.info.reason.is_none(), before.can_move(d), "action {id}");
        }
    }

    #[test]
    fn random_play_scores_about_zero_and_greedy_scores_above() {
        // Play uniformly random legal moves with the env's own rules.
        let mut random_total = 0.0;
        let mut greedy_total = 0.0;
        let n = 40;
        for seed in 0..n {
            for greedy in [false, true] {
                let mut e = env();
                let mut obs = e.reset(seed).unwrap();
                let mut rng = ChaCha8Rng::seed_from_u64(seed + 999);
                let mut total = 0.0;
                loop {
                    let a = if greedy {
                        e.demonstration().unwrap()
                    } else {
                        Action::text(obs.legal_actions[rng.gen_range(0..obs.legal_actions.len())].clone())
                    };
                    let s = e.step(&a).unwrap();
                    total += s.reward;
                    obs = s.observation;
                    if s.terminated || s.truncated {
                        break;
                    }
                }
                if greedy {
                    greedy_total += total;
                } else {
                    random_total += total;
                }
            }
        }
        let (r, g) = (random_total / n as f64, greedy_total / n as f64);
        assert!(r.abs() < 0.2, "random play averages {r}");
        assert!(g > 0.8, "greedy play averages {g}");
    }

    #[test]
    fn progress_ranks_wins_above_losses_and_is_continuous() {
        let g = |cells: &[u64], target| Game::from_cells(3, cells, target, 0).unwrap();
        // A lone 128: 7 doublings; with mass 256 it counts as 8.
        assert_eq!(progress(&g(&[128, 0, 0, 0, 0, 0, 0, 0, 0], 2048)), 7.0);
        assert_eq!(progress(&g(&[128, 64, 64, 0, 0, 0, 0, 0, 0], 2048)), 8.0);
        assert_eq!(progress(&g(&[256, 0, 0, 0, 0, 0, 0, 0, 0], 2048)), 8.0);
        assert_eq!(progress(&g(&[128, 64, 0, 0, 0, 0, 0, 0, 0], 2048)), 7.5);
        // A won game (target 256) is worth exactly log2(256) whatever its mass;
        // a lost game with a full board of 128s is worth at most that.
        assert_eq!(progress(&g(&[256, 128, 64, 0, 0, 0, 0, 0, 0], 256)), 8.0);
        let lost = g(&[128, 64, 128, 64, 128, 64, 128, 64, 128], 256);
        assert!(lost.is_over() && progress(&lost) <= 8.0);
    }

    #[test]
    fn baseline_is_deterministic_and_matches_published_random_play() {
        let g = Game::new(4, 5);
        let a = random_baseline(&g, 1, 64, 5000);
        assert_eq!(a, random_baseline(&g, 1, 64, 5000));
        // Random 4x4 play: mean score ~1,100, median max tile 128 (envs.md §1.6).
        assert!((800.0..1500.0).contains(&a.score), "{a:?}");
        assert!((6.5..8.0).contains(&a.progress), "{a:?}");
        assert_eq!(a.success_rate, 0.0);
    }
}
