//! # `2048-strategy` and `sudoku-strategy`
//!
//! Code-as-policy tasks: the model writes a *strategy program* (Rhai by
//! default, or Python) and the host plays seeded games with it in the
//! [`sandbox`]. One step per episode: the reply must contain a fenced code
//! block (```` ```rhai ```` / ```` ```python ````, or the first fence) that
//! defines `strategy(board)`.
//!
//! The program only **chooses actions**. The game, its RNG, the Sudoku
//! solution and the scorer live in the host; every call gets a fresh copy of
//! the board (rows of integers, `0` = empty) and must return one action,
//! which the host parses strictly:
//!
//! * 2048: `"up"`, `"down"`, `"left"`, `"right"` (or `w a s d`, any case) or
//!   an integer 0–3 (0 up, 1 right, 2 down, 3 left). A move that changes
//!   nothing is allowed but wasted; 16 wasted moves in a row end the game
//!   (graded as played so far).
//! * Sudoku: `[row, col, digit]` (0-based row/col, digit 1..=size) or the
//!   text `"row col digit"`. The cell must be empty; a digit that conflicts
//!   with its row, column or box ends the game (an honest mistake); a
//!   malformed answer, an out-of-range or occupied cell is an invalid action.
//!
//! Each game runs in its own sandbox session (Rhai: fresh engine and scope;
//! Python: fresh jailed process). All completions for the same env seed (a
//! GRPO group) play the same boards: game `g` uses `derive_seed(seed, g)`.
//!
//! ## Rewards
//!
//! | term | value | weight |
//! |---|---|---|
//! | `program` | +0.5 a code block that compiles and defines `strategy`; −0.5 it does not compile or lacks `strategy`; −1 no fenced code block | 1 |
//! | `clean` | 0; −1 when the static check finds a forbidden import or name (Python allowlist; the program is then **not run**) | 1 |
//! | `outcome` | mean over games of the per-game value below | 1 |
//!
//! Per-game value (ordered so that hanging never pays more than crashing,
//! crashing never more than an invalid move, and an invalid move never more
//! than an honest loss):
//!
//! | game ended by | value |
//! |---|---|
//! | honest play (won, lost, stalled, move cap) | 2048: progress − mean progress of random play from the same position (≥ −3); Sudoku: 3 × (progress − random play's mean progress), progress = correct placements / blanks, +1 when solved |
//! | invalid action (malformed, out of range, occupied cell, wrong type) | −4 |
//! | crash (runtime error, exited, compile error, no program) | −5 |
//! | timeout (CPU or wall) | −6 |
//! | limit violation (memory, output, forbidden syscall, protocol, static check) | −6 |
//!
//! With `baseline=blind` (2048), the baseline is the better of random play
//! and [`blind_baseline`]: the expected progress of the best known program
//! that never reads the board, which random play alone lets earn ~+1.4.
//!
//! The random-play baseline is computed on the same seeded boards (2048:
//! [`crate::games::twenty48::random_baseline`]; Sudoku: a uniformly random
//! empty cell and digit per move), so random and constant strategies score
//! ≈ 0 or below, and "reaching 2048" on an easy board is worth nothing
//! unless random play cannot do it.
//!
//! ## Options
//! `language` (`rhai` | `python`, default `rhai`), `size` (2048: 3–6,
//! default 4; Sudoku: 4, 6 or 9, default 9), `games` per completion
//! (default 4 for 2048, 3 for Sudoku), `time_ms` (CPU budget per game,
//! default 2000; Rhai converts it to an operation budget at 20 M ops/s, so
//! verdicts do not depend on machine load), 2048 `baseline` (`random` |
//! `blind`, default `random`), Sudoku `difficulty`
//! (`easy`/`medium`/`hard`, default `easy`).
//!
//! `info.extra` holds `language`, `games` (per-game `{"end", "value", ...}`),
//! `ends` (counts of games per way they ended) and `baseline`.

pub mod programs;

use std::sync::Arc;
use std::time::Duration;

use rand::{Rng, SeedableRng};
use rand_chacha::ChaCha8Rng;
use sandbox::{Language, Limits, StartError, Verdict, VerdictKind};
use serde_json::{json, Value};

use crate::env::{Env, EnvError};
use crate::games::sudoku::{generate, Difficulty, Grid, Shape};
use crate::games::twenty48::engine::{Dir, Game};
use crate::games::twenty48::{progress, random_baseline};
use crate::policy::derive_seed;
use crate::registry::{EnvMaker, EnvSpec, OptionKind, OptionSpec, Options, Registry};
use crate::types::{Action, Message, Observation, Step, StepInfo};

