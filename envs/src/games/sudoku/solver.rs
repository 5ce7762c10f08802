//! A fast bitmask Sudoku solver.
//!
//! Every cell keeps its candidate digits as a bitmask. Placing a digit
//! removes it from the cell's peers (same row, column, box). Propagation
//! applies naked singles (a cell with one candidate) and hidden singles (a
//! digit with one place left in a row, column or box) until nothing changes,
//! then locked candidates (pointing/claiming at box-line intersections);
//! then search branches on the unsolved cell with the fewest candidates
//! (MRV). The solver counts solutions up to a limit (limit 2 is the
//! uniqueness test) and reports its effort: guesses and backtracks.

use std::sync::OnceLock;

use rand::seq::SliceRandom;
use rand::RngCore;

use super::grid::{bit, Grid, Shape, MAX_CELLS, MAX_SIZE};

/// Precomputed units and peers for one grid shape.
struct Layout {
    shape: Shape,
    cells: usize,
    full: u16,
    /// Rows, then columns, then boxes; each lists `size` cells.
    units: Vec<[u8; MAX_SIZE]>,
    /// Each cell's peers (cells sharing a unit), `npeers` of them.
    peers: Vec<[u8; 20]>,
    npeers: usize,
    /// Box/line intersections, for locked candidates.
    segments: Vec<Segment>,
}

/// The cells where a box meets a row or column, with the rest of the box
/// and the rest of the line.
struct Segment {
    seg: [u8; 3],
    nseg: usize,
    box_rest: [u8; 6],
    line_rest: [u8; 6],
    nrest_box: usize,
    nrest_line: usize,
}

impl Layout {
    fn build(shape: Shape) -> Self {
        let n = shape.size();
        let mut units = Vec::with_capacity(3 * n);
        for r in 0..n {
            let mut u = [0u8; MAX_SIZE];
            for (c, slot) in u.iter_mut().enumerate().take(n) {
                *slot = (r * n + c) as u8;
            }
            units.push(u);
        }
        for c in 0..n {
            let mut u = [0u8; MAX_SIZE];
            for (r, slot) in u.iter_mut().enumerate().take(n) {
                *slot = (r * n + c) as u8;
            }
            units.push(u);
        }
        for b in 0..n {
            let mut u = [0u8; MAX_SIZE];
            let mut k = 0;
            for r in 0..n {
                for c in 0..n {
                    if shape.box_of(r, c) == b {
                        u[k] = (r * n + c) as u8;
                        k += 1;
                    }
                }
            }
            units.push(u);
        }
        let mut peers = Vec::with_capacity(n * n);
        let mut npeers = 0;
        for cell in 0..n * n {
            let (r, c) = (cell / n, cell % n);
            let mut p = [0u8; 20];
            let mut k = 0;
            for other in 0..n * n {
                let (rr, cc) = (other / n, other % n);
                if other != cell && (rr == r || cc == c || shape.box_of(rr, cc) == shape.box_of(r, c)) {
                    p[k] = other as u8;
                    k += 1;
                }
            }
            npeers = k;
            peers.push(p);
        }
        let mut segments = Vec::new();
        for b in 0..n {
            let box_cells: Vec<usize> = (0..n * n).filter(|&i| shape.box_of(i / n, i % n) == b).collect();
            for (is_row, line) in (0..n).map(|l| (true, l)).chain((0..n).map(|l| (false, l))) {
                let on_line = |i: usize| if is_row { i / n == line } else { i % n == line };
                let seg: Vec<usize> = box_cells.iter().copied().filter(|&i| on_line(i)).collect();
                if seg.is_empty() {
                    continue;
                }
                let box_rest: Vec<usize> = box_cells.iter().copied().filter(|&i| !on_line(i)).collect();
                let line_rest: Vec<usize> =
                    (0..n * n).filter(|&i| on_line(i) && shape.box_of(i / n, i % n) != b).collect();
                let mut sg = Segment {
                    seg: [0; 3],
                    nseg: seg.len(),
                    box_rest: [0; 6],
                    line_rest: [0; 6],
                    nrest_box: box_rest.len(),
                    nrest_line: line_rest.len(),
                };
                for (slot, &c) in sg.seg.iter_mut().zip(&seg) {
                    *slot = c as u8;
                }
                for (slot, &c) in sg.box_rest.iter_mut().zip(&box_rest) {
                    *slot = c as u8;
                }
                for (slot, &c) in sg.line_rest.iter_mut().zip(&line_rest) {
                    *slot = c as u8;
                }
                segments.push(sg);
            }
        }
        Self { shape, cells: n * n, full: shape.full_mask(), units, peers, npeers, segments }
    }

