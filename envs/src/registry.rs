//! The env registry: envs by id, with typed options and defaults.

use std::collections::BTreeMap;
use std::fmt;
use std::sync::Arc;

use crate::env::{Env, EnvError};
use crate::types::{Action, Observation, Step};

/// The type of an option's value, with its valid range.
#[derive(Debug, Clone, PartialEq)]
pub enum OptionKind {
    /// An integer in `min..=max`.
    Int {
        /// Smallest valid value.
        min: i64,
        /// Largest valid value.
        max: i64,
    },
    /// A float in `min..=max`.
    Float {
        /// Smallest valid value.
        min: f64,
        /// Largest valid value.
        max: f64,
    },
    /// One of a fixed set of words.
    Choice(&'static [&'static str]),
    /// `true` or `false`.
    Bool,
    /// Free text (a path, a tag name).
    Text,
}

impl fmt::Display for OptionKind {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        match self {
            OptionKind::Int { min, max } => write!(f, "integer {min}..={max}"),
            OptionKind::Float { min, max } => write!(f, "number {min}..={max}"),
            OptionKind::Choice(c) => write!(f, "one of {}", c.join("|")),
            OptionKind::Bool => write!(f, "true|false"),
            OptionKind::Text => write!(f, "text"),
        }
    }
}

/// One option an env accepts.
#[derive(Debug, Clone, PartialEq)]
pub struct OptionSpec {
    /// The option's name (`--opt name=value`).
    pub name: &'static str,
    /// Its type and range.
    pub kind: OptionKind,
    /// Its default, written as on the command line (empty = unset).
    pub default: &'static str,
    /// One line of help.
    pub help: &'static str,
}

/// Discrete moves an env also accepts as numbers, OpenSpiel-style: a
/// server maps `action_id` `i` to the reply for move `names[i]`, lists the
/// legal ids, and reports the board as `info_state`.
#[derive(Debug, Clone, PartialEq)]
pub struct ActionIds {
    /// The move each id stands for, by id (2048: `up`, `right`, `down`, `left`).
    pub names: &'static [&'static str],
    /// The reply the env reads for a move: `{}` is replaced by its name
    /// (2048: `<answer>{}</answer>`). A legal action of the observation is
    /// legal id `i` when it is this reply for `names[i]`.
    pub reply: &'static str,
    /// The field of the observation's `state` holding the board (rows of
    /// numbers or a flat list), reported flattened as `info_state`.
    pub board_field: Option<&'static str>,
}

impl ActionIds {
    /// The reply for action id `id`, if it is one.
    pub fn reply_for(&self, id: u64) -> Option<String> {
        let name = self.names.get(usize::try_from(id).ok()?)?;
        Some(self.reply.replace("{}", name))
    }

    /// The action id a legal action stands for: its reply, or the bare
    /// move name (any case).
    pub fn id_of(&self, action: &str) -> Option<u64> {
        let action = action.trim();
        (0..self.names.len() as u64).find(|&i| {
            self.reply_for(i).as_deref() == Some(action) || self.names[i as usize].eq_ignore_ascii_case(action)
        })
    }
}

/// What an env declares about itself.
#[derive(Debug, Clone, Default, PartialEq)]
pub struct EnvSpec {
    /// The id users type (`2048`, `sudoku`).
    pub id: &'static str,
    /// Bumped whenever rules or rewards change, so old trajectories are
    /// recognisable.
    pub version: u32,
    /// One line: what the task is.
    pub description: &'static str,
    /// Episodes are truncated after this many steps.
    pub max_steps: usize,
    /// The options the env accepts.
    pub options: Vec<OptionSpec>,
    /// Numbered moves, for envs with a small fixed move set (`None`: text
    /// replies only).
    pub action_ids: Option<ActionIds>,
}

/// A parsed option value.
#[derive(Debug, Clone, PartialEq)]
pub enum OptValue {
    /// An integer.
    Int(i64),
    /// A float.
    Float(f64),
    /// A boolean.
    Bool(bool),
    /// Text or a choice.
    Text(String),
}

impl fmt::Display for OptValue {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        match self {
            OptValue::Int(v) => write!(f, "{v}"),
            OptValue::Float(v) => write!(f, "{v}"),
            OptValue::Bool(v) => write!(f, "{v}"),
            OptValue::Text(v) => write!(f, "{v}"),
        }
    }
}

