//! The `math` environment: one question, one reply, a checkable number.
//!
//! Sources (option `source`):
//! * `generated` (default): the built-in procedural generator
//!   ([`generator`]): arithmetic with precedence, word problems about
//!   prices, quantities and rates, fractions and percentages; seeded, exact,
//!   offline; `difficulty` easy|medium|hard.
//! * `gsm8k`: a local GSM8K-format JSONL file (`path`), see [`dataset`].
//! * `jsonl`: a local JSONL file of `{"prompt", "answer"}` rows (`path`).
//!
//! For datasets, seed `s` selects item `s % len`. The reply format is
//! `<think>…</think><answer>…</answer>` (tags configurable) and the reward
//! is [`crate::rewards::answer_rubric`]: `format_exact` (×1),
//! `format_approx` (×1), `correctness` (×2, partial credit) and `number`
//! (×1); an episode succeeds when `correctness` ≥ 0.8. The observation's
//! `state` holds `answer_tag` and `answer_space` (never the answer).

pub mod dataset;
pub mod generator;
pub mod number;
pub mod reasons;

use std::path::Path;
use std::sync::Arc;

use serde_json::{json, Value};

use crate::env::{Env, EnvError};
use crate::onestep::{OneStepEnv, TaskItem, TaskSource};
use crate::registry::{EnvMaker, EnvSpec, OptionKind, OptionSpec, Options, Registry};
use crate::rewards::{answer_rubric, Tags};

use dataset::MathItem;
use generator::Difficulty;

/// The env id.
pub const ID: &str = "math";

/// Bumped when problems or rewards change.
pub const VERSION: u32 = 1;

/// The rubric term that decides success, and its threshold.
pub const SUCCESS_TERM: (&str, f64) = ("correctness", 0.8);

/// The env's spec: id, version, options.
pub fn spec() -> EnvSpec {
    EnvSpec {
        id: ID,
        version: VERSION,
        description: "Math word problems and arithmetic with a numeric answer (generated, GSM8K or JSONL)",
        max_steps: 1,
        options: [
            OptionSpec {
                name: "source",
                kind: OptionKind::Choice(&["generated", "gsm8k", "jsonl"]),
                default: "generated",
                help:
                    "where problems come from: the built-in generator, a GSM8K JSONL file or a prompt/answer JSONL file",
            },
            OptionSpec {
                name: "path",
                kind: OptionKind::Text,
                default: "",
                help: "the JSONL file for source=gsm8k|jsonl; seed s selects item s % len",
            },
            OptionSpec {
                name: "difficulty",
                kind: OptionKind::Choice(Difficulty::NAMES),
                default: "easy",
                help: "generated problems: easy (1-2 steps), medium (3-4 steps, decimals), hard (5+ steps, negatives)",
            },
        ]
        .into_iter()
        .chain(tag_options())
        .collect(),
        ..EnvSpec::default()
    }
}

/// Registers `math`.
pub fn register(r: &mut Registry) {
    r.register(spec(), factory);
}

/// Builds a maker from validated options; reads dataset files now, so a
/// bad file fails here (before any episode runs).
pub fn factory(opts: &Options) -> Result<EnvMaker, EnvError> {
    let tags = tags_from_options(opts)?;
    let tasks = match opts.text("source") {
        "gsm8k" => MathTasks::from_items(dataset::load_gsm8k(&required_path(opts)?)?, "gsm8k", tags.clone()),
        "jsonl" => MathTasks::from_items(dataset::load_jsonl(&required_path(opts)?)?, "jsonl", tags.clone()),
        _ => {
            refuse_unused_path(opts, "gsm8k or jsonl")?;
            let d = opts.text("difficulty");
            let d = Difficulty::parse(d).ok_or_else(|| EnvError::BadOption {
                name: "difficulty".into(),
                reason: format!("`{d}` is not one of easy|medium|hard"),
            })?;
            MathTasks::generated(d, tags.clone())
        }
    };
    let system = tasks.system_prompt();
    let source: Arc<dyn TaskSource> = Arc::new(tasks);
    let rubric = Arc::new(answer_rubric(&tags));
    Ok(Arc::new(move || {
        let env = OneStepEnv::new(source.clone(), rubric.clone(), system.clone(), SUCCESS_TERM.0, SUCCESS_TERM.1);
        Box::new(reasons::Explained::new(env, tags.clone())) as Box<dyn Env>
    }))
}

