//! The `vision-qa` environment: one question about an attached image.
//!
//! Sources (option `source`):
//! * `generated` (default): procedurally rendered scenes ([`scenes`]) whose
//!   answers are computed from the hidden scene: `task=count` (how many red
//!   circles…), `task=bar` (read a bar chart: a bar's value, the largest
//!   bar, a difference) or `task=mixed` (either, by seed). Images are
//!   `size`×`size` RGB PNGs drawn with no anti-aliasing and a built-in
//!   bitmap font ([`font`]), so a seed always gives the same bytes.
//! * `jsonl`: a local JSONL file of `{"image", "question", "answer"}` rows
//!   with PNG images beside it ([`dataset`]); seed `s` selects item
//!   `s % len`.
//!
//! The image travels in [`crate::Observation::images`]; the question says
//! it is attached. The reward is [`crate::rewards::answer_rubric`]
//! (`format_exact` ×1, `format_approx` ×1, `correctness` ×2 with partial
//! credit for numbers and exact-after-normalisation for text, `number` ×1
//! for numeric answers); success when `correctness` ≥ 0.8.

pub mod canvas;
pub mod dataset;
pub mod font;
pub mod scenes;

use std::sync::Arc;

use rand::{Rng, SeedableRng};
use rand_chacha::ChaCha8Rng;
use serde_json::json;

use crate::env::{Env, EnvError};
use crate::games::math::reasons::Explained;
use crate::games::math::{answer_space, tag_options, tags_from_options};
use crate::onestep::{OneStepEnv, TaskItem, TaskSource};
use crate::registry::{EnvMaker, EnvSpec, OptionKind, OptionSpec, Options, Registry};
use crate::rewards::{answer_rubric, Tags};

use dataset::VisionItem;

/// The env id.
pub const ID: &str = "vision-qa";

/// Bumped when scenes, questions or rewards change.
pub const VERSION: u32 = 1;

/// The rubric term that decides success, and its threshold.
pub const SUCCESS_TERM: (&str, f64) = ("correctness", 0.8);

/// Says that an image comes with the question.
pub const ATTACHED: &str = "The image is attached.";

/// The env's spec: id, version, options.
pub fn spec() -> EnvSpec {
    EnvSpec {
        id: ID,
        version: VERSION,
        description: "Questions about an attached image: count coloured shapes, read bar charts (generated or JSONL)",
        max_steps: 1,
        options: [
            OptionSpec {
                name: "task",
                kind: OptionKind::Choice(&["count", "bar", "mixed"]),
                default: "mixed",
                help: "generated scenes: count shapes, read a bar chart, or either by seed",
            },
            OptionSpec {
                name: "source",
                kind: OptionKind::Choice(&["generated", "jsonl"]),
                default: "generated",
                help: "built-in rendered scenes, or a JSONL file of image/question/answer rows",
            },
            OptionSpec {
                name: "path",
                kind: OptionKind::Text,
                default: "",
                help: "the JSONL file for source=jsonl (image paths are relative to it); seed s selects item s % len",
            },
            OptionSpec {
                name: "size",
                kind: OptionKind::Int { min: 64, max: 1024 },
                default: "256",
                help: "side of generated images in pixels",
            },
        ]
        .into_iter()
        .chain(tag_options())
        .collect(),
        ..EnvSpec::default()
    }
}

/// Registers `vision-qa`.
pub fn register(r: &mut Registry) {
    r.register(spec(), factory);
}

/// Builds a maker from validated options; loads JSONL files and images now.
pub fn factory(opts: &Options) -> Result<EnvMaker, EnvError> {
    let tags = tags_from_options(opts)?;
    let tasks = match opts.text("source") {
        "jsonl" => {
            let p = opts.text("path").trim();
            if p.is_empty() {
                return Err(EnvError::BadOption {
                    name: "path".into(),
                    reason: "a file is required when source=jsonl".into(),
                });
            }
            VisionTasks::from_items(dataset::load_jsonl(std::path::Path::new(p))?, tags.clone())
        }
        _ => {
            crate::games::math::refuse_unused_path(opts, "jsonl")?;
            let task = match opts.text("task") {
                "count" => Task::Count,
                "bar" => Task::Bar,
                _ => Task::Mixed,
            };
            let size = opts.int("size");
            if !(64..=1024).contains(&size) {
                return Err(EnvError::BadOption { name: "size".into(), reason: format!("{size} is not in 64..=1024") });
            }
            VisionTasks::generated(task, size as u32, tags.clone())
        }
    };
    let system = tasks.system_prompt();
    let source: Arc<dyn TaskSource> = Arc::new(tasks);
    let rubric = Arc::new(answer_rubric(&tags));
    Ok(Arc::new(move || {
        let env = OneStepEnv::new(source.clone(), rubric.clone(), system.clone(), SUCCESS_TERM.0, SUCCESS_TERM.1);
        Box::new(Explained::new(env, tags.clone())) as Box<dyn Env>
    }))
}

