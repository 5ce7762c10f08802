//! Final answers: where a reply states its answer, which value that answer
//! names, and whether it equals the gold one.
//!
//! Every checkable task's reward rests on this module, so it is written to
//! be *strict where a policy could game it* and *lenient where a correct
//! answer is merely written differently*. The rules (the README's "Answer
//! checking" table shows each with examples):
//!
//! * **Where the answer is.** Inside a region (an answer tag's content, a
//!   gold string) the answer is, in this order of preference: the contents
//!   of every `\boxed{…}` / `\fbox{…}`; the text after the last `####`
//!   (GSM8K); the text after the last "answer is" / "answer:" up to the end
//!   of its sentence; otherwise the whole region. In a whole reply without an
//!   answer tag ([`read_reply`]), the reasoning block is dropped first and
//!   the fallback is the reply's last non-empty line, never a number buried
//!   in the reasoning.
//! * **What it says.** The answer is scanned for maximal arithmetic
//!   expressions over literals: integers, decimals, thousands separators
//!   (`,` `{,}` space, thin and no-break spaces, `\,`, groups of exactly three
//!   digits; a comma is never a decimal point), scientific notation (`4.2e1`),
//!   `+ - * / × · ÷ \times \cdot \div`, parentheses and braces, `^` powers
//!   (`10^{-3}`), `\frac`/`\dfrac`/`\tfrac`/`\cfrac` (also `\tfrac12`),
//!   `\sqrt{…}` and `\sqrt[n]{…}`, percent (`%`, `\%`, divides by 100),
//!   mixed numbers (`2 1/2`, `2\frac{1}{2}`: an integer followed by a proper
//!   fraction of integers; any other juxtaposition such as `2\sqrt{3}` or
//!   `3(4)` multiplies), `\pi`. Letters, words and unknown commands are
//!   units or prose and end an expression (`12 m^2` is 12, `90^\circ` is
//!   90) — unless they take part in arithmetic (`x^2+1`, `3x`, `2*x`): such
//!   an answer is symbolic and [`Answer::Unreadable`], since a number read
//!   out of it would be a false accept; `$`,
//!   `\$`, `€`, `£`, `¥` are ignored. Values are exact rationals (big
//!   integers), except roots and fractional powers that are not exact, which
//!   become floating-point.
//! * **Several candidates are wrong.** When the answer names two or more
//!   *different* values (`40 41 42`, `40 or 42`, `\boxed{40} or \boxed{42}`,
//!   `1, 2`), it is [`Answer::Several`] and never equals anything: if the last
//!   value were taken, a policy would learn to list every guess and collect
//!   full credit. Equal values are one candidate (`6 \times 7 = 42`).
//! * **Equality.** Exact values compare exactly. A decimal literal with at
//!   least [`ROUNDED_PLACES`] places also equals a value it is the rounding or
//!   the truncation of, when that value's own decimal does not stop within
//!   those places (`0.333` and `0.3333` for 1/3; `0.5001` is not 0.5).
//!   Floating-point values compare within a relative [`TOLERANCE`] (or by the
//!   same rounding rule). When exactly one side is written with a percent
//!   sign, the number before the sign may also match the other side
//!   (`25%` equals both `0.25` and `25`; without a percent sign on either
//!   side, `25` is not `0.25`).
//! * **Bounded.** Answers longer than [`MAX_ANSWER_BYTES`], literals longer
//!   than [`MAX_DIGITS`] digits, literals larger than [`MAX_BITS`] bits,
//!   arithmetic on values over [`OP_BITS`] bits, nesting deeper than
//!   [`MAX_DEPTH`], too much parse work and division by zero make the answer
//!   [`Answer::Unreadable`] (with the reason), which equals nothing. Reading
//!   never panics and its time is bounded by the answer's length.

use std::sync::OnceLock;

use num_bigint::BigInt;
use num_rational::BigRational;
use num_traits::{One, Signed, ToPrimitive, Zero};
use regex::Regex;

/// The longest answer region read, in bytes; longer is [`Answer::Unreadable`].
pub const MAX_ANSWER_BYTES: usize = 32 * 1024;
/// The most digits one literal may have.
pub const MAX_DIGITS: usize = 10_000;
/// The most bits a literal's numerator and denominator may hold together
/// (about 24,000 decimal digits, exponent included).
pub const MAX_BITS: u64 = 80_000;
/// The most bits the operands and result of arithmetic may hold (about
/// 1,200 digits): exact arithmetic beyond it is refused as too large.
pub const OP_BITS: u64 = 4_096;
/// The deepest nesting of groups, fractions, roots and signs.
pub const MAX_DEPTH: usize = 64;
/// Places a decimal literal needs before it may stand for a rounded value.
pub const ROUNDED_PLACES: u32 = 3;
/// Relative tolerance for values that are not exact (roots, fractional powers).
pub const TOLERANCE: f64 = 1e-9;
/// Candidates read from one answer before reading stops (the answer is
/// already several different values or one value repeated).
const MAX_CANDIDATES: usize = 256;
/// Parse steps allowed per token of an answer (see `Parser::fuel`).
const FUEL_PER_TOKEN: usize = 64;

/// A value read from an answer.
#[derive(Debug, Clone, PartialEq)]
pub enum Value {
    /// An exact rational.
    Exact(BigRational),
    /// A finite floating-point value (an inexact root or power).
    Approx(f64),
}

impl Value {
    /// The value as a float (`None` if it does not fit).
    pub fn to_f64(&self) -> Option<f64> {
        let f = match self {
            Value::Exact(r) => r.to_f64()?,
            Value::Approx(f) => *f,
        };
        f.is_finite().then_some(f)
    }
}

/// A number read from an answer, with how it was written.
#[derive(Debug, Clone, PartialEq)]
pub struct Number {
    /// Its value (a percent already divided by 100).
    pub value: Value,
    /// Written with a percent sign.
    pub percent: bool,
    /// Written as a plain decimal literal with this many places (`0.333` → 3;
    /// `33.3%` → 3, counted on the value).
    pub decimals: Option<u32>,
}

impl Number {
    fn of(value: Value) -> Self {
        Self { value, percent: false, decimals: None }
    }
}

