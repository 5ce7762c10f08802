//! Sudoku grids of size 4 (2×2 boxes), 6 (2×3 boxes) and 9 (3×3 boxes):
//! parsing, rendering and rule checks.

use std::fmt;

/// The largest supported side length.
pub const MAX_SIZE: usize = 9;
/// The largest number of cells.
pub const MAX_CELLS: usize = MAX_SIZE * MAX_SIZE;

/// A grid's side length and box shape.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash)]
pub struct Shape {
    size: u8,
    box_rows: u8,
    box_cols: u8,
}

impl Shape {
    /// 4×4 with 2×2 boxes.
    pub const FOUR: Shape = Shape { size: 4, box_rows: 2, box_cols: 2 };
    /// 6×6 with boxes of 2 rows × 3 columns.
    pub const SIX: Shape = Shape { size: 6, box_rows: 2, box_cols: 3 };
    /// 9×9 with 3×3 boxes.
    pub const NINE: Shape = Shape { size: 9, box_rows: 3, box_cols: 3 };

    /// The shape for side length 4, 6 or 9.
    pub fn of_size(size: usize) -> Option<Shape> {
        match size {
            4 => Some(Self::FOUR),
            6 => Some(Self::SIX),
            9 => Some(Self::NINE),
            _ => None,
        }
    }

    /// Side length (also the largest digit).
    pub fn size(self) -> usize {
        self.size as usize
    }
    /// Rows per box.
    pub fn box_rows(self) -> usize {
        self.box_rows as usize
    }
    /// Columns per box.
    pub fn box_cols(self) -> usize {
        self.box_cols as usize
    }
    /// Number of cells.
    pub fn cells(self) -> usize {
        self.size() * self.size()
    }
    /// The box index (row-major over boxes) of cell `(r, c)`.
    pub fn box_of(self, r: usize, c: usize) -> usize {
        let boxes_per_row = self.size() / self.box_cols();
        (r / self.box_rows()) * boxes_per_row + c / self.box_cols()
    }
    /// The mask with one bit per digit (bit `d-1` for digit `d`).
    pub fn full_mask(self) -> u16 {
        (1u16 << self.size) - 1
    }
}

/// Why a grid could not be parsed.
#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
pub enum ParseError {
    /// A character that is neither a digit, a blank nor a separator.
    #[error("unexpected character {ch:?} in row {row}")]
    BadChar {
        /// The character.
        ch: char,
        /// The 1-based row (line of cells) it appeared in.
        row: usize,
    },
    /// A digit larger than the grid's size.
    #[error("digit {digit} in row {row} is out of range 1-{size}")]
    DigitRange {
        /// The digit.
        digit: u8,
        /// The 1-based row.
        row: usize,
        /// The grid size.
        size: usize,
    },
    /// The wrong number of rows or cells.
    #[error("expected {size} rows of {size} cells, found {found}")]
    Shape {
        /// The grid size.
        size: usize,
        /// What was found, in words.
        found: String,
    },
}

/// A Sudoku grid: digits `1..=size`, `0` for a blank cell.
#[derive(Clone, Copy, PartialEq, Eq, Hash)]
pub struct Grid {
    shape: Shape,
    cells: [u8; MAX_CELLS],
}

impl fmt::Debug for Grid {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        write!(f, "Grid({}x{}: {})", self.shape.size, self.shape.size, self.to_line())
    }
}

impl Grid {
    /// An empty grid.
    pub fn empty(shape: Shape) -> Self {
        Self { shape, cells: [0; MAX_CELLS] }
    }

    /// A grid from row-major cell values (`0` = blank). `None` if the length
    /// is wrong or a value exceeds the size.
    pub fn from_cells(shape: Shape, cells: &[u8]) -> Option<Self> {
        if cells.len() != shape.cells() || cells.iter().any(|&v| v as usize > shape.size()) {
            return None;
        }
        let mut g = Self::empty(shape);
        g.cells[..cells.len()].copy_from_slice(cells);
        Some(g)
    }

