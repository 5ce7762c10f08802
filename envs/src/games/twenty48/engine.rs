//! The 2048 game engine: a 64-bit bitboard for 4×4 and an array engine for
//! every size from 3 to 8, with identical rules.
//!
//! # Rules
//! * A move slides every tile as far as it goes in one direction; two equal
//!   tiles that collide merge into their sum, and a tile merges at most once
//!   per move (`2 2 2 2` left → `4 4 . .`, `4 4 8 .` left → `8 8 . .`).
//! * The merge score of a move is the sum of the tiles its merges create; the
//!   game score is the sum of merge scores (spawned 4s earn nothing).
//! * A move that changes nothing is illegal.
//! * After every legal move one tile spawns on a uniformly random empty cell:
//!   2 with probability 0.9, 4 with probability 0.1. A game starts with two
//!   spawned tiles. Randomness comes from a [`ChaCha8Rng`] the game owns,
//!   seeded from the game's seed: the same seed and the same moves give the
//!   same game. A spawn draws `gen_range(0..empty_count)` (as `u32`) to pick
//!   the k-th empty cell in row-major order, then `gen_bool(0.1)` for a 4.
//! * The game is over when a tile reaches the target (a win) or no move is
//!   legal (a loss).
//!
//! Move directions use OpenSpiel's action ids: `Up = 0`, `Right = 1`,
//! `Down = 2`, `Left = 3`.
//!
//! # Bitboard
//! A 4×4 board is one `u64`: cell `(r, c)` is the nibble at bits
//! `4·(4r + c)` and holds `log2(tile)` (0 = empty). Row moves are lookups in
//! 65,536-entry tables built once ([`OnceLock`]); up/down moves transpose
//! the board and use column tables that already hold the difference in board
//! positions (the technique of nneonneo/2048-ai). A nibble holds at most
//! 2^15 = 32768: the raw move functions never merge two 32768 tiles, and
//! [`Game`] switches to the array engine once a 32768 tile exists, so its
//! rules stay exact.

use std::fmt;
use std::sync::OnceLock;

use rand::{Rng, SeedableRng};
use rand_chacha::ChaCha8Rng;

/// A move direction, numbered as OpenSpiel's 2048 actions.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash, PartialOrd, Ord)]
pub enum Dir {
    /// Slide towards row 0 (OpenSpiel action 0; key `W`).
    Up = 0,
    /// Slide towards the last column (action 1; key `D`).
    Right = 1,
    /// Slide towards the last row (action 2; key `S`).
    Down = 2,
    /// Slide towards column 0 (action 3; key `A`).
    Left = 3,
}

impl Dir {
    /// All four directions in action-id order.
    pub const ALL: [Dir; 4] = [Dir::Up, Dir::Right, Dir::Down, Dir::Left];

    /// The OpenSpiel action id (0..=3).
    pub fn id(self) -> usize {
        self as usize
    }

    /// The direction of an OpenSpiel action id.
    pub fn from_id(id: usize) -> Option<Dir> {
        Dir::ALL.get(id).copied()
    }

    /// The lower-case name (`up`, `right`, `down`, `left`).
    pub fn name(self) -> &'static str {
        match self {
            Dir::Up => "up",
            Dir::Right => "right",
            Dir::Down => "down",
            Dir::Left => "left",
        }
    }

    /// The keyboard key (`W`, `D`, `S`, `A`).
    pub fn key(self) -> char {
        match self {
            Dir::Up => 'W',
            Dir::Right => 'D',
            Dir::Down => 'S',
            Dir::Left => 'A',
        }
    }

    /// Parses a move word: a name or a W/A/S/D key, case-insensitive,
    /// surrounding whitespace ignored.
    pub fn parse(word: &str) -> Option<Dir> {
        match word.trim().to_ascii_lowercase().as_str() {
            "up" | "w" => Some(Dir::Up),
            "right" | "d" => Some(Dir::Right),
            "down" | "s" => Some(Dir::Down),
            "left" | "a" => Some(Dir::Left),
            _ => None,
        }
    }
}

impl fmt::Display for Dir {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str(self.name())
    }
}

/// Why a move could not be applied.
#[derive(Debug, Clone, Copy, PartialEq, Eq, thiserror::Error)]
pub enum MoveError {
    /// The move does not change the board.
    #[error("moving {0} changes nothing")]
    NoChange(Dir),
    /// The game has ended (target reached or no legal move).
    #[error("the game is over")]
    GameOver,
}