/// What an answer says.
#[derive(Debug, Clone, PartialEq)]
pub enum Answer {
    /// No number in it.
    Missing,
    /// It could not be read safely; the reason says why.
    Unreadable(&'static str),
    /// One value (possibly written several times).
    One(Number),
    /// Several different values: a list of candidates, never correct.
    Several(Vec<Number>),
}

impl Answer {
    /// The one value, if the answer names exactly one.
    pub fn one(&self) -> Option<&Number> {
        match self {
            Answer::One(n) => Some(n),
            _ => None,
        }
    }
}

/// Whether `answer` names exactly one value and it equals `gold`'s one value.
pub fn matches(answer: &Answer, gold: &Answer) -> bool {
    match (answer, gold) {
        (Answer::One(a), Answer::One(g)) => equal(a, g),
        _ => false,
    }
}

/// Whether the answer `a` equals the gold value `g` under the module's rules.
pub fn equal(a: &Number, g: &Number) -> bool {
    if same(&a.value, a.decimals, &g.value) {
        return true;
    }
    // One side written as a percent: its number before the sign may match.
    match (a.percent, g.percent) {
        (true, false) => same(&hundredfold(&a.value), a.decimals.map(|d| d.saturating_sub(2)), &g.value),
        (false, true) => same(&a.value, a.decimals, &hundredfold(&g.value)),
        _ => false,
    }
}

/// `v × 100`, kept in lowest terms.
fn hundredfold(v: &Value) -> Value {
    match v {
        Value::Exact(r) => Value::Exact(reduced(r.numer() * 100u32, r.denom().clone())),
        Value::Approx(f) => Value::Approx(f * 100.0),
    }
}

/// `a` (a literal with `decimals` places, if one) equals `g`.
fn same(a: &Value, decimals: Option<u32>, g: &Value) -> bool {
    match (a, g) {
        (Value::Exact(x), Value::Exact(y)) => {
            // Both are in lowest terms with positive denominators.
            if x.numer() == y.numer() && x.denom() == y.denom() {
                return true;
            }
            match decimals {
                Some(d) if d >= ROUNDED_PLACES => rounds_to(x, y, d),
                _ => false,
            }
        }
        _ => {
            let (Some(x), Some(y)) = (a.to_f64(), g.to_f64()) else { return false };
            if (x - y).abs() <= TOLERANCE * y.abs().max(1.0) {
                return true;
            }
            match decimals {
                Some(d) if d >= ROUNDED_PLACES => (x - y).abs() < 10f64.powi(-(d.min(300) as i32)),
                _ => false,
            }
        }
    }
}

/// Whether `x` (with `d` places) is `y` rounded or truncated to `d` places,
/// and `y` needs more than `d` places.
fn rounds_to(x: &BigRational, y: &BigRational, d: u32) -> bool {
    if d > 200 {
        return false;
    }
    let scale = BigInt::from(10u32).pow(d);
    let scaled = y.numer() * &scale;
    let trunc = &scaled / y.denom();
    let rem = &scaled - &trunc * y.denom();
    if rem.is_zero() {
        return false; // y stops within d places: only an exact match counts.
    }
    let step = if y.is_negative() { -BigInt::one() } else { BigInt::one() };
    let round = if rem.abs() * 2u32 >= *y.denom() { &trunc + step } else { trunc.clone() };
    // x == t / 10^d  ⇔  x.numer · 10^d == t · x.denom
    let lhs = x.numer() * &scale;
    lhs == &trunc * x.denom() || lhs == round * x.denom()
}

/// The text after the last `</tag>` (the whole text if there is none).
fn after_reasoning<'a>(text: &'a str, tag: &str) -> &'a str {
    let close = format!("</{tag}>");
    match text.rfind(&close) {
        Some(i) => &text[i + close.len()..],
        None => text,
    }
}

fn marker_re() -> &'static Regex {
    static RE: OnceLock<Regex> = OnceLock::new();
    RE.get_or_init(|| Regex::new(r"(?i)\banswer\s*(?:is\b|:|=)").expect("static regex"))
}

const UNCLOSED_BOX: &str = "an unclosed \\boxed{ (a reply cut off mid-answer)";

/// The contents of every `\boxed{…}` / `\fbox{…}` in `text`; an error when
/// one is never closed (a reply cut off mid-answer is not an answer).
pub fn boxed(text: &str) -> Result<Vec<&str>, &'static str> {
    let mut out = Vec::new();
    let bytes = text.as_bytes();
    let mut from = 0;
    while let Some(k) = text[from..].find('\\') {
        let at = from + k;
        from = at + 1;
        let rest = &text[at + 1..];
        let name_len = if rest.starts_with("boxed") {
            5
        } else if rest.starts_with("fbox") {
            4
        } else {
            continue;
        };
        let mut i = at + 1 + name_len;
        while i < bytes.len() && bytes[i] == b' ' {
            i += 1;
        }
        if i >= bytes.len() || bytes[i] != b'{' {
            continue;
        }
        let open = i + 1;
        let mut depth = 1usize;
        let mut j = open;
        while j < bytes.len() {
            match bytes[j] {
                b'{' => depth += 1,
                b'}' => {
                    depth -= 1;
                    if depth == 0 {
                        break;
                    }
                }
                b'\\' => j += 1, // an escaped brace does not count
                _ => {}
            }
            j += 1;
        }
        if depth == 0 && j < bytes.len() {
            out.push(&text[open..j]);
            from = j + 1;
        } else {
            return Err(UNCLOSED_BOX);
        }
    }
    Ok(out)
}

/// The text after the last `####`, to the end of its line.
fn after_hashes(text: &str) -> Option<&str> {
    let i = text.rfind("####")?;
    let rest = &text[i + 4..];
    Some(rest.split('\n').next().unwrap_or(rest))
}

/// The text after the last "answer is" / "answer:", to the end of its sentence.
fn after_marker(text: &str) -> Option<&str> {
    let m = marker_re().find_iter(text).last()?;
    let rest = &text[m.end()..];
    let line = rest.split('\n').next().unwrap_or(rest);
    Some(match line.find(". ") {
        Some(i) => &line[..i],
        None => line,
    })
}