    /// Parses a grid written as text: either one line of `size²` cells
    /// (`81` characters for 9×9, the common wire format) or `size` lines of
    /// `size` cells. Digits are cells; `.`, `0`, `_` are blanks; spaces,
    /// `|`, `+`, `-`, `,`, `[`, `]` are separators and ignored; lines with no
    /// cells (box separator lines) are skipped.
    pub fn parse(shape: Shape, text: &str) -> Result<Self, ParseError> {
        let n = shape.size();
        let mut rows: Vec<Vec<u8>> = Vec::new();
        for line in text.lines() {
            let mut row = Vec::new();
            for ch in line.chars() {
                match ch {
                    '1'..='9' => {
                        let d = ch as u8 - b'0';
                        if d as usize > n {
                            return Err(ParseError::DigitRange { digit: d, row: rows.len() + 1, size: n });
                        }
                        row.push(d);
                    }
                    '.' | '0' | '_' => row.push(0),
                    c if c.is_whitespace() || matches!(c, '|' | '+' | '-' | ',' | '[' | ']') => {}
                    c => return Err(ParseError::BadChar { ch: c, row: rows.len() + 1 }),
                }
            }
            if !row.is_empty() {
                rows.push(row);
            }
        }
        let cells: Vec<u8> = if rows.len() == 1 && rows[0].len() == shape.cells() {
            rows.swap_remove(0)
        } else if rows.len() == n && rows.iter().all(|r| r.len() == n) {
            rows.concat()
        } else {
            let found = if rows.len() != n {
                format!("{} rows", rows.len())
            } else {
                let (i, r) = rows.iter().enumerate().find(|(_, r)| r.len() != n).unwrap_or((0, &rows[0]));
                format!("{} cells in row {}", r.len(), i + 1)
            };
            return Err(ParseError::Shape { size: n, found });
        };
        Self::from_cells(shape, &cells).ok_or(ParseError::Shape { size: n, found: "bad cells".into() })
    }

    /// The grid's shape.
    pub fn shape(&self) -> Shape {
        self.shape
    }
    /// Side length.
    pub fn size(&self) -> usize {
        self.shape.size()
    }
    /// Row-major cell values (`0` = blank).
    pub fn cells(&self) -> &[u8] {
        &self.cells[..self.shape.cells()]
    }
    /// The value at row `r`, column `c` (0-based, both `< size`; `0` = blank).
    pub fn get(&self, r: usize, c: usize) -> u8 {
        debug_assert!(r < self.size() && c < self.size());
        self.cells[r * self.size() + c]
    }
    /// Sets row `r`, column `c` (0-based, both `< size`) to `v` (`0` clears).
    /// Callers pass coordinates they validated; the env checks model input
    /// before calling this.
    pub fn set(&mut self, r: usize, c: usize, v: u8) {
        let n = self.size();
        debug_assert!(r < n && c < n && v as usize <= n);
        self.cells[r * n + c] = v;
    }
    /// Number of filled cells (clues, for a puzzle).
    pub fn filled(&self) -> usize {
        self.cells().iter().filter(|&&v| v != 0).count()
    }
    /// Number of blank cells.
    pub fn blanks(&self) -> usize {
        self.shape.cells() - self.filled()
    }
    /// Rows as vectors (for JSON state).
    pub fn rows(&self) -> Vec<Vec<u8>> {
        self.cells().chunks(self.size()).map(<[u8]>::to_vec).collect()
    }

    /// One line of `size²` characters, `.` for blanks.
    pub fn to_line(&self) -> String {
        self.cells().iter().map(|&v| if v == 0 { '.' } else { (b'0' + v) as char }).collect()
    }

    /// `size` lines of `size` digits without separators (the answer format).
    pub fn to_rows_text(&self) -> String {
        let mut s = String::with_capacity(self.shape.cells() + self.size());
        for (i, row) in self.cells().chunks(self.size()).enumerate() {
            if i > 0 {
                s.push('\n');
            }
            s.extend(row.iter().map(|&v| if v == 0 { '.' } else { (b'0' + v) as char }));
        }
        s
    }