/// A `path` given with the built-in source would be ignored: refuse it and
/// say which `source` reads files.
pub(crate) fn refuse_unused_path(opts: &Options, file_sources: &str) -> Result<(), EnvError> {
    if opts.text("path").trim().is_empty() {
        return Ok(());
    }
    Err(EnvError::BadOption {
        name: "path".into(),
        reason: format!(
            "a file is read only with source={file_sources} (source is `{}`); add --opt source=…",
            opts.text("source")
        ),
    })
}

fn required_path(opts: &Options) -> Result<std::path::PathBuf, EnvError> {
    let p = opts.text("path").trim();
    if p.is_empty() {
        return Err(EnvError::BadOption {
            name: "path".into(),
            reason: format!("a file is required when source={}", opts.text("source")),
        });
    }
    Ok(Path::new(p).to_path_buf())
}

/// Reads and validates the `reasoning_tag` and `answer_tag` options.
/// The two tag options every tagged text task offers (`reasoning_tag`,
/// `answer_tag`), read back by [`tags_from_options`].
pub(crate) fn tag_options() -> [OptionSpec; 2] {
    [
        OptionSpec {
            name: "reasoning_tag",
            kind: OptionKind::Text,
            default: "think",
            help: "tag the reasoning goes in: <think>...</think>",
        },
        OptionSpec {
            name: "answer_tag",
            kind: OptionKind::Text,
            default: "answer",
            help: "tag the final answer goes in: <answer>...</answer>",
        },
    ]
}

pub(crate) fn tags_from_options(opts: &Options) -> Result<Tags, EnvError> {
    let check = |name: &str| -> Result<String, EnvError> {
        let v = opts.text(name).trim();
        let ok = !v.is_empty() && v.len() <= 32 && v.chars().all(|c| c.is_ascii_alphanumeric() || c == '_' || c == '-');
        if ok {
            Ok(v.to_string())
        } else {
            Err(EnvError::BadOption {
                name: name.into(),
                reason: format!("`{v}` is not a tag name (1-32 letters, digits, `_` or `-`)"),
            })
        }
    };
    let tags = Tags { reasoning: check("reasoning_tag")?, answer: check("answer_tag")? };
    if tags.reasoning == tags.answer {
        return Err(EnvError::BadOption { name: "answer_tag".into(), reason: "must differ from reasoning_tag".into() });
    }
    Ok(tags)
}

/// A strictly numeric answer (`42`, `-3.5`), as a float.
pub(crate) fn plain_number(s: &str) -> Option<f64> {
    let s = s.trim();
    let digits = s.strip_prefix('-').unwrap_or(s);
    if digits.is_empty() || !digits.chars().all(|c| c.is_ascii_digit() || c == '.') {
        return None;
    }
    s.parse::<f64>().ok().filter(|v| v.is_finite())
}

/// The `answer_space` of a dataset: a number range covering every gold
/// answer when all are numbers, else the distinct answers as choices
/// (at most 100). It describes the whole dataset, never one item.
pub(crate) fn answer_space<'a>(answers: impl Iterator<Item = &'a str> + Clone) -> Value {
    let nums: Option<Vec<f64>> = answers.clone().map(plain_number).collect();
    match nums {
        Some(v) if !v.is_empty() => {
            let lo = v.iter().copied().fold(f64::INFINITY, f64::min).floor() as i64;
            let hi = v.iter().copied().fold(f64::NEG_INFINITY, f64::max).ceil() as i64;
            json!({"kind": "number", "min": lo, "max": hi})
        }
        _ => {
            let set: std::collections::BTreeSet<&str> = answers.collect();
            json!({"kind": "choice", "values": set.into_iter().take(100).collect::<Vec<_>>()})
        }
    }
}

/// The math task source: the generator or a loaded dataset.
pub struct MathTasks {
    kind: Kind,
    tags: Tags,
}

enum Kind {
    Generated(Difficulty),
    Dataset { name: &'static str, items: Vec<MathItem>, space: Value },
}

impl MathTasks {
    /// Generated problems at `difficulty`.
    pub fn generated(difficulty: Difficulty, tags: Tags) -> Self {
        Self { kind: Kind::Generated(difficulty), tags }
    }

