//! The `sudoku` env: solve a generated puzzle with a unique solution, either
//! in one reply (`mode=answer`) or one digit per turn (`mode=move`).
//!
//! ## Rewards, `mode=answer` (one step)
//!
//! | term | weight | value |
//! |---|---|---|
//! | `format` | 0.5 | +1 the `<answer>` tag holds a grid of the right shape; −1 otherwise |
//! | `cells` | 1.0 | fraction of the originally blank cells filled correctly; 0 if a clue was changed |
//! | `solved` | 2.0 | 1 when the grid is the solution (checked by the rules and the clues); else 0 |
//! | `clues` | 1.0 | 0 when every given clue is kept; −1 when any was changed |
//!
//! Ceiling 3.5 (the `oracle`/`solver`); an unreadable reply scores −0.5, the
//! same as a well-formed grid that changes a clue.
//!
//! ## Rewards, `mode=move` (multi-turn)
//!
//! | term | weight | value |
//! |---|---|---|
//! | `placement` | 1.0 | 1/blanks for a correct digit (all placements together sum to 1) |
//! | `penalty` | 1.0 | −1 malformed reply, out-of-range numbers or a filled cell; −0.5 a wrong digit; ends the episode |
//! | `solved` | 2.0 | 1 on the placement that completes the grid |
//!
//! Ceiling 3.0. Placements are worth at most 1 in total while solving is
//! worth 2 more, so stopping short of the solution (the greedy-filler
//! collapse seen in the Unsloth Sudoku notebooks) is never a local optimum.

use std::sync::Arc;

use rand::SeedableRng;
use rand_chacha::ChaCha8Rng;
use serde_json::json;

use super::generate::{generate, Difficulty, Puzzle};
use super::grid::{Grid, Shape};
use crate::env::{Env, EnvError};
use crate::registry::{EnvMaker, EnvSpec, OptionKind, OptionSpec, Options, Registry};
use crate::rewards::extract_tag;
use crate::types::{Action, Message, Observation, Step, StepInfo};

/// The answer tag.
pub const ANSWER_TAG: &str = "answer";

/// Weight of `format` (answer mode).
pub const W_FORMAT: f64 = 0.5;
/// Weight of `cells` (answer mode).
pub const W_CELLS: f64 = 1.0;
/// Weight of `solved` (both modes).
pub const W_SOLVED: f64 = 2.0;
/// Weight of `clues` (answer mode).
pub const W_CLUES: f64 = 1.0;
/// Weight of `placement` (move mode).
pub const W_PLACEMENT: f64 = 1.0;
/// Weight of `penalty` (move mode).
pub const W_PENALTY: f64 = 1.0;
/// `penalty` value for a malformed reply, out-of-range numbers or a filled cell.
pub const PENALTY_MALFORMED: f64 = -1.0;
/// `penalty` value for a well-formed placement of the wrong digit.
pub const PENALTY_WRONG: f64 = -0.5;

/// How the policy answers.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Mode {
    /// One reply with the completed grid.
    Answer,
    /// One placement (`row column digit`) per turn.
    Move,
}

impl Mode {
    /// The mode's option value.
    pub fn name(self) -> &'static str {
        match self {
            Mode::Answer => "answer",
            Mode::Move => "move",
        }
    }
}

/// The env's settings.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct SudokuConfig {
    /// Grid shape.
    pub shape: Shape,
    /// Puzzle difficulty.
    pub difficulty: Difficulty,
    /// Answer or move mode.
    pub mode: Mode,
}

impl Default for SudokuConfig {
    fn default() -> Self {
        Self { shape: Shape::NINE, difficulty: Difficulty::Medium, mode: Mode::Answer }
    }
}