    /// Renders the grid for a reader: digits separated by spaces, `.` for
    /// blanks, `|` between boxes and a `-`/`+` line between bands. With
    /// `labels`, 1-based row and column numbers frame the grid.
    pub fn render(&self, labels: bool) -> String {
        let n = self.size();
        let (br, bc) = (self.shape.box_rows(), self.shape.box_cols());
        let seg = "-".repeat(2 * bc + 1);
        let mut out = String::new();
        let rule = |out: &mut String| {
            if labels {
                out.push_str("  ");
            }
            let parts: Vec<&str> = (0..n / bc).map(|_| seg.as_str()).collect();
            if labels {
                out.push('+');
                out.push_str(&parts.join("+"));
                out.push('+');
            } else {
                // Without the outer frame the first and last segments lose the
                // space that would face the frame.
                let body = parts.join("+");
                out.push_str(&body[1..body.len() - 1]);
            }
            out.push('\n');
        };
        if labels {
            out.push_str("   ");
            for c in 0..n {
                if c > 0 && c % bc == 0 {
                    out.push_str("  ");
                }
                out.push(' ');
                out.push((b'1' + c as u8) as char);
            }
            out.push('\n');
            rule(&mut out);
        }
        for r in 0..n {
            if r > 0 && r % br == 0 {
                rule(&mut out);
            }
            if labels {
                out.push((b'1' + r as u8) as char);
                out.push_str(" |");
            }
            for c in 0..n {
                if c > 0 && c % bc == 0 {
                    out.push_str(" |");
                }
                if labels || c > 0 {
                    out.push(' ');
                }
                let v = self.get(r, c);
                out.push(if v == 0 { '.' } else { (b'0' + v) as char });
            }
            if labels {
                out.push_str(" |");
            }
            out.push('\n');
        }
        if labels {
            rule(&mut out);
        }
        out.pop();
        out
    }

    /// The digits allowed at `(r, c)` by its row, column and box, as a mask
    /// (bit `d-1` for digit `d`), ignoring the cell's own value.
    pub fn candidates(&self, r: usize, c: usize) -> u16 {
        let n = self.size();
        let mut used = 0u16;
        for i in 0..n {
            if i != c {
                used |= bit(self.get(r, i));
            }
            if i != r {
                used |= bit(self.get(i, c));
            }
        }
        let (br, bc) = (self.shape.box_rows(), self.shape.box_cols());
        let (r0, c0) = (r / br * br, c / bc * bc);
        for rr in r0..r0 + br {
            for cc in c0..c0 + bc {
                if rr != r || cc != c {
                    used |= bit(self.get(rr, cc));
                }
            }
        }
        self.shape.full_mask() & !used
    }

    /// Whether no row, column or box repeats a digit (blanks allowed).
    pub fn is_consistent(&self) -> bool {
        self.check(false)
    }

    /// Whether every cell is filled and every row, column and box holds
    /// each digit once. Allocation-free; well under a microsecond for 9×9.
    pub fn is_solved(&self) -> bool {
        self.check(true)
    }

    fn check(&self, complete: bool) -> bool {
        let n = self.size();
        let (br, bc) = (self.shape.box_rows(), self.shape.box_cols());
        let mut rows = [0u16; MAX_SIZE];
        let mut cols = [0u16; MAX_SIZE];
        let mut boxes = [0u16; MAX_SIZE];
        // Box index of each column within a band: no division in the loop.
        let mut col_box = [0usize; MAX_SIZE];
        for (c, slot) in col_box.iter_mut().enumerate().take(n) {
            *slot = c / bc;
        }
        let per_band = n / bc;
        for (r, row) in self.cells[..n * n].chunks_exact(n).enumerate() {
            let band = (r / br) * per_band;
            for (c, &v) in row.iter().enumerate() {
                if v == 0 {
                    if complete {
                        return false;
                    }
                    continue;
                }
                let b = bit(v);
                let bx = band + col_box[c];
                if (rows[r] | cols[c] | boxes[bx]) & b != 0 {
                    return false;
                }
                rows[r] |= b;
                cols[c] |= b;
                boxes[bx] |= b;
            }
        }
        true
    }

