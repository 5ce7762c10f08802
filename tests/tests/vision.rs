//! The `vision-qa` env: answers re-derived from the pixels of the PNG
//! (shapes counted by colour and classified by shape; bar charts read via
//! their axis, tick marks, tick labels recognised with the font table, and
//! bar heights), JSONL loading and its errors, the env contract, rewards
//! and snapshots.

use std::collections::BTreeSet;
use std::path::PathBuf;

mod common;

use envs::check::check_env;
use envs::games::vision::font;
use envs::games::vision::scenes::{BACKGROUND, COLOURS, GRID, INK};
use envs::rewards::extract_tag;
use envs::{Action, EnvError, EpisodeRecord, Registry, RegistryError};
use image::RgbImage;

fn data(name: &str) -> String {
    PathBuf::from(env!("CARGO_MANIFEST_DIR")).join("data/vision").join(name).display().to_string()
}

fn opts(pairs: &[&str]) -> Vec<String> {
    pairs.iter().map(|s| s.to_string()).collect()
}

fn maker(opts: &[String]) -> Result<envs::EnvMaker, RegistryError> {
    let reg = Registry::builtin();
    let o = reg.options("vision-qa", opts)?;
    reg.maker("vision-qa", &o)
}

fn decode(png: &[u8]) -> RgbImage {
    image::load_from_memory_with_format(png, image::ImageFormat::Png).unwrap().to_rgb8()
}

/// Resets `seed` and returns (question, image, gold answer from the demonstration).
fn item(env: &mut Box<dyn envs::Env>, seed: u64) -> (String, RgbImage, String) {
    let obs = env.reset(seed).unwrap();
    assert_eq!(obs.images.len(), 1);
    assert!(obs.text().starts_with("The image is attached."), "{}", obs.text());
    let demo = env.demonstration().unwrap().text;
    let gold = extract_tag(&demo, "answer").unwrap().to_string();
    (obs.text().to_string(), decode(&obs.images[0]), gold)
}

// ------------------------------------------------------------- counting

#[derive(Debug, PartialEq, Eq, Clone, Copy)]
enum Kind {
    Circle,
    Square,
    Triangle,
}

/// Connected regions (4-neighbour) of each palette colour, classified by
/// how much of their bounding box they fill.
fn shapes(img: &RgbImage) -> Vec<(&'static str, Kind)> {
    let (w, h) = img.dimensions();
    let mut seen = vec![false; (w * h) as usize];
    let mut out = Vec::new();
    for y in 0..h {
        for x in 0..w {
            let px = img.get_pixel(x, y).0;
            if seen[(y * w + x) as usize] || px == BACKGROUND {
                continue;
            }
            let name = COLOURS.iter().find(|c| c.1 == px).map(|c| c.0).unwrap_or_else(|| panic!("stray colour {px:?}"));
            let (mut n, mut x0, mut x1, mut y0, mut y1) = (0u32, x, x, y, y);
            let mut stack = vec![(x, y)];
            seen[(y * w + x) as usize] = true;
            while let Some((cx, cy)) = stack.pop() {
                n += 1;
                (x0, x1, y0, y1) = (x0.min(cx), x1.max(cx), y0.min(cy), y1.max(cy));
                let nb = [(cx.wrapping_sub(1), cy), (cx + 1, cy), (cx, cy.wrapping_sub(1)), (cx, cy + 1)];
                for (nx, ny) in nb {
                    if nx < w && ny < h && !seen[(ny * w + nx) as usize] && img.get_pixel(nx, ny).0 == px {
                        seen[(ny * w + nx) as usize] = true;
                        stack.push((nx, ny));
                    }
                }
            }
            let fill = n as f64 / ((x1 - x0 + 1) * (y1 - y0 + 1)) as f64;
            let kind = if fill > 0.95 {
                Kind::Square
            } else if (0.62..0.85).contains(&fill) {
                Kind::Circle
            } else if (0.45..0.62).contains(&fill) {
                Kind::Triangle
            } else {
                panic!("unrecognisable shape: fill {fill}");
            };
            out.push((name, kind));
        }
    }
    out
}