    fn get(shape: Shape) -> &'static Layout {
        static LAYOUTS: OnceLock<[Layout; 3]> = OnceLock::new();
        let all =
            LAYOUTS.get_or_init(|| [Layout::build(Shape::FOUR), Layout::build(Shape::SIX), Layout::build(Shape::NINE)]);
        match shape.size() {
            4 => &all[0],
            6 => &all[1],
            _ => &all[2],
        }
    }
}

/// The search state: candidates and placed digits. Copied at branch points.
#[derive(Clone, Copy)]
struct State {
    cand: [u16; MAX_CELLS],
    digit: [u8; MAX_CELLS],
    left: u8,
}

/// Cells that became naked singles and still need placing.
struct Pending {
    cells: [u8; MAX_CELLS],
    len: usize,
}

impl Pending {
    fn new() -> Self {
        Self { cells: [0; MAX_CELLS], len: 0 }
    }
    #[inline]
    fn push(&mut self, cell: usize) {
        // A cell becomes a single at most once per state, so this never
        // overflows; the guard keeps it panic-free regardless.
        if self.len < MAX_CELLS {
            self.cells[self.len] = cell as u8;
            self.len += 1;
        }
    }
    #[inline]
    fn pop(&mut self) -> Option<usize> {
        if self.len == 0 {
            None
        } else {
            self.len -= 1;
            Some(self.cells[self.len] as usize)
        }
    }
}

impl State {
    /// Places the digit of `b` at `cell` and removes it from the peers,
    /// queueing peers left with one candidate. `false` on a contradiction
    /// (a peer left with no candidate).
    #[inline]
    fn assign(&mut self, lay: &Layout, cell: usize, b: u16, pending: &mut Pending) -> bool {
        self.digit[cell] = b.trailing_zeros() as u8 + 1;
        self.cand[cell] = b;
        self.left -= 1;
        for &p in &lay.peers[cell][..lay.npeers] {
            let p = p as usize;
            let m = self.cand[p];
            if m & b != 0 {
                let m = m & !b;
                if m == 0 {
                    return false;
                }
                self.cand[p] = m;
                if m & (m - 1) == 0 {
                    pending.push(p);
                }
            }
        }
        true
    }

    /// Naked and hidden singles (and, with `locked`, locked candidates:
    /// pointing and claiming) until a fixpoint; `false` on a contradiction.
    fn propagate(&mut self, lay: &Layout, locked: bool) -> bool {
        let mut pending = Pending::new();
        for cell in 0..lay.cells {
            if self.digit[cell] == 0 {
                let m = self.cand[cell];
                if m == 0 {
                    return false;
                }
                if m & (m - 1) == 0 {
                    pending.push(cell);
                }
            }
        }
        let n = lay.shape.size();
        loop {
            while let Some(cell) = pending.pop() {
                if self.digit[cell] == 0 && !self.assign(lay, cell, self.cand[cell], &mut pending) {
                    return false;
                }
            }
            if self.left == 0 {
                return true;
            }
            let mut changed = false;
            for unit in &lay.units {
                let (mut once, mut twice) = (0u16, 0u16);
                for &c in &unit[..n] {
                    let m = self.cand[c as usize];
                    twice |= once & m;
                    once |= m;
                }
                if once != lay.full {
                    return false;
                }
                let mut hidden = once & !twice;
                while hidden != 0 {
                    let b = hidden & hidden.wrapping_neg();
                    hidden ^= b;
                    let Some(&c) = unit[..n].iter().find(|&&c| self.cand[c as usize] & b != 0) else {
                        return false;
                    };
                    let c = c as usize;
                    if self.digit[c] == 0 {
                        if !self.assign(lay, c, b, &mut pending) {
                            return false;
                        }
                        changed = true;
                    }
                }
            }
            if !changed {
                if !locked {
                    return true;
                }
                match self.locked_candidates(lay, &mut pending) {
                    None => return false,
                    Some(false) => return true,
                    Some(true) => {}
                }
            }
        }
    }