    /// Whether this grid keeps every clue of `puzzle` (same shape, same
    /// digit wherever the puzzle has one).
    pub fn keeps_clues_of(&self, puzzle: &Grid) -> bool {
        self.shape == puzzle.shape && self.cells().iter().zip(puzzle.cells()).all(|(&a, &p)| p == 0 || a == p)
    }

    /// Whether this grid is a solution of `puzzle`: solved and keeps its
    /// clues (verification by the rules, not against a stored answer).
    pub fn solves(&self, puzzle: &Grid) -> bool {
        self.keeps_clues_of(puzzle) && self.is_solved()
    }
}

/// The mask bit of digit `v` (`0` for a blank).
#[inline]
pub(crate) fn bit(v: u8) -> u16 {
    if v == 0 {
        0
    } else {
        1 << (v - 1)
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    const PUZZLE: &str = "53..7....6..195....98....6.8...6...34..8.3..17...2...6.6....28....419..5....8..79";
    const SOLUTION: &str = "534678912672195348198342567859761423426853791713924856961537284287419635345286179";

    #[test]
    fn parses_line_and_rows() {
        let g = Grid::parse(Shape::NINE, PUZZLE).unwrap();
        assert_eq!(g.to_line(), PUZZLE);
        assert_eq!(g.filled(), 30);
        let again = Grid::parse(Shape::NINE, &g.render(false)).unwrap();
        assert_eq!(again, g);
        let labelled = Grid::parse(Shape::NINE, &g.render(true));
        assert!(labelled.is_err(), "labels are digits, so the labelled render is not an answer");
        assert_eq!(Grid::parse(Shape::NINE, &g.to_rows_text()).unwrap(), g);
    }

    #[test]
    fn parse_errors_name_the_problem() {
        assert!(matches!(Grid::parse(Shape::FOUR, "1234\n3412\n2143"), Err(ParseError::Shape { .. })));
        assert!(matches!(Grid::parse(Shape::FOUR, "1235\n3412\n2143\n4321"), Err(ParseError::DigitRange { .. })));
        assert!(matches!(Grid::parse(Shape::FOUR, "12x4\n3412\n2143\n4321"), Err(ParseError::BadChar { .. })));
        assert!(matches!(Grid::parse(Shape::FOUR, ""), Err(ParseError::Shape { .. })));
        let e = Grid::parse(Shape::FOUR, "1234\n341\n2143\n4321").unwrap_err();
        assert_eq!(e.to_string(), "expected 4 rows of 4 cells, found 3 cells in row 2");
    }

    #[test]
    fn checks_rules() {
        let p = Grid::parse(Shape::NINE, PUZZLE).unwrap();
        let s = Grid::parse(Shape::NINE, SOLUTION).unwrap();
        assert!(p.is_consistent() && !p.is_solved());
        assert!(s.is_solved() && s.solves(&p));
        let mut bad = s;
        bad.set(0, 0, 3);
        bad.set(0, 1, 5);
        assert!(!bad.is_solved() && !bad.keeps_clues_of(&p));
        let mut swapped = s;
        swapped.set(0, 2, s.get(0, 3));
        assert!(!swapped.is_consistent());
        assert_eq!(p.candidates(0, 2), bit(1) | bit(2) | bit(4));
    }

    #[test]
    fn renders_boxes() {
        let g = Grid::parse(Shape::SIX, "123456456123231564564231312645645312").unwrap();
        assert!(g.is_solved());
        assert_eq!(
            g.render(false),
            "1 2 3 | 4 5 6\n4 5 6 | 1 2 3\n------+------\n2 3 1 | 5 6 4\n5 6 4 | 2 3 1\n------+------\n3 1 2 | 6 4 5\n6 4 5 | 3 1 2"
        );
        let four = Grid::parse(Shape::FOUR, "1.3.\n....\n....\n...1").unwrap();
        assert_eq!(
            four.render(true),
            "    1 2   3 4\n  +-----+-----+\n1 | 1 . | 3 . |\n2 | . . | . . |\n  +-----+-----+\n3 | . . | . . |\n4 | . . | . 1 |\n  +-----+-----+"
        );
    }
}