/// Reads an answer region (an answer tag's content or a gold answer).
pub fn read_answer(region: &str) -> Answer {
    read_final(region, region)
}

/// Reads a gold answer: the same parser as for replies.
pub fn read_gold(gold: &str) -> Answer {
    read_answer(gold)
}

/// Reads the final answer of a whole reply that has no answer tag: the
/// reasoning block (`</reasoning_tag>`) is dropped, then boxes, `####` and
/// "answer is" are looked for, and otherwise the last non-empty line is read.
pub fn read_reply(reply: &str, reasoning_tag: &str) -> Answer {
    let text = after_reasoning(reply, reasoning_tag);
    read_final(text, text.lines().rev().find(|l| !l.trim().is_empty()).unwrap_or(""))
}

/// The boxes of `text`, else the text after its last `####` or "answer is",
/// else `fallback`, read.
fn read_final(text: &str, fallback: &str) -> Answer {
    let boxes = match boxed(text) {
        Ok(b) => b,
        Err(why) => return Answer::Unreadable(why),
    };
    if !boxes.is_empty() {
        return read_all(&boxes);
    }
    read_value(after_hashes(text).or_else(|| after_marker(text)).unwrap_or(fallback))
}

fn read_all(parts: &[&str]) -> Answer {
    let mut all = Vec::new();
    for p in parts {
        match candidates(p) {
            Ok(c) => all.extend(c),
            Err(why) => return Answer::Unreadable(why),
        }
    }
    settle(all)
}

/// Reads the value(s) named in `text` (no marker search).
pub fn read_value(text: &str) -> Answer {
    match candidates(text) {
        Ok(c) => settle(c),
        Err(why) => Answer::Unreadable(why),
    }
}

fn settle(mut c: Vec<Number>) -> Answer {
    if c.is_empty() {
        return Answer::Missing;
    }
    let first = &c[0];
    if c.iter().skip(1).all(|n| equal(n, first) || equal(first, n)) {
        Answer::One(c.swap_remove(0))
    } else {
        Answer::Several(c)
    }
}

// ------------------------------------------------------------------ lexer

#[derive(Debug, Clone, PartialEq)]
struct Lit {
    /// Digits before the point (separators removed).
    int: String,
    /// Digits after the point.
    frac: String,
    exp: i64,
    /// Only digits, no separator, point or exponent.
    plain_int: bool,
    /// Its value, once computed (a literal is computed once however often
    /// backtracking reads it).
    value: Option<Value>,
}

#[derive(Debug, Clone, PartialEq)]
enum Tok {
    Num(Lit),
    Plus,
    Minus,
    Times,
    Div,
    Caret,
    Percent,
    LParen,
    RParen,
    LBrace,
    RBrace,
    LBracket,
    RBracket,
    Frac,
    Sqrt,
    /// Words, units, `\text{…}`: not a number; ends an expression.
    Word,
    /// `\pi`.
    Pi,
    /// A bare letter run or unknown command (becomes a `Word` unless it
    /// takes part in arithmetic; see [`symbolic`]).
    Symbol,
    /// Punctuation that ends an expression.
    Sep,
}

const SEPARATORS: [&str; 7] = [",", "{,}", " ", "\u{a0}", "\u{2009}", "\u{202f}", "\\,"];

fn digits_at(c: &[char], i: usize, n: usize) -> bool {
    i + n <= c.len() && c[i..i + n].iter().all(char::is_ascii_digit) && c.get(i + n).is_none_or(|d| !d.is_ascii_digit())
}

fn starts_with(c: &[char], i: usize, s: &str) -> bool {
    (i..).zip(s.chars()).all(|(k, ch)| c.get(k) == Some(&ch))
}

fn lex_number(c: &[char], mut i: usize) -> Result<(Lit, usize), &'static str> {
    const TOO_LONG: &str = "a number has more than 10,000 digits";
    let mut int = String::new();
    while i < c.len() && c[i].is_ascii_digit() {
        if int.len() >= MAX_DIGITS {
            return Err(TOO_LONG);
        }
        int.push(c[i]);
        i += 1;
    }
    let mut plain_int = true;
    if (1..=3).contains(&int.len()) {
        if let Some(sep) = SEPARATORS.iter().find(|s| starts_with(c, i, s) && digits_at(c, i + s.chars().count(), 3)) {
            let n = sep.chars().count();
            while starts_with(c, i, sep) && digits_at(c, i + n, 3) {
                if int.len() >= MAX_DIGITS {
                    return Err(TOO_LONG);
                }
                int.extend(&c[i + n..i + n + 3]);
                i += n + 3;
                plain_int = false;
            }
        }
    }
    let mut frac = String::new();
    if c.get(i) == Some(&'.') && c.get(i + 1).is_some_and(char::is_ascii_digit) {
        i += 1;
        while i < c.len() && c[i].is_ascii_digit() {
            if int.len() + frac.len() >= MAX_DIGITS {
                return Err(TOO_LONG);
            }
            frac.push(c[i]);
            i += 1;
        }
        plain_int = false;
    }
    let mut exp = 0i64;
    if matches!(c.get(i), Some('e' | 'E')) {
        let sign_len = usize::from(matches!(c.get(i + 1), Some('+' | '-')));
        if c.get(i + 1 + sign_len).is_some_and(char::is_ascii_digit) {
            let negative = c.get(i + 1) == Some(&'-');
            let mut k = i + 1 + sign_len;
            let mut e: i64 = 0;
            while k < c.len() && c[k].is_ascii_digit() {
                e = e.saturating_mul(10).saturating_add(i64::from(c[k] as u8 - b'0'));
                k += 1;
            }
            exp = if negative { -e } else { e };
            i = k;
            plain_int = false;
        }
    }
    if int.is_empty() {
        int.push('0');
    }
    Ok((Lit { int, frac, exp, plain_int, value: None }, i))
}

/// Past a unit's power right after a word at `i`: `^2`, `^{3}`, `²`, `³`.
fn unit_power(c: &[char], i: usize) -> usize {
    match (c.get(i), c.get(i + 1), c.get(i + 2), c.get(i + 3)) {
        (Some('^'), Some(d), _, _) if d.is_ascii_digit() => i + 2,
        (Some('^'), Some('{'), Some(d), Some('}')) if d.is_ascii_digit() => i + 4,
        (Some('²' | '³'), _, _, _) => i + 1,
        _ => i,
    }
}