/// Per-game value of an invalid action.
pub const INVALID: f64 = -4.0;
/// Per-game value of a crash.
pub const CRASH: f64 = -5.0;
/// Per-game value of a timeout.
pub const TIMEOUT: f64 = -6.0;
/// Per-game value of a limit violation.
pub const VIOLATION: f64 = -6.0;
// The penalty order is part of the contract: hanging never pays more than
// crashing, crashing never more than an invalid move, and an invalid move
// never more than the worst honest game (−3).
const _: () = assert!(VIOLATION <= TIMEOUT && TIMEOUT <= CRASH && CRASH <= INVALID && INVALID < -3.0);

/// Consecutive no-op 2048 moves that end a game.
pub const MAX_WASTED: u32 = 16;
/// Move cap per 2048 game.
pub const MAX_MOVES_2048: u64 = 3000;
/// Random games in the 2048 baseline.
pub const BASELINE_GAMES: usize = 16;
/// Plays of each of the eight blind cycles in the blind baseline.
pub const BLIND_PLAYS: usize = 2;

/// Which game a strategy env plays.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Kind {
    /// 2048.
    Twenty48,
    /// Sudoku.
    Sudoku,
}

/// Options of a strategy env.
#[derive(Debug, Clone)]
pub struct Config {
    /// Which game.
    pub kind: Kind,
    /// Language of the program.
    pub language: Language,
    /// Board side.
    pub size: usize,
    /// Games per completion.
    pub games: usize,
    /// CPU budget per game.
    pub time: Duration,
    /// Sudoku difficulty.
    pub difficulty: Difficulty,
    /// Sandbox limits (derived from `time`).
    pub limits: Limits,
    /// 2048: grade against the better of random play and the best known
    /// board-blind program (`baseline=blind`), not random play alone.
    pub blind: bool,
}

impl Config {
    fn from_options(kind: Kind, o: &Options) -> Result<Self, EnvError> {
        let language = Language::parse(o.text("language"))
            .ok_or_else(|| EnvError::BadOption { name: "language".into(), reason: "rhai or python".into() })?;
        let size = match kind {
            Kind::Twenty48 => o.int("size") as usize,
            Kind::Sudoku => o.text("size").parse().unwrap_or(9),
        };
        // Only `sudoku-strategy` declares `difficulty`; 2048 has none.
        let difficulty = match kind {
            Kind::Sudoku => Difficulty::parse(o.text("difficulty")).unwrap_or(Difficulty::Easy),
            Kind::Twenty48 => Difficulty::Easy,
        };
        let time = Duration::from_millis(o.int("time_ms").max(1) as u64);
        let limits = Limits {
            total_cpu: time,
            call_cpu: time.min(Duration::from_millis(500)),
            call_wall: Duration::from_secs(2),
            total_wall: time * 4 + Duration::from_secs(2),
            ops_total: time.as_millis() as u64 * sandbox::RHAI_OPS_PER_MS,
            ops_per_call: 5_000_000,
            ..Limits::default()
        };
        let blind = kind == Kind::Twenty48 && o.text("baseline") == "blind";
        Ok(Config { kind, language, size, games: o.int("games").max(1) as usize, time, difficulty, limits, blind })
    }
}

fn spec(kind: Kind) -> EnvSpec {
    let mut options = vec![
        OptionSpec {
            name: "language",
            kind: OptionKind::Choice(&["rhai", "python"]),
            default: "rhai",
            help: "language of the strategy program (python runs in the namespace/seccomp jail)",
        },
        OptionSpec {
            name: "games",
            kind: OptionKind::Int { min: 1, max: 64 },
            default: if kind == Kind::Twenty48 { "4" } else { "3" },
            help: "games played per completion (same boards for every completion of a seed)",
        },
        OptionSpec {
            name: "time_ms",
            kind: OptionKind::Int { min: 50, max: 60_000 },
            default: "2000",
            help: "CPU budget per game in ms (Rhai counts 20,000 operations per ms)",
        },
    ];
    match kind {
        Kind::Twenty48 => {
            options.push(OptionSpec {
                name: "size",
                kind: OptionKind::Int { min: 3, max: 6 },
                default: "4",
                help: "board side",
            });
            options.push(OptionSpec {
                name: "baseline",
                kind: OptionKind::Choice(&["random", "blind"]),
                default: "random",
                help: "grade against random play, or against the better of random play and the best known \
                       board-blind program (a fixed move cycle; it beats random play by ~1.4 tile doublings)",
            });
            EnvSpec {
                id: "2048-strategy",
                version: 1,
                description: "Write a program that plays 2048; graded against random play on the same boards",
                max_steps: 1,
                options,
                ..EnvSpec::default()
            }
        }
        Kind::Sudoku => {
            options.push(OptionSpec {
                name: "size",
                kind: OptionKind::Choice(&["4", "6", "9"]),
                default: "9",
                help: "grid side",
            });
            options.push(OptionSpec {
                name: "difficulty",
                kind: OptionKind::Choice(&["easy", "medium", "hard"]),
                default: "easy",
                help: "puzzle difficulty",
            });
            EnvSpec {
                id: "sudoku-strategy",
                version: 1,
                description: "Write a program that fills a Sudoku one digit per call; graded against random play",
                max_steps: 1,
                options,
                ..EnvSpec::default()
            }
        }
    }
}