/// Why a board could not be built from cells.
#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
pub enum BoardError {
    /// The size is outside 3..=8.
    #[error("board size {0} is not in {MIN_SIZE}..={MAX_SIZE}")]
    Size(usize),
    /// The number of cells is not size².
    #[error("expected {expected} cells, got {got}")]
    CellCount {
        /// size².
        expected: usize,
        /// Cells given.
        got: usize,
    },
    /// A cell is neither 0 nor a power of two ≥ 2.
    #[error("cell {index} holds {value}, which is not 0 or a power of two >= 2")]
    Tile {
        /// Row-major cell index.
        index: usize,
        /// The value found.
        value: u64,
    },
    /// The target is not a power of two ≥ 4.
    #[error("target {0} is not a power of two >= 4")]
    Target(u64),
}

/// Smallest supported board size.
pub const MIN_SIZE: usize = 3;
/// Largest supported board size.
pub const MAX_SIZE: usize = 8;
/// Probability that a spawned tile is a 4.
pub const P_FOUR: f64 = 0.1;

/// The value of a tile of rank `r` (`2^r`; 0 for an empty cell).
pub fn tile_value(rank: u8) -> u64 {
    if rank == 0 {
        0
    } else {
        1u64.checked_shl(u32::from(rank)).unwrap_or(u64::MAX)
    }
}

/// The rank (`log2`) of a tile value: `Some(0)` for 0, `None` when the value
/// is not 0 or a power of two ≥ 2.
pub fn tile_rank(value: u64) -> Option<u8> {
    match value {
        0 => Some(0),
        1 => None,
        v if v.is_power_of_two() => Some(v.trailing_zeros() as u8),
        _ => None,
    }
}

// ---------------------------------------------------------------------------
// Bitboard (4×4)
// ---------------------------------------------------------------------------

/// A 4×4 board: 16 nibbles, nibble `4r + c` = rank of cell `(r, c)`.
pub type Bitboard = u64;

const ROW_MASK: u64 = 0xFFFF;
const COL_MASK: u64 = 0x000F_000F_000F_000F;

struct Tables {
    row_left: Box<[u16]>,
    row_right: Box<[u16]>,
    /// `unpack_col(row) ^ unpack_col(row moved left)`, for up moves.
    col_up: Box<[u64]>,
    /// Same for down moves.
    col_down: Box<[u64]>,
    /// Merge score of moving the row (equal for left and right).
    score: Box<[u32]>,
}

fn unpack_col(row: u16) -> u64 {
    let r = u64::from(row);
    (r | (r << 12) | (r << 24) | (r << 36)) & COL_MASK
}

fn reverse_row(row: u16) -> u16 {
    (row >> 12) | ((row >> 4) & 0x00F0) | ((row << 4) & 0x0F00) | (row << 12)
}

/// Slides a 4-cell line of ranks towards index 0; returns the merge score.
/// Two rank-15 tiles (32768) do not merge: the nibble cannot hold 65536.
fn slide_nibbles(line: &mut [u8; 4]) -> u32 {
    let mut out = [0u8; 4];
    let mut n = 0;
    let mut score = 0u32;
    let mut pending: Option<u8> = None;
    for &r in line.iter().filter(|&&r| r != 0) {
        match pending {
            Some(p) if p == r && r < 15 => {
                out[n] = r + 1;
                n += 1;
                score += 1u32 << (r + 1);
                pending = None;
            }
            Some(p) => {
                out[n] = p;
                n += 1;
                pending = Some(r);
            }
            None => pending = Some(r),
        }
    }
    if let Some(p) = pending {
        out[n] = p;
    }
    *line = out;
    score
}

fn build_tables() -> Tables {
    let n = 1usize << 16;
    let mut row_left = vec![0u16; n].into_boxed_slice();
    let mut row_right = vec![0u16; n].into_boxed_slice();
    let mut col_up = vec![0u64; n].into_boxed_slice();
    let mut col_down = vec![0u64; n].into_boxed_slice();
    let mut score = vec![0u32; n].into_boxed_slice();
    for row in 0..n {
        let row16 = row as u16;
        let mut line = [0u8; 4];
        for (i, cell) in line.iter_mut().enumerate() {
            *cell = ((row >> (4 * i)) & 0xF) as u8;
        }
        score[row] = slide_nibbles(&mut line);
        let left = line.iter().enumerate().fold(0u16, |acc, (i, &r)| acc | (u16::from(r) << (4 * i)));
        let rev = reverse_row(row16);
        let right = reverse_row(left);
        row_left[row] = left;
        row_right[rev as usize] = right;
        col_up[row] = unpack_col(row16) ^ unpack_col(left);
        col_down[rev as usize] = unpack_col(rev) ^ unpack_col(right);
    }
    Tables { row_left, row_right, col_up, col_down, score }
}

fn tables() -> &'static Tables {
    static TABLES: OnceLock<Tables> = OnceLock::new();
    TABLES.get_or_init(build_tables)
}

/// Builds the move tables now (they are otherwise built on first use).
pub fn init_tables() {
    tables();
}