/// Counts what "How many <colour>? <kind>s are there" asks about.
fn count_from_pixels(question: &str, img: &RgbImage) -> usize {
    let what = question.split("How many ").nth(1).unwrap().split(" are there").next().unwrap();
    let words: Vec<&str> = what.split_whitespace().collect();
    let (colour, noun) = match words.as_slice() {
        [c, n] => (Some(*c), *n),
        [n] => (None, *n),
        _ => panic!("unexpected question {question}"),
    };
    let kind = match noun {
        "circles" => Some(Kind::Circle),
        "squares" => Some(Kind::Square),
        "triangles" => Some(Kind::Triangle),
        "shapes" => None,
        _ => panic!("unexpected noun in {question}"),
    };
    shapes(img)
        .iter()
        .filter(|(c, k)| (colour.is_none() || colour == Some(*c)) && (kind.is_none() || kind == Some(*k)))
        .count()
}

#[test]
fn count_answers_match_the_pixels() {
    let mut kinds = BTreeSet::new();
    for size in [64u32, 128, 256, 333] {
        let mut env = maker(&opts(&["task=count", &format!("size={size}")])).unwrap()();
        for seed in 0..40 {
            let (q, img, gold) = item(&mut env, seed);
            assert_eq!(img.dimensions(), (size, size));
            assert_eq!(count_from_pixels(&q, &img).to_string(), gold, "size {size} seed {seed}: {q}");
            kinds.extend(shapes(&img).into_iter().map(|(_, k)| format!("{k:?}")));
        }
    }
    assert_eq!(kinds.len(), 3, "all shape kinds drawn: {kinds:?}");
}

// ------------------------------------------------------------ bar charts

/// What a bar chart shows, read from its pixels.
#[derive(Debug)]
struct ReadChart {
    y_max: f64,
    /// Bar values in pixel-accurate units, left to right.
    values: Vec<f64>,
    /// One pixel in value units.
    resolution: f64,
}

fn is_black(img: &RgbImage, x: i64, y: i64) -> bool {
    x >= 0
        && y >= 0
        && (x as u32) < img.width()
        && (y as u32) < img.height()
        && img.get_pixel(x as u32, y as u32).0 == INK
}

fn longest_black_run(img: &RgbImage, vertical: bool, i: u32) -> u32 {
    let n = if vertical { img.height() } else { img.width() };
    let (mut best, mut cur) = (0, 0);
    for j in 0..n {
        let (x, y) = if vertical { (i, j) } else { (j, i) };
        cur = if img.get_pixel(x, y).0 == INK { cur + 1 } else { 0 };
        best = best.max(cur);
    }
    best
}

/// Recognises the digits right-aligned to column `right` (exclusive),
/// glyph rows starting at `top`, at font scale `s`.
fn read_number(img: &RgbImage, right: i64, top: i64, s: i64) -> u64 {
    let mut digits = Vec::new();
    for k in 0.. {
        let x0 = right - 5 * s - 6 * k * s;
        let mut rows = [0u8; 7];
        for (r, row) in rows.iter_mut().enumerate() {
            for c in 0..5 {
                if is_black(img, x0 + c * s, top + r as i64 * s) {
                    *row |= 1 << (4 - c);
                }
            }
        }
        if rows == [0; 7] {
            break;
        }
        let d =
            ('0'..='9').find(|&d| font::glyph(d) == Some(&rows)).unwrap_or_else(|| panic!("unreadable glyph {rows:?}"));
        digits.push(d);
    }
    digits.iter().rev().collect::<String>().parse().unwrap()
}

