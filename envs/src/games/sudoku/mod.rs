//! The `sudoku` environment and a reusable Sudoku core.
//!
//! * [`grid`]: grids of size 4 (2×2 boxes), 6 (2×3) and 9 (3×3), parsing,
//!   rendering and rule checks;
//! * [`solver`]: a bitmask solver (singles propagation + MRV search) that
//!   counts solutions up to a limit and reports its effort;
//! * [`mod@generate`]: seeded unique-solution puzzle generation by difficulty;
//! * [`mod@env`]: the `sudoku` env (answer and move modes).

pub mod env;
pub mod generate;
pub mod grid;
pub mod solver;

pub use env::{register, Mode, SudokuConfig, SudokuEnv};
pub use generate::{generate, Difficulty, Puzzle, Target};
pub use grid::{Grid, ParseError, Shape};
pub use solver::{count_solutions, solve, SolveResult, Solver};