/// Registers `2048-strategy` and `sudoku-strategy`.
pub fn register(r: &mut Registry) {
    for kind in [Kind::Twenty48, Kind::Sudoku] {
        r.register(spec(kind), move |opts| {
            let cfg = Arc::new(Config::from_options(kind, opts)?);
            let maker: EnvMaker = Arc::new(move || Box::new(StrategyEnv::new(cfg.clone())) as Box<dyn Env>);
            Ok(maker)
        });
    }
}

/// A good hand-written 2048 strategy (Rhai): one-ply search scoring empty
/// cells, merges, monotone rows/columns and the bottom-left corner.
pub const DEMO_2048_RHAI: &str = r#"fn slide(line) {
    let tiles = [];
    for v in line { if v != 0 { tiles.push(v); } }
    let out = [];
    let gain = 0;
    let i = 0;
    while i < tiles.len() {
        if i + 1 < tiles.len() && tiles[i] == tiles[i + 1] {
            out.push(tiles[i] * 2);
            gain += tiles[i] * 2;
            i += 2;
        } else {
            out.push(tiles[i]);
            i += 1;
        }
    }
    while out.len() < line.len() { out.push(0); }
    [out, gain]
}

fn apply(board, dir) {
    let n = board.len();
    let res = [];
    for r in 0..n { let row = []; row.pad(n, 0); res.push(row); }
    let gain = 0;
    for k in 0..n {
        let line = [];
        for j in 0..n {
            let v = if dir == 0 { board[j][k] } else if dir == 1 { board[k][n - 1 - j] }
                    else if dir == 2 { board[n - 1 - j][k] } else { board[k][j] };
            line.push(v);
        }
        let s = slide(line);
        gain += s[1];
        for j in 0..n {
            let v = s[0][j];
            if dir == 0 { res[j][k] = v; } else if dir == 1 { res[k][n - 1 - j] = v; }
            else if dir == 2 { res[n - 1 - j][k] = v; } else { res[k][j] = v; }
        }
    }
    [res, gain]
}

fn value(b) {
    let n = b.len();
    let empty = 0;
    for row in b { for v in row { if v == 0 { empty += 1; } } }
    let mono = 0;
    for r in 0..n {
        for c in 1..n {
            if b[r][c - 1] >= b[r][c] { mono += b[r][c - 1]; }
            if b[c - 1][r] <= b[c][r] { mono += b[c][r]; }
        }
    }
    let corner = b[n - 1][0];
    empty * 200 + mono + corner * 4
}

fn strategy(board) {
    let best = -1;
    let best_score = -1;
    for dir in [2, 3, 1, 0] {
        let m = apply(board, dir);
        if m[0] != board {
            let s = value(m[0]) + m[1] * 2;
            if dir == 0 { s = s / 4; }
            if s > best_score { best_score = s; best = dir; }
        }
    }
    if best < 0 { 2 } else { best }
}"#;

/// A good hand-written Sudoku strategy (Rhai): the empty cell with the
/// fewest candidates (MRV) and its smallest candidate.
pub const DEMO_SUDOKU_RHAI: &str = r#"fn strategy(board) {
    let n = board.len();
    let br = if n == 9 { 3 } else { 2 };
    let bc = if n == 4 { 2 } else { 3 };
    let best = [];
    let best_count = n + 1;
    for r in 0..n {
        for c in 0..n {
            if board[r][c] != 0 { continue; }
            let used = [];
            used.pad(n + 1, false);
            for k in 0..n {
                used[board[r][k]] = true;
                used[board[k][c]] = true;
            }
            let r0 = (r / br) * br;
            let c0 = (c / bc) * bc;
            for i in 0..br { for j in 0..bc { used[board[r0 + i][c0 + j]] = true; } }
            let count = 0;
            let first = 0;
            for d in 1..=n { if !used[d] { count += 1; if first == 0 { first = d; } } }
            if count < best_count && count > 0 { best_count = count; best = [r, c, first]; }
        }
    }
    best
}"#;