    /// Removes `elim` from the unsolved cells in `cells`; `None` on a
    /// contradiction, else whether anything changed.
    #[inline]
    fn eliminate(&mut self, cells: &[u8], elim: u16, pending: &mut Pending) -> Option<bool> {
        let mut changed = false;
        for &c in cells {
            let c = c as usize;
            let m = self.cand[c];
            if self.digit[c] == 0 && m & elim != 0 {
                let m = m & !elim;
                if m == 0 {
                    return None;
                }
                self.cand[c] = m;
                if m & (m - 1) == 0 {
                    pending.push(c);
                }
                changed = true;
            }
        }
        Some(changed)
    }

    /// One sweep of locked candidates over every box/line intersection: a
    /// digit confined to the intersection within the box leaves the rest of
    /// the line (pointing), and vice versa (claiming). `None` on a
    /// contradiction, else whether any candidate was removed.
    fn locked_candidates(&mut self, lay: &Layout, pending: &mut Pending) -> Option<bool> {
        let mut changed = false;
        for s in &lay.segments {
            let or = |st: &Self, cells: &[u8]| cells.iter().fold(0u16, |a, &c| a | st.cand[c as usize]);
            let seg = or(self, &s.seg[..s.nseg]);
            let box_rest = or(self, &s.box_rest[..s.nrest_box]);
            let line_rest = or(self, &s.line_rest[..s.nrest_line]);
            let pointing = seg & !box_rest & line_rest;
            if pointing != 0 {
                changed |= self.eliminate(&s.line_rest[..s.nrest_line], pointing, pending)?;
            }
            let claiming = seg & !line_rest & box_rest;
            if claiming != 0 {
                changed |= self.eliminate(&s.box_rest[..s.nrest_box], claiming, pending)?;
            }
        }
        Some(changed)
    }
}

/// What a solve found and how hard it worked.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct SolveResult {
    /// Solutions found, at most the limit asked for.
    pub solutions: u32,
    /// The first solution found.
    pub solution: Option<Grid>,
    /// Candidates tried at branch points (0 = solved by singles alone).
    pub guesses: u64,
    /// Dead ends reached (contradictions after a guess).
    pub backtracks: u64,
}

impl SolveResult {
    /// Whether exactly one solution exists (meaningful with limit ≥ 2).
    pub fn is_unique(&self) -> bool {
        self.solutions == 1
    }
}

/// A solver loaded with one puzzle.
///
/// ```
/// use envs::games::sudoku::{Grid, Shape, Solver};
/// let p = Grid::parse(Shape::FOUR, "1...\n..2.\n.3..\n...4").unwrap();
/// let r = Solver::new(&p).count_solutions(2);
/// assert_eq!(r.solutions, 1);
/// assert!(r.solution.unwrap().solves(&p));
/// ```
#[derive(Clone)]
pub struct Solver {
    lay: &'static Layout,
    root: Option<State>,
    locked: bool,
}