/// Validated options of one env: every declared option has a value
/// (its default unless given).
#[derive(Debug, Clone, Default, PartialEq)]
pub struct Options {
    values: BTreeMap<String, OptValue>,
}

impl Options {
    /// The value of a declared option. Every declared option has a value
    /// (the registry fills in defaults), so an absent name is a misspelling
    /// in the env's own code: it panics naming the declared options instead
    /// of reading as 0 or "" and silently changing the env.
    fn get(&self, name: &str) -> &OptValue {
        match self.values.get(name) {
            Some(v) => v,
            None => panic!(
                "option `{name}` is not declared by this env; declared: {}",
                self.values.keys().cloned().collect::<Vec<_>>().join(", ")
            ),
        }
    }
    /// An integer option (0 if declared with another type).
    ///
    /// # Panics
    /// When `name` is not a declared option (a bug in the env).
    pub fn int(&self, name: &str) -> i64 {
        match self.get(name) {
            OptValue::Int(v) => *v,
            _ => 0,
        }
    }
    /// A float option (integers convert).
    ///
    /// # Panics
    /// When `name` is not a declared option (a bug in the env).
    pub fn float(&self, name: &str) -> f64 {
        match self.get(name) {
            OptValue::Float(v) => *v,
            OptValue::Int(v) => *v as f64,
            _ => 0.0,
        }
    }
    /// A boolean option.
    ///
    /// # Panics
    /// When `name` is not a declared option (a bug in the env).
    pub fn bool(&self, name: &str) -> bool {
        matches!(self.get(name), OptValue::Bool(true))
    }
    /// A text or choice option ("" when unset).
    ///
    /// # Panics
    /// When `name` is not a declared option (a bug in the env).
    pub fn text(&self, name: &str) -> &str {
        match self.get(name) {
            OptValue::Text(v) => v,
            _ => "",
        }
    }
    /// All values as strings, sorted by name (for trajectory files).
    pub fn to_map(&self) -> BTreeMap<String, String> {
        self.values.iter().map(|(k, v)| (k.clone(), v.to_string())).collect()
    }
    /// Sets a value directly (for tests and programmatic use).
    pub fn set(&mut self, name: &str, value: OptValue) {
        self.values.insert(name.to_string(), value);
    }
}

/// Registry errors: each names what exists.
#[derive(Debug, thiserror::Error)]
#[non_exhaustive]
pub enum RegistryError {
    /// No env with this id.
    #[error("unknown env `{id}`; available envs: {}", known.join(", "))]
    UnknownEnv {
        /// The id asked for.
        id: String,
        /// The ids that exist.
        known: Vec<String>,
    },
    /// The env has no option of this name.
    #[error("env `{env}` has no option `{name}`; its options: {}", if known.is_empty() { "(none)".to_string() } else { known.join(", ") })]
    UnknownOption {
        /// The env id.
        env: String,
        /// The option asked for.
        name: String,
        /// The options that exist.
        known: Vec<String>,
    },
    /// The value is of the wrong type or out of range.
    #[error("env `{env}`, option `{name}`: `{value}` is not valid (expected {expected})")]
    BadValue {
        /// The env id.
        env: String,
        /// The option.
        name: String,
        /// The value given.
        value: String,
        /// What is accepted.
        expected: String,
    },
    /// An option was not written as `name=value`.
    #[error("option `{0}` must be written as name=value")]
    Syntax(String),
    /// The env could not be built from valid options (e.g. a dataset file
    /// that does not parse).
    #[error("env `{env}`: {source}")]
    Build {
        /// The env id.
        env: String,
        /// Why.
        source: EnvError,
    },
}

/// Creates env instances; cheap to call once per worker thread.
pub type EnvMaker = Arc<dyn Fn() -> Box<dyn Env> + Send + Sync>;

/// Turns validated options into an [`EnvMaker`]. Expensive set-up (reading
/// a dataset) happens here, once; the maker shares it between instances.
pub type EnvFactory = Arc<dyn Fn(&Options) -> Result<EnvMaker, EnvError> + Send + Sync>;