/// Which generated task.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Task {
    /// Count shapes.
    Count,
    /// Read a bar chart.
    Bar,
    /// Either, chosen by the seed.
    Mixed,
}

/// The vision task source: rendered scenes or a loaded dataset.
pub struct VisionTasks {
    kind: Kind,
    tags: Tags,
}

enum Kind {
    Generated { task: Task, size: u32 },
    Dataset { items: Vec<VisionItem>, space: serde_json::Value },
}

impl VisionTasks {
    /// Generated scenes of `size`×`size` pixels.
    pub fn generated(task: Task, size: u32, tags: Tags) -> Self {
        Self { kind: Kind::Generated { task, size: size.clamp(64, 1024) }, tags }
    }

    /// A loaded dataset (non-empty; the loader guarantees it).
    pub fn from_items(items: Vec<VisionItem>, tags: Tags) -> Self {
        let space = answer_space(items.iter().map(|i| i.answer.as_str()));
        Self { kind: Kind::Dataset { items, space }, tags }
    }

    /// The system prompt: the task and the reply format.
    pub fn system_prompt(&self) -> String {
        format!("Answer the question about the attached image. {}", self.tags.instruction())
    }

    /// The generated scene task for `seed` (generated sources only).
    pub fn scene(&self, seed: u64) -> Option<scenes::SceneTask> {
        let Kind::Generated { task, size } = self.kind else { return None };
        let mut rng = ChaCha8Rng::seed_from_u64(seed);
        let count = match task {
            Task::Count => true,
            Task::Bar => false,
            Task::Mixed => rng.gen_bool(0.5),
        };
        Some(if count { scenes::count_task(&mut rng, size) } else { scenes::bar_task(&mut rng, size) })
    }
}

impl TaskSource for VisionTasks {
    fn item(&self, seed: u64) -> Result<TaskItem, EnvError> {
        let tag = &self.tags.answer;
        match &self.kind {
            Kind::Generated { size, .. } => {
                let t = self.scene(seed).ok_or_else(|| EnvError::Other("no scene".into()))?;
                Ok(TaskItem {
                    question: format!("{ATTACHED} {}", t.question),
                    demonstration: self.tags.wrap(&t.reasoning, &t.answer),
                    answer: t.answer,
                    images: vec![t.image.to_png()],
                    state: json!({
                        "answer_tag": tag,
                        "answer_space": t.space,
                        "source": "generated",
                        "task": t.task,
                        "image_size": [size, size],
                    }),
                })
            }
            Kind::Dataset { items, space } => {
                if items.is_empty() {
                    return Err(EnvError::Other("the vision dataset has no items".into()));
                }
                let index = (seed % items.len() as u64) as usize;
                let it = &items[index];
                let reasoning =
                    if it.solution.is_empty() { format!("The answer is {}.", it.answer) } else { it.solution.clone() };
                Ok(TaskItem {
                    question: format!("{ATTACHED} {}", it.question),
                    answer: it.answer.clone(),
                    images: vec![it.png.clone()],
                    demonstration: self.tags.wrap(&reasoning, &it.answer),
                    state: json!({
                        "answer_tag": tag,
                        "answer_space": space,
                        "source": "jsonl",
                        "index": index,
                        "image_size": [it.dims.0, it.dims.1],
                    }),
                })
            }
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn scenes_are_deterministic_and_tasks_differ() {
        let t = VisionTasks::generated(Task::Mixed, 128, Tags::default());
        let a = t.item(5).unwrap();
        let b = t.item(5).unwrap();
        assert_eq!(a.images, b.images);
        assert_eq!(a.question, b.question);
        let kinds: std::collections::BTreeSet<String> =
            (0..20).map(|s| t.item(s).unwrap().state["task"].as_str().unwrap().to_string()).collect();
        assert_eq!(kinds.len(), 2);
    }

    #[test]
    fn jsonl_requires_a_path() {
        let mut r = Registry::new();
        register(&mut r);
        let opts = r.options(ID, &["source=jsonl"]).unwrap();
        assert!(matches!(factory(&opts), Err(EnvError::BadOption { name, .. }) if name == "path"));
    }
}