/// Swaps rows and columns: cell `(r, c)` goes to `(c, r)`.
#[inline]
pub fn transpose(x: Bitboard) -> Bitboard {
    let a1 = x & 0xF0F0_0F0F_F0F0_0F0F;
    let a2 = x & 0x0000_F0F0_0000_F0F0;
    let a3 = x & 0x0F0F_0000_0F0F_0000;
    let a = a1 | (a2 << 12) | (a3 >> 12);
    let b1 = a & 0xFF00_FF00_00FF_00FF;
    let b2 = a & 0x00FF_00FF_0000_0000;
    let b3 = a & 0x0000_0000_FF00_FF00;
    b1 | (b2 >> 24) | (b3 << 24)
}

#[inline]
fn rows_with(board: Bitboard, table: &[u16]) -> Bitboard {
    let mut out = 0;
    for i in 0..4 {
        let row = ((board >> (16 * i)) & ROW_MASK) as usize;
        out |= u64::from(table[row]) << (16 * i);
    }
    out
}

#[inline]
fn cols_with(board: Bitboard, table: &[u64]) -> Bitboard {
    let t = transpose(board);
    let mut out = board;
    for i in 0..4 {
        let row = ((t >> (16 * i)) & ROW_MASK) as usize;
        out ^= table[row] << (4 * i);
    }
    out
}

/// The board after a raw move (no spawn). Equal to `board` when the move is
/// illegal. Never merges two 32768 tiles (see the module docs).
#[inline]
pub fn move_board(board: Bitboard, dir: Dir) -> Bitboard {
    let t = tables();
    match dir {
        Dir::Up => cols_with(board, &t.col_up),
        Dir::Right => rows_with(board, &t.row_right),
        Dir::Down => cols_with(board, &t.col_down),
        Dir::Left => rows_with(board, &t.row_left),
    }
}

/// The merge score a raw move earns.
#[inline]
pub fn move_score(board: Bitboard, dir: Dir) -> u32 {
    let t = tables();
    let lines = match dir {
        Dir::Left | Dir::Right => board,
        Dir::Up | Dir::Down => transpose(board),
    };
    (0..4).map(|i| t.score[((lines >> (16 * i)) & ROW_MASK) as usize]).sum()
}

/// The number of empty cells (branch-free nibble fold).
#[inline]
pub fn count_empty(board: Bitboard) -> u32 {
    let mut x = board;
    x |= (x >> 2) & 0x3333_3333_3333_3333;
    x |= x >> 1;
    x = !x & 0x1111_1111_1111_1111;
    x.count_ones()
}

/// The largest rank on the board.
#[inline]
pub fn max_rank(board: Bitboard) -> u8 {
    (0..16).map(|i| ((board >> (4 * i)) & 0xF) as u8).max().unwrap_or(0)
}

/// Whether any tile has rank ≥ `rank` (branch-free: nibbles are added to
/// `16 − rank` in 8-bit lanes, and bit 4 of a lane tells if it carried).
#[inline]
pub fn has_rank_at_least(board: Bitboard, rank: u8) -> bool {
    if rank == 0 {
        return true;
    }
    if rank > 15 {
        return false;
    }
    const LO: u64 = 0x0F0F_0F0F_0F0F_0F0F;
    let add = u64::from(16 - rank) * 0x0101_0101_0101_0101;
    let even = (board & LO) + add;
    let odd = ((board >> 4) & LO) + add;
    (even | odd) & 0x1010_1010_1010_1010 != 0
}

/// The rank of cell `index` (row-major).
#[inline]
pub fn rank_at(board: Bitboard, index: usize) -> u8 {
    ((board >> (4 * index)) & 0xF) as u8
}

/// Whether any move is legal.
#[inline]
pub fn can_move(board: Bitboard) -> bool {
    Dir::ALL.iter().any(|&d| move_board(board, d) != board)
}

/// Packs 16 ranks (row-major, each ≤ 15) into a bitboard.
pub fn pack(ranks: &[u8; 16]) -> Bitboard {
    ranks.iter().enumerate().fold(0, |b, (i, &r)| b | (u64::from(r & 0xF) << (4 * i)))
}

/// Unpacks a bitboard into 16 ranks (row-major).
pub fn unpack(board: Bitboard) -> [u8; 16] {
    let mut out = [0u8; 16];
    for (i, r) in out.iter_mut().enumerate() {
        *r = rank_at(board, i);
    }
    out
}

// ---------------------------------------------------------------------------
// Array engine (any size)
// ---------------------------------------------------------------------------

/// Slides one line of ranks towards index 0 (merge-once rule); returns the
/// merge score. Unlike the bitboard there is no rank cap.
pub fn slide_line(line: &mut [u8]) -> u64 {
    let mut n = 0;
    let mut score = 0u64;
    let mut pending: Option<u8> = None;
    for i in 0..line.len() {
        let r = line[i];
        if r == 0 {
            continue;
        }
        match pending {
            Some(p) if p == r => {
                line[n] = r.saturating_add(1);
                n += 1;
                score = score.saturating_add(tile_value(r.saturating_add(1)));
                pending = None;
            }
            Some(p) => {
                line[n] = p;
                n += 1;
                pending = Some(r);
            }
            None => pending = Some(r),
        }
    }
    if let Some(p) = pending {
        line[n] = p;
        n += 1;
    }
    for cell in &mut line[n..] {
        *cell = 0;
    }
    score
}