struct Search<'r> {
    lay: &'static Layout,
    limit: u32,
    found: u32,
    first: Option<State>,
    guesses: u64,
    backtracks: u64,
    rng: Option<&'r mut dyn RngCore>,
    locked: bool,
}

impl Search<'_> {
    fn run(&mut self, mut st: State) {
        if !st.propagate(self.lay, self.locked) {
            self.backtracks += 1;
            return;
        }
        if st.left == 0 {
            self.found += 1;
            if self.first.is_none() {
                self.first = Some(st);
            }
            return;
        }
        // MRV: the unsolved cell with the fewest candidates.
        let mut best = usize::MAX;
        let mut best_n = u32::MAX;
        for cell in 0..self.lay.cells {
            if st.digit[cell] == 0 {
                let k = st.cand[cell].count_ones();
                if k < best_n {
                    best_n = k;
                    best = cell;
                    if k == 2 {
                        break;
                    }
                }
            }
        }
        let mut order = [0u16; MAX_SIZE];
        let mut k = 0;
        let mut m = st.cand[best];
        while m != 0 {
            let b = m & m.wrapping_neg();
            m ^= b;
            order[k] = b;
            k += 1;
        }
        if let Some(rng) = self.rng.as_mut() {
            order[..k].shuffle(rng);
        }
        for &b in &order[..k] {
            if self.found >= self.limit {
                return;
            }
            self.guesses += 1;
            let mut child = st;
            if child.assign(self.lay, best, b, &mut Pending::new()) {
                self.run(child);
            } else {
                self.backtracks += 1;
            }
        }
    }
}

impl Solver {
    /// Loads a puzzle. Clues that break the rules make a solver that finds
    /// no solution.
    pub fn new(puzzle: &Grid) -> Self {
        let lay = Layout::get(puzzle.shape());
        let mut st = State { cand: [0; MAX_CELLS], digit: [0; MAX_CELLS], left: lay.cells as u8 };
        st.cand[..lay.cells].fill(lay.full);
        let mut ok = true;
        let mut pending = Pending::new();
        for (cell, &v) in puzzle.cells().iter().enumerate() {
            if v != 0 {
                let b = bit(v);
                if st.cand[cell] & b == 0 || !st.assign(lay, cell, b, &mut pending) {
                    ok = false;
                    break;
                }
            }
        }
        Self { lay, root: ok.then_some(st), locked: true }
    }

    /// Whether search also applies locked candidates (pointing and
    /// claiming) between guesses; on by default. Off, propagation is naked
    /// and hidden singles only (fewer steps per node, more guesses).
    pub fn locked_candidates(mut self, on: bool) -> Self {
        self.locked = on;
        self
    }

    /// Removes `digit` from the candidates of blank cell `(r, c)` (0-based):
    /// "is there a solution with another digit here?" — the generator's
    /// cheap uniqueness test when digging a clue out.
    pub fn forbid(&mut self, r: usize, c: usize, digit: u8) {
        let cell = r * self.lay.shape.size() + c;
        if let Some(st) = self.root.as_mut() {
            if st.digit[cell] == 0 {
                st.cand[cell] &= !bit(digit);
            } else if st.digit[cell] == digit {
                self.root = None;
            }
        }
    }

    /// Counts solutions, stopping at `limit` (use 2 to test uniqueness).
    pub fn count_solutions(&self, limit: u32) -> SolveResult {
        self.search(limit, None)
    }

    /// The solution reached by naked and hidden singles alone, without
    /// guessing; `None` if the puzzle needs search (or has no solution).
    /// A puzzle solved this way has exactly one solution.
    pub fn solve_by_singles(&self) -> Option<Grid> {
        let mut st = self.root?;
        if st.propagate(self.lay, false) && st.left == 0 {
            Grid::from_cells(self.lay.shape, &st.digit[..self.lay.cells])
        } else {
            None
        }
    }

    /// The first solution, if any.
    pub fn solve(&self) -> Option<Grid> {
        self.count_solutions(1).solution
    }