fn command(c: &[char], i: usize) -> (Option<Tok>, usize) {
    // c[i] == '\\'
    let mut k = i + 1;
    while k < c.len() && c[k].is_ascii_alphabetic() {
        k += 1;
    }
    if k == i + 1 {
        // A one-character command.
        let tok = match c.get(i + 1) {
            Some('%') => Some(Tok::Percent),
            Some('$' | ',' | ';' | ':' | '!' | ' ' | '(' | ')' | '[' | ']') => None,
            _ => Some(Tok::Sep),
        };
        return (tok, (i + 2).min(c.len()));
    }
    let name: String = c[i + 1..k].iter().collect();
    let tok = match name.as_str() {
        "frac" | "dfrac" | "tfrac" | "cfrac" => Some(Tok::Frac),
        "sqrt" => Some(Tok::Sqrt),
        "times" | "cdot" | "ast" => Some(Tok::Times),
        "div" => Some(Tok::Div),
        "percent" => Some(Tok::Percent),
        "left" | "right" | "big" | "Big" | "bigl" | "bigr" | "Bigl" | "Bigr" | "displaystyle" | "textstyle"
        | "boxed" | "fbox" | "textbf" | "mathbf" | "bf" | "quad" | "qquad" | "dollar" => None,
        "text" | "textrm" | "mathrm" | "mbox" | "operatorname" | "textit" | "mathit" | "unit" => {
            // The group after it is prose or a unit.
            let mut j = k;
            while c.get(j) == Some(&' ') {
                j += 1;
            }
            if c.get(j) == Some(&'{') {
                let mut depth = 0usize;
                while j < c.len() {
                    match c[j] {
                        '{' => depth += 1,
                        '}' => {
                            depth -= 1;
                            if depth == 0 {
                                return (Some(Tok::Word), unit_power(c, j + 1));
                            }
                        }
                        _ => {}
                    }
                    j += 1;
                }
                return (Some(Tok::Word), c.len());
            }
            Some(Tok::Word)
        }
        "cdots" | "ldots" | "dots" => Some(Tok::Sep),
        "circ" | "degree" => Some(Tok::Word),
        "pi" => Some(Tok::Pi),
        // Greek letters, relations, unknown macros: prose or a symbol.
        _ => Some(Tok::Symbol),
    };
    (tok, k)
}

const SYMBOLIC: &str = "a symbolic expression (letters in arithmetic): only numeric answers are checked";

/// Whether the letters (or command) at `start..end` take part in arithmetic:
/// glued (no space) to an operator, a closing bracket before or an opening
/// one after (`x^2+1`, `2*x`, `f(x)`, `\frac{1}{2}x`), or a single letter
/// glued to a digit before it (`3x`; `5cm` and `2nd` stay words). Hyphens
/// between letters are prose (`twenty-one`). Such an answer is symbolic,
/// and a numeric checker must not read a number out of it.
fn symbolic(c: &[char], start: usize, end: usize, single: bool) -> bool {
    let letter_at = |k: Option<usize>| k.and_then(|k| c.get(k)).is_some_and(|x| x.is_alphabetic());
    let before = match start.checked_sub(1).map(|k| c[k]) {
        Some(d) if d.is_ascii_digit() => single,
        Some('+' | '*' | '^' | ')' | '}' | '×' | '·') => true,
        Some('-' | '\u{2212}') => !letter_at(start.checked_sub(2)),
        _ => false,
    };
    let after = match c.get(end) {
        Some('+' | '*' | '^' | '(' | '{' | '×' | '·') => true,
        Some('-' | '\u{2212}') => !letter_at(Some(end + 1)),
        _ => false,
    };
    before || after
}

fn lex(text: &str) -> Result<Vec<Tok>, &'static str> {
    let c: Vec<char> = text.chars().collect();
    let mut out = Vec::new();
    let mut i = 0;
    while i < c.len() {
        let ch = c[i];
        if ch.is_ascii_digit() || (ch == '.' && c.get(i + 1).is_some_and(char::is_ascii_digit)) {
            let (lit, next) = lex_number(&c, i)?;
            out.push(Tok::Num(lit));
            i = next;
            continue;
        }
        if ch == '\\' {
            let (tok, next) = command(&c, i);
            if tok == Some(Tok::Symbol) {
                if symbolic(&c, i, next, true) {
                    return Err(SYMBOLIC);
                }
                out.push(Tok::Word);
            } else {
                out.extend(tok);
            }
            i = next;
            continue;
        }
        if ch.is_alphabetic() {
            let start = i;
            while i < c.len() && (c[i].is_alphabetic() || c[i] == '_') {
                i += 1;
            }
            let end = unit_power(&c, i);
            if symbolic(&c, start, end, i - start == 1) {
                return Err(SYMBOLIC);
            }
            i = end;
            out.push(Tok::Word);
            continue;
        }
        let tok = match ch {
            '+' => Some(Tok::Plus),
            '-' | '\u{2212}' => Some(Tok::Minus),
            '*' | '×' | '·' | '⋅' | '∙' => Some(Tok::Times),
            '/' | '÷' => Some(Tok::Div),
            '^' => Some(Tok::Caret),
            '%' => Some(Tok::Percent),
            '(' => Some(Tok::LParen),
            ')' => Some(Tok::RParen),
            '{' => Some(Tok::LBrace),
            '}' => Some(Tok::RBrace),
            '[' => Some(Tok::LBracket),
            ']' => Some(Tok::RBracket),
            '$' | '€' | '£' | '¥' | '₹' => None,
            '°' | '²' | '³' => Some(Tok::Word),
            c if c.is_whitespace() => None,
            _ => Some(Tok::Sep),
        };
        out.extend(tok);
        i += 1;
    }
    Ok(out)
}

