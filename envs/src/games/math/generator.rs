//! The procedural problem generator: seeded, deterministic, offline.
//!
//! A seed picks one of [`TEMPLATES`] and draws its numbers; every answer is
//! computed exactly with [`Ratio`] and is an integer or a terminating
//! decimal within [`Difficulty::answer_range`]. Each problem carries the
//! worked steps that lead to its answer (the oracle's reasoning).

use rand::seq::SliceRandom;
use rand::{Rng, SeedableRng};
use rand_chacha::ChaCha8Rng;

use super::number::Ratio;

/// How hard generated problems are: more steps, larger numbers, decimals.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash)]
pub enum Difficulty {
    /// One or two steps, small whole numbers.
    Easy,
    /// Three or four steps, decimals in money and rates.
    Medium,
    /// Five or more steps, larger numbers, negative results possible.
    Hard,
}

impl Difficulty {
    /// The option values, in order.
    pub const NAMES: &'static [&'static str] = &["easy", "medium", "hard"];

    /// Parses an option value.
    pub fn parse(s: &str) -> Option<Self> {
        match s {
            "easy" => Some(Self::Easy),
            "medium" => Some(Self::Medium),
            "hard" => Some(Self::Hard),
            _ => None,
        }
    }

    /// The option value.
    pub fn name(self) -> &'static str {
        Self::NAMES[self as usize]
    }

    /// Every generated answer lies in `min..=max`.
    pub fn answer_range(self) -> (i64, i64) {
        match self {
            Self::Easy => (0, 1_000),
            Self::Medium => (0, 10_000),
            Self::Hard => (-10_000, 100_000),
        }
    }
}

/// The problem templates, in the order a seed picks them.
pub const TEMPLATES: &[&str] = &["arithmetic", "shopping", "rates", "percent", "fractions", "quantities"];

/// One generated problem.
#[derive(Debug, Clone, PartialEq)]
pub struct Problem {
    /// Which template produced it (one of [`TEMPLATES`]).
    pub template: &'static str,
    /// The question text.
    pub question: String,
    /// The exact answer.
    pub answer: Ratio,
    /// Worked steps, one per line, ending at the answer.
    pub steps: Vec<String>,
}

impl Problem {
    /// The answer as written in the gold answer (`"42"`, `"4.75"`).
    pub fn answer_text(&self) -> String {
        self.answer.to_string()
    }
}

/// The problem for `seed` at `difficulty`. The same arguments always give
/// the same problem.
pub fn generate(seed: u64, difficulty: Difficulty) -> Problem {
    let mut rng = ChaCha8Rng::seed_from_u64(seed);
    let t = rng.gen_range(0..TEMPLATES.len());
    let (lo, hi) = difficulty.answer_range();
    for _ in 0..1000 {
        let p = match t {
            0 => arithmetic(&mut rng, difficulty),
            1 => shopping(&mut rng, difficulty),
            2 => rates(&mut rng, difficulty),
            3 => percent(&mut rng, difficulty),
            4 => fractions(&mut rng, difficulty),
            _ => quantities(&mut rng, difficulty),
        };
        if let Some(p) = p {
            let v = p.answer.to_f64();
            if v >= lo as f64 && v <= hi as f64 && p.answer.decimal_places().is_some_and(|d| d <= 3) {
                return p;
            }
        }
    }
    // Unreachable in practice (every template accepts most draws); a plain
    // sum keeps the generator total.
    let (a, b) = (rng.gen_range(1..=50i64), rng.gen_range(1..=50i64));
    Problem {
        template: "arithmetic",
        question: format!("Evaluate the expression: {a} + {b}"),
        answer: Ratio::int(a + b),
        steps: vec![format!("{a} + {b} = {}", a + b)],
    }
}

/// Writes a ratio for a question or a step.
fn n(x: Ratio) -> String {
    x.to_string()
}

/// Dollars from cents: `$4`, `$3.50`.
fn money(cents: i64) -> String {
    if cents % 100 == 0 {
        format!("${}", cents / 100)
    } else {
        format!("${}.{:02}", cents / 100, cents % 100)
    }
}