fn read_chart(img: &RgbImage) -> ReadChart {
    let (w, h) = img.dimensions();
    let s = (w as i64 / 128).max(1);
    // The y-axis: the columns with the longest vertical black run; the
    // baseline: the rows with the longest horizontal one.
    let col_runs: Vec<u32> = (0..w).map(|x| longest_black_run(img, true, x)).collect();
    let best = *col_runs.iter().max().unwrap();
    let axis_x = col_runs.iter().rposition(|&r| r == best).unwrap() as i64 + 1;
    let row_runs: Vec<u32> = (0..h).map(|y| longest_black_run(img, false, y)).collect();
    let best = *row_runs.iter().max().unwrap();
    let base_y = row_runs.iter().position(|&r| r == best).unwrap() as i64;
    // Tick marks left of the axis.
    let ticks: Vec<i64> = (0..=base_y).filter(|&y| is_black(img, axis_x - 2 * s, y)).collect();
    assert!(ticks.len() >= 5 && ticks.contains(&base_y), "ticks {ticks:?} base {base_y}");
    let top_y = ticks[0];
    let y_max = read_number(img, axis_x - 6 * s, top_y - 7 * s / 2, s) as f64;
    assert_eq!(read_number(img, axis_x - 6 * s, base_y - 7 * s / 2, s), 0, "bottom tick label is 0");
    // The grid line of the top tick is drawn (or covered by a bar).
    assert!((axis_x..w as i64 - 4).any(|x| img.get_pixel(x as u32, top_y as u32).0 == GRID));
    // Bars: runs of palette colour on the row above the baseline.
    let mut values = Vec::new();
    let row = base_y - 1;
    let mut x = axis_x;
    let plot_h = (base_y - top_y) as f64;
    while x < w as i64 {
        let px = img.get_pixel(x as u32, row as u32).0;
        if COLOURS.iter().any(|c| c.1 == px) {
            let start = x;
            while x < w as i64 && img.get_pixel(x as u32, row as u32).0 == px {
                x += 1;
            }
            let mid = (start + x) / 2;
            let mut top = row;
            while top > 0 && img.get_pixel(mid as u32, (top - 1) as u32).0 == px {
                top -= 1;
            }
            values.push((base_y - top) as f64 / plot_h * y_max);
        } else {
            x += 1;
        }
    }
    ReadChart { y_max, values, resolution: y_max / plot_h }
}

fn bar_index(label: &str) -> usize {
    (label.trim_matches(|c: char| !c.is_ascii_uppercase()).as_bytes()[0] - b'A') as usize
}

#[test]
fn bar_answers_match_the_pixels() {
    let mut asked = BTreeSet::new();
    for size in [64u32, 128, 256, 384] {
        let mut env = maker(&opts(&["task=bar", &format!("size={size}")])).unwrap()();
        for seed in 0..40 {
            let (q, img, gold) = item(&mut env, seed);
            let chart = read_chart(&img);
            assert!((3..=6).contains(&chart.values.len()), "{chart:?}");
            let tol = 1.5 * chart.resolution;
            let ctx = format!("size {size} seed {seed}: {q} gold {gold} read {chart:?}");
            if let Some(rest) = q.split("value of bar ").nth(1).filter(|_| q.contains("What is")) {
                let v = chart.values[bar_index(rest)];
                assert!((v - gold.parse::<f64>().unwrap()).abs() <= tol, "{ctx}");
                asked.insert("value");
            } else if q.contains("largest value") {
                let imax =
                    (0..chart.values.len()).max_by(|&a, &b| chart.values[a].total_cmp(&chart.values[b])).unwrap();
                assert_eq!(((b'A' + imax as u8) as char).to_string(), gold, "{ctx}");
                asked.insert("largest");
            } else if q.contains("How much larger") {
                let labels: Vec<&str> = q.split("bar ").skip(1).collect();
                let d = chart.values[bar_index(labels[0])] - chart.values[bar_index(labels[1])];
                assert!((d - gold.parse::<f64>().unwrap()).abs() <= 2.0 * tol, "{ctx}");
                asked.insert("difference");
            } else {
                panic!("unexpected question {q}");
            }
            assert!(chart.y_max > 0.0);
        }
    }
    assert_eq!(asked.len(), 3, "{asked:?}");
}

#[test]
fn mixed_task_uses_both_kinds_and_is_deterministic() {
    let m = maker(&opts(&[])).unwrap();
    let (mut a, mut b) = (m(), m());
    let mut tasks = BTreeSet::new();
    for seed in 0..20 {
        let (oa, ob) = (a.reset(seed).unwrap(), b.reset(seed).unwrap());
        assert_eq!(oa, ob);
        assert_eq!(oa.images, ob.images, "seed {seed}: same PNG bytes");
        tasks.insert(oa.state["task"].as_str().unwrap().to_string());
        assert_eq!(oa.state["image_size"], serde_json::json!([256, 256]));
    }
    assert_eq!(tasks.len(), 2);
}

// -------------------------------------------------------------- datasets