// ----------------------------------------------------------------- values
//
// Exact values are kept in lowest terms (numerator and denominator compared
// directly) and built with `BigRational::new_raw` after gym's own reduction:
// num-rational's operators reduce with a binary GCD whose cost grows with
// the *larger* operand's bits times its words even when the other is 1, which
// a hostile answer turns into seconds. Here a literal's denominator is a power
// of ten (only 2s and 5s are cancelled), arithmetic reduces with Euclid's
// algorithm (its first step, a remainder, shrinks a huge operand at once),
// its operands are limited to [`OP_BITS`] and each operation is charged to
// the parse's fuel by its size.

enum Fail {
    /// Not an expression here; the scanner moves on.
    Syntax,
    /// The answer cannot be read safely at all.
    Fatal(&'static str),
}

type Parsed<T> = Result<T, Fail>;

const TOO_LARGE: &str = "a value is too large to compare exactly";
const TOO_LARGE_TO_COMPUTE: &str = "a value is too large to compute with exactly";
const TOO_COMPLEX: &str = "the answer is too complex to read";

fn bits(r: &BigRational) -> u64 {
    r.numer().bits() + r.denom().bits()
}

fn approx(f: f64) -> Parsed<Value> {
    if f.is_finite() {
        Ok(Value::Approx(f))
    } else {
        Err(Fail::Fatal("a value is not a finite number"))
    }
}

fn float(v: &Value) -> Parsed<f64> {
    v.to_f64().ok_or(Fail::Fatal("a value is not a finite number"))
}

fn ten_pow(e: u64) -> Parsed<BigInt> {
    if e > MAX_BITS / 3 {
        return Err(Fail::Fatal(TOO_LARGE));
    }
    Ok(BigInt::from(10u32).pow(e as u32))
}

fn gcd(mut a: BigInt, mut b: BigInt) -> BigInt {
    while !b.is_zero() {
        let r = &a % &b;
        a = b;
        b = r;
    }
    a.abs()
}

/// `n / d` in lowest terms with a positive denominator (`d` is not zero).
fn reduced(n: BigInt, d: BigInt) -> BigRational {
    let g = gcd(n.clone(), d.clone());
    let (mut n, mut d) = if g.is_one() { (n, d) } else { (n / &g, d / &g) };
    if d.is_negative() {
        n = -n;
        d = -d;
    }
    BigRational::new_raw(n, d)
}

/// Charges an operation on values of `b` bits to the parse's fuel.
fn charge(fuel: &mut usize, b: u64) -> Parsed<()> {
    if b > 2 * OP_BITS + 64 {
        return Err(Fail::Fatal(TOO_LARGE_TO_COMPUTE));
    }
    let words = (b / 64 + 1) as usize;
    // Euclid's reduction costs about 37·words² word operations.
    *fuel = fuel.checked_sub(8 * words * words + 1).ok_or(Fail::Fatal(TOO_COMPLEX))?;
    Ok(())
}

/// An exact result of arithmetic, if it is small enough.
fn computed(r: BigRational) -> Parsed<Value> {
    if bits(&r) > OP_BITS {
        return Err(Fail::Fatal(TOO_LARGE_TO_COMPUTE));
    }
    Ok(Value::Exact(r))
}

fn lit_value(l: &Lit) -> Parsed<Value> {
    let digits = format!("{}{}", l.int, l.frac);
    let mut num = BigInt::parse_bytes(digits.as_bytes(), 10).ok_or(Fail::Syntax)?;
    let mut tens = (l.frac.len() as i64).saturating_sub(l.exp);
    if tens < 0 {
        num *= ten_pow(tens.unsigned_abs())?;
        tens = 0;
    }
    let tens = tens as u64;
    if tens > MAX_BITS / 3 {
        return Err(Fail::Fatal(TOO_LARGE));
    }
    if num.is_zero() {
        return Ok(Value::Exact(BigRational::zero()));
    }
    // The denominator is 2^tens · 5^tens: cancel its 2s and 5s only.
    let twos = num.trailing_zeros().unwrap_or(0).min(tens);
    num >>= twos;
    let mut fives = 0;
    while fives < tens && (&num % 5u32).is_zero() {
        num /= 5u32;
        fives += 1;
    }
    let den = (BigInt::one() << (tens - twos) as usize) * BigInt::from(5u32).pow((tens - fives) as u32);
    let r = BigRational::new_raw(num, den);
    if bits(&r) > MAX_BITS {
        return Err(Fail::Fatal(TOO_LARGE));
    }
    Ok(Value::Exact(r))
}

fn add(fuel: &mut usize, a: &Value, b: &Value) -> Parsed<Value> {
    match (a, b) {
        (Value::Exact(x), Value::Exact(y)) => {
            charge(fuel, bits(x) + bits(y))?;
            let n = x.numer() * y.denom() + y.numer() * x.denom();
            computed(reduced(n, x.denom() * y.denom()))
        }
        _ => approx(float(a)? + float(b)?),
    }
}

fn neg(a: &Value) -> Value {
    match a {
        Value::Exact(x) => Value::Exact(-x),
        Value::Approx(f) => Value::Approx(-f),
    }
}

fn mul(fuel: &mut usize, a: &Value, b: &Value) -> Parsed<Value> {
    match (a, b) {
        (Value::Exact(x), Value::Exact(y)) => {
            charge(fuel, bits(x) + bits(y))?;
            computed(reduced(x.numer() * y.numer(), x.denom() * y.denom()))
        }
        _ => approx(float(a)? * float(b)?),
    }
}

fn div(fuel: &mut usize, a: &Value, b: &Value) -> Parsed<Value> {
    match b {
        Value::Exact(y) if y.is_zero() => Err(Fail::Fatal("division by zero")),
        Value::Approx(f) if *f == 0.0 => Err(Fail::Fatal("division by zero")),
        Value::Exact(y) => mul(fuel, a, &Value::Exact(BigRational::new_raw(y.denom().clone(), y.numer().clone()))),
        Value::Approx(f) => approx(float(a)? / f),
    }
}

/// The exact `n`-th root of a non-negative integer, if there is one.
fn exact_root(x: &BigInt, n: u32) -> Option<BigInt> {
    let r = x.nth_root(n);
    (r.pow(n) == *x).then_some(r)
}

fn root(fuel: &mut usize, x: &Value, n: u32) -> Parsed<Value> {
    if let Value::Exact(r) = x {
        charge(fuel, bits(r))?;
        let (num, negative) = (r.numer().abs(), r.is_negative());
        if !negative || !n.is_multiple_of(2) {
            if let (Some(a), Some(b)) = (exact_root(&num, n), exact_root(r.denom(), n)) {
                let a = if negative { -a } else { a };
                return computed(BigRational::new_raw(a, b));
            }
        }
    }
    let f = float(x)?;
    if f < 0.0 && n.is_multiple_of(2) {
        return Err(Fail::Fatal("an even root of a negative number"));
    }
    approx(f.signum() * f.abs().powf(1.0 / f64::from(n)))
}

fn power(fuel: &mut usize, base: &Value, e: &Value) -> Parsed<Value> {
    if let Value::Exact(er) = e {
        if er.is_integer() {
            let Some(k) = er.numer().to_i64().filter(|k| k.unsigned_abs() <= 1_000_000) else {
                return Err(Fail::Fatal(TOO_LARGE_TO_COMPUTE));
            };
            return match base {
                Value::Exact(b) => {
                    if b.is_zero() && k < 0 {
                        return Err(Fail::Fatal("division by zero"));
                    }
                    let trivial = b.is_zero() || b.abs().is_one();
                    let m = if trivial { k.unsigned_abs() % 2 } else { k.unsigned_abs() };
                    if bits(b).saturating_mul(m) > OP_BITS {
                        return Err(Fail::Fatal(TOO_LARGE_TO_COMPUTE));
                    }
                    charge(fuel, bits(b).saturating_mul(m))?;
                    // Powers of a fraction in lowest terms stay in lowest terms.
                    let (n, d) = (b.numer().pow(m as u32), b.denom().pow(m as u32));
                    let p = if k < 0 { reduced(d, n) } else { BigRational::new_raw(n, d) };
                    computed(p)
                }
                Value::Approx(f) => approx(f.powi(k as i32)),
            };
        }
        // A rational power p/q: exact when the q-th root is.
        if let (Some(p), Some(q)) = (er.numer().to_i64(), er.denom().to_u32()) {
            if q <= 64 && p.unsigned_abs() <= 64 {
                let r = root(fuel, base, q)?;
                return power(fuel, &r, &Value::Exact(BigRational::from_integer(BigInt::from(p))));
            }
        }
    }
    let (b, x) = (float(base)?, float(e)?);
    if b < 0.0 {
        return Err(Fail::Fatal("a fractional power of a negative number"));
    }
    approx(b.powf(x))
}

// ----------------------------------------------------------------- parser

struct Parser {
    toks: Vec<Tok>,
    pos: usize,
    /// Parse steps left: a hard bound on the work per answer, whatever
    /// backtracking a hostile input provokes.
    fuel: usize,
}

impl Parser {
    fn peek(&self) -> Option<&Tok> {
        self.toks.get(self.pos)
    }