/// The row-major indices of line `k` of an `n`×`n` board, ordered in the
/// direction tiles slide towards first.
fn line_index(n: usize, dir: Dir, k: usize, i: usize) -> usize {
    match dir {
        Dir::Left => k * n + i,
        Dir::Right => k * n + (n - 1 - i),
        Dir::Up => i * n + k,
        Dir::Down => (n - 1 - i) * n + k,
    }
}

/// Applies a move to an `n`×`n` array of ranks in place; returns
/// `Some(merge score)` if the board changed, else `None` (and the board is
/// untouched).
pub fn move_grid(ranks: &mut [u8], n: usize, dir: Dir) -> Option<u64> {
    let mut changed = false;
    let mut score = 0;
    let mut line = [0u8; MAX_SIZE];
    for k in 0..n {
        for (i, cell) in line[..n].iter_mut().enumerate() {
            *cell = ranks[line_index(n, dir, k, i)];
        }
        score = slide_line(&mut line[..n]).saturating_add(score);
        for (i, &cell) in line[..n].iter().enumerate() {
            let idx = line_index(n, dir, k, i);
            if ranks[idx] != cell {
                changed = true;
                ranks[idx] = cell;
            }
        }
    }
    changed.then_some(score)
}

/// Whether `dir` changes an `n`×`n` array of ranks (without moving it).
pub fn grid_can_move(ranks: &[u8], n: usize, dir: Dir) -> bool {
    (0..n).any(|k| {
        (1..n).any(|i| {
            let prev = ranks[line_index(n, dir, k, i - 1)];
            let cur = ranks[line_index(n, dir, k, i)];
            cur != 0 && (prev == 0 || prev == cur)
        })
    })
}

// ---------------------------------------------------------------------------
// Game
// ---------------------------------------------------------------------------

#[derive(Debug, Clone, PartialEq, Eq)]
enum Repr {
    Bits(Bitboard),
    Grid(Vec<u8>),
}

/// A game of 2048: board, score, move count, target and spawn RNG.
#[derive(Debug, Clone)]
pub struct Game {
    size: usize,
    repr: Repr,
    target_rank: u8,
    score: u64,
    moves: u64,
    rng: ChaCha8Rng,
}

/// The default target tile.
pub const DEFAULT_TARGET: u64 = 2048;

impl Game {
    /// A new `size`×`size` game (sizes 3..=8; others are clamped) with the
    /// default target 2048 and two spawned tiles.
    pub fn new(size: usize, seed: u64) -> Self {
        // 2048 is a valid target, so this cannot fail.
        Self::build(size.clamp(MIN_SIZE, MAX_SIZE), 11, seed, false)
    }

    /// A new game with a target tile (a power of two ≥ 4).
    pub fn with_target(size: usize, target: u64, seed: u64) -> Result<Self, BoardError> {
        let rank = target_rank(target)?;
        check_size(size)?;
        Ok(Self::build(size, rank, seed, false))
    }

    /// Like [`Game::with_target`] but always on the array engine, even for
    /// 4×4 (for cross-checking the bitboard).
    pub fn generic(size: usize, target: u64, seed: u64) -> Result<Self, BoardError> {
        let rank = target_rank(target)?;
        check_size(size)?;
        Ok(Self::build(size, rank, seed, true))
    }

    fn build(size: usize, target_rank: u8, seed: u64, generic: bool) -> Self {
        let repr = if size == 4 && !generic { Repr::Bits(0) } else { Repr::Grid(vec![0; size * size]) };
        let mut g = Self { size, repr, target_rank, score: 0, moves: 0, rng: ChaCha8Rng::seed_from_u64(seed) };
        g.spawn();
        g.spawn();
        g
    }

    /// A game from tile values (row-major, 0 = empty), e.g. to continue a
    /// position. No tile is spawned; `score` and `moves` start as given.
    pub fn from_cells(size: usize, cells: &[u64], target: u64, seed: u64) -> Result<Self, BoardError> {
        check_size(size)?;
        let target_rank = target_rank(target)?;
        if cells.len() != size * size {
            return Err(BoardError::CellCount { expected: size * size, got: cells.len() });
        }
        let mut ranks = Vec::with_capacity(cells.len());
        for (index, &value) in cells.iter().enumerate() {
            ranks.push(tile_rank(value).ok_or(BoardError::Tile { index, value })?);
        }
        let mut g = Self {
            size,
            repr: Repr::Grid(ranks),
            target_rank,
            score: 0,
            moves: 0,
            rng: ChaCha8Rng::seed_from_u64(seed),
        };
        g.compact();
        Ok(g)
    }

