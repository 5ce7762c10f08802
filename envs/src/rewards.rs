//! Named reward functions and the [`Rubric`] that combines them.
//!
//! A step's reward is a weighted sum of small named functions; every step
//! records each function's score so a user can see *why* a completion scored
//! what it did. The functions here are the ones every text task needs:
//! format checks, answer extraction and numeric correctness with partial
//! credit. All regexes are compiled with `(?s)` so `.` crosses newlines.

use regex::Regex;

use crate::answer::{self, Answer};
use crate::types::StepInfo;

/// What a reward function sees: the completion and the task's gold answer.
#[derive(Debug, Clone, Copy)]
pub struct RewardInput<'a> {
    /// The policy's reply.
    pub completion: &'a str,
    /// The gold answer, when the task has one.
    pub answer: Option<&'a str>,
}

/// A named reward function. `None` means "no reward" (excluded from the
/// total; GRPO treats it as missing rather than zero).
pub trait RewardFn: Send + Sync {
    /// The name shown in breakdowns and metrics (`rewards/<name>/mean`).
    fn name(&self) -> &str;
    /// Scores one completion.
    fn score(&self, input: &RewardInput<'_>) -> Option<f64>;
}

/// A weighted list of reward functions.
#[derive(Default)]
pub struct Rubric {
    fns: Vec<(Box<dyn RewardFn>, f64)>,
}

impl std::fmt::Debug for Rubric {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_list().entries(self.fns.iter().map(|(r, w)| (r.name(), *w))).finish()
    }
}

impl Rubric {
    /// An empty rubric.
    pub fn new() -> Self {
        Self::default()
    }

    /// Adds a reward function with a weight.
    pub fn with(mut self, f: impl RewardFn + 'static, weight: f64) -> Self {
        self.fns.push((Box::new(f), weight));
        self
    }

    /// The functions' names, in order.
    pub fn names(&self) -> Vec<&str> {
        self.fns.iter().map(|(f, _)| f.name()).collect()
    }

    /// Scores a completion, appending one breakdown term per function.
    pub fn score_into(&self, input: &RewardInput<'_>, info: &mut StepInfo) {
        for (f, w) in &self.fns {
            let v = f.score(input).filter(|v| v.is_finite());
            info.term(f.name(), v, *w);
        }
    }
}

/// The text between the last `<tag>` and the following `</tag>`.
pub fn extract_tag<'a>(text: &'a str, tag: &str) -> Option<&'a str> {
    let open = format!("<{tag}>");
    let close = format!("</{tag}>");
    let start = text.rfind(&open)? + open.len();
    let end = text[start..].find(&close)? + start;
    Some(&text[start..end])
}

/// Reply format with a reasoning section and an answer section.
#[derive(Debug, Clone)]
pub struct Tags {
    /// The reasoning tag, e.g. `think` for `<think>…</think>`.
    pub reasoning: String,
    /// The answer tag, e.g. `answer` for `<answer>…</answer>`.
    pub answer: String,
}

impl Default for Tags {
    fn default() -> Self {
        Self { reasoning: "think".into(), answer: "answer".into() }
    }
}

impl Tags {
    /// The instruction for the system prompt describing this format.
    pub fn instruction(&self) -> String {
        format!(
            "Think step by step inside <{r}> and </{r}>, then give only the final answer inside <{a}> and </{a}>.",
            r = self.reasoning,
            a = self.answer
        )
    }

    /// A reply in this format.
    pub fn wrap(&self, reasoning: &str, answer: &str) -> String {
        format!("<{r}>{reasoning}</{r}>\n<{a}>{answer}</{a}>", r = self.reasoning, a = self.answer)
    }
}

/// 1.0 when the whole reply is `<reasoning>…</reasoning>` then
/// `<answer>…</answer>` (whitespace around allowed, newlines inside), else 0.
pub struct ExactFormat {
    re: Regex,
}

impl ExactFormat {
    /// For the given tags.
    pub fn new(tags: &Tags) -> Self {
        let r = regex::escape(&tags.reasoning);
        let a = regex::escape(&tags.answer);
        let re = Regex::new(&format!(r"(?s)\A\s*<{r}>.*?</{r}>\s*<{a}>.+?</{a}>\s*\z"))
            .expect("escaped tags form a valid regex");
        Self { re }
    }
}

