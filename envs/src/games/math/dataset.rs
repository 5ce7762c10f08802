//! Loading question/answer datasets from local JSONL files.
//!
//! Two formats:
//! * **GSM8K** (`openai/gsm8k` rows): `{"question": "...", "answer": "...\n#### 72"}`. The answer is a worked
//!   solution whose last line is `#### <number>`; calculator annotations `<<48/2=24>>` are removed from the
//!   solution, and the gold answer is the number after `####` with thousands separators removed.
//! * **Generic**: `{"prompt": "...", "answer": "..." | 42, "solution": "..."}` (`solution` optional).
//!
//! Blank lines are skipped. Any other problem (unreadable file, invalid JSON, a missing or mistyped field, an
//! empty file) is an [`EnvError::File`] naming the file and the 1-based line.

use std::path::Path;

use serde_json::{Map, Value};

use crate::env::EnvError;

/// One question of a loaded dataset.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct MathItem {
    /// The question text.
    pub question: String,
    /// The gold answer.
    pub answer: String,
    /// A worked solution (may be empty when the dataset has none).
    pub solution: String,
}

fn file_err(path: &Path, reason: impl Into<String>) -> EnvError {
    EnvError::File { path: path.display().to_string(), reason: reason.into() }
}

/// Reads a JSONL file of objects, calling `parse(object)` for each
/// non-blank line; errors from `parse` are reported with the line number.
pub fn read_jsonl<T>(
    path: &Path,
    mut parse: impl FnMut(&Map<String, Value>) -> Result<T, String>,
) -> Result<Vec<T>, EnvError> {
    let text = std::fs::read_to_string(path).map_err(|e| file_err(path, format!("cannot read: {e}")))?;
    let mut out = Vec::new();
    for (i, line) in text.lines().enumerate() {
        let line = line.trim();
        if line.is_empty() {
            continue;
        }
        let n = i + 1;
        let value: Value =
            serde_json::from_str(line).map_err(|e| file_err(path, format!("line {n}: invalid JSON: {e}")))?;
        let obj = value.as_object().ok_or_else(|| file_err(path, format!("line {n}: expected a JSON object")))?;
        out.push(parse(obj).map_err(|reason| file_err(path, format!("line {n}: {reason}")))?);
    }
    if out.is_empty() {
        return Err(file_err(path, "no items (the file is empty)"));
    }
    Ok(out)
}

/// A required non-empty string field.
pub fn text_field(obj: &Map<String, Value>, name: &str) -> Result<String, String> {
    match obj.get(name) {
        Some(Value::String(s)) if !s.trim().is_empty() => Ok(s.clone()),
        Some(Value::String(_)) => Err(format!("field `{name}` is empty")),
        Some(_) => Err(format!("field `{name}` must be a string")),
        None => Err(format!("missing field `{name}`")),
    }
}

/// A required answer field: a non-empty string or a number (written as
/// JSON writes it).
pub fn answer_field(obj: &Map<String, Value>, name: &str) -> Result<String, String> {
    match obj.get(name) {
        Some(Value::Number(x)) => Ok(x.to_string()),
        Some(Value::String(s)) if !s.trim().is_empty() => Ok(s.trim().to_string()),
        Some(Value::String(_)) => Err(format!("field `{name}` is empty")),
        Some(_) => Err(format!("field `{name}` must be a string or a number")),
        None => Err(format!("missing field `{name}`")),
    }
}

/// Removes GSM8K calculator annotations: every `<<…>>` span.
pub fn strip_annotations(s: &str) -> String {
    let mut out = String::with_capacity(s.len());
    let mut rest = s;
    while let Some(start) = rest.find("<<") {
        match rest[start..].find(">>") {
            Some(end) => {
                out.push_str(&rest[..start]);
                rest = &rest[start + end + 2..];
            }
            None => break,
        }
    }
    out.push_str(rest);
    out
}

/// Splits a GSM8K answer into (worked solution without annotations, gold
/// number without commas). `None` when the last non-blank line is not
/// `#### <number>`.
pub fn parse_gsm8k_answer(answer: &str) -> Option<(String, String)> {
    let body = answer.trim_end();
    let (solution, last) = match body.rfind('\n') {
        Some(i) => (&body[..i], &body[i + 1..]),
        None => ("", body),
    };
    let gold = last.trim().strip_prefix("####")?.trim().replace(',', "");
    let digits = gold.strip_prefix('-').unwrap_or(&gold);
    let valid = !digits.is_empty()
        && digits.chars().all(|c| c.is_ascii_digit() || c == '.')
        && digits.chars().any(|c| c.is_ascii_digit())
        && digits.matches('.').count() <= 1;
    if !valid {
        return None;
    }
    Some((strip_annotations(solution).trim().to_string(), gold))
}

/// Loads a GSM8K-format JSONL file.
pub fn load_gsm8k(path: &Path) -> Result<Vec<MathItem>, EnvError> {
    read_jsonl(path, |obj| {
        let question = text_field(obj, "question")?;
        let raw = text_field(obj, "answer")?;
        let (solution, answer) = parse_gsm8k_answer(&raw)
            .ok_or_else(|| "field `answer` does not end with a `#### <number>` line".to_string())?;
        Ok(MathItem { question, answer, solution })
    })
}

/// Loads a generic JSONL file (`prompt`, `answer`, optional `solution`).
pub fn load_jsonl(path: &Path) -> Result<Vec<MathItem>, EnvError> {
    read_jsonl(path, |obj| {
        let question = text_field(obj, "prompt")?;
        let answer = answer_field(obj, "answer")?;
        let solution = match obj.get("solution") {
            None | Some(Value::Null) => String::new(),
            Some(Value::String(s)) => s.trim().to_string(),
            Some(_) => return Err("field `solution` must be a string".into()),
        };
        Ok(MathItem { question, answer, solution })
    })
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn annotations_are_stripped() {
        assert_eq!(strip_annotations("48/2 = <<48/2=24>>24 clips"), "48/2 = 24 clips");
        assert_eq!(strip_annotations("a <<x>> b <<y>>c"), "a  b c");
        assert_eq!(strip_annotations("unclosed <<x"), "unclosed <<x");
    }

    #[test]
    fn gsm8k_gold_is_the_number_after_hashes() {
        let (sol, gold) = parse_gsm8k_answer("She sold 48/2 = <<48/2=24>>24 clips.\n#### 1,072").unwrap();
        assert_eq!(sol, "She sold 48/2 = 24 clips.");
        assert_eq!(gold, "1072");
        assert_eq!(parse_gsm8k_answer("#### -3.5\n").unwrap().1, "-3.5");
        assert!(parse_gsm8k_answer("no final line").is_none());
        assert!(parse_gsm8k_answer("x\n#### seven").is_none());
        assert!(parse_gsm8k_answer("x\n####").is_none());
    }
}