    /// Restarts the spawn RNG from `seed`, keeping the position (used to
    /// play several continuations of one position).
    pub fn reseed(&mut self, seed: u64) {
        self.rng = ChaCha8Rng::seed_from_u64(seed);
    }

    /// Uses the bitboard when the board is 4×4 and every tile fits a nibble
    /// below 32768.
    fn compact(&mut self) {
        if let Repr::Grid(ranks) = &self.repr {
            if self.size == 4 && ranks.iter().all(|&r| r < 15) {
                let mut a = [0u8; 16];
                a.copy_from_slice(ranks);
                self.repr = Repr::Bits(pack(&a));
            }
        }
    }

    /// The board side length.
    pub fn size(&self) -> usize {
        self.size
    }

    /// The target tile value.
    pub fn target(&self) -> u64 {
        tile_value(self.target_rank)
    }

    /// The game score (sum of merge scores).
    pub fn score(&self) -> u64 {
        self.score
    }

    /// Legal moves made so far.
    pub fn moves(&self) -> u64 {
        self.moves
    }

    /// The cell ranks (`log2` of the tiles, 0 = empty), row-major.
    pub fn ranks(&self) -> Vec<u8> {
        match &self.repr {
            Repr::Bits(b) => unpack(*b).to_vec(),
            Repr::Grid(g) => g.clone(),
        }
    }

    /// The tile values, row-major (0 = empty).
    pub fn cells(&self) -> Vec<u64> {
        self.ranks().into_iter().map(tile_value).collect()
    }

    /// The tile values as rows.
    pub fn rows(&self) -> Vec<Vec<u64>> {
        self.cells().chunks(self.size).map(<[u64]>::to_vec).collect()
    }

    /// The bitboard, when the game runs on it (4×4, all tiles < 32768).
    pub fn bitboard(&self) -> Option<Bitboard> {
        match self.repr {
            Repr::Bits(b) => Some(b),
            Repr::Grid(_) => None,
        }
    }

    fn max_rank(&self) -> u8 {
        match &self.repr {
            Repr::Bits(b) => max_rank(*b),
            Repr::Grid(g) => g.iter().copied().max().unwrap_or(0),
        }
    }

    /// The largest tile value.
    pub fn max_tile(&self) -> u64 {
        tile_value(self.max_rank())
    }

    /// The number of empty cells.
    pub fn empty_count(&self) -> usize {
        match &self.repr {
            Repr::Bits(b) => count_empty(*b) as usize,
            Repr::Grid(g) => g.iter().filter(|&&r| r == 0).count(),
        }
    }

    /// Whether a tile reached the target.
    pub fn won(&self) -> bool {
        match &self.repr {
            Repr::Bits(b) => has_rank_at_least(*b, self.target_rank),
            Repr::Grid(g) => g.iter().any(|&r| r >= self.target_rank),
        }
    }

    /// The merge score `dir` would earn, or `None` if it changes nothing
    /// (ignores whether the game is over; spawns nothing).
    pub fn preview(&self, dir: Dir) -> Option<u64> {
        match &self.repr {
            Repr::Bits(b) => (move_board(*b, dir) != *b).then(|| u64::from(move_score(*b, dir))),
            Repr::Grid(g) => move_grid(&mut g.clone(), self.size, dir),
        }
    }

    /// Whether `dir` changes the board (ignores whether the game is over).
    pub fn can_move(&self, dir: Dir) -> bool {
        match &self.repr {
            Repr::Bits(b) => move_board(*b, dir) != *b,
            Repr::Grid(g) => grid_can_move(g, self.size, dir),
        }
    }

    /// The legal moves in action-id order (empty when the game is over).
    pub fn legal_moves(&self) -> Vec<Dir> {
        let mask = self.legal_mask();
        Dir::ALL.into_iter().filter(|d| mask & (1 << d.id()) != 0).collect()
    }

    /// The legal moves as a bit mask: bit `i` is set when the move with
    /// action id `i` is legal (0 when the game is over). Allocation-free.
    pub fn legal_mask(&self) -> u8 {
        if self.won() {
            return 0;
        }
        Dir::ALL.iter().fold(0, |m, &d| if self.can_move(d) { m | (1 << d.id()) } else { m })
    }

    /// A uniformly random legal move (one `gen_range(0..count)` draw as
    /// `u32`), or `None` when the game is over. Allocation-free.
    pub fn random_move<R: Rng + ?Sized>(&self, rng: &mut R) -> Option<Dir> {
        let mask = self.legal_mask();
        if mask == 0 {
            return None;
        }
        let k = rng.gen_range(0..mask.count_ones());
        Dir::ALL.into_iter().filter(|d| mask & (1 << d.id()) != 0).nth(k as usize)
    }