impl SudokuConfig {
    /// Reads the registry options `size`, `difficulty` and `mode`.
    pub fn from_options(opts: &Options) -> Result<Self, EnvError> {
        let bad = |name: &str, reason: String| EnvError::BadOption { name: name.into(), reason };
        let size = match opts.text("size") {
            "" => 9,
            s => s.parse::<usize>().map_err(|_| bad("size", format!("`{s}` is not 4, 6 or 9")))?,
        };
        let shape = Shape::of_size(size).ok_or_else(|| bad("size", format!("`{size}` is not 4, 6 or 9")))?;
        let difficulty = match opts.text("difficulty") {
            "" => Difficulty::Medium,
            d => Difficulty::parse(d).ok_or_else(|| bad("difficulty", format!("`{d}` is not easy|medium|hard")))?,
        };
        let mode = match opts.text("mode") {
            "" | "answer" => Mode::Answer,
            "move" => Mode::Move,
            m => return Err(bad("mode", format!("`{m}` is not answer|move"))),
        };
        Ok(Self { shape, difficulty, mode })
    }
}

/// The env's spec.
pub fn spec() -> EnvSpec {
    EnvSpec {
        id: "sudoku",
        version: 1,
        description:
            "Solve a Sudoku with a unique solution (4x4, 6x6 or 9x9): the whole grid at once or one digit per turn",
        max_steps: 81,
        options: vec![
            OptionSpec {
                name: "size",
                kind: OptionKind::Choice(&["4", "6", "9"]),
                default: "9",
                help: "grid side: 4 (2x2 boxes), 6 (2x3 boxes) or 9 (3x3 boxes)",
            },
            OptionSpec {
                name: "difficulty",
                kind: OptionKind::Choice(&["easy", "medium", "hard"]),
                default: "medium",
                help: "easy/medium: naked+hidden singles suffice (40/32 clues on 9x9); hard: ~24 clues, singles do not suffice",
            },
            OptionSpec {
                name: "mode",
                kind: OptionKind::Choice(&["answer", "move"]),
                default: "answer",
                help: "answer: reply with the whole grid; move: place one digit per turn as `row col digit`",
            },
        ],
        ..EnvSpec::default()
    }
}

/// Registers the `sudoku` env.
pub fn register(r: &mut Registry) {
    r.register(spec(), |opts| {
        let cfg = SudokuConfig::from_options(opts)?;
        let maker: EnvMaker = Arc::new(move || Box::new(SudokuEnv::new(cfg)) as Box<dyn Env>);
        Ok(maker)
    });
}

struct Episode {
    puzzle: Puzzle,
    board: Grid,
    placed: usize,
    done: bool,
}

/// The `sudoku` env.
pub struct SudokuEnv {
    cfg: SudokuConfig,
    system: String,
    episode: Option<Episode>,
}

impl SudokuEnv {
    /// An env with these settings.
    pub fn new(cfg: SudokuConfig) -> Self {
        Self { system: system_prompt(&cfg), cfg, episode: None }
    }

    /// The current puzzle, once reset.
    pub fn puzzle(&self) -> Option<&Puzzle> {
        self.episode.as_ref().map(|e| &e.puzzle)
    }

    fn observation(&self, ep: &Episode, text: String) -> Observation {
        let p = &ep.puzzle;
        let shape = self.cfg.shape;
        let mut state = json!({
            "size": shape.size(),
            "box_rows": shape.box_rows(),
            "box_cols": shape.box_cols(),
            "difficulty": self.cfg.difficulty.name(),
            "mode": self.cfg.mode.name(),
            "clues": p.clues(),
            "puzzle": p.puzzle.rows(),
            "grid": ep.board.rows(),
            "answer_tag": ANSWER_TAG,
        });
        if self.cfg.mode == Mode::Answer {
            state["answer_space"] = json!({"kind": "grid", "size": shape.size()});
        }
        let legal_actions = if self.cfg.mode == Mode::Move && !ep.done { placements(&ep.board) } else { Vec::new() };
        Observation {
            messages: vec![Message::system(self.system.clone()), Message::user(text)],
            images: Vec::new(),
            state,
            legal_actions,
        }
    }