impl RewardFn for ExactFormat {
    fn name(&self) -> &str {
        "format_exact"
    }
    fn score(&self, input: &RewardInput<'_>) -> Option<f64> {
        Some(if self.re.is_match(input.completion) { 1.0 } else { 0.0 })
    }
}

/// +0.25 for each of the four tags that occurs exactly once, −0.5 for each
/// that does not (range −2 … +1): partial credit on the way to the format.
pub struct ApproxFormat {
    tags: [String; 4],
}

impl ApproxFormat {
    /// For the given tags.
    pub fn new(tags: &Tags) -> Self {
        let (r, a) = (&tags.reasoning, &tags.answer);
        Self { tags: [format!("<{r}>"), format!("</{r}>"), format!("<{a}>"), format!("</{a}>")] }
    }
}

impl RewardFn for ApproxFormat {
    fn name(&self) -> &str {
        "format_approx"
    }
    fn score(&self, input: &RewardInput<'_>) -> Option<f64> {
        Some(
            self.tags.iter().map(|t| if input.completion.matches(t.as_str()).count() == 1 { 0.25 } else { -0.5 }).sum(),
        )
    }
}

/// Grades the answer inside the answer tag against the gold answer:
/// 1.0 exact string match, 0.8 equal after trimming (or numerically equal),
/// 0.5 within 10 %, 0.25 within 20 %, −0.5 wrong, −1.0 when the answer tag
/// is missing (the missing-answer penalty). `None` if the task has no answer.
pub struct Correctness {
    tag: String,
}

impl Correctness {
    /// For the given tags.
    pub fn new(tags: &Tags) -> Self {
        Self { tag: tags.answer.clone() }
    }
}

/// Partial-credit grade of a guessed answer string against the gold one:
/// 1.0 for the gold's exact text, 0.8 for the same text after trimming or the
/// same value ([`answer::equal`]), 0.5 within 10 %, 0.25 within 20 %, −0.5
/// otherwise. A guess that names several different values (a list of
/// candidates, [`Answer::Several`]) is wrong and never gets partial credit;
/// so is one that cannot be read ([`Answer::Unreadable`]). A gold answer that
/// is not one value (a word, a tuple) is compared as text only.
pub fn grade_answer(guess: &str, gold: &str) -> f64 {
    if guess == gold {
        return 1.0;
    }
    if normalise(guess) == normalise(gold) {
        return 0.8;
    }
    let (Answer::One(t), Answer::One(g)) = (answer::read_gold(gold), answer::read_answer(guess)) else {
        return -0.5;
    };
    if answer::equal(&g, &t) {
        return 0.8;
    }
    match (g.value.to_f64(), t.value.to_f64()) {
        (Some(g), Some(t)) => {
            let rel = if t == 0.0 { (g - t).abs() } else { ((g - t) / t).abs() };
            if rel <= 0.1 {
                0.5
            } else if rel <= 0.2 {
                0.25
            } else {
                -0.5
            }
        }
        _ => -0.5,
    }
}

fn normalise(s: &str) -> String {
    s.trim().trim_end_matches('.').to_lowercase().split_whitespace().collect::<Vec<_>>().join(" ")
}

impl RewardFn for Correctness {
    fn name(&self) -> &str {
        "correctness"
    }
    fn score(&self, input: &RewardInput<'_>) -> Option<f64> {
        let gold = input.answer?;
        Some(match extract_tag(input.completion, &self.tag) {
            None => -1.0,
            Some(guess) => grade_answer(guess, gold),
        })
    }
}

/// 1.0 when the value inside the answer tag (or, without the tag, the
/// reply's final answer: see [`answer::read_reply`]) equals the gold value;
/// 0 when it differs, names several different values (a list of candidates)
/// or cannot be read; −0.5 when no number is found. `None` when the gold
/// answer is not one value.
pub struct NumberCheck {
    tag: String,
    reasoning: String,
}

impl NumberCheck {
    /// For the given tags.
    pub fn new(tags: &Tags) -> Self {
        Self { tag: tags.answer.clone(), reasoning: tags.reasoning.clone() }
    }
}

impl RewardFn for NumberCheck {
    fn name(&self) -> &str {
        "number"
    }
    fn score(&self, input: &RewardInput<'_>) -> Option<f64> {
        let Answer::One(gold) = answer::read_gold(input.answer?) else { return None };
        let said = match extract_tag(input.completion, &self.tag) {
            Some(region) => answer::read_answer(region),
            None => answer::read_reply(input.completion, &self.reasoning),
        };
        Some(match said {
            Answer::Missing => -0.5,
            Answer::One(n) if answer::equal(&n, &gold) => 1.0,
            _ => 0.0,
        })
    }
}