    /// Whether the game ended: target reached or no legal move.
    pub fn is_over(&self) -> bool {
        self.won() || !Dir::ALL.iter().any(|&d| self.can_move(d))
    }

    /// Plays a move: slides, merges, then spawns a tile. Returns the move's
    /// merge score.
    pub fn apply(&mut self, dir: Dir) -> Result<u64, MoveError> {
        if self.won() {
            return Err(MoveError::GameOver);
        }
        let gained = match &mut self.repr {
            Repr::Bits(b) => {
                let next = move_board(*b, dir);
                if next == *b {
                    None
                } else {
                    let s = u64::from(move_score(*b, dir));
                    *b = next;
                    Some(s)
                }
            }
            Repr::Grid(g) => move_grid(g, self.size, dir),
        };
        let Some(gained) = gained else {
            return Err(if self.is_over() { MoveError::GameOver } else { MoveError::NoChange(dir) });
        };
        self.score = self.score.saturating_add(gained);
        self.moves += 1;
        self.spawn();
        if let Repr::Bits(b) = self.repr {
            if has_rank_at_least(b, 15) {
                self.repr = Repr::Grid(unpack(b).to_vec());
            }
        }
        Ok(gained)
    }

    /// Spawns a 2 (p = 0.9) or 4 (p = 0.1) on a uniformly random empty cell.
    fn spawn(&mut self) {
        let empty = self.empty_count() as u32;
        if empty == 0 {
            return;
        }
        let k = self.rng.gen_range(0..empty);
        let rank = if self.rng.gen_bool(P_FOUR) { 2 } else { 1 };
        match &mut self.repr {
            Repr::Bits(b) => {
                let mut seen = 0;
                for i in 0..16 {
                    if rank_at(*b, i) == 0 {
                        if seen == k {
                            *b |= u64::from(rank) << (4 * i);
                            return;
                        }
                        seen += 1;
                    }
                }
            }
            Repr::Grid(g) => {
                if let Some(cell) = g.iter_mut().filter(|r| **r == 0).nth(k as usize) {
                    *cell = rank;
                }
            }
        }
    }

    /// The board as an aligned text grid (`.` for empty cells).
    pub fn render(&self) -> String {
        let cells = self.cells();
        let width = cells.iter().map(|v| v.to_string().len()).max().unwrap_or(1).max(4);
        let mut out = String::new();
        for row in cells.chunks(self.size) {
            let line: Vec<String> =
                row.iter().map(|&v| if v == 0 { format!("{:>width$}", ".") } else { format!("{v:>width$}") }).collect();
            out.push_str(&line.join(" "));
            out.push('\n');
        }
        out
    }
}

fn check_size(size: usize) -> Result<(), BoardError> {
    if (MIN_SIZE..=MAX_SIZE).contains(&size) {
        Ok(())
    } else {
        Err(BoardError::Size(size))
    }
}