/// Envs by id.
#[derive(Clone, Default)]
pub struct Registry {
    entries: BTreeMap<&'static str, (EnvSpec, EnvFactory)>,
}

impl Registry {
    /// An empty registry.
    pub fn new() -> Self {
        Self::default()
    }

    /// Adds (or replaces) an env.
    pub fn register(
        &mut self,
        spec: EnvSpec,
        factory: impl Fn(&Options) -> Result<EnvMaker, EnvError> + Send + Sync + 'static,
    ) {
        self.entries.insert(spec.id, (spec, Arc::new(factory)));
    }

    /// Every env's spec, sorted by id.
    pub fn specs(&self) -> impl Iterator<Item = &EnvSpec> {
        self.entries.values().map(|(s, _)| s)
    }

    /// The ids, sorted.
    pub fn ids(&self) -> Vec<String> {
        self.entries.keys().map(|k| k.to_string()).collect()
    }

    /// One env's spec.
    pub fn spec(&self, id: &str) -> Result<&EnvSpec, RegistryError> {
        self.entries
            .get(id)
            .map(|(s, _)| s)
            .ok_or_else(|| RegistryError::UnknownEnv { id: id.to_string(), known: self.ids() })
    }

    /// Parses `name=value` pairs against the env's declared options.
    pub fn options<S: AsRef<str>>(&self, id: &str, pairs: &[S]) -> Result<Options, RegistryError> {
        let spec = self.spec(id)?;
        let mut given = BTreeMap::new();
        for p in pairs {
            let p = p.as_ref();
            let (k, v) = p.split_once('=').ok_or_else(|| RegistryError::Syntax(p.to_string()))?;
            given.insert(k.trim().to_string(), v.trim().to_string());
        }
        let mut opts = Options::default();
        for name in given.keys() {
            if !spec.options.iter().any(|o| o.name == name) {
                return Err(RegistryError::UnknownOption {
                    env: id.to_string(),
                    name: name.clone(),
                    known: spec.options.iter().map(|o| o.name.to_string()).collect(),
                });
            }
        }
        for o in &spec.options {
            let raw = given.get(o.name).map(String::as_str).unwrap_or(o.default);
            let bad = || RegistryError::BadValue {
                env: id.to_string(),
                name: o.name.to_string(),
                value: raw.to_string(),
                expected: o.kind.to_string(),
            };
            let v = match &o.kind {
                OptionKind::Int { min, max } => {
                    let v: i64 = raw.parse().map_err(|_| bad())?;
                    if v < *min || v > *max {
                        return Err(bad());
                    }
                    OptValue::Int(v)
                }
                OptionKind::Float { min, max } => {
                    let v: f64 = raw.parse().map_err(|_| bad())?;
                    if !(v >= *min && v <= *max) {
                        return Err(bad());
                    }
                    OptValue::Float(v)
                }
                OptionKind::Choice(c) => {
                    if !c.contains(&raw) {
                        return Err(bad());
                    }
                    OptValue::Text(raw.to_string())
                }
                OptionKind::Bool => OptValue::Bool(match raw {
                    "true" | "1" | "yes" => true,
                    "false" | "0" | "no" => false,
                    _ => return Err(bad()),
                }),
                OptionKind::Text => OptValue::Text(raw.to_string()),
            };
            opts.values.insert(o.name.to_string(), v);
        }
        Ok(opts)
    }

    /// Builds a maker for `id` with validated options. Every env it makes
    /// is wrapped in a step limit of the spec's `max_steps`.
    pub fn maker(&self, id: &str, options: &Options) -> Result<EnvMaker, RegistryError> {
        let (spec, factory) =
            self.entries.get(id).ok_or_else(|| RegistryError::UnknownEnv { id: id.to_string(), known: self.ids() })?;
        let inner = factory(options).map_err(|source| RegistryError::Build { env: id.to_string(), source })?;
        let max_steps = spec.max_steps;
        Ok(Arc::new(move || Box::new(TimeLimit { inner: inner(), max_steps, steps: 0, over: false }) as Box<dyn Env>))
    }

    /// Shorthand: parse options and make one env.
    pub fn make<S: AsRef<str>>(&self, id: &str, pairs: &[S]) -> Result<Box<dyn Env>, RegistryError> {
        let opts = self.options(id, pairs)?;
        Ok(self.maker(id, &opts)?())
    }
}

