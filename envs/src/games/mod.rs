//! The built-in environments.

pub mod echo;
pub mod math;
pub mod strategy;
pub mod sudoku;
pub mod twenty48;
pub mod vision;