/// `1 hour`, `2.5 hours`.
fn hours(t: Ratio) -> String {
    if t == Ratio::int(1) {
        "1 hour".into()
    } else {
        format!("{} hours", n(t))
    }
}

/// Dollars from an exact amount with at most two decimals: `$9.40`.
fn dollars(x: Ratio) -> String {
    match x.checked_mul(Ratio::int(100)).and_then(|c| c.to_i64()) {
        Some(c) => money(c),
        None => format!("${}", n(x)),
    }
}

fn coprime(a: i64, b: i64) -> bool {
    Ratio::new(a as i128, b as i128).is_some_and(|r| r.denom() == b as i128)
}

fn cents(c: i64) -> Ratio {
    Ratio::new(c as i128, 100).unwrap_or(Ratio::int(0))
}

fn pick<'a, T>(rng: &mut ChaCha8Rng, xs: &'a [T]) -> &'a T {
    // Every slice passed here is a non-empty constant.
    &xs[rng.gen_range(0..xs.len())]
}

const NAMES: &[&str] = &["Maya", "Liam", "Sofia", "Noah", "Aisha", "Kenji", "Elena", "Omar", "Priya", "Lucas"];

// ---------------------------------------------------------------- arithmetic

/// An arithmetic expression tree.
#[derive(Debug, Clone)]
enum Expr {
    Num(i64),
    Bin(char, Box<Expr>, Box<Expr>),
}

fn prec(op: char) -> u8 {
    if op == '+' || op == '-' {
        1
    } else {
        2
    }
}

impl Expr {
    fn render(&self, out: &mut String) {
        match self {
            Expr::Num(v) => out.push_str(&v.to_string()),
            Expr::Bin(op, l, r) => {
                let lp = matches!(**l, Expr::Bin(o, ..) if prec(o) < prec(*op));
                let rp = matches!(**r, Expr::Bin(o, ..) if prec(o) < prec(*op) || (prec(o) == prec(*op) && o != *op) || (o == *op && (*op == '-' || *op == '/')));
                wrap(l, lp, out);
                out.push(' ');
                out.push(*op);
                out.push(' ');
                wrap(r, rp, out);
            }
        }
    }
}

fn wrap(e: &Expr, parens: bool, out: &mut String) {
    if parens {
        out.push('(');
    }
    e.render(out);
    if parens {
        out.push(')');
    }
}

struct ArithParams {
    leaf_max: i64,
    cap: i64,
    allow_div: bool,
    allow_negative: bool,
}

/// Builds a tree with `ops` operators, recording each operation as a step
/// in evaluation order. Every intermediate value is a whole number.
fn build(rng: &mut ChaCha8Rng, ops: usize, p: &ArithParams, steps: &mut Vec<String>) -> Option<(Expr, i64)> {
    if ops == 0 {
        let v = rng.gen_range(1..=p.leaf_max);
        return Some((Expr::Num(v), v));
    }
    let mut op = *pick(rng, if p.allow_div { &['+', '-', '*', '/'][..] } else { &['+', '-', '*'][..] });
    let (l, lv, r, rv) = if op == '/' {
        let (l, lv) = build(rng, ops - 1, p, steps)?;
        let divisors: Vec<i64> = (2..=12).filter(|d| lv != 0 && lv % d == 0).collect();
        match divisors.choose(rng) {
            Some(&d) => (l, lv, Expr::Num(d), d),
            None => {
                op = '+';
                let (r, rv) = build(rng, 0, p, steps)?;
                (l, lv, r, rv)
            }
        }
    } else {
        let left_ops = rng.gen_range(0..ops);
        let (l, lv) = build(rng, left_ops, p, steps)?;
        let (r, rv) = build(rng, ops - 1 - left_ops, p, steps)?;
        if op == '*' && lv.checked_mul(rv).filter(|x| x.abs() <= p.cap).is_none() {
            op = '+';
        }
        if op == '-' && lv < rv && !p.allow_negative {
            (r, rv, l, lv)
        } else {
            (l, lv, r, rv)
        }
    };
    let v = match op {
        '+' => lv.checked_add(rv)?,
        '-' => lv.checked_sub(rv)?,
        '*' => lv.checked_mul(rv)?,
        _ => lv.checked_div(rv)?,
    };
    if v.abs() > p.cap {
        return None;
    }
    let rs = if rv < 0 { format!("({rv})") } else { rv.to_string() };
    steps.push(format!("{lv} {op} {rs} = {v}"));
    Some((Expr::Bin(op, Box::new(l), Box::new(r)), v))
}

