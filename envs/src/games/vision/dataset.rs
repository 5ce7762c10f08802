//! Loading image questions from a local JSONL file.
//!
//! Each line: `{"image": "img/001.png", "question": "...", "answer": "..." | 3}` with an optional
//! `"solution"` (worked reasoning for the oracle). `image` is a PNG path relative to the JSONL file's
//! folder. Every image is read and decoded when the env is built, so a missing or corrupt image fails
//! then, with an [`EnvError::File`] naming the JSONL file, the line and the image.

use std::path::Path;

use serde_json::Value;

use crate::env::EnvError;
use crate::games::math::dataset::{answer_field, read_jsonl, text_field};

/// One loaded question.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct VisionItem {
    /// The question text.
    pub question: String,
    /// The gold answer.
    pub answer: String,
    /// Worked reasoning (may be empty).
    pub solution: String,
    /// The image, PNG bytes as read from disk.
    pub png: Vec<u8>,
    /// Width and height in pixels.
    pub dims: (u32, u32),
}

/// Loads a JSONL file of image questions.
pub fn load_jsonl(path: &Path) -> Result<Vec<VisionItem>, EnvError> {
    let dir = path.parent().unwrap_or(Path::new("."));
    read_jsonl(path, |obj| {
        let rel = text_field(obj, "image")?;
        let question = text_field(obj, "question")?;
        let answer = answer_field(obj, "answer")?;
        let solution = match obj.get("solution") {
            None | Some(Value::Null) => String::new(),
            Some(Value::String(s)) => s.trim().to_string(),
            Some(_) => return Err("field `solution` must be a string".into()),
        };
        let file = dir.join(&rel);
        let png = std::fs::read(&file).map_err(|e| format!("image `{rel}` ({}): cannot read: {e}", file.display()))?;
        let img = image::load_from_memory_with_format(&png, image::ImageFormat::Png)
            .map_err(|e| format!("image `{rel}` ({}) is not a valid PNG: {e}", file.display()))?;
        Ok(VisionItem { question, answer, solution, png, dims: (img.width(), img.height()) })
    })
}