    /// A solution found by trying candidates in random order: on an empty
    /// grid, a random full grid.
    pub fn solve_random(&self, rng: &mut dyn RngCore) -> Option<Grid> {
        self.search(1, Some(rng)).solution
    }

    fn search(&self, limit: u32, rng: Option<&mut dyn RngCore>) -> SolveResult {
        let mut s = Search {
            lay: self.lay,
            limit: limit.max(1),
            found: 0,
            first: None,
            guesses: 0,
            backtracks: 0,
            rng,
            locked: self.locked,
        };
        if let Some(root) = self.root {
            s.run(root);
        }
        let solution = s.first.and_then(|st| Grid::from_cells(self.lay.shape, &st.digit[..self.lay.cells]));
        SolveResult { solutions: s.found, solution, guesses: s.guesses, backtracks: s.backtracks }
    }
}

/// Counts the solutions of `puzzle` up to `limit` (limit 2 = uniqueness test).
pub fn count_solutions(puzzle: &Grid, limit: u32) -> SolveResult {
    Solver::new(puzzle).count_solutions(limit)
}

/// The first solution of `puzzle`, if any.
pub fn solve(puzzle: &Grid) -> Option<Grid> {
    Solver::new(puzzle).solve()
}

#[cfg(test)]
mod tests {
    use super::*;
    use rand::SeedableRng;

    #[test]
    fn layouts_have_expected_peers() {
        assert_eq!(Layout::get(Shape::NINE).npeers, 20);
        assert_eq!(Layout::get(Shape::SIX).npeers, 12);
        assert_eq!(Layout::get(Shape::FOUR).npeers, 7);
        assert_eq!(Layout::get(Shape::SIX).units.len(), 18);
    }

    #[test]
    fn solves_classic_puzzle_by_singles() {
        let p = Grid::parse(
            Shape::NINE,
            "53..7....6..195....98....6.8...6...34..8.3..17...2...6.6....28....419..5....8..79",
        )
        .unwrap();
        let r = count_solutions(&p, 2);
        assert_eq!(r.solutions, 1);
        assert_eq!(r.guesses, 0);
        assert_eq!(
            r.solution.unwrap().to_line(),
            "534678912672195348198342567859761423426853791713924856961537284287419635345286179"
        );
    }

    #[test]
    fn counts_multiple_and_zero_solutions() {
        let empty = Grid::empty(Shape::FOUR);
        assert_eq!(count_solutions(&empty, 1000).solutions, 288);
        assert_eq!(count_solutions(&Grid::empty(Shape::NINE), 2).solutions, 2);
        let clash = Grid::parse(Shape::FOUR, "11..\n....\n....\n....").unwrap();
        assert_eq!(count_solutions(&clash, 2).solutions, 0);
        // Consistent clues but no solution: digit 1 has nowhere to go in row 1.
        let dead = Grid::parse(Shape::FOUR, ".234\n1...\n....\n....").unwrap();
        assert_eq!(count_solutions(&dead, 2).solutions, 0);
    }

    #[test]
    fn forbid_excludes_a_digit() {
        let s = Grid::parse(Shape::FOUR, "1234\n3412\n2143\n4321").unwrap();
        let mut p = s;
        p.set(0, 0, 0);
        let mut solver = Solver::new(&p);
        assert_eq!(solver.count_solutions(2).solutions, 1);
        solver.forbid(0, 0, 1);
        assert_eq!(solver.count_solutions(2).solutions, 0);
    }

    #[test]
    fn random_fill_gives_valid_grids() {
        let mut rng = rand_chacha::ChaCha8Rng::seed_from_u64(7);
        for shape in [Shape::FOUR, Shape::SIX, Shape::NINE] {
            let g = Solver::new(&Grid::empty(shape)).solve_random(&mut rng).unwrap();
            assert!(g.is_solved(), "{g:?}");
        }
    }
}