    fn step_answer(&mut self, action: &Action) -> Result<Step, EnvError> {
        let ep = self.episode.as_mut().ok_or(EnvError::NotReset)?;
        ep.done = true;
        let (puzzle, solution) = (ep.puzzle.puzzle, ep.puzzle.solution);
        let mut info = StepInfo::default();
        info.extra.insert("clues".into(), json!(puzzle.filled()));
        info.extra.insert("blanks".into(), json!(puzzle.blanks()));
        let parsed = match extract_tag(&action.text, ANSWER_TAG) {
            None => Err(if action.text.trim().is_empty() {
                "empty reply".to_string()
            } else {
                format!("no <{ANSWER_TAG}>…</{ANSWER_TAG}> tag with the grid")
            }),
            Some(body) => Grid::parse(self.cfg.shape, body).map_err(|e| format!("unreadable grid: {e}")),
        };
        let success = match parsed {
            Err(reason) => {
                info.term("format", Some(-1.0), W_FORMAT);
                info.term("cells", Some(0.0), W_CELLS);
                info.term("solved", Some(0.0), W_SOLVED);
                info.term("clues", Some(0.0), W_CLUES);
                info.reason = Some(reason);
                false
            }
            Ok(grid) => {
                let n = self.cfg.shape.size();
                let mut changed = Vec::new();
                let mut correct = 0usize;
                for (i, ((&g, &p), &s)) in grid.cells().iter().zip(puzzle.cells()).zip(solution.cells()).enumerate() {
                    if p != 0 {
                        if g != p {
                            changed.push((i / n + 1, i % n + 1, p, g));
                        }
                    } else if g == s {
                        correct += 1;
                    }
                }
                let blanks = puzzle.blanks();
                let solved = changed.is_empty() && grid.solves(&puzzle) && grid == solution;
                let cells = if changed.is_empty() && blanks > 0 { correct as f64 / blanks as f64 } else { 0.0 };
                info.term("format", Some(1.0), W_FORMAT);
                info.term("cells", Some(cells), W_CELLS);
                info.term("solved", Some(if solved { 1.0 } else { 0.0 }), W_SOLVED);
                info.term("clues", Some(if changed.is_empty() { 0.0 } else { -1.0 }), W_CLUES);
                info.extra.insert("correct".into(), json!(correct));
                info.extra.insert("changed_clues".into(), json!(changed.len()));
                info.reason = if let Some(&(r, c, p, g)) = changed.first() {
                    let was = if g == 0 { "blank".to_string() } else { g.to_string() };
                    Some(format!(
                        "changed {} given clue{} (row {r}, column {c}: {p} became {was}); the grid earns no credit",
                        changed.len(),
                        if changed.len() == 1 { "" } else { "s" }
                    ))
                } else if !solved {
                    Some(format!("{} of {blanks} blank cells wrong or left blank", blanks - correct))
                } else {
                    None
                };
                solved
            }
        };
        info.success = Some(success);
        let ep = self.episode.as_ref().ok_or(EnvError::NotReset)?;
        let obs = self.observation(ep, question(&self.cfg, &ep.puzzle));
        Ok(Step::new(obs, info, true, false))
    }