fn fence_lang(info: &str) -> &str {
    info.split_whitespace().next().unwrap_or("")
}

/// Extracts the program: the first fenced block tagged with `language`
/// (```` ```rhai ````, ```` ```python ````/```` ```py ````), else the first
/// fenced block. `None` when the reply has no closed fence.
pub fn extract_code(text: &str, language: Language) -> Option<String> {
    let mut blocks = Vec::new();
    let mut rest = text;
    while let Some(start) = rest.find("```") {
        let after = &rest[start + 3..];
        let line_end = after.find('\n')?;
        let info = after[..line_end].trim().to_ascii_lowercase();
        let body = &after[line_end + 1..];
        let end = body.find("```")?;
        blocks.push((info, body[..end].to_string()));
        rest = &body[end + 3..];
    }
    let wanted = |info: &str| Language::parse(fence_lang(info)) == Some(language);
    blocks.iter().find(|(i, _)| wanted(i)).or_else(|| blocks.first()).map(|(_, b)| b.clone())
}

/// How one game ended.
#[derive(Debug, Clone, PartialEq)]
struct GameResult {
    end: &'static str,
    value: f64,
    detail: Value,
    reason: Option<String>,
}

fn verdict_value(v: &Verdict) -> (&'static str, f64) {
    match v.kind {
        VerdictKind::Ok => ("ok", 0.0),
        VerdictKind::InvalidAction => ("invalid", INVALID),
        VerdictKind::CompileError | VerdictKind::RuntimeError => ("crash", CRASH),
        VerdictKind::TimeoutCpu | VerdictKind::TimeoutWall => ("timeout", TIMEOUT),
        VerdictKind::MemoryLimit
        | VerdictKind::OutputLimit
        | VerdictKind::SyscallViolation
        | VerdictKind::ProtocolError => ("violation", VIOLATION),
    }
}

fn failed(v: &Verdict, detail: Value) -> GameResult {
    let (end, value) = verdict_value(v);
    GameResult { end, value, detail, reason: Some(v.to_string()) }
}

/// Parses a 2048 action strictly.
pub fn parse_2048(s: &str) -> Option<Dir> {
    let t = s.trim();
    if t.len() > 5 {
        return None;
    }
    match t {
        "0" => Some(Dir::Up),
        "1" => Some(Dir::Right),
        "2" => Some(Dir::Down),
        "3" => Some(Dir::Left),
        _ => Dir::parse(t),
    }
}

/// Parses a Sudoku action strictly: exactly three integers.
pub fn parse_sudoku(s: &str, n: usize) -> Option<(usize, usize, u8)> {
    let parts: Vec<&str> = s.split_whitespace().collect();
    if parts.len() != 3 {
        return None;
    }
    let r: usize = parts[0].parse().ok()?;
    let c: usize = parts[1].parse().ok()?;
    let d: u8 = parts[2].parse().ok()?;
    (r < n && c < n && d >= 1 && d as usize <= n).then_some((r, c, d))
}

fn board_json(rows: &[Vec<u64>]) -> Value {
    Value::Array(rows.iter().map(|r| Value::Array(r.iter().map(|&v| json!(v)).collect())).collect())
}

fn start_session(cfg: &Config, code: &str, seed: u64) -> Result<Box<dyn sandbox::Session>, Result<Verdict, EnvError>> {
    let limits = Limits { seed: derive_seed(seed, 77), ..cfg.limits.clone() };
    match sandbox::start(cfg.language, code, "strategy", &limits) {
        Ok(s) => Ok(s),
        Err(StartError::Rejected(v)) => Err(Ok(v)),
        Err(StartError::Sandbox(e)) => Err(Err(EnvError::Other(e.to_string()))),
    }
}

/// The board-blind cycle `a, b, opposite(a), b` in its eight rotations and
/// reflections: the best program that never reads the board among all
/// cycles of up to four moves (mean progress 8.96 against random play's
/// 7.52 on 4×4, 200 seeds; a plain W/A/S/D cycle reaches 8.49).
fn blind_cycles() -> [[Dir; 4]; 8] {
    let mut out = [[Dir::Up; 4]; 8];
    for (i, a) in Dir::ALL.into_iter().enumerate() {
        for (j, turn) in [1, 3].into_iter().enumerate() {
            let b = Dir::ALL[(a.id() + turn) % 4];
            out[2 * i + j] = [a, b, Dir::ALL[(a.id() + 2) % 4], b];
        }
    }
    out
}