fn arithmetic(rng: &mut ChaCha8Rng, d: Difficulty) -> Option<Problem> {
    let (ops, p) = match d {
        Difficulty::Easy => (2, ArithParams { leaf_max: 12, cap: 200, allow_div: false, allow_negative: false }),
        Difficulty::Medium => {
            (rng.gen_range(3..=4), ArithParams { leaf_max: 20, cap: 1_000, allow_div: true, allow_negative: false })
        }
        Difficulty::Hard => {
            (rng.gen_range(5..=6), ArithParams { leaf_max: 50, cap: 10_000, allow_div: true, allow_negative: true })
        }
    };
    let mut steps = Vec::new();
    let (e, v) = build(rng, ops, &p, &mut steps)?;
    let mut text = String::new();
    e.render(&mut text);
    steps.push(format!("So the expression equals {v}."));
    Some(Problem {
        template: "arithmetic",
        question: format!("Evaluate the expression: {text}"),
        answer: Ratio::int(v),
        steps,
    })
}

// ------------------------------------------------------------------ shopping

const ITEMS: &[(&str, &str)] = &[
    ("notebook", "notebooks"),
    ("pen", "pens"),
    ("apple", "apples"),
    ("sandwich", "sandwiches"),
    ("ticket", "tickets"),
    ("candle", "candles"),
    ("mug", "mugs"),
    ("scarf", "scarves"),
];

fn shopping(rng: &mut ChaCha8Rng, d: Difficulty) -> Option<Problem> {
    let who = *pick(rng, NAMES);
    let kinds = match d {
        Difficulty::Easy => 1,
        Difficulty::Medium => 2,
        Difficulty::Hard => 3,
    };
    let mut items: Vec<(&str, &str)> = ITEMS.to_vec();
    items.shuffle(rng);
    let mut parts = Vec::new();
    let mut steps = Vec::new();
    let mut total = 0i64;
    for &(_, plural) in items.iter().take(kinds) {
        let qty = rng.gen_range(2..=if d == Difficulty::Easy { 9 } else { 6 });
        let price = match d {
            Difficulty::Easy => rng.gen_range(1..=12) * 100,
            Difficulty::Medium => rng.gen_range(1..=40) * 25,
            Difficulty::Hard => rng.gen_range(1..=300) * 5,
        };
        parts.push(format!("{qty} {plural} at {} each", money(price)));
        steps.push(format!("{qty} {plural} cost {qty} × {} = {}.", money(price), money(qty * price)));
        total += qty * price;
    }
    let list = match parts.len() {
        1 => parts[0].clone(),
        2 => format!("{} and {}", parts[0], parts[1]),
        _ => format!("{}, {} and {}", parts[0], parts[1], parts[2]),
    };
    if kinds > 1 {
        steps.push(format!("Together that is {}.", money(total)));
    }
    if d == Difficulty::Easy {
        return Some(Problem {
            template: "shopping",
            question: format!("{who} buys {list}. How many dollars does {who} spend?"),
            answer: cents(total),
            steps,
        });
    }
    let mut question = format!("{who} buys {list}.");
    if d == Difficulty::Hard {
        let pct = *pick(rng, &[10i64, 15, 20, 25]);
        let off = total * pct;
        if off % 100 != 0 {
            return None;
        }
        let off = off / 100;
        question.push_str(&format!(" The shop takes {pct}% off the whole purchase."));
        steps.push(format!("The discount is {pct}% of {} = {}.", money(total), money(off)));
        total -= off;
        steps.push(format!("After the discount {who} pays {}.", money(total)));
    }
    let bill = *[1_000i64, 2_000, 5_000, 10_000, 20_000].iter().find(|&&b| b >= total)?;
    question.push_str(&format!(" {who} pays with a {} bill. How much change does {who} get, in dollars?", money(bill)));
    steps.push(format!("The change is {} − {} = {}.", money(bill), money(total), money(bill - total)));
    Some(Problem { template: "shopping", question, answer: cents(bill - total), steps })
}