    fn peek_at(&self, k: usize) -> Option<&Tok> {
        self.toks.get(self.pos + k)
    }

    fn expect(&mut self, t: &Tok) -> Parsed<()> {
        if self.peek() == Some(t) {
            self.pos += 1;
            Ok(())
        } else {
            Err(Fail::Syntax)
        }
    }

    /// Runs `f`; on a syntax failure, puts the position back and returns `None`.
    fn attempt<T>(&mut self, f: impl FnOnce(&mut Self) -> Parsed<T>) -> Parsed<Option<T>> {
        let save = self.pos;
        match f(self) {
            Ok(v) => Ok(Some(v)),
            Err(Fail::Syntax) => {
                self.pos = save;
                Ok(None)
            }
            Err(e) => Err(e),
        }
    }

    fn expr(&mut self, d: usize) -> Parsed<Number> {
        let mut left = self.term(d)?;
        loop {
            let minus = match self.peek() {
                Some(Tok::Plus) => false,
                Some(Tok::Minus) => true,
                _ => break,
            };
            let Some(right) = self.attempt(|p| {
                p.pos += 1;
                p.term(d)
            })?
            else {
                break;
            };
            let r = if minus { neg(&right.value) } else { right.value };
            left = Number::of(add(&mut self.fuel, &left.value, &r)?);
        }
        Ok(left)
    }

    fn term(&mut self, d: usize) -> Parsed<Number> {
        let mut left = self.unary(d)?;
        loop {
            match self.peek() {
                Some(Tok::Times | Tok::Div) => {
                    let is_div = self.peek() == Some(&Tok::Div);
                    let Some(right) = self.attempt(|p| {
                        p.pos += 1;
                        p.unary(d)
                    })?
                    else {
                        break;
                    };
                    let v = if is_div {
                        div(&mut self.fuel, &left.value, &right.value)?
                    } else {
                        mul(&mut self.fuel, &left.value, &right.value)?
                    };
                    left = Number::of(v);
                }
                // Juxtaposition multiplies: 2\sqrt{3}, 3(4), \frac{1}{2}\sqrt{2}.
                Some(Tok::LParen | Tok::Sqrt | Tok::Frac | Tok::Pi) => {
                    let Some(right) = self.attempt(|p| p.postfix(d))? else { break };
                    left = Number::of(mul(&mut self.fuel, &left.value, &right.value)?);
                }
                _ => break,
            }
        }
        Ok(left)
    }

    fn unary(&mut self, d: usize) -> Parsed<Number> {
        if d > MAX_DEPTH {
            return Err(Fail::Fatal("the answer is nested too deeply"));
        }
        match self.peek() {
            Some(Tok::Plus) => {
                self.pos += 1;
                self.unary(d + 1)
            }
            Some(Tok::Minus) => {
                self.pos += 1;
                let n = self.unary(d + 1)?;
                Ok(Number { value: neg(&n.value), ..n })
            }
            _ => self.postfix(d),
        }
    }

    fn postfix(&mut self, d: usize) -> Parsed<Number> {
        let mut n = self.power(d)?;
        while self.peek() == Some(&Tok::Percent) {
            self.pos += 1;
            let hundred = Value::Exact(BigRational::from_integer(BigInt::from(100)));
            n = Number {
                value: div(&mut self.fuel, &n.value, &hundred)?,
                percent: true,
                decimals: n.decimals.map(|p| p + 2),
            };
        }
        Ok(n)
    }