/// Progress of a board-blind cycle from `start` under the env's rules
/// (wasted moves count; `MAX_WASTED` in a row end the game).
fn play_cycle(start: &Game, spawn_seed: u64, cycle: &[Dir]) -> f64 {
    let mut g = start.clone();
    g.reseed(spawn_seed);
    let (mut calls, mut wasted) = (0u64, 0u32);
    while !g.won() && !g.is_over() && calls < MAX_MOVES_2048 && wasted < MAX_WASTED {
        let d = cycle[calls as usize % cycle.len()];
        calls += 1;
        if g.can_move(d) {
            let _ = g.apply(d);
            wasted = 0;
        } else {
            wasted += 1;
        }
    }
    progress(&g)
}

/// The expected progress of the best known board-blind program from
/// `start`: the mean over the eight symmetric versions of its cycle, each
/// played `plays` times with spawns from `derive_seed(seed, 1000 + …)`. A
/// blind program cannot know which version suits a board, so the mean (not
/// the best version per board) is what it can expect.
pub fn blind_baseline(start: &Game, seed: u64, plays: usize) -> f64 {
    let cycles = blind_cycles();
    let mut sum = 0.0;
    for k in 0..plays.max(1) {
        for (i, c) in cycles.iter().enumerate() {
            sum += play_cycle(start, derive_seed(seed, 1000 + (k * cycles.len() + i) as u64), c);
        }
    }
    sum / (plays.max(1) * cycles.len()) as f64
}

fn play_2048(cfg: &Config, code: &str, seed: u64) -> Result<GameResult, EnvError> {
    let start = Game::new(cfg.size, seed);
    let random = random_baseline(&start, seed, BASELINE_GAMES, MAX_MOVES_2048).progress;
    let blind = cfg.blind.then(|| blind_baseline(&start, seed, BLIND_PLAYS));
    let base_progress = blind.map_or(random, |b| b.max(random));
    let mut game = start.clone();
    let round = |x: f64| (x * 1000.0).round() / 1000.0;
    let detail = |g: &Game, end: &str| {
        let mut d = json!({"end": end, "score": g.score(), "max_tile": g.max_tile(), "moves": g.moves(),
                           "baseline_progress": round(base_progress)});
        if let Some(b) = blind {
            d["random_progress"] = json!(round(random));
            d["blind_progress"] = json!(round(b));
        }
        d
    };
    let mut session = match start_session(cfg, code, seed) {
        Ok(s) => s,
        Err(Ok(v)) => return Ok(failed(&v, detail(&game, "start"))),
        Err(Err(e)) => return Err(e),
    };
    let mut wasted = 0;
    let mut calls = 0u64;
    let end = loop {
        if game.won() {
            break "won";
        }
        if game.is_over() {
            break "lost";
        }
        if calls >= MAX_MOVES_2048 {
            break "move_cap";
        }
        if wasted >= MAX_WASTED {
            break "stalled";
        }
        calls += 1;
        let action = match session.call(&[board_json(&game.rows())]) {
            Ok(a) => a,
            Err(v) => return Ok(failed(&v, detail(&game, "verdict"))),
        };
        let Some(dir) = parse_2048(&action) else {
            let v = Verdict::new(VerdictKind::InvalidAction, format!("`{action}` is not a move"));
            return Ok(failed(&v, detail(&game, "invalid")));
        };
        if game.can_move(dir) {
            let _ = game.apply(dir);
            wasted = 0;
        } else {
            wasted += 1;
        }
    };
    let value = (progress(&game) - base_progress).max(-3.0);
    Ok(GameResult { end, value: (value * 1000.0).round() / 1000.0, detail: detail(&game, end), reason: None })
}

fn conflicts(board: &Grid, r: usize, c: usize, d: u8) -> bool {
    board.candidates(r, c) & (1u16 << (d - 1)) == 0
}

/// Mean progress of uniformly random play (random empty cell, random digit)
/// on `puzzle`, over `games` games.
fn sudoku_random_baseline(puzzle: &Grid, solution: &Grid, seed: u64, games: usize) -> f64 {
    let n = puzzle.size();
    let blanks = puzzle.blanks().max(1) as f64;
    let mut total = 0.0;
    for k in 0..games as u64 {
        let mut rng = ChaCha8Rng::seed_from_u64(derive_seed(seed, 1000 + k));
        let mut b = *puzzle;
        let mut correct = 0;
        loop {
            let empties: Vec<(usize, usize)> =
                (0..n * n).map(|i| (i / n, i % n)).filter(|&(r, c)| b.get(r, c) == 0).collect();
            if empties.is_empty() {
                break;
            }
            let (r, c) = empties[rng.gen_range(0..empties.len())];
            let d = rng.gen_range(1..=n as u8);
            if conflicts(&b, r, c, d) {
                break;
            }
            b.set(r, c, d);
            if solution.get(r, c) == d {
                correct += 1;
            }
        }
        total += correct as f64 / blanks + if b.is_solved() { 1.0 } else { 0.0 };
    }
    total / games.max(1) as f64
}