// --------------------------------------------------------------------- rates

fn rates(rng: &mut ChaCha8Rng, d: Difficulty) -> Option<Problem> {
    let vehicle = *pick(rng, &["car", "train", "cyclist", "bus", "boat"]);
    match d {
        Difficulty::Easy => {
            let s = rng.gen_range(4..=18) * 5;
            let t = rng.gen_range(2..=6);
            Some(Problem {
                template: "rates",
                question: format!(
                    "A {vehicle} travels at {s} km/h for {t} hours. How many kilometres does the {vehicle} travel?"
                ),
                answer: Ratio::int(s * t),
                steps: vec![format!("Distance = speed × time = {s} × {t} = {} km.", s * t)],
            })
        }
        Difficulty::Medium => {
            let (s1, s2) = (rng.gen_range(4..=18) * 5, rng.gen_range(4..=18) * 5);
            let (t1, t2) = (Ratio::new(rng.gen_range(2..=8), 2)?, Ratio::new(rng.gen_range(2..=8), 2)?);
            let (d1, d2) = (Ratio::int(s1).checked_mul(t1)?, Ratio::int(s2).checked_mul(t2)?);
            let total = d1.checked_add(d2)?;
            Some(Problem {
                template: "rates",
                question: format!(
                    "A {vehicle} travels at {s1} km/h for {}, then at {s2} km/h for {}. \
                     How many kilometres does it travel in total?",
                    hours(t1),
                    hours(t2)
                ),
                answer: total,
                steps: vec![
                    format!("First part: {s1} × {} = {} km.", n(t1), n(d1)),
                    format!("Second part: {s2} × {} = {} km.", n(t2), n(d2)),
                    format!("Total: {} + {} = {} km.", n(d1), n(d2), n(total)),
                ],
            })
        }
        Difficulty::Hard => {
            if rng.gen_bool(0.5) {
                let (a, b) = (rng.gen_range(2..=12i64), rng.gen_range(2..=12i64));
                let (ra, rb) = (Ratio::new(1, a as i128)?, Ratio::new(1, b as i128)?);
                let rate = ra.checked_add(rb)?;
                let t = Ratio::int(1).checked_div(rate)?;
                if t.decimal_places()? > 2 {
                    return None;
                }
                Some(Problem {
                    template: "rates",
                    question: format!(
                        "One pump fills a tank in {a} hours and a second pump fills the same tank in {b} hours. \
                         Working together, how many hours do they take to fill the tank?"
                    ),
                    answer: t,
                    steps: vec![
                        format!("The pumps fill 1/{a} and 1/{b} of the tank per hour."),
                        format!("Together: 1/{a} + 1/{b} = {}/{} of the tank per hour.", rate.numer(), rate.denom()),
                        format!("Time = 1 ÷ ({}/{}) = {} hours.", rate.numer(), rate.denom(), n(t)),
                    ],
                })
            } else {
                let (s1, s2) = (rng.gen_range(4..=24) * 5, rng.gen_range(4..=24) * 5);
                let (t1, t2) = (rng.gen_range(1..=6), rng.gen_range(1..=6));
                let dist = s1 * t1 + s2 * t2;
                let avg = Ratio::new(dist as i128, (t1 + t2) as i128)?;
                if avg.decimal_places()? > 2 || s1 == s2 {
                    return None;
                }
                Some(Problem {
                    template: "rates",
                    question: format!(
                        "A {vehicle} travels at {s1} km/h for {} and then at {s2} km/h for {}. \
                         What is its average speed for the whole trip, in km/h?",
                        hours(Ratio::int(t1)),
                        hours(Ratio::int(t2))
                    ),
                    answer: avg,
                    steps: vec![
                        format!("Distance: {s1} × {t1} + {s2} × {t2} = {dist} km."),
                        format!("Time: {t1} + {t2} = {} hours.", t1 + t2),
                        format!("Average speed: {dist} ÷ {} = {} km/h.", t1 + t2, n(avg)),
                    ],
                })
            }
        }
    }
}