    fn step_move(&mut self, action: &Action) -> Result<Step, EnvError> {
        let n = self.cfg.shape.size();
        let ep = self.episode.as_mut().ok_or(EnvError::NotReset)?;
        let mut info = StepInfo::default();
        let outcome = parse_move(&action.text, n).and_then(|(r, c, d)| {
            let (r0, c0) = (r - 1, c - 1);
            if ep.puzzle.puzzle.get(r0, c0) != 0 {
                return Err((PENALTY_MALFORMED, format!("row {r}, column {c} is a given clue")));
            }
            if ep.board.get(r0, c0) != 0 {
                return Err((PENALTY_MALFORMED, format!("row {r}, column {c} is already filled")));
            }
            if ep.board.candidates(r0, c0) & (1 << (d - 1)) == 0 {
                return Err((PENALTY_WRONG, format!("{d} at row {r}, column {c} {}", conflict(&ep.board, r0, c0, d))));
            }
            if ep.puzzle.solution.get(r0, c0) != d {
                return Err((
                    PENALTY_WRONG,
                    format!(
                        "{d} at row {r}, column {c} breaks no rule yet but is not the solution's digit (the solution is unique)"
                    ),
                ));
            }
            Ok((r, c, d))
        });
        let blanks = ep.puzzle.puzzle.blanks().max(1) as f64;
        let (text, terminated, success) = match outcome {
            Ok((r, c, d)) => {
                ep.board.set(r - 1, c - 1, d);
                ep.placed += 1;
                let left = ep.board.blanks();
                let solved = left == 0;
                info.term("placement", Some(1.0 / blanks), W_PLACEMENT);
                info.term("penalty", Some(0.0), W_PENALTY);
                info.term("solved", Some(if solved { 1.0 } else { 0.0 }), W_SOLVED);
                let text = if solved {
                    format!("Correct: row {r}, column {c} is {d}. The puzzle is solved.")
                } else {
                    format!(
                        "Correct: row {r}, column {c} is {d}. {left} blank cell{} left.",
                        if left == 1 { "" } else { "s" }
                    )
                };
                (text, solved, solved.then_some(true))
            }
            Err((penalty, reason)) => {
                info.term("placement", Some(0.0), W_PLACEMENT);
                info.term("penalty", Some(penalty), W_PENALTY);
                info.term("solved", Some(0.0), W_SOLVED);
                let text = format!("Invalid move: {reason}. Game over.");
                info.reason = Some(reason);
                (text, true, Some(false))
            }
        };
        ep.done = terminated;
        info.success = success;
        info.extra.insert("placed".into(), json!(ep.placed));
        info.extra.insert("left".into(), json!(ep.board.blanks()));
        let ep = self.episode.as_ref().ok_or(EnvError::NotReset)?;
        let obs = self.observation(ep, format!("{text}\n\n{}", ep.board.render(true)));
        Ok(Step::new(obs, info, terminated, false))
    }
}

impl Env for SudokuEnv {
    fn reset(&mut self, seed: u64) -> Result<Observation, EnvError> {
        let mut rng = ChaCha8Rng::seed_from_u64(seed);
        let puzzle = generate(self.cfg.shape, self.cfg.difficulty, &mut rng);
        let ep = Episode { board: puzzle.puzzle, puzzle, placed: 0, done: false };
        let obs = self.observation(&ep, question(&self.cfg, &ep.puzzle));
        self.episode = Some(ep);
        Ok(obs)
    }

    fn step(&mut self, action: &Action) -> Result<Step, EnvError> {
        match &self.episode {
            None => return Err(EnvError::NotReset),
            Some(ep) if ep.done => return Err(EnvError::EpisodeOver),
            Some(_) => {}
        }
        match self.cfg.mode {
            Mode::Answer => self.step_answer(action),
            Mode::Move => self.step_move(action),
        }
    }

    fn demonstration(&self) -> Option<Action> {
        let ep = self.episode.as_ref().filter(|e| !e.done)?;
        Some(Action::text(match self.cfg.mode {
            Mode::Answer => format_answer(&ep.puzzle.solution),
            Mode::Move => {
                let (r, c) = next_cell(&ep.board)?;
                format_move(r, c, ep.puzzle.solution.get(r, c))
            }
        }))
    }
}

/// A completed grid written in the answer format.
pub fn format_answer(grid: &Grid) -> String {
    let rows: Vec<String> =
        grid.rows().iter().map(|r| r.iter().map(|d| d.to_string()).collect::<Vec<_>>().join(" ")).collect();
    format!("<{ANSWER_TAG}>\n{}\n</{ANSWER_TAG}>", rows.join("\n"))
}

/// A placement (0-based row and column) written in the move format.
pub fn format_move(r: usize, c: usize, d: u8) -> String {
    format!("<{ANSWER_TAG}>{} {} {d}</{ANSWER_TAG}>", r + 1, c + 1)
}

/// The blank cell with the fewest candidates (ties: row-major first), as
/// 0-based `(row, column)`; `None` when the grid is full.
pub fn next_cell(board: &Grid) -> Option<(usize, usize)> {
    let n = board.size();
    (0..n * n)
        .filter(|&i| board.get(i / n, i % n) == 0)
        .min_by_key(|&i| (board.candidates(i / n, i % n).count_ones(), i))
        .map(|i| (i / n, i % n))
}