/// Truncates episodes after `max_steps` steps (Gymnasium's `TimeLimit`).
struct TimeLimit {
    inner: Box<dyn Env>,
    max_steps: usize,
    steps: usize,
    over: bool,
}

impl Env for TimeLimit {
    fn reset(&mut self, seed: u64) -> Result<Observation, EnvError> {
        self.steps = 0;
        self.over = false;
        self.inner.reset(seed)
    }

    fn step(&mut self, action: &Action) -> Result<Step, EnvError> {
        if self.over {
            return Err(EnvError::EpisodeOver);
        }
        let mut step = self.inner.step(action)?;
        self.steps += 1;
        if self.steps >= self.max_steps && !step.terminated {
            step.truncated = true;
        }
        self.over = step.done();
        Ok(step)
    }

    fn demonstration(&self) -> Option<Action> {
        self.inner.demonstration()
    }

    fn history(&self) -> crate::History {
        self.inner.history()
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::onestep::{OneStepEnv, TaskItem, TaskSource};
    use crate::rewards::{answer_rubric, Tags};

    struct Echo;
    impl TaskSource for Echo {
        fn item(&self, seed: u64) -> Result<TaskItem, EnvError> {
            Ok(TaskItem {
                question: format!("say {seed}"),
                answer: seed.to_string(),
                demonstration: Tags::default().wrap("", &seed.to_string()),
                ..TaskItem::default()
            })
        }
    }

    fn registry() -> Registry {
        let mut r = Registry::new();
        r.register(
            EnvSpec {
                id: "echo",
                version: 1,
                description: "say the seed",
                max_steps: 1,
                options: vec![
                    OptionSpec { name: "n", kind: OptionKind::Int { min: 1, max: 3 }, default: "2", help: "n" },
                    OptionSpec { name: "mode", kind: OptionKind::Choice(&["a", "b"]), default: "a", help: "m" },
                    OptionSpec { name: "flag", kind: OptionKind::Bool, default: "false", help: "f" },
                ],
                ..EnvSpec::default()
            },
            |_| {
                let rubric = Arc::new(answer_rubric(&Tags::default()));
                Ok(Arc::new(move || {
                    Box::new(OneStepEnv::new(Arc::new(Echo), rubric.clone(), "sys", "correctness", 0.8)) as Box<dyn Env>
                }) as EnvMaker)
            },
        );
        r
    }

    #[test]
    fn options_get_defaults_and_are_checked() {
        let r = registry();
        let o = r.options("echo", &[] as &[&str]).unwrap();
        assert_eq!((o.int("n"), o.text("mode"), o.bool("flag")), (2, "a", false));
        let o = r.options("echo", &["n=3", "mode=b", "flag=true"]).unwrap();
        assert_eq!((o.int("n"), o.text("mode"), o.bool("flag")), (3, "b", true));
        for bad in ["n=4", "n=x", "mode=c", "flag=2", "zzz=1", "novalue"] {
            let e = r.options("echo", &[bad]).unwrap_err().to_string();
            assert!(!e.is_empty() && !e.contains("panick"), "{bad}: {e}");
        }
        assert!(r.options("echo", &["zzz=1"]).unwrap_err().to_string().contains("n, mode, flag"));
        assert!(r.options("nope", &[] as &[&str]).unwrap_err().to_string().contains("echo"));
    }

    #[test]
    #[should_panic(expected = "option `nn` is not declared by this env; declared: flag, mode, n")]
    fn a_misspelt_option_name_panics_naming_the_declared_ones() {
        let r = registry();
        let o = r.options("echo", &[] as &[&str]).unwrap();
        let _ = o.int("nn");
    }

    #[test]
    fn made_envs_pass_the_checker_and_enforce_the_step_limit() {
        let r = registry();
        let maker = r.maker("echo", &r.options("echo", &[] as &[&str]).unwrap()).unwrap();
        crate::check::check_env(&maker, 1).unwrap();
        let mut env = maker();
        env.reset(5).unwrap();
        let d = env.demonstration().unwrap();
        let s = env.step(&d).unwrap();
        assert!(s.terminated && s.info.success == Some(true));
        assert!(matches!(env.step(&d), Err(EnvError::EpisodeOver)));
    }
}