// ------------------------------------------------------------------- percent

fn percent(rng: &mut ChaCha8Rng, d: Difficulty) -> Option<Problem> {
    match d {
        Difficulty::Easy => {
            let p = *pick(rng, &[5i64, 10, 20, 25, 50, 75]);
            let base = rng.gen_range(2..=40) * 10;
            let v = Ratio::new((p * base) as i128, 100)?;
            if !v.is_integer() {
                return None;
            }
            Some(Problem {
                template: "percent",
                question: format!("What is {p}% of {base}?"),
                answer: v,
                steps: vec![format!("{p}% of {base} = {p}/100 × {base} = {}.", n(v))],
            })
        }
        Difficulty::Medium => {
            let item = *pick(rng, &["jacket", "bicycle", "lamp", "backpack", "guitar"]);
            let price = rng.gen_range(20..=250);
            let p = *pick(rng, &[10i64, 15, 20, 25, 30, 40]);
            let off = Ratio::new((price * p) as i128, 100)?;
            let sale = Ratio::int(price).checked_sub(off)?;
            Some(Problem {
                template: "percent",
                question: format!(
                    "A {item} costs ${price}. It is on sale for {p}% off. What is the sale price, in dollars?"
                ),
                answer: sale,
                steps: vec![
                    format!("The discount is {p}% of ${price} = {}.", dollars(off)),
                    format!("The sale price is ${price} − {} = {}.", dollars(off), dollars(sale)),
                ],
            })
        }
        Difficulty::Hard => {
            if rng.gen_bool(0.5) {
                let people = rng.gen_range(10..=400) * 100;
                let (up, down) = (rng.gen_range(1..=30i64), rng.gen_range(1..=30i64));
                let after1 = Ratio::int(people).checked_mul(Ratio::new((100 + up) as i128, 100)?)?;
                let after2 = after1.checked_mul(Ratio::new((100 - down) as i128, 100)?)?;
                if !after1.is_integer() || !after2.is_integer() {
                    return None;
                }
                Some(Problem {
                    template: "percent",
                    question: format!(
                        "A town has {people} residents. Its population grows by {up}% in the first year and then \
                         falls by {down}% in the second year. How many residents does it have after the two years?"
                    ),
                    answer: after2,
                    steps: vec![
                        format!("After the first year: {people} × {}% = {}.", 100 + up, n(after1)),
                        format!("After the second year: {} × {}% = {}.", n(after1), 100 - down, n(after2)),
                    ],
                })
            } else {
                let old = rng.gen_range(8..=400);
                let new = rng.gen_range(8..=400);
                if old == new {
                    return None;
                }
                let change = Ratio::int(new - old).checked_div(Ratio::int(old))?.checked_mul(Ratio::int(100))?;
                if change.decimal_places()? > 2 {
                    return None;
                }
                let word = if new > old { "increase" } else { "decrease" };
                Some(Problem {
                    template: "percent",
                    question: format!(
                        "A price changes from ${old} to ${new}. What is the percentage change? \
                         (Use a negative number for a decrease.)"
                    ),
                    answer: change,
                    steps: vec![
                        format!("The change is ${new} − ${old} = ${}.", new - old),
                        format!("As a percentage of ${old}: {} ÷ {old} × 100 = {}% ({word}).", new - old, n(change)),
                    ],
                })
            }
        }
    }
}

// ----------------------------------------------------------------- fractions