/// Every placement the rules allow on `board` (a blank cell and a digit not
/// yet in its row, column or box), written as replies.
fn placements(board: &Grid) -> Vec<String> {
    let n = board.size();
    let mut out = Vec::new();
    for r in 0..n {
        for c in 0..n {
            if board.get(r, c) == 0 {
                let m = board.candidates(r, c);
                for d in 1..=n as u8 {
                    if m & (1 << (d - 1)) != 0 {
                        out.push(format_move(r, c, d));
                    }
                }
            }
        }
    }
    out
}

/// Which unit already holds `d` (for the reason of a rejected placement).
fn conflict(board: &Grid, r: usize, c: usize, d: u8) -> String {
    let n = board.size();
    if let Some(cc) = (0..n).find(|&cc| board.get(r, cc) == d) {
        return format!("conflicts with the {d} in row {}, column {}", r + 1, cc + 1);
    }
    if let Some(rr) = (0..n).find(|&rr| board.get(rr, c) == d) {
        return format!("conflicts with the {d} in row {}, column {}", rr + 1, c + 1);
    }
    "conflicts with its box".to_string()
}

/// Parses `row column digit` (1-based) from the answer tag.
fn parse_move(text: &str, n: usize) -> Result<(usize, usize, u8), (f64, String)> {
    let malformed = |reason: String| (PENALTY_MALFORMED, reason);
    let body = extract_tag(text, ANSWER_TAG).ok_or_else(|| {
        malformed(if text.trim().is_empty() {
            "empty reply".to_string()
        } else {
            format!("no <{ANSWER_TAG}>…</{ANSWER_TAG}> tag with `row column digit`")
        })
    })?;
    let nums: Vec<&str> = body.split(|ch: char| !ch.is_ascii_digit()).filter(|s| !s.is_empty()).collect();
    if nums.len() != 3 {
        let shown: String = body.trim().chars().take(40).collect();
        return Err(malformed(format!("expected three numbers `row column digit`, got {shown:?}")));
    }
    let mut v = [0usize; 3];
    for (slot, s) in v.iter_mut().zip(&nums) {
        *slot = s.parse::<usize>().unwrap_or(usize::MAX);
    }
    let [r, c, d] = v;
    if !(1..=n).contains(&r) || !(1..=n).contains(&c) || !(1..=n).contains(&d) {
        return Err(malformed(format!("row, column and digit must be 1-{n}, got {} {} {}", nums[0], nums[1], nums[2])));
    }
    Ok((r, c, d as u8))
}

fn box_words(shape: Shape) -> String {
    let (br, bc) = (shape.box_rows(), shape.box_cols());
    if br == bc {
        format!("{br}×{bc} box")
    } else {
        format!("{br}-row by {bc}-column box")
    }
}

/// The system prompt: rules and reply format.
pub fn system_prompt(cfg: &SudokuConfig) -> String {
    let n = cfg.shape.size();
    let rules = format!(
        "Fill every blank cell (shown as '.') with a digit from 1 to {n} so that every row, every column and every {} \
         (boxes are separated by '|' and '-' lines) contains each digit from 1 to {n} exactly once. The given digits \
         must not be changed. The puzzle has exactly one solution.",
        box_words(cfg.shape)
    );
    match cfg.mode {
        Mode::Answer => format!(
            "You are solving a {n}×{n} Sudoku puzzle. {rules}\n\nThink step by step inside <think> and </think>, then \
             write the completed grid inside <{ANSWER_TAG}> and </{ANSWER_TAG}>: {n} lines, one per row from top to \
             bottom, each with that row's {n} digits from left to right (spaces between digits are optional; box \
             separators are ignored)."
        ),
        Mode::Move => format!(
            "You are solving a {n}×{n} Sudoku puzzle one digit at a time. {rules}\n\nRows are numbered 1 to {n} from \
             top to bottom and columns 1 to {n} from left to right, as labelled around the grid. Each turn, place one \
             digit in one blank cell: you may think inside <think> and </think> first, then reply with the row, the \
             column and the digit inside <{ANSWER_TAG}> and </{ANSWER_TAG}>, for example <{ANSWER_TAG}>2 3 1</{ANSWER_TAG}> \
             writes 1 in row 2, column 3. Every placement must agree with the unique solution: a wrong digit, a filled \
             cell or a malformed reply ends the game. Each correct digit earns a small reward and completing the grid \
             earns a bonus."
        ),
    }
}