#[test]
fn jsonl_items_carry_their_images() {
    let mut env = maker(&opts(&["source=jsonl", &format!("path={}", data("qa.jsonl"))])).unwrap()();
    let obs = env.reset(0).unwrap();
    assert_eq!(obs.images[0], std::fs::read(data("images/two_red_squares.png")).unwrap());
    assert_eq!(obs.state["image_size"], serde_json::json!([16, 16]));
    assert_eq!(obs.text(), "The image is attached. How many red squares are there?");
    // Recount from the fixture's pixels: two red squares.
    let img = decode(&obs.images[0]);
    assert_eq!(count_from_pixels(obs.text(), &img), 2);
    let s = env.step(&Action::text("<think>two</think>\n<answer>2</answer>")).unwrap();
    assert_eq!(s.reward, 5.0);
    // Text answers: exact, after normalisation, or wrong.
    for (reply, success, reward) in [
        ("<think>g</think><answer>green</answer>", true, 4.0),
        ("<think>g</think><answer> Green. </answer>", true, 3.6),
        ("<think>g</think><answer>greenish</answer>", false, 1.0),
    ] {
        env.reset(2).unwrap();
        let s = env.step(&Action::text(reply)).unwrap();
        assert_eq!(s.info.success, Some(success), "{reply}");
        assert!((s.reward - reward).abs() < 1e-9, "{reply}: {}", s.reward);
        assert!(s.info.breakdown.iter().any(|t| t.name == "number" && t.value.is_none()), "no number term for text");
    }
}

fn build_error(file: &str) -> String {
    let path = data(file);
    match maker(&opts(&["source=jsonl", &format!("path={path}")])) {
        Err(e @ RegistryError::Build { source: EnvError::File { .. }, .. }) => {
            let msg = e.to_string();
            assert!(msg.contains(&path), "names the file: {msg}");
            msg
        }
        Err(e) => panic!("expected a file error, got {e}"),
        Ok(_) => panic!("{file} should not load"),
    }
}

#[test]
fn broken_datasets_fail_at_build_time_naming_file_line_and_image() {
    let e = build_error("missing_image.jsonl");
    assert!(e.contains("line 2") && e.contains("images/nope.png") && e.contains("cannot read"), "{e}");
    let e = build_error("not_png.jsonl");
    assert!(e.contains("line 3") && e.contains("not_a_png.png") && e.contains("not a valid PNG"), "{e}");
    let e = build_error("missing_question.jsonl");
    assert!(e.contains("line 2") && e.contains("missing field `question`"), "{e}");
    let e = build_error("nothing_here.jsonl");
    assert!(e.contains("cannot read"), "{e}");
}

// -------------------------------------------------------- contract, rewards

#[test]
fn check_env_passes_for_every_task_and_source() {
    for o in [
        opts(&["task=count"]),
        opts(&["task=bar"]),
        opts(&["task=mixed", "size=64"]),
        opts(&["source=jsonl", &format!("path={}", data("qa.jsonl"))]),
    ] {
        check_env(&maker(&o).unwrap(), 1).unwrap_or_else(|e| panic!("{o:?}: {e}"));
    }
}

fn run(opts: &[String], policy: &str, episodes: usize, seed: u64) -> Vec<EpisodeRecord> {
    common::rollout_env("vision-qa", opts, policy, episodes, seed)
}

#[test]
fn oracle_earns_the_full_reward() {
    for o in
        [opts(&["task=count"]), opts(&["task=bar"]), opts(&["source=jsonl", &format!("path={}", data("qa.jsonl"))])]
    {
        for ep in run(&o, "oracle", 40, 500) {
            assert!(ep.success, "{o:?} seed {}", ep.seed);
            let want =
                if ep.steps[0].breakdown.iter().any(|t| t.name == "number" && t.value.is_none()) { 4.0 } else { 5.0 };
            assert_eq!(ep.total_reward, want, "{o:?} seed {}: {:?}", ep.seed, ep.steps[0]);
        }
    }
}

#[test]
fn empty_and_garbage_replies_are_penalised_with_reasons() {
    let m = maker(&opts(&[])).unwrap();
    for (reply, why) in
        [("", "empty reply"), ("I see shapes", "no <answer>"), ("<answer>zebra</answer>", "wrong answer")]
    {
        for seed in 0..4 {
            let mut env = m();
            env.reset(seed).unwrap();
            let s = env.step(&Action::text(reply)).unwrap();
            assert!(s.reward < 0.0, "{reply:?}: {}", s.reward);
            assert_eq!(s.info.success, Some(false));
            assert!(s.info.reason.as_deref().unwrap_or("").contains(why), "{reply:?}: {:?}", s.info.reason);
        }
    }
}

