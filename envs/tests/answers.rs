//! The answer-checking corpus (`answers.tsv`): every row is a gold answer, a
//! prediction, the verdict the README's rules give and the rule's name.
//!
//! Format: tab-separated; `# ` starts a comment line (a gold may begin with `####`); `⏎` stands for a
//! newline and `{{rep:S:N}}` for `S` repeated `N` times (huge and deeply
//! nested inputs stay readable).
//!
//! A prediction that is a whole reply (it holds `<answer>`, `</think>` or a
//! newline) is scored by the `number` reward. Any other prediction is an
//! answer tag's content and must get the same verdict from three places:
//! `correctness` (≥ 0.8 accepts), the `number` reward on the tagged reply
//! (1.0 accepts; only when the gold is one value) and [`answer::matches`]
//! (when the gold is one value). Rows of the `several` rule must also get no
//! partial credit (−0.5).

use envs::answer::{self, Answer};
use envs::rewards::{grade_answer, NumberCheck, RewardFn, RewardInput, Tags};

struct Row {
    line: usize,
    gold: String,
    prediction: String,
    accept: bool,
    rule: String,
}

fn expand(field: &str) -> String {
    let count = regex::Regex::new(r":(\d+)\}\}").expect("static regex");
    let mut out = String::new();
    let mut rest = field;
    while let Some(i) = rest.find("{{rep:") {
        out.push_str(&rest[..i]);
        let body = &rest[i + 6..];
        // The repeated text may be `{` or `}`: the count ends the spec.
        let m = count.captures(body).expect("{{rep:S:N}}");
        let whole = m.get(0).expect("match");
        out.push_str(&body[..whole.start()].repeat(m[1].parse().expect("a count")));
        rest = &body[whole.end()..];
    }
    out.push_str(rest);
    out.replace('⏎', "\n")
}

fn corpus() -> Vec<Row> {
    let text = include_str!("answers.tsv");
    let mut rows = Vec::new();
    for (i, line) in text.lines().enumerate() {
        if line.starts_with("# ") || line.trim().is_empty() {
            continue;
        }
        let f: Vec<&str> = line.split('\t').collect();
        assert_eq!(f.len(), 4, "answers.tsv line {}: expected 4 tab-separated fields", i + 1);
        let accept = match f[2] {
            "accept" => true,
            "reject" => false,
            v => panic!("answers.tsv line {}: verdict `{v}` is neither accept nor reject", i + 1),
        };
        rows.push(Row { line: i + 1, gold: expand(f[0]), prediction: expand(f[1]), accept, rule: f[3].to_string() });
    }
    rows
}

fn number(reply: &str, gold: &str) -> Option<f64> {
    NumberCheck::new(&Tags::default()).score(&RewardInput { completion: reply, answer: Some(gold) })
}

fn short(s: &str) -> String {
    if s.chars().count() > 60 {
        format!("{}… ({} chars)", s.chars().take(60).collect::<String>(), s.chars().count())
    } else {
        s.to_string()
    }
}

#[test]
fn the_corpus_gets_the_documented_verdicts() {
    let rows = corpus();
    assert!(rows.len() >= 300, "the corpus has {} rows; the issue asks for at least 300", rows.len());
    let mut failures = Vec::new();
    for r in &rows {
        let whole_reply =
            r.prediction.contains("<answer>") || r.prediction.contains("</think>") || r.prediction.contains('\n');
        let gold_is_value = matches!(answer::read_gold(&r.gold), Answer::One(_));
        let mut got = Vec::new();
        if whole_reply {
            got.push(("number", number(&r.prediction, &r.gold) == Some(1.0)));
        } else {
            let grade = grade_answer(&r.prediction, &r.gold);
            got.push(("correctness", grade >= 0.8));
            if gold_is_value {
                let reply = format!("<think>t</think><answer>{}</answer>", r.prediction);
                got.push(("number", number(&reply, &r.gold) == Some(1.0)));
                got.push((
                    "matches",
                    answer::matches(&answer::read_answer(&r.prediction), &answer::read_gold(&r.gold)),
                ));
            }
            if r.rule == "several" && grade != -0.5 {
                failures.push(format!(
                    "line {}: `{}` lists candidates but got partial credit {grade}",
                    r.line,
                    short(&r.prediction)
                ));
            }
        }
        for (what, accepted) in got {
            if accepted != r.accept {
                failures.push(format!(
                    "line {} [{}]: gold `{}`, prediction `{}`: {what} {} it, the corpus says {}",
                    r.line,
                    r.rule,
                    short(&r.gold),
                    short(&r.prediction),
                    if accepted { "accepts" } else { "rejects" },
                    if r.accept { "accept" } else { "reject" },
                ));
            }
        }
    }
    assert!(failures.is_empty(), "{} of {} rows disagree:\n{}", failures.len(), rows.len(), failures.join("\n"));
}

#[test]
fn the_corpus_covers_every_rule() {
    let rows = corpus();
    for rule in [
        "plain",
        "fraction",
        "negative",
        "percent",
        "scientific",
        "expression",
        "irrational",
        "mixed",
        "thousands",
        "units",
        "location",
        "several",
        "one-value",
        "hidden",
        "unclosed",
        "huge",
        "nan-inf",
        "nesting",
        "words",
        "gold",
        "rounded",
        "text",
        "symbolic",
    ] {
        let n = rows.iter().filter(|r| r.rule == rule).count();
        assert!(n >= 2, "rule `{rule}` has {n} rows");
        let accepts = rows.iter().filter(|r| r.rule == rule && r.accept).count();
        assert!(accepts < n || rule == "one-value", "rule `{rule}` has no rejected row");
    }
}