fn play_sudoku(cfg: &Config, code: &str, seed: u64) -> Result<GameResult, EnvError> {
    let shape = Shape::of_size(cfg.size)
        .ok_or_else(|| EnvError::BadOption { name: "size".into(), reason: "4, 6 or 9".into() })?;
    let mut rng = ChaCha8Rng::seed_from_u64(seed);
    let p = generate(shape, cfg.difficulty, &mut rng);
    let base = sudoku_random_baseline(&p.puzzle, &p.solution, seed, 16);
    let n = cfg.size;
    let blanks = p.puzzle.blanks().max(1);
    let mut board = p.puzzle;
    let mut correct = 0usize;
    let detail = |correct: usize, end: &str| json!({"end": end, "correct": correct, "blanks": blanks, "baseline_progress": (base * 1000.0).round() / 1000.0});
    let mut session = match start_session(cfg, code, seed) {
        Ok(s) => s,
        Err(Ok(v)) => return Ok(failed(&v, detail(0, "start"))),
        Err(Err(e)) => return Err(e),
    };
    let end = loop {
        if board.blanks() == 0 {
            break if board.is_solved() { "solved" } else { "wrong" };
        }
        let rows: Vec<Vec<u64>> = board.rows().iter().map(|r| r.iter().map(|&v| u64::from(v)).collect()).collect();
        let action = match session.call(&[board_json(&rows)]) {
            Ok(a) => a,
            Err(v) => return Ok(failed(&v, detail(correct, "verdict"))),
        };
        let Some((r, c, d)) = parse_sudoku(&action, n) else {
            let v = Verdict::new(VerdictKind::InvalidAction, format!("`{action}` is not `row col digit` in range"));
            return Ok(failed(&v, detail(correct, "invalid")));
        };
        if board.get(r, c) != 0 {
            let v = Verdict::new(VerdictKind::InvalidAction, format!("cell ({r}, {c}) is not empty"));
            return Ok(failed(&v, detail(correct, "invalid")));
        }
        if conflicts(&board, r, c, d) {
            break "conflict";
        }
        board.set(r, c, d);
        if p.solution.get(r, c) == d {
            correct += 1;
        }
    };
    let prog = correct as f64 / blanks as f64 + if end == "solved" { 1.0 } else { 0.0 };
    let value = (3.0 * (prog - base) * 1000.0).round() / 1000.0;
    Ok(GameResult { end, value, detail: detail(correct, end), reason: None })
}

/// A strategy env (`2048-strategy` or `sudoku-strategy`).
pub struct StrategyEnv {
    cfg: Arc<Config>,
    seed: Option<u64>,
    done: bool,
}

impl StrategyEnv {
    /// A new env with the given configuration.
    pub fn new(cfg: Arc<Config>) -> Self {
        Self { cfg, seed: None, done: false }
    }

    fn prompt(&self) -> (String, String) {
        let c = &self.cfg;
        let lang = c.language.name();
        let system = format!(
            "You write programs. Reply with one fenced code block (```{lang} ... ```) defining `strategy(board)`. \
             It is called once per move with a fresh copy of the board and must return quickly. \
             Only the returned value counts; exiting or changing the board does nothing. Printed output is \
             discarded, but more than {kib} KiB of it in one game stops the game as a limit violation.",
            kib = c.limits.output_bytes / 1024
        );
        let rules = if lang == "python" {
            format!(
                "Python 3, standard library modules allowed: {}. No files, network or processes.",
                sandbox::python::DEFAULT_ALLOWED_MODULES.join(", ")
            )
        } else {
            "Rhai: functions, arrays, maps, loops and math only (no eval, no imports).".to_string()
        };
        let task = match c.kind {
            Kind::Twenty48 => format!(
                "Write a 2048 strategy for a {n}x{n} board. `board` is a list of {n} rows of {n} integers \
                 (0 = empty, otherwise the tile value). Return one move: \"up\", \"down\", \"left\" or \"right\". \
                 Your program plays {g} games (target tile 2048); it is graded on how far it gets compared with \
                 {against} on the same boards. A move that changes nothing is wasted; {w} in a row end the game. \
                 CPU budget: {t} ms per game. {rules}",
                against = if c.blind {
                    "the better of random play and a program that cycles moves without reading the board"
                } else {
                    "random play"
                },
                n = c.size,
                g = c.games,
                w = MAX_WASTED,
                t = c.time.as_millis()
            ),
            Kind::Sudoku => format!(
                "Write a Sudoku strategy for a {n}x{n} grid. `board` is a list of {n} rows of {n} integers \
                 (0 = empty). Return one placement [row, col, digit] with 0-based row and col and digit 1..{n}, \
                 for an empty cell. A placement that conflicts with its row, column or box ends the game. \
                 Your program plays {g} puzzles ({d}); it is graded on correct placements and solved puzzles \
                 compared with random play. CPU budget: {t} ms per puzzle. {rules}",
                n = c.size,
                g = c.games,
                d = c.difficulty.name(),
                t = c.time.as_millis()
            ),
        };
        (system, task)
    }