/// The first user message.
fn question(cfg: &SudokuConfig, p: &Puzzle) -> String {
    let head = format!(
        "Sudoku {n}×{n}, {d}: {clues} clues, {blanks} blank cells.",
        n = cfg.shape.size(),
        d = cfg.difficulty.name(),
        clues = p.clues(),
        blanks = p.puzzle.blanks()
    );
    match cfg.mode {
        Mode::Answer => format!("{head}\n\n{}", p.puzzle.render(false)),
        Mode::Move => format!("{head}\n\n{}", p.puzzle.render(true)),
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn env(size: usize, mode: Mode) -> SudokuEnv {
        SudokuEnv::new(SudokuConfig { shape: Shape::of_size(size).unwrap(), difficulty: Difficulty::Medium, mode })
    }

    fn term(step: &Step, name: &str) -> f64 {
        step.info.breakdown.iter().find(|t| t.name == name).and_then(|t| t.value).unwrap()
    }

    #[test]
    fn answer_mode_scores_the_oracle_at_the_ceiling() {
        let mut e = env(9, Mode::Answer);
        e.reset(5).unwrap();
        let demo = e.demonstration().unwrap();
        let s = e.step(&demo).unwrap();
        assert_eq!(s.info.success, Some(true));
        assert!((s.reward - 3.5).abs() < 1e-12, "{:?}", s.info);
        assert!(s.info.reason.is_none());
        assert!(matches!(e.step(&demo), Err(EnvError::EpisodeOver)));
    }

    #[test]
    fn answer_mode_partial_credit_and_clue_changes() {
        let mut e = env(4, Mode::Answer);
        e.reset(1).unwrap();
        let p = e.puzzle().unwrap().clone();
        // Blank out one originally blank cell: partial credit.
        let mut g = p.solution;
        let n = 4;
        let blank = (0..16).find(|&i| p.puzzle.cells()[i] == 0).unwrap();
        g.set(blank / n, blank % n, 0);
        let s = e.step(&Action::text(format!("<answer>{}</answer>", g.to_rows_text()))).unwrap();
        let blanks = p.puzzle.blanks() as f64;
        assert!((term(&s, "cells") - (blanks - 1.0) / blanks).abs() < 1e-12);
        assert_eq!(term(&s, "solved"), 0.0);
        assert_eq!(term(&s, "clues"), 0.0);
        assert_eq!(s.info.success, Some(false));
        assert!(s.info.reason.as_deref().unwrap().contains("1 of"));

        // Change a clue: no credit, penalty, reason.
        e.reset(1).unwrap();
        let mut g = p.solution;
        let given = (0..16).find(|&i| p.puzzle.cells()[i] != 0).unwrap();
        let v = g.get(given / n, given % n);
        g.set(given / n, given % n, v % 4 + 1);
        let s = e.step(&Action::text(format!("<answer>{}</answer>", g.to_rows_text()))).unwrap();
        assert_eq!(term(&s, "cells"), 0.0);
        assert_eq!(term(&s, "clues"), -1.0);
        assert_eq!(term(&s, "format"), 1.0);
        assert!(s.info.reason.as_deref().unwrap().starts_with("changed 1 given clue"));
    }

    #[test]
    fn answer_mode_malformed_replies_are_penalties() {
        let mut e = env(6, Mode::Answer);
        for reply in ["", "no tags", "<answer>1 2 3</answer>", "<answer>abc\n</answer>", "<answer>"] {
            e.reset(2).unwrap();
            let s = e.step(&Action::text(reply)).unwrap();
            assert!(s.terminated);
            assert_eq!(term(&s, "format"), -1.0);
            assert!((s.reward + 0.5).abs() < 1e-12);
            assert!(s.info.reason.is_some(), "{reply:?}");
        }
    }

    #[test]
    fn move_mode_plays_to_the_end() {
        let mut e = env(6, Mode::Move);
        let obs = e.reset(3).unwrap();
        assert!(!obs.legal_actions.is_empty());
        let blanks = e.puzzle().unwrap().puzzle.blanks();
        let mut total = 0.0;
        for i in 0..blanks {
            let a = e.demonstration().unwrap();
            let s = e.step(&a).unwrap();
            total += s.reward;
            assert_eq!(s.terminated, i + 1 == blanks);
            if s.terminated {
                assert_eq!(s.info.success, Some(true));
                assert!(s.observation.legal_actions.is_empty());
            } else {
                assert_eq!(s.info.success, None);
            }
        }
        assert!((total - 3.0).abs() < 1e-9);
        assert!(e.demonstration().is_none());
    }

    #[test]
    fn move_mode_invalid_placements_end_the_episode() {
        let mut e = env(9, Mode::Move);
        e.reset(4).unwrap();
        let p = e.puzzle().unwrap().clone();
        let given = (0..81).find(|&i| p.puzzle.cells()[i] != 0).unwrap();
        let blank = (0..81).find(|&i| p.puzzle.cells()[i] == 0).unwrap();
        let (br, bc) = (blank / 9, blank % 9);
        let right = p.solution.get(br, bc);
        let legal_wrong = (1..=9u8).find(|&d| d != right && p.puzzle.candidates(br, bc) & (1 << (d - 1)) != 0);
        let clash = (1..=9u8).find(|&d| p.puzzle.candidates(br, bc) & (1 << (d - 1)) == 0).unwrap();
        let mut cases = vec![
            ("".to_string(), PENALTY_MALFORMED, "empty reply"),
            ("3 4 5".to_string(), PENALTY_MALFORMED, "no <answer>"),
            ("<answer>3 4</answer>".to_string(), PENALTY_MALFORMED, "three numbers"),
            ("<answer>0 4 5</answer>".to_string(), PENALTY_MALFORMED, "must be 1-9"),
            ("<answer>1 1 99999999999999999999999</answer>".to_string(), PENALTY_MALFORMED, "must be 1-9"),
            (format_move(given / 9, given % 9, 1), PENALTY_MALFORMED, "given clue"),
            (format_move(br, bc, clash), PENALTY_WRONG, "conflicts"),
        ];
        if let Some(d) = legal_wrong {
            cases.push((format_move(br, bc, d), PENALTY_WRONG, "not the solution's digit"));
        }
        for (reply, penalty, why) in cases {
            e.reset(4).unwrap();
            let s = e.step(&Action::text(reply.clone())).unwrap();
            assert!(s.terminated, "{reply}");
            assert_eq!(s.info.success, Some(false));
            assert_eq!(term(&s, "penalty"), penalty, "{reply}");
            assert!(s.info.reason.as_deref().unwrap().contains(why), "{reply}: {:?}", s.info.reason);
            assert!(matches!(e.step(&Action::text("")), Err(EnvError::EpisodeOver)));
        }
        // Filling the same cell twice.
        e.reset(4).unwrap();
        let ok = format_move(br, bc, right);
        e.step(&Action::text(ok.clone())).unwrap();
        let s = e.step(&Action::text(ok)).unwrap();
        assert!(s.info.reason.as_deref().unwrap().contains("already filled"));
    }

    #[test]
    fn options_are_validated() {
        let r = {
            let mut r = Registry::new();
            register(&mut r);
            r
        };
        assert!(r.make("sudoku", &["size=5"]).is_err());
        assert!(r.make("sudoku", &["difficulty=extreme"]).is_err());
        let opts = r.options("sudoku", &["size=6", "mode=move", "difficulty=hard"]).unwrap();
        let cfg = SudokuConfig::from_options(&opts).unwrap();
        assert_eq!(cfg, SudokuConfig { shape: Shape::SIX, difficulty: Difficulty::Hard, mode: Mode::Move });
    }
}