// ------------------------------------------------------------- snapshots

/// FNV-1a over the decoded pixels: stable across PNG encoder versions.
fn pixel_hash(img: &RgbImage) -> String {
    let mut h: u64 = 0xcbf2_9ce4_8422_2325;
    for b in img.as_raw() {
        h = (h ^ *b as u64).wrapping_mul(0x0100_0000_01b3);
    }
    format!("{h:016x}")
}

#[test]
fn snapshot_prompts() {
    let mut out = String::new();
    for (task, size) in [("count", 256), ("bar", 256), ("mixed", 128)] {
        let mut env = maker(&opts(&[&format!("task={task}"), &format!("size={size}")])).unwrap()();
        for seed in 0..4 {
            let obs = env.reset(seed).unwrap();
            if out.is_empty() {
                out.push_str(&format!("SYSTEM: {}\n\n", obs.messages[0].content));
            }
            let img = decode(&obs.images[0]);
            out.push_str(&format!(
                "[{task} {seed}] {}\n    image {}x{} pixels {} png {} bytes; state {}\n",
                obs.text(),
                img.width(),
                img.height(),
                pixel_hash(&img),
                obs.images[0].len(),
                obs.state
            ));
        }
    }
    insta::assert_snapshot!(out);
}

fn view(eps: &[EpisodeRecord]) -> serde_json::Value {
    eps.iter()
        .map(|e| {
            let s = &e.steps[0];
            serde_json::json!({
                "seed": e.seed,
                "question": e.prompt[1].content,
                "reply": s.action,
                "reward": s.reward,
                "breakdown": s.breakdown.iter().map(|t| format!("{}={:?}x{}", t.name, t.value, t.weight)).collect::<Vec<_>>(),
                "reason": s.reason,
                "success": e.success,
            })
        })
        .collect()
}

#[test]
fn snapshot_rollouts() {
    insta::assert_json_snapshot!("vision_oracle", view(&run(&opts(&[]), "oracle", 4, 0)));
    insta::assert_json_snapshot!("vision_random", view(&run(&opts(&[]), "random", 4, 0)));
    let jsonl = opts(&["source=jsonl", &format!("path={}", data("qa.jsonl"))]);
    insta::assert_json_snapshot!("vision_jsonl_random", view(&run(&jsonl, "random", 3, 0)));
}

#[test]
fn listing_several_candidates_never_earns_credit_in_math_or_vision() {
    // For each env and seed: the gold with a wrong neighbour listed before
    // and after it, boxed or plain. (Not "106 105": a space between groups of
    // three digits is a thousands separator, so that is one value, 106105.)
    let reg = Registry::builtin();
    for id in ["math", "vision-qa"] {
        let mut env = reg.make::<&str>(id, &[]).unwrap();
        let mut checked = 0;
        for seed in 0..12 {
            env.reset(seed).unwrap();
            let gold = extract_tag(&env.demonstration().unwrap().text, "answer").unwrap().to_string();
            let Some(value) = envs::answer::read_gold(&gold).one().and_then(|n| n.value.to_f64()) else { continue };
            let other = value + 1.0;
            for listing in [
                format!("{other}, {gold}"),
                format!("{gold} or {other}"),
                format!("\\boxed{{{other}}} or \\boxed{{{gold}}}"),
            ] {
                env.reset(seed).unwrap();
                let reply = format!("<think>two guesses</think>\n<answer>{listing}</answer>");
                let step = env.step(&Action::text(reply)).unwrap();
                let term = |name: &str| step.info.breakdown.iter().find(|t| t.name == name).and_then(|t| t.value);
                assert_eq!(term("correctness"), Some(-0.5), "{id} seed {seed}: `{listing}` (gold {gold})");
                assert_eq!(term("number"), Some(0.0), "{id} seed {seed}: `{listing}` (gold {gold})");
                assert_ne!(step.info.success, Some(true));
                let reason = step.info.reason.clone().unwrap_or_default();
                assert!(reason.contains("several different values"), "{id}: reason `{reason}`");
                checked += 1;
            }
        }
        assert!(checked >= 12, "{id}: only {checked} numeric listings checked");
    }
}