    /// The first board of this seed's games, as the program will see it.
    fn first_board(&self, seed: u64) -> (String, Value) {
        let s = derive_seed(seed, 0);
        match self.cfg.kind {
            Kind::Twenty48 => {
                let g = Game::new(self.cfg.size, s);
                (g.render(), board_json(&g.rows()))
            }
            Kind::Sudoku => match Shape::of_size(self.cfg.size) {
                Some(shape) => {
                    let p = generate(shape, self.cfg.difficulty, &mut ChaCha8Rng::seed_from_u64(s));
                    (p.puzzle.render(false), json!(p.puzzle.rows()))
                }
                None => (String::new(), Value::Null),
            },
        }
    }

    fn observation(&self) -> Observation {
        let (system, mut user) = self.prompt();
        let (text, board) = self.first_board(self.seed.unwrap_or(0));
        user.push_str("\n\nThe first board of this round:\n");
        user.push_str(&text);
        Observation {
            messages: vec![Message::system(system), Message::user(user)],
            images: Vec::new(),
            state: json!({
                "language": self.cfg.language.name(),
                "size": self.cfg.size,
                "games": self.cfg.games,
                "first_board": board,
                "answer_space": {"kind": "code", "language": self.cfg.language.name()},
            }),
            legal_actions: Vec::new(),
        }
    }
}

impl Env for StrategyEnv {
    fn reset(&mut self, seed: u64) -> Result<Observation, EnvError> {
        self.seed = Some(seed);
        self.done = false;
        Ok(self.observation())
    }

    fn step(&mut self, action: &Action) -> Result<Step, EnvError> {
        let seed = self.seed.ok_or(EnvError::NotReset)?;
        if self.done {
            return Err(EnvError::EpisodeOver);
        }
        self.done = true;
        let cfg = self.cfg.clone();
        let mut info = StepInfo::default();
        info.extra.insert("language".into(), json!(cfg.language.name()));
        let obs = self.observation();
        let outcome_all = |value: f64, info: &mut StepInfo, reason: String| {
            info.term("outcome", Some(value), 1.0);
            info.reason = Some(reason);
            info.success = Some(false);
        };
        let Some(code) = extract_code(&action.text, cfg.language) else {
            info.term("program", Some(-1.0), 1.0);
            info.term("clean", Some(0.0), 1.0);
            outcome_all(CRASH, &mut info, "no fenced code block in the reply".into());
            return Ok(Step::new(obs, info, true, false));
        };
        // Static checks: Python's allowlist; both languages compile.
        if cfg.language == Language::Python {
            if let Err(f) = sandbox::python::static_check(&code, &cfg.limits.python.allowed_modules) {
                if f.has_syntax() {
                    info.term("program", Some(-0.5), 1.0);
                    info.term("clean", Some(0.0), 1.0);
                    outcome_all(CRASH, &mut info, format!("compile_error: {}", f.summary()));
                } else {
                    info.term("program", Some(0.5), 1.0);
                    info.term("clean", Some(-1.0), 1.0);
                    outcome_all(VIOLATION, &mut info, format!("forbidden: {}", f.summary()));
                }
                return Ok(Step::new(obs, info, true, false));
            }
        } else if let Err(v) = sandbox::rhai_backend::compile_check(&code, "strategy", Some(1)) {
            info.term("program", Some(-0.5), 1.0);
            info.term("clean", Some(0.0), 1.0);
            outcome_all(CRASH, &mut info, v.to_string());
            return Ok(Step::new(obs, info, true, false));
        }
        let mut results = Vec::with_capacity(cfg.games);
        for g in 0..cfg.games {
            let game_seed = derive_seed(seed, g as u64);
            let r = match cfg.kind {
                Kind::Twenty48 => play_2048(&cfg, &code, game_seed)?,
                Kind::Sudoku => play_sudoku(&cfg, &code, game_seed)?,
            };
            results.push(r);
        }
        let compiled = !results.iter().all(|r| r.end == "crash" && r.detail["end"] == "start");
        info.term("program", Some(if compiled { 0.5 } else { -0.5 }), 1.0);
        info.term("clean", Some(0.0), 1.0);
        let mean = results.iter().map(|r| r.value).sum::<f64>() / results.len().max(1) as f64;
        info.term("outcome", Some((mean * 1000.0).round() / 1000.0), 1.0);
        info.reason = results.iter().find_map(|r| r.reason.clone());
        info.success = Some(mean > 0.0);
        let mut verdicts = serde_json::Map::new();
        for r in &results {
            let e = verdicts.entry(r.end.to_string()).or_insert(json!(0));
            *e = json!(e.as_u64().unwrap_or(0) + 1);
        }
        info.extra.insert("ends".into(), Value::Object(verdicts));
        info.extra.insert(
            "games".into(),
            Value::Array(
                results
                    .iter()
                    .map(|r| {
                        let mut d = r.detail.clone();
                        d["value"] = json!(r.value);
                        d
                    })
                    .collect(),
            ),
        );
        Ok(Step::new(obs, info, true, false))
    }