    fn power(&mut self, d: usize) -> Parsed<Number> {
        let base = self.primary(d)?;
        if self.peek() != Some(&Tok::Caret) {
            return Ok(base);
        }
        // A unit superscript: 90^\circ, 90^{\circ}.
        if self.peek_at(1) == Some(&Tok::Word) {
            self.pos += 2;
            return Ok(base);
        }
        if self.peek_at(1) == Some(&Tok::LBrace)
            && self.peek_at(2) == Some(&Tok::Word)
            && self.peek_at(3) == Some(&Tok::RBrace)
        {
            self.pos += 4;
            return Ok(base);
        }
        let exponent = self.attempt(|p| {
            p.pos += 1;
            match p.peek() {
                Some(Tok::Minus) => {
                    p.pos += 1;
                    Ok(neg(&p.power(d + 1)?.value))
                }
                Some(Tok::Plus) => {
                    p.pos += 1;
                    Ok(p.power(d + 1)?.value)
                }
                _ => Ok(p.power(d + 1)?.value),
            }
        })?;
        match exponent {
            Some(e) => Ok(Number::of(power(&mut self.fuel, &base.value, &e)?)),
            None => Ok(base),
        }
    }

    /// A `\frac`/`\sqrt` argument: a braced group or a single digit.
    fn arg(&mut self, d: usize) -> Parsed<Value> {
        match self.peek().cloned() {
            Some(Tok::LBrace) => {
                self.pos += 1;
                let n = self.expr(d + 1)?;
                self.expect(&Tok::RBrace)?;
                Ok(n.value)
            }
            Some(Tok::Num(l)) if l.plain_int => {
                let digit = BigInt::from(u32::from(l.int.as_bytes()[0] - b'0'));
                if l.int.len() == 1 {
                    self.pos += 1;
                } else {
                    self.toks[self.pos] = Tok::Num(Lit { int: l.int[1..].to_string(), value: None, ..l });
                }
                Ok(Value::Exact(BigRational::from_integer(digit)))
            }
            _ => Err(Fail::Syntax),
        }
    }

    fn primary(&mut self, d: usize) -> Parsed<Number> {
        if d > MAX_DEPTH {
            return Err(Fail::Fatal("the answer is nested too deeply"));
        }
        self.fuel = self.fuel.checked_sub(1).ok_or(Fail::Fatal("the answer is too complex to read"))?;
        match self.peek() {
            Some(Tok::Num(l)) => {
                let plain_int = l.plain_int;
                let decimals = (!l.frac.is_empty() && l.exp == 0).then_some(l.frac.len() as u32);
                let value = self.literal(self.pos)?;
                self.pos += 1;
                if plain_int {
                    if let Some(frac) = self.attempt(Self::proper_fraction)? {
                        return Ok(Number::of(add(&mut self.fuel, &value, &frac)?));
                    }
                }
                Ok(Number { value, percent: false, decimals })
            }
            Some(Tok::LParen) => {
                self.pos += 1;
                let n = self.expr(d + 1)?;
                self.expect(&Tok::RParen)?;
                Ok(n)
            }
            Some(Tok::LBrace) => {
                self.pos += 1;
                let n = self.expr(d + 1)?;
                self.expect(&Tok::RBrace)?;
                Ok(n)
            }
            Some(Tok::Frac) => {
                self.pos += 1;
                let a = self.arg(d + 1)?;
                let b = self.arg(d + 1)?;
                Ok(Number::of(div(&mut self.fuel, &a, &b)?))
            }
            Some(Tok::Pi) => {
                self.pos += 1;
                Ok(Number::of(Value::Approx(std::f64::consts::PI)))
            }
            Some(Tok::Sqrt) => {
                self.pos += 1;
                let mut n = 2u32;
                if self.peek() == Some(&Tok::LBracket) {
                    self.pos += 1;
                    let index = self.expr(d + 1)?;
                    self.expect(&Tok::RBracket)?;
                    n = match index.value {
                        Value::Exact(r) if r.is_integer() => {
                            r.to_integer().to_u32().filter(|n| (1..=64).contains(n)).ok_or(Fail::Syntax)?
                        }
                        _ => return Err(Fail::Syntax),
                    };
                }
                let x = self.arg(d + 1)?;
                Ok(Number::of(root(&mut self.fuel, &x, n)?))
            }
            _ => Err(Fail::Syntax),
        }
    }

    /// The value of the literal at `at`, computed once and charged to the
    /// fuel by its size.
    fn literal(&mut self, at: usize) -> Parsed<Value> {
        let Some(Tok::Num(l)) = self.toks.get_mut(at) else { return Err(Fail::Syntax) };
        if let Some(v) = &l.value {
            return Ok(v.clone());
        }
        let v = lit_value(l)?;
        if let Value::Exact(r) = &v {
            self.fuel = self.fuel.checked_sub(8 * (bits(r) / 64) as usize).ok_or(Fail::Fatal(TOO_COMPLEX))?;
        }
        l.value = Some(v.clone());
        Ok(v)
    }