fn fractions(rng: &mut ChaCha8Rng, d: Difficulty) -> Option<Problem> {
    match d {
        Difficulty::Easy => {
            let den = *pick(rng, &[2i64, 3, 4, 5, 6, 8, 10]);
            let num = rng.gen_range(1..den);
            if !coprime(num, den) {
                return None;
            }
            let whole = den * rng.gen_range(2..=20);
            let v = Ratio::new((whole * num) as i128, den as i128)?;
            Some(Problem {
                template: "fractions",
                question: format!("What is {num}/{den} of {whole}?"),
                answer: v,
                steps: vec![
                    format!("{whole} ÷ {den} = {}.", whole / den),
                    format!("{} × {num} = {}.", whole / den, n(v)),
                ],
            })
        }
        Difficulty::Medium => {
            let dens = [2i64, 4, 5, 8, 10, 20, 25];
            let (d1, d2) = (*pick(rng, &dens), *pick(rng, &dens));
            let (n1, n2) = (rng.gen_range(1..d1.max(2) * 2), rng.gen_range(1..d2.max(2) * 2));
            if !coprime(n1, d1) || !coprime(n2, d2) {
                return None;
            }
            let (a, b) = (Ratio::new(n1 as i128, d1 as i128)?, Ratio::new(n2 as i128, d2 as i128)?);
            let plus = rng.gen_bool(0.5);
            let v = if plus { a.checked_add(b)? } else { a.checked_sub(b)? };
            if v.to_f64() < 0.0 {
                return None;
            }
            let op = if plus { '+' } else { '-' };
            Some(Problem {
                template: "fractions",
                question: format!("Compute {n1}/{d1} {op} {n2}/{d2}. Write the answer as a decimal number."),
                answer: v,
                steps: vec![
                    format!("{n1}/{d1} = {} and {n2}/{d2} = {}.", n(a), n(b)),
                    format!("{} {op} {} = {}.", n(a), n(b), n(v)),
                ],
            })
        }
        Difficulty::Hard => {
            let who = *pick(rng, NAMES);
            let pages = rng.gen_range(6..=60) * 10;
            let (d1, d2) = (*pick(rng, &[3i64, 4, 5, 6, 8, 10]), *pick(rng, &[2i64, 3, 4, 5]));
            let (n1, n2) = (rng.gen_range(1..d1), rng.gen_range(1..d2));
            if !coprime(n1, d1) || !coprime(n2, d2) || pages * n1 % d1 != 0 {
                return None;
            }
            let day1 = pages * n1 / d1;
            let rest = pages - day1;
            if rest * n2 % d2 != 0 {
                return None;
            }
            let day2 = rest * n2 / d2;
            let left = rest - day2;
            Some(Problem {
                template: "fractions",
                question: format!(
                    "A book has {pages} pages. {who} reads {n1}/{d1} of the book on Monday and {n2}/{d2} of the \
                     remaining pages on Tuesday. How many pages are left to read?"
                ),
                answer: Ratio::int(left),
                steps: vec![
                    format!("Monday: {n1}/{d1} × {pages} = {day1} pages, leaving {pages} − {day1} = {rest}."),
                    format!("Tuesday: {n2}/{d2} × {rest} = {day2} pages."),
                    format!("Left: {rest} − {day2} = {left} pages."),
                ],
            })
        }
    }
}

// ---------------------------------------------------------------- quantities