/// The standard rubric for tasks with a checkable answer: exact format,
/// approximate format, correctness with partial credit and number check.
pub fn answer_rubric(tags: &Tags) -> Rubric {
    Rubric::new()
        .with(ExactFormat::new(tags), 1.0)
        .with(ApproxFormat::new(tags), 1.0)
        .with(Correctness::new(tags), 2.0)
        .with(NumberCheck::new(tags), 1.0)
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn tags_are_extracted_across_newlines() {
        assert_eq!(extract_tag("<answer>\n42\n</answer>", "answer"), Some("\n42\n"));
        assert_eq!(extract_tag("<answer>1</answer><answer>2</answer>", "answer"), Some("2"));
        assert_eq!(extract_tag("<answer>1", "answer"), None);
    }

    #[test]
    fn exact_format_matches_multiline_replies() {
        let tags = Tags::default();
        let f = ExactFormat::new(&tags);
        let ok = "<think>\nline one\nline two\n</think>\n<answer>\n7\n</answer>\n";
        assert_eq!(f.score(&RewardInput { completion: ok, answer: None }), Some(1.0));
        let bad = "prefix <think>x</think><answer>7</answer>";
        assert_eq!(f.score(&RewardInput { completion: bad, answer: None }), Some(0.0));
    }

    #[test]
    fn approx_format_counts_each_tag() {
        let f = ApproxFormat::new(&Tags::default());
        let s = |c| f.score(&RewardInput { completion: c, answer: None }).unwrap();
        assert_eq!(s("<think>a</think><answer>1</answer>"), 1.0);
        assert_eq!(s(""), -2.0);
        assert_eq!(s("<answer>1</answer><answer>2</answer>"), -2.0);
    }

    #[test]
    fn listing_several_candidates_earns_nothing() {
        // Before this rule, each of these got full numeric credit (the last number was read).
        for guess in ["40 41 42", "40 or 42", "\\boxed{40} or \\boxed{41} or \\boxed{42}", "41, 42", "42 (or 43)"] {
            assert_eq!(grade_answer(guess, "42"), -0.5, "{guess}");
            let reply = format!("<think>t</think><answer>{guess}</answer>");
            let score = |f: &dyn RewardFn| f.score(&RewardInput { completion: &reply, answer: Some("42") });
            assert_eq!(score(&NumberCheck::new(&Tags::default())), Some(0.0), "{guess}");
            assert_eq!(score(&Correctness::new(&Tags::default())), Some(-0.5), "{guess}");
        }
        // No partial credit either: 41 and 43 are each within 10 % of 42.
        assert_eq!(grade_answer("41 or 43", "42"), -0.5);
        // Repeating one value is one candidate.
        assert_eq!(grade_answer("42 = 42.0", "42"), 0.8);
        assert_eq!(grade_answer("1,234,567", "1234567"), 0.8);
        // A gold answer that is itself several numbers is compared as text.
        assert_eq!(grade_answer("1, 2", "1, 2"), 1.0);
    }

    #[test]
    fn correctness_gives_partial_credit() {
        assert_eq!(grade_answer("42", "42"), 1.0);
        assert_eq!(grade_answer(" 42 ", "42"), 0.8);
        assert_eq!(grade_answer("42.0", "42"), 0.8);
        assert_eq!(grade_answer("45", "42"), 0.5);
        assert_eq!(grade_answer("50", "42"), 0.25);
        assert_eq!(grade_answer("99", "42"), -0.5);
        assert_eq!(grade_answer("banana", "42"), -0.5);
        let c = Correctness::new(&Tags::default());
        assert_eq!(c.score(&RewardInput { completion: "42", answer: Some("42") }), Some(-1.0));
        assert_eq!(c.score(&RewardInput { completion: "x", answer: None }), None);
    }

    #[test]
    fn rubric_total_is_weighted_sum() {
        let tags = Tags::default();
        let r = answer_rubric(&tags);
        let mut info = StepInfo::default();
        r.score_into(&RewardInput { completion: &tags.wrap("because", "12"), answer: Some("12") }, &mut info);
        assert_eq!(info.breakdown.len(), 4);
        assert!((info.total() - (1.0 + 1.0 + 2.0 + 1.0)).abs() < 1e-12);
    }
}
