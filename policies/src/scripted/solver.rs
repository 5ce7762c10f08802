use envs::games::sudoku::env::next_cell;
use envs::games::sudoku::{Grid, Shape, Solver};
use envs::{Completion, Policy, PolicyError, Request, SamplingParams};

/// Solves Sudoku: reads the grid from `observation.state` (`size`, `grid`,
/// `mode`, `answer_tag`), solves it with the bitmask solver and replies
/// with the completed grid (`mode=answer`) or the next placement
/// (`mode=move`: the blank cell with the fewest candidates, as
/// `row column digit`). It never looks at the env's demonstration.
pub struct SudokuSolver;

fn grid_from_state(state: &serde_json::Value) -> Result<Grid, String> {
    let size = state["size"].as_u64().ok_or("observation.state has no Sudoku `size`")? as usize;
    let shape = Shape::of_size(size).ok_or_else(|| format!("unsupported Sudoku size {size}"))?;
    let rows = state["grid"].as_array().ok_or("observation.state has no Sudoku `grid`")?;
    let mut cells = Vec::with_capacity(size * size);
    for row in rows {
        for v in row.as_array().ok_or("`grid` rows must be arrays")? {
            let v = v.as_u64().filter(|&v| v as usize <= size).ok_or("`grid` cells must be digits 0..=size")?;
            cells.push(v as u8);
        }
    }
    Grid::from_cells(shape, &cells).ok_or_else(|| format!("`grid` must be {size}×{size}"))
}

/// The solver's reply to one Sudoku observation.
pub fn solve_reply(state: &serde_json::Value) -> Result<String, String> {
    let grid = grid_from_state(state)?;
    let tag = state["answer_tag"].as_str().unwrap_or("answer");
    let solution = Solver::new(&grid).solve().ok_or("the grid has no solution")?;
    match state["mode"].as_str().unwrap_or("answer") {
        "move" => {
            let (r, c) = next_cell(&grid).ok_or("the grid has no blank cell")?;
            Ok(format!("<{tag}>{} {} {}</{tag}>", r + 1, c + 1, solution.get(r, c)))
        }
        _ => {
            let rows: Vec<String> =
                solution.rows().iter().map(|r| r.iter().map(u8::to_string).collect::<Vec<_>>().join(" ")).collect();
            Ok(format!("<{tag}>\n{}\n</{tag}>", rows.join("\n")))
        }
    }
}

impl Policy for SudokuSolver {
    fn name(&self) -> &str {
        "solver"
    }

    fn generate(&self, requests: &[Request<'_>], params: &SamplingParams) -> Result<Vec<Vec<Completion>>, PolicyError> {
        requests
            .iter()
            .map(|r| {
                let text = solve_reply(&r.observation.state).map_err(|e| {
                    PolicyError::Unsupported(format!("`solver` plays Sudoku; env `{}`: {e}", r.key.env))
                })?;
                Ok(vec![Completion::text(text); params.n.max(1)])
            })
            .collect()
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use serde_json::json;

    #[test]
    fn answers_and_moves() {
        let state = json!({"size": 4, "mode": "answer", "answer_tag": "answer",
            "grid": [[1,0,0,0],[0,0,2,0],[0,3,0,0],[0,0,0,4]]});
        let reply = solve_reply(&state).unwrap();
        let body = envs::rewards::extract_tag(&reply, "answer").unwrap();
        let g = Grid::parse(Shape::FOUR, body).unwrap();
        assert!(g.solves(&grid_from_state(&state).unwrap()));
        let mut mv = state.clone();
        mv["mode"] = json!("move");
        mv["grid"] = json!([[1, 2, 3, 4], [3, 4, 1, 2], [2, 1, 4, 3], [4, 3, 2, 0]]);
        assert_eq!(solve_reply(&mv).unwrap(), "<answer>4 4 1</answer>");
    }

    #[test]
    fn rejects_other_observations() {
        assert!(solve_reply(&json!({"question": "2+2"})).is_err());
        assert!(solve_reply(&json!({"size": 5, "grid": []})).is_err());
        assert!(solve_reply(&json!({"size": 4, "grid": [[1, 2]]})).is_err());
        assert!(solve_reply(&json!({"size": 4, "grid": [[1,1,0,0],[0,0,0,0],[0,0,0,0],[0,0,0,0]]})).is_err());
    }
}