    /// A loaded dataset (`name` is recorded in the state: `gsm8k`, `jsonl`).
    /// `items` must not be empty (the loaders guarantee it).
    pub fn from_items(items: Vec<MathItem>, name: &'static str, tags: Tags) -> Self {
        let space = answer_space(items.iter().map(|i| i.answer.as_str()));
        Self { kind: Kind::Dataset { name, items, space }, tags }
    }

    /// The system prompt: the task and the reply format.
    pub fn system_prompt(&self) -> String {
        let numeric = match &self.kind {
            Kind::Generated(_) => true,
            Kind::Dataset { space, .. } => space["kind"] == "number",
        };
        let mut s = format!("Solve the math problem. {}", self.tags.instruction());
        if numeric {
            s.push_str(" The final answer must be a single number, without units.");
        }
        s
    }

    /// How many distinct items the source holds (`None`: unbounded).
    pub fn len(&self) -> Option<usize> {
        match &self.kind {
            Kind::Generated(_) => None,
            Kind::Dataset { items, .. } => Some(items.len()),
        }
    }

    /// Whether the source is a dataset with no items (never, once loaded).
    pub fn is_empty(&self) -> bool {
        self.len() == Some(0)
    }
}

impl TaskSource for MathTasks {
    fn item(&self, seed: u64) -> Result<TaskItem, EnvError> {
        let tag = &self.tags.answer;
        match &self.kind {
            Kind::Generated(d) => {
                let p = generator::generate(seed, *d);
                let (lo, hi) = d.answer_range();
                let answer = p.answer_text();
                Ok(TaskItem {
                    demonstration: self.tags.wrap(&p.steps.join("\n"), &answer),
                    question: p.question,
                    answer,
                    images: Vec::new(),
                    state: json!({
                        "answer_tag": tag,
                        "answer_space": {"kind": "number", "min": lo, "max": hi},
                        "source": "generated",
                        "difficulty": d.name(),
                        "template": p.template,
                    }),
                })
            }
            Kind::Dataset { name, items, space } => {
                if items.is_empty() {
                    return Err(EnvError::Other(format!("the {name} dataset has no items")));
                }
                let index = (seed % items.len() as u64) as usize;
                let it = &items[index];
                let reasoning =
                    if it.solution.is_empty() { format!("The answer is {}.", it.answer) } else { it.solution.clone() };
                Ok(TaskItem {
                    question: it.question.clone(),
                    answer: it.answer.clone(),
                    images: Vec::new(),
                    demonstration: self.tags.wrap(&reasoning, &it.answer),
                    state: json!({"answer_tag": tag, "answer_space": space, "source": name, "index": index}),
                })
            }
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn answer_space_covers_dataset() {
        let s = answer_space(["3", "-2.5", "40"].into_iter());
        assert_eq!(s, json!({"kind": "number", "min": -3, "max": 40}));
        let s = answer_space(["B", "A", "B"].into_iter());
        assert_eq!(s, json!({"kind": "choice", "values": ["A", "B"]}));
    }

    #[test]
    fn tag_options_are_validated() {
        let r = {
            let mut r = Registry::new();
            register(&mut r);
            r
        };
        assert!(r.options(ID, &["answer_tag=bad tag"]).is_ok());
        let opts = r.options(ID, &["answer_tag=bad tag"]).unwrap();
        assert!(matches!(factory(&opts), Err(EnvError::BadOption { .. })));
        let opts = r.options(ID, &["answer_tag=think"]).unwrap();
        assert!(matches!(factory(&opts), Err(EnvError::BadOption { .. })));
        let opts = r.options(ID, &["source=gsm8k"]).unwrap();
        assert!(matches!(factory(&opts), Err(EnvError::BadOption { name, .. }) if name == "path"));
        // A path without a file source used to be ignored silently.
        let opts = r.options(ID, &["path=data.jsonl"]).unwrap();
        let Err(EnvError::BadOption { name, reason }) = factory(&opts) else { panic!("path was ignored") };
        assert!(name == "path" && reason.contains("source=gsm8k or jsonl"), "{reason}");
    }

    #[test]
    fn plain_numbers_only() {
        assert_eq!(plain_number(" -3.5 "), Some(-3.5));
        assert_eq!(plain_number("1,000"), None);
        assert_eq!(plain_number("C"), None);
        assert_eq!(plain_number("-"), None);
    }
}