    /// The proper fraction of a mixed number after its whole part: ` 1/2`,
    /// `\frac{1}{2}` or `\frac12`, with integers 0 < a < b. Matched on the
    /// tokens alone (no recursive parse), so trying it costs nothing when it
    /// fails and a juxtaposition is read instead.
    fn proper_fraction(&mut self) -> Parsed<Value> {
        let int = |t: Option<&Tok>| match t {
            Some(Tok::Num(l)) if l.plain_int => Some(l.int.clone()),
            _ => None,
        };
        let (a, b, len) = match self.peek() {
            Some(Tok::Num(_)) => match (int(self.peek()), self.peek_at(1), int(self.peek_at(2))) {
                (Some(a), Some(Tok::Div), Some(b)) => (a, b, 3),
                _ => return Err(Fail::Syntax),
            },
            Some(Tok::Frac) => match (self.peek_at(1), int(self.peek_at(2)), self.peek_at(3), self.peek_at(4)) {
                (Some(Tok::LBrace), Some(a), Some(Tok::RBrace), Some(Tok::LBrace)) => {
                    match (int(self.peek_at(5)), self.peek_at(6)) {
                        (Some(b), Some(Tok::RBrace)) => (a, b, 7),
                        _ => return Err(Fail::Syntax),
                    }
                }
                (Some(Tok::Num(l)), _, _, _) if l.plain_int && l.int.len() == 2 => {
                    (l.int[..1].to_string(), l.int[1..].to_string(), 2)
                }
                _ => return Err(Fail::Syntax),
            },
            _ => return Err(Fail::Syntax),
        };
        let whole = |digits: &str| BigInt::parse_bytes(digits.as_bytes(), 10).ok_or(Fail::Syntax);
        let (a, b) = (whole(&a)?, whole(&b)?);
        if a.is_positive() && a < b {
            self.pos += len;
            return Ok(Value::Exact(reduced(a, b)));
        }
        Err(Fail::Syntax)
    }
}

fn starts_expr(t: &Tok) -> bool {
    matches!(t, Tok::Num(_) | Tok::Plus | Tok::Minus | Tok::LParen | Tok::LBrace | Tok::Frac | Tok::Sqrt | Tok::Pi)
}

/// Every maximal expression in `text`, in order.
fn candidates(text: &str) -> Result<Vec<Number>, &'static str> {
    if text.len() > MAX_ANSWER_BYTES {
        return Err("the answer is longer than 32 KiB");
    }
    let toks = lex(text)?;
    let fuel = FUEL_PER_TOKEN * toks.len() + 65_536;
    let mut p = Parser { toks, pos: 0, fuel };
    let mut out = Vec::new();
    while p.pos < p.toks.len() && out.len() < MAX_CANDIDATES {
        if !starts_expr(&p.toks[p.pos]) {
            p.pos += 1;
            continue;
        }
        let start = p.pos;
        match p.expr(0) {
            Ok(n) => out.push(n),
            Err(Fail::Syntax) => p.pos = start + 1,
            Err(Fail::Fatal(why)) => return Err(why),
        }
    }
    Ok(out)
}

#[cfg(test)]
mod tests {
    use super::*;

    fn one(s: &str) -> f64 {
        match read_answer(s) {
            Answer::One(n) => n.value.to_f64().unwrap(),
            other => panic!("{s}: {other:?}"),
        }
    }

    #[test]
    fn reads_the_forms_models_write() {
        for (s, v) in [
            ("42", 42.0),
            ("\\frac{1}{2}", 0.5),
            ("\\tfrac12", 0.5),
            ("\\boxed{\\frac{3}{4}}", 0.75),
            ("-\\frac{1}{2}", -0.5),
            ("\\frac{-1}{2}", -0.5),
            ("25%", 0.25),
            ("4.2e1", 42.0),
            ("10^{-3}", 0.001),
            ("4.2 \\times 10^1", 42.0),
            ("2*21", 42.0),
            ("-(-42)", 42.0),
            ("\\sqrt{1764}", 42.0),
            ("2 1/2", 2.5),
            ("2\\frac{1}{2}", 2.5),
            ("1 234 567", 1234567.0),
            ("1{,}234{,}567", 1234567.0),
            ("1,234,567", 1234567.0),
            ("12 m^2", 12.0),
            ("$5.50", 5.5),
            ("90^\\circ", 90.0),
            ("The answer is 42.", 42.0),
            ("#### 72", 72.0),
            ("6 \\times 7 = 42", 42.0),
            ("\\sqrt[3]{27}", 3.0),
        ] {
            assert!((one(s) - v).abs() < 1e-12, "{s}");
        }
    }

    #[test]
    fn lists_of_candidates_are_several() {
        for s in ["40 41 42", "40 or 42", "\\boxed{40} or \\boxed{42}", "1, 2", "3/4 or 1/2"] {
            assert!(matches!(read_answer(s), Answer::Several(_)), "{s}");
        }
        assert!(matches!(read_answer("no number here"), Answer::Missing));
    }

    #[test]
    fn rounded_decimals_match_only_non_terminating_values() {
        let third = read_answer("\\frac{1}{3}");
        assert!(matches(&read_answer("0.333"), &third));
        assert!(matches(&read_answer("0.3333"), &third));
        assert!(!matches(&read_answer("0.33"), &third));
        assert!(!matches(&read_answer("0.334"), &third));
        assert!(!matches(&read_answer("0.5001"), &read_answer("0.5")));
        assert!(matches(&read_answer("0.667"), &read_answer("2/3")));
        assert!(matches(&read_answer("0.666"), &read_answer("2/3")));
    }

    #[test]
    fn percent_matches_either_reading_only_with_the_sign() {
        assert!(matches(&read_answer("25%"), &read_answer("0.25")));
        assert!(matches(&read_answer("25%"), &read_answer("25")));
        assert!(matches(&read_answer("0.25"), &read_answer("25\\%")));
        assert!(matches(&read_answer("25"), &read_answer("25\\%")));
        assert!(!matches(&read_answer("25"), &read_answer("0.25")));
    }

    #[test]
    fn hostile_inputs_are_unreadable_not_slow() {
        assert!(matches!(read_answer(&"9".repeat(10_001)), Answer::Unreadable(_)));
        assert!(matches!(read_answer(&format!("{}1{}", "{".repeat(500), "}".repeat(500))), Answer::Unreadable(_)));
        assert!(matches!(read_answer("10^{10^{10}}"), Answer::Unreadable(_)));
        assert!(matches!(read_answer("1/0"), Answer::Unreadable(_)));
        assert!(matches!(read_answer(&"-".repeat(1000)), Answer::Missing | Answer::Unreadable(_)));
        // Found by the property test: an exponent at i64's edge overflowed.
        assert!(matches!(read_answer("\\right).0e-9223372036854775807"), Answer::Unreadable(_)));
        assert!(matches!(read_answer("1e9223372036854775807"), Answer::Unreadable(_)));
        let big = "9".repeat(10_000);
        assert!(matches(&read_answer(&big), &read_answer(&format!("\\boxed{{{big}}}"))));
        assert!(!matches(&read_answer(&big), &read_answer(&"9".repeat(9_999))));
    }
}