    fn demonstration(&self) -> Option<Action> {
        if self.done || self.seed.is_none() {
            return None;
        }
        let code = match self.cfg.kind {
            Kind::Twenty48 => DEMO_2048_RHAI,
            Kind::Sudoku => DEMO_SUDOKU_RHAI,
        };
        if self.cfg.language != Language::Rhai {
            return None;
        }
        Some(Action::text(format!("```rhai\n{code}\n```")))
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn the_prompt_states_what_printing_costs_and_the_verdict_says_it() {
        let mut reg = Registry::new();
        register(&mut reg);
        let mut env = reg.make("2048-strategy", &["games=1"]).unwrap();
        let obs = env.reset(0).unwrap();
        let kib = Limits::default().output_bytes / 1024;
        assert!(obs.messages[0].content.contains(&format!("more than {kib} KiB")), "{}", obs.messages[0].content);
        let flood = format!(
            "```rhai\nfn strategy(b) {{ for i in 0..{} {{ print(\"0123456789abcdef\"); }} \"up\" }}\n```",
            1100
        );
        let step = env.step(&Action::text(flood)).unwrap();
        assert_eq!(step.info.extra["ends"]["violation"], 1, "{:?}", step.info.extra);
        let reason = step.info.reason.clone().unwrap_or_default();
        assert!(reason.contains("output_limit") && reason.contains("16384 bytes"), "{reason}");
    }

    #[test]
    fn generated_programs_play_with_varying_quality() {
        let mut reg = Registry::new();
        register(&mut reg);
        let opts = reg.options("2048-strategy", &["games=2".to_string()]).unwrap();
        let maker = reg.maker("2048-strategy", &opts).unwrap();
        let mut outcomes = Vec::new();
        for seed in 0..12 {
            let mut env = maker();
            env.reset(seed).unwrap();
            let step = env.step(&Action::text(programs::program_2048(seed))).unwrap();
            let get = |n: &str| step.info.breakdown.iter().find(|t| t.name == n).and_then(|t| t.value).unwrap();
            assert_eq!(get("program"), 0.5, "seed {seed}: {:?}", step.info.reason);
            outcomes.push(get("outcome"));
        }
        eprintln!("{outcomes:?}");
        let (lo, hi) = outcomes.iter().fold((f64::MAX, f64::MIN), |(a, b), &x| (a.min(x), b.max(x)));
        assert!(outcomes.iter().all(|&x| x >= -3.0), "{outcomes:?}");
        assert!(hi - lo > 0.5 && hi > 0.3, "quality should vary: {outcomes:?}");
    }

    #[test]
    fn code_blocks_are_extracted() {
        let t =
            "Here:\n```python\ndef strategy(b):\n    return 'up'\n```\nand\n```rhai\nfn strategy(b) { \"up\" }\n```";
        assert!(extract_code(t, Language::Rhai).unwrap().contains("fn strategy"));
        assert!(extract_code(t, Language::Python).unwrap().contains("def strategy"));
        assert_eq!(extract_code("no code", Language::Rhai), None);
        assert_eq!(extract_code("```rhai\nunclosed", Language::Rhai), None);
    }

    #[test]
    fn actions_are_parsed_strictly() {
        assert_eq!(parse_2048("up"), Some(Dir::Up));
        assert_eq!(parse_2048("3"), Some(Dir::Left));
        assert_eq!(parse_2048("up left"), None);
        assert_eq!(parse_2048("4"), None);
        assert_eq!(parse_sudoku("0 8 9", 9), Some((0, 8, 9)));
        assert_eq!(parse_sudoku("0 9 9", 9), None);
        assert_eq!(parse_sudoku("0 1 0", 9), None);
        assert_eq!(parse_sudoku("0 1", 9), None);
    }
}