fn target_rank(target: u64) -> Result<u8, BoardError> {
    match tile_rank(target) {
        Some(r) if r >= 2 => Ok(r),
        _ => Err(BoardError::Target(target)),
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn row(tiles: [u64; 4]) -> Bitboard {
        let mut r = [0u8; 16];
        for (i, &t) in tiles.iter().enumerate() {
            r[i] = tile_rank(t).unwrap();
        }
        pack(&r)
    }

    fn first_row(b: Bitboard) -> [u64; 4] {
        let r = unpack(b);
        [tile_value(r[0]), tile_value(r[1]), tile_value(r[2]), tile_value(r[3])]
    }

    #[test]
    fn merges_once_per_move() {
        type Case = ([u64; 4], [u64; 4], [u64; 4], u32);
        let cases: [Case; 7] = [
            ([2, 2, 2, 2], [4, 4, 0, 0], [0, 0, 4, 4], 8),
            ([4, 4, 8, 0], [8, 8, 0, 0], [0, 0, 8, 8], 8),
            ([2, 0, 0, 2], [4, 0, 0, 0], [0, 0, 0, 4], 4),
            ([2, 2, 2, 0], [4, 2, 0, 0], [0, 0, 2, 4], 4),
            ([8, 4, 2, 2], [8, 4, 4, 0], [0, 8, 4, 4], 4),
            ([0, 2, 4, 8], [2, 4, 8, 0], [0, 2, 4, 8], 0),
            ([2, 4, 2, 4], [2, 4, 2, 4], [2, 4, 2, 4], 0),
        ];
        for (input, left, right, score) in cases {
            let b = row(input);
            assert_eq!(first_row(move_board(b, Dir::Left)), left, "{input:?} left");
            assert_eq!(first_row(move_board(b, Dir::Right)), right, "{input:?} right");
            assert_eq!(move_score(b, Dir::Left), score, "{input:?} left score");
            assert_eq!(move_score(b, Dir::Right), score, "{input:?} right score");
            let mut line: Vec<u8> = input.iter().map(|&v| tile_rank(v).unwrap()).collect();
            assert_eq!(slide_line(&mut line), u64::from(score));
            assert_eq!(line.iter().map(|&r| tile_value(r)).collect::<Vec<_>>(), left.to_vec());
        }
    }

    #[test]
    fn up_and_down_move_columns() {
        // Column 0 holds 2, 2, 4, 4 from top to bottom.
        let mut r = [0u8; 16];
        r[0] = 1;
        r[4] = 1;
        r[8] = 2;
        r[12] = 2;
        r[3] = 1; // a lone 2 in the top-right corner
        let b = pack(&r);
        let up = unpack(move_board(b, Dir::Up));
        assert_eq!((up[0], up[4], up[8], up[12], up[3], up[15]), (2, 3, 0, 0, 1, 0));
        let down = unpack(move_board(b, Dir::Down));
        assert_eq!((down[0], down[4], down[8], down[12], down[3], down[15]), (0, 0, 2, 3, 0, 1));
        assert_eq!(move_score(b, Dir::Up), 4 + 8);
        assert_eq!(move_score(b, Dir::Down), 4 + 8);
    }

    #[test]
    fn noop_moves_are_illegal() {
        let mut g = Game::from_cells(4, &[2, 4, 8, 16, 0, 0, 0, 0, 0, 0, 0, 0, 0, 0, 0, 0], 2048, 1).unwrap();
        assert_eq!(g.apply(Dir::Up), Err(MoveError::NoChange(Dir::Up)));
        assert_eq!(g.apply(Dir::Left), Err(MoveError::NoChange(Dir::Left)));
        assert_eq!(g.apply(Dir::Right), Err(MoveError::NoChange(Dir::Right)));
        assert_eq!(g.legal_moves(), vec![Dir::Down]);
        assert_eq!(g.moves(), 0);
        assert_eq!(g.apply(Dir::Down), Ok(0));
        assert_eq!(g.moves(), 1);
        assert_eq!(g.cells().iter().filter(|&&v| v != 0).count(), 5);
    }

    #[test]
    fn score_table_is_direction_symmetric_and_tables_agree_with_array_engine() {
        for row in 0..(1u32 << 16) {
            let b = u64::from(row);
            assert_eq!(move_score(b, Dir::Left), move_score(b, Dir::Right));
            let ranks = unpack(b);
            if ranks.contains(&15) {
                continue; // the nibble cap differs by design
            }
            for dir in [Dir::Left, Dir::Right] {
                let mut g = ranks.to_vec();
                let s = move_grid(&mut g, 4, dir).unwrap_or(0);
                assert_eq!(unpack(move_board(b, dir)).to_vec(), g, "row {row:#06x} {dir}");
                assert_eq!(u64::from(move_score(b, dir)), s);
            }
        }
    }

    #[test]
    fn transpose_is_an_involution_and_swaps_cells() {
        let mut rng = ChaCha8Rng::seed_from_u64(5);
        for _ in 0..1000 {
            let b: u64 = rng.gen();
            assert_eq!(transpose(transpose(b)), b);
            let (u, t) = (unpack(b), unpack(transpose(b)));
            for r in 0..4 {
                for c in 0..4 {
                    assert_eq!(u[4 * r + c], t[4 * c + r]);
                }
            }
        }
    }

    #[test]
    fn rank_threshold_matches_max_rank() {
        let mut rng = ChaCha8Rng::seed_from_u64(4);
        for _ in 0..2000 {
            let b: u64 = rng.gen::<u64>() & rng.gen::<u64>() & rng.gen::<u64>();
            for t in 0..=16u8 {
                assert_eq!(has_rank_at_least(b, t), max_rank(b) >= t, "{b:#x} {t}");
            }
        }
    }

    #[test]
    fn count_empty_counts_zero_nibbles() {
        let mut rng = ChaCha8Rng::seed_from_u64(9);
        for _ in 0..1000 {
            let mut r = [0u8; 16];
            for x in &mut r {
                *x = if rng.gen_bool(0.5) { 0 } else { rng.gen_range(1..16) };
            }
            assert_eq!(count_empty(pack(&r)) as usize, r.iter().filter(|&&x| x == 0).count());
        }
        assert_eq!(count_empty(0), 16);
        assert_eq!(count_empty(u64::MAX), 0);
    }

    /// The bitboard game and the array game are the same game: same
    /// boards, scores, legal moves and spawns for the same seeds and moves.
    #[test]
    fn bitboard_engine_equals_array_engine_on_random_games() {
        for seed in 0..40 {
            let mut a = Game::with_target(4, 1 << 16, seed).unwrap();
            let mut b = Game::generic(4, 1 << 16, seed).unwrap();
            assert!(a.bitboard().is_some() && b.bitboard().is_none());
            let mut pick = ChaCha8Rng::seed_from_u64(1000 + seed);
            loop {
                assert_eq!(a.cells(), b.cells(), "seed {seed} move {}", a.moves());
                assert_eq!(a.score(), b.score());
                assert_eq!(a.legal_moves(), b.legal_moves());
                assert_eq!(a.is_over(), b.is_over());
                if a.is_over() {
                    break;
                }
                // Try a random direction, illegal ones included.
                let d = Dir::ALL[pick.gen_range(0..4)];
                assert_eq!(a.apply(d), b.apply(d));
            }
        }
    }

    #[test]
    fn games_switch_to_the_array_engine_at_32768() {
        let mut cells = vec![0u64; 16];
        cells[0] = 16384;
        cells[1] = 16384;
        let mut g = Game::from_cells(4, &cells, 1 << 17, 3).unwrap();
        assert!(g.bitboard().is_some());
        assert_eq!(g.apply(Dir::Left), Ok(32768));
        assert!(g.bitboard().is_none());
        assert_eq!(g.max_tile(), 32768);
        // Two 32768s merge under the exact rules.
        let mut cells = vec![0u64; 16];
        cells[0] = 32768;
        cells[1] = 32768;
        let mut g = Game::from_cells(4, &cells, 1 << 17, 3).unwrap();
        assert_eq!(g.apply(Dir::Left), Ok(65536));
        assert_eq!(g.max_tile(), 65536);
    }

    #[test]
    fn spawns_are_uniform_with_ten_percent_fours() {
        let mut fours = 0;
        let mut per_cell = [0u32; 16];
        let n = 20_000;
        for seed in 0..n {
            let g = Game::new(4, seed);
            let r = g.ranks();
            assert_eq!(r.iter().filter(|&&x| x != 0).count(), 2);
            for (i, &x) in r.iter().enumerate() {
                if x != 0 {
                    per_cell[i] += 1;
                    assert!(x == 1 || x == 2);
                    fours += u32::from(x == 2);
                }
            }
        }
        let p4 = f64::from(fours) / (2.0 * n as f64);
        assert!((p4 - 0.1).abs() < 0.01, "P(4) = {p4}");
        // Each cell holds a tile with probability 2/16; allow ±15 %.
        let expect = 2.0 * n as f64 / 16.0;
        for c in per_cell {
            assert!((f64::from(c) - expect).abs() < 0.15 * expect, "{per_cell:?}");
        }
    }

    #[test]
    fn same_seed_same_game() {
        let play = |seed| {
            let mut g = Game::new(5, seed);
            let mut i = 0;
            while !g.is_over() && i < 200 {
                let legal = g.legal_moves();
                let _ = g.apply(legal[i % legal.len()]);
                i += 1;
            }
            (g.cells(), g.score())
        };
        assert_eq!(play(7), play(7));
        assert_ne!(play(7), play(8));
    }

    #[test]
    fn winning_ends_the_game() {
        let mut cells = vec![0u64; 9];
        cells[0] = 4;
        cells[1] = 4;
        let mut g = Game::from_cells(3, &cells, 8, 0).unwrap();
        assert!(!g.is_over());
        assert_eq!(g.apply(Dir::Left), Ok(8));
        assert!(g.won() && g.is_over());
        assert!(g.legal_moves().is_empty());
        assert_eq!(g.apply(Dir::Right), Err(MoveError::GameOver));
    }

    #[test]
    fn a_full_board_without_pairs_is_lost() {
        let cells = [2, 4, 2, 4, 4, 2, 4, 2, 2, 4, 2, 4, 4, 2, 4, 2];
        let mut g = Game::from_cells(4, &cells, 2048, 0).unwrap();
        assert!(g.is_over() && !g.won());
        assert!(g.legal_moves().is_empty());
        assert_eq!(g.apply(Dir::Up), Err(MoveError::GameOver));
    }

    #[test]
    fn bad_boards_are_rejected() {
        assert_eq!(Game::with_target(9, 2048, 0).err(), Some(BoardError::Size(9)));
        assert_eq!(Game::with_target(4, 1000, 0).err(), Some(BoardError::Target(1000)));
        assert_eq!(Game::from_cells(3, &[0; 8], 2048, 0).err(), Some(BoardError::CellCount { expected: 9, got: 8 }));
        assert_eq!(
            Game::from_cells(3, &[0, 3, 0, 0, 0, 0, 0, 0, 0], 2048, 0).err(),
            Some(BoardError::Tile { index: 1, value: 3 })
        );
    }

    #[test]
    fn render_is_aligned() {
        let g = Game::from_cells(3, &[2, 0, 1024, 0, 0, 0, 0, 64, 0], 2048, 0).unwrap();
        assert_eq!(g.render(), "   2    . 1024\n   .    .    .\n   .   64    .\n");
    }
}