fn quantities(rng: &mut ChaCha8Rng, d: Difficulty) -> Option<Problem> {
    let (thing, box_word) =
        *pick(rng, &[("apples", "crates"), ("eggs", "cartons"), ("pencils", "boxes"), ("cookies", "trays")]);
    let boxes = rng.gen_range(2..=12);
    let per = rng.gen_range(6..=24);
    let total = boxes * per;
    let mut steps = vec![format!("{boxes} {box_word} × {per} {thing} = {total} {thing}.")];
    let intro = format!("A shop receives {boxes} {box_word} with {per} {thing} in each.");
    match d {
        Difficulty::Easy => {
            let sold = rng.gen_range(1..total);
            steps.push(format!("{total} − {sold} = {} {thing} are left.", total - sold));
            Some(Problem {
                template: "quantities",
                question: format!("{intro} It sells {sold} {thing}. How many {thing} are left?"),
                answer: Ratio::int(total - sold),
                steps,
            })
        }
        Difficulty::Medium => {
            let bag = rng.gen_range(3..=8);
            let sold = rng.gen_range(1..total);
            let rest = total - sold;
            if rest % bag != 0 {
                return None;
            }
            steps.push(format!("After selling {sold}: {total} − {sold} = {rest} {thing}."));
            steps.push(format!("{rest} ÷ {bag} = {} bags.", rest / bag));
            Some(Problem {
                template: "quantities",
                question: format!(
                    "{intro} It sells {sold} {thing} and packs the rest into bags of {bag}. How many bags does it fill?"
                ),
                answer: Ratio::int(rest / bag),
                steps,
            })
        }
        Difficulty::Hard => {
            let groups = rng.gen_range(2..=6);
            let each = rng.gen_range(2..=12);
            let people = rng.gen_range(2..=9);
            let given = groups * each;
            let rest = total - given;
            if rest <= 0 || rest % people != 0 {
                return None;
            }
            let days = rng.gen_range(2..=5);
            let share = rest / people;
            steps.push(format!("{groups} schools × {each} = {given} {thing} given away."));
            steps.push(format!("{total} − {given} = {rest} {thing} remain."));
            steps.push(format!("{rest} ÷ {people} = {share} {thing} per worker each week."));
            steps.push(format!("Over {days} weeks: {share} × {days} = {} {thing}.", share * days));
            Some(Problem {
                template: "quantities",
                question: format!(
                    "Every week a shop receives {boxes} {box_word} with {per} {thing} in each. It gives {each} {thing} \
                     to each of {groups} schools and shares the rest equally among its {people} workers. How many \
                     {thing} does each worker get over {days} weeks?"
                ),
                answer: Ratio::int(share * days),
                steps,
            })
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn same_seed_same_problem() {
        for d in [Difficulty::Easy, Difficulty::Medium, Difficulty::Hard] {
            for seed in 0..50 {
                assert_eq!(generate(seed, d), generate(seed, d));
            }
        }
    }

    #[test]
    fn answers_are_in_range_and_exact() {
        for d in [Difficulty::Easy, Difficulty::Medium, Difficulty::Hard] {
            let (lo, hi) = d.answer_range();
            for seed in 0..500 {
                let p = generate(seed, d);
                let v = p.answer.to_f64();
                assert!(v >= lo as f64 && v <= hi as f64, "{p:?}");
                assert!(p.answer.to_decimal().is_some(), "{p:?}");
                assert!(!p.steps.is_empty());
                assert!(p.steps.last().is_some_and(|s| s.contains(&p.answer_text())), "{p:?}");
            }
        }
    }

    #[test]
    fn every_template_is_used() {
        for d in [Difficulty::Easy, Difficulty::Medium, Difficulty::Hard] {
            let used: std::collections::BTreeSet<_> = (0..200).map(|s| generate(s, d).template).collect();
            assert_eq!(used.len(), TEMPLATES.len(), "{d:?}: {used:?}");
        }
    }

    #[test]
    fn arithmetic_renders_precedence() {
        let e = Expr::Bin(
            '*',
            Box::new(Expr::Bin('+', Box::new(Expr::Num(1)), Box::new(Expr::Num(2)))),
            Box::new(Expr::Bin('-', Box::new(Expr::Num(5)), Box::new(Expr::Num(3)))),
        );
        let mut s = String::new();
        e.render(&mut s);
        assert_eq!(s, "(1 + 2) * (5 - 3)");
        let e = Expr::Bin(
            '-',
            Box::new(Expr::Num(9)),
            Box::new(Expr::Bin('-', Box::new(Expr::Num(5)), Box::new(Expr::Num(3)))),
        );
        let mut s = String::new();
        e.render(&mut s);
        assert_eq!(s, "9 - (5 - 3)");
    }
}
