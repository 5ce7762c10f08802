//! Procedural scenes with answers computed from the hidden scene.
//!
//! * **count**: non-overlapping circles, squares and triangles in five flat
//!   colours on white; "How many red circles are there?" (or all shapes of
//!   one colour, or of one kind).
//! * **bar**: a bar chart with lettered bars, a y-axis with numeric tick
//!   labels and grid lines; "What is the value of bar C?", "Which bar has
//!   the largest value?" or "How much larger is bar A than bar D?". Bar
//!   values are multiples of half a tick step (or of the step), so they can
//!   be read off the grid.
//!
//! Seed → scene → render → question and answer: everything derives from
//! one `ChaCha8Rng`, and rendering has no anti-aliasing, so a seed always
//! gives the same PNG bytes.

use rand::seq::SliceRandom;
use rand::Rng;
use rand_chacha::ChaCha8Rng;
use serde_json::{json, Value};

use super::canvas::{Canvas, Rgb};
use super::font;

/// The colours shapes and bars use, with their names. Exact RGB values:
/// no other pixel of a scene has these colours.
pub const COLOURS: &[(&str, Rgb)] = &[
    ("red", [220, 38, 38]),
    ("green", [22, 163, 74]),
    ("blue", [37, 99, 235]),
    ("yellow", [234, 179, 8]),
    ("purple", [147, 51, 234]),
];

/// Scene background.
pub const BACKGROUND: Rgb = [255, 255, 255];
/// Axis and text colour of charts.
pub const INK: Rgb = [0, 0, 0];
/// Chart grid lines.
pub const GRID: Rgb = [210, 210, 210];

/// A kind of shape.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash)]
pub enum ShapeKind {
    /// A filled disc.
    Circle,
    /// A filled axis-aligned square.
    Square,
    /// A filled upright isosceles triangle.
    Triangle,
}

impl ShapeKind {
    /// Every kind.
    pub const ALL: [ShapeKind; 3] = [ShapeKind::Circle, ShapeKind::Square, ShapeKind::Triangle];

    /// `circle`, `square`, `triangle`.
    pub fn name(self) -> &'static str {
        match self {
            ShapeKind::Circle => "circle",
            ShapeKind::Square => "square",
            ShapeKind::Triangle => "triangle",
        }
    }
}

/// One shape: its kind, colour index into [`COLOURS`], centre and
/// half-size. It covers the box `[cx − r, cx + r] × [cy − r, cy + r]`.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct Shape {
    /// The kind.
    pub kind: ShapeKind,
    /// Index into [`COLOURS`].
    pub colour: usize,
    /// Centre x.
    pub cx: i64,
    /// Centre y.
    pub cy: i64,
    /// Half the side of the bounding box.
    pub r: i64,
}

/// A counting scene.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct ShapeScene {
    /// Image side in pixels.
    pub size: u32,
    /// The shapes, with bounding boxes at least 3 px apart.
    pub shapes: Vec<Shape>,
}

/// Pixels between shapes' bounding boxes.
const GAP: i64 = 3;

impl ShapeScene {
    /// Draws 4–12 shapes (fewer on small images when they do not fit).
    pub fn random(rng: &mut ChaCha8Rng, size: u32) -> Self {
        let s = size as i64;
        let r_lo = (s / 28).max(5);
        let r_hi = (s / 12).max(r_lo + 1);
        let want = rng.gen_range(4..=12);
        let mut shapes: Vec<Shape> = Vec::with_capacity(want);
        for _ in 0..want * 30 {
            if shapes.len() == want {
                break;
            }
            let r = rng.gen_range(r_lo..=r_hi);
            if 2 * r + 4 >= s {
                continue;
            }
            let cx = rng.gen_range(r + 2..s - r - 2);
            let cy = rng.gen_range(r + 2..s - r - 2);
            let clear = shapes.iter().all(|o| (cx - o.cx).abs() > r + o.r + GAP || (cy - o.cy).abs() > r + o.r + GAP);
            if clear {
                let kind = ShapeKind::ALL[rng.gen_range(0..3)];
                shapes.push(Shape { kind, colour: rng.gen_range(0..COLOURS.len()), cx, cy, r });
            }
        }
        Self { size, shapes }
    }

    /// Renders the scene.
    pub fn render(&self) -> Canvas {
        let mut c = Canvas::new(self.size, self.size, BACKGROUND);
        for sh in &self.shapes {
            let col = COLOURS[sh.colour].1;
            match sh.kind {
                ShapeKind::Circle => c.fill_circle(sh.cx, sh.cy, sh.r, col),
                ShapeKind::Square => c.fill_rect(sh.cx - sh.r, sh.cy - sh.r, sh.cx + sh.r + 1, sh.cy + sh.r + 1, col),
                ShapeKind::Triangle => c.fill_triangle(sh.cx, sh.cy - sh.r, sh.r, 2 * sh.r + 1, col),
            }
        }
        c
    }

    /// The shapes matching a colour and/or a kind (`None` = any).
    pub fn matching(&self, colour: Option<usize>, kind: Option<ShapeKind>) -> Vec<&Shape> {
        self.shapes
            .iter()
            .filter(|s| (colour.is_none() || colour == Some(s.colour)) && (kind.is_none() || kind == Some(s.kind)))
            .collect()
    }
}

/// A bar chart.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct BarChart {
    /// Image side in pixels.
    pub size: u32,
    /// Bar values, left to right (bars are labelled `A`, `B`, …).
    pub values: Vec<i64>,
    /// Value between two y-axis ticks.
    pub step: i64,
    /// Number of tick intervals: the axis runs from 0 to `step · ticks`.
    pub ticks: i64,
    /// Index into [`COLOURS`] of the bars.
    pub colour: usize,
}

/// Where a chart's parts are drawn (pixels).
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct ChartLayout {
    /// Font scale.
    pub scale: i64,
    /// First column right of the y-axis line.
    pub axis_x: i64,
    /// Row of the baseline (value 0): bars end on the row above it.
    pub base_y: i64,
    /// Row of the top grid line (value `step · ticks`).
    pub top_y: i64,
    /// Last column (exclusive) of the plot area.
    pub right_x: i64,
}

impl BarChart {
    /// 3–6 bars; step one of 2, 5, 10, 20, 50, 100; 4–6 ticks (fewer on
    /// images too small to label them apart); a unique largest bar.
    pub fn random(rng: &mut ChaCha8Rng, size: u32) -> Self {
        let n = rng.gen_range(3..=6);
        let step = *[2i64, 5, 10, 20, 50, 100].choose(rng).unwrap_or(&10);
        // Tick labels are 7 font pixels tall: keep ticks at least 9 apart.
        let (scale, top_y, base_y) = Self::vertical(size);
        let max_ticks = ((base_y - top_y) / (9 * scale)).clamp(1, 6);
        let ticks = rng.gen_range(max_ticks.min(4)..=max_ticks);
        let unit = Self::unit_of(step);
        let top = step * ticks / unit;
        let mut values: Vec<i64> = Vec::new();
        for _ in 0..100 {
            values = (0..n).map(|_| rng.gen_range(1..=top) * unit).collect();
            let max = values.iter().copied().max().unwrap_or(0);
            if values.iter().filter(|&&v| v == max).count() == 1 {
                break;
            }
        }
        Self { size, values, step, ticks, colour: rng.gen_range(0..COLOURS.len()) }
    }

    /// The resolution of bar values: half a step when that is a whole
    /// number, else the step.
    pub fn unit(&self) -> i64 {
        Self::unit_of(self.step)
    }

    fn unit_of(step: i64) -> i64 {
        if step % 2 == 0 {
            step / 2
        } else {
            step
        }
    }

    /// The top of the y-axis.
    pub fn y_max(&self) -> i64 {
        self.step * self.ticks
    }

    /// The label of bar `i`: `A`, `B`, ….
    pub fn label(i: usize) -> char {
        (b'A' + i as u8) as char
    }

    /// Where everything goes.
    pub fn layout(&self) -> ChartLayout {
        let s = self.size as i64;
        let (scale, top_y, base_y) = Self::vertical(self.size);
        let label_w = font::text_width(&self.y_max().to_string(), scale as u32) as i64;
        let axis_x = 3 + label_w + 7 * scale;
        ChartLayout { scale, axis_x, base_y, top_y, right_x: s - 4 }
    }

    /// Font scale, top grid row and baseline row for an image side.
    fn vertical(size: u32) -> (i64, i64, i64) {
        let s = size as i64;
        let scale = (s / 128).max(1);
        (scale, 4 + 7 * scale / 2 + 2, s - (12 * scale + 4))
    }

    /// Pixel height of a bar of value `v`.
    pub fn bar_height(&self, v: i64) -> i64 {
        let l = self.layout();
        let plot_h = l.base_y - l.top_y;
        (v * plot_h + self.y_max() / 2) / self.y_max()
    }

    /// The columns `[x0, x1)` of bar `i`.
    pub fn bar_columns(&self, i: usize) -> (i64, i64) {
        let l = self.layout();
        let n = self.values.len() as i64;
        let slot = (l.right_x - l.axis_x) / n.max(1);
        let x0 = l.axis_x + i as i64 * slot;
        let pad = slot / 5;
        (x0 + pad, x0 + slot - pad)
    }

    /// Renders the chart.
    pub fn render(&self) -> Canvas {
        let l = self.layout();
        let s = l.scale;
        let mut c = Canvas::new(self.size, self.size, BACKGROUND);
        let plot_h = l.base_y - l.top_y;
        for k in 0..=self.ticks {
            let y = l.base_y - (k * plot_h + self.ticks / 2) / self.ticks;
            if k > 0 {
                c.fill_rect(l.axis_x, y, l.right_x, y + 1, GRID);
            }
            c.fill_rect(l.axis_x - 4 * s, y, l.axis_x - s, y + 1, INK);
            let label = (k * self.step).to_string();
            let w = font::text_width(&label, s as u32) as i64;
            c.text(l.axis_x - 6 * s - w, y - 7 * s / 2, &label, s as u32, INK);
        }
        let col = COLOURS[self.colour].1;
        for (i, &v) in self.values.iter().enumerate() {
            let (x0, x1) = self.bar_columns(i);
            c.fill_rect(x0, l.base_y - self.bar_height(v), x1, l.base_y, col);
            let label = Self::label(i).to_string();
            let w = font::text_width(&label, s as u32) as i64;
            c.text((x0 + x1 - w) / 2, l.base_y + s + 3 * s, &label, s as u32, INK);
        }
        // Axes last, over grid lines and bar edges.
        c.fill_rect(l.axis_x - s, l.top_y - 2 * s, l.axis_x, l.base_y + s, INK);
        c.fill_rect(l.axis_x - s, l.base_y, l.right_x, l.base_y + s, INK);
        c
    }
}

/// A generated question about a scene.
#[derive(Debug, Clone, PartialEq)]
pub struct SceneTask {
    /// `count` or `bar`.
    pub task: &'static str,
    /// The question (without the "image attached" preamble).
    pub question: String,
    /// The gold answer.
    pub answer: String,
    /// How the answer follows from the scene (the oracle's reasoning).
    pub reasoning: String,
    /// The answer space for the `random` policy.
    pub space: Value,
    /// The rendered image.
    pub image: Canvas,
}

/// A counting question about a fresh scene.
pub fn count_task(rng: &mut ChaCha8Rng, size: u32) -> SceneTask {
    let scene = ShapeScene::random(rng, size);
    // Usually ask about something present; sometimes about anything.
    let (colour, kind) = match scene.shapes.choose(rng) {
        Some(sh) if rng.gen_bool(0.8) => (sh.colour, sh.kind),
        _ => (rng.gen_range(0..COLOURS.len()), ShapeKind::ALL[rng.gen_range(0..3)]),
    };
    let (colour, kind) = match rng.gen_range(0..5) {
        0 => (Some(colour), None),
        1 => (None, Some(kind)),
        _ => (Some(colour), Some(kind)),
    };
    let what = match (colour, kind) {
        (Some(c), Some(k)) => format!("{} {}s", COLOURS[c].0, k.name()),
        (Some(c), None) => format!("{} shapes", COLOURS[c].0),
        (None, Some(k)) => format!("{}s", k.name()),
        (None, None) => "shapes".to_string(),
    };
    let found = scene.matching(colour, kind);
    let reasoning = if found.is_empty() {
        format!("The image shows {} shapes and none of them are {what}, so the count is 0.", scene.shapes.len())
    } else {
        let at: Vec<String> = found.iter().map(|s| format!("({}, {})", s.cx, s.cy)).collect();
        format!(
            "The image shows {} shapes. The {what} are at {}: {} in total.",
            scene.shapes.len(),
            at.join(", "),
            found.len()
        )
    };
    SceneTask {
        task: "count",
        question: format!("How many {what} are there in the image? Answer with a number."),
        answer: found.len().to_string(),
        reasoning,
        space: json!({"kind": "number", "min": 0, "max": 12}),
        image: scene.render(),
    }
}

/// A bar-chart question about a fresh chart.
pub fn bar_task(rng: &mut ChaCha8Rng, size: u32) -> SceneTask {
    let chart = BarChart::random(rng, size);
    let n = chart.values.len();
    let listing: Vec<String> =
        chart.values.iter().enumerate().map(|(i, v)| format!("{}={v}", BarChart::label(i))).collect();
    let axis = format!("The y-axis runs from 0 to {} with ticks every {}.", chart.y_max(), chart.step);
    let number_space = json!({"kind": "number", "min": 0, "max": chart.y_max()});
    let (question, answer, reasoning, space) = match rng.gen_range(0..4) {
        0 => {
            let (imax, vmax) =
                chart.values.iter().enumerate().max_by_key(|(_, v)| **v).map_or((0, 0), |(i, v)| (i, *v));
            let label = BarChart::label(imax);
            (
                "Which bar has the largest value? Answer with the bar's letter.".to_string(),
                label.to_string(),
                format!("{axis} Reading the bars: {}. The largest is bar {label} ({vmax}).", listing.join(", ")),
                json!({"kind": "choice", "values": (0..n).map(|i| BarChart::label(i).to_string()).collect::<Vec<_>>()}),
            )
        }
        1 => {
            let mut idx: Vec<usize> = (0..n).collect();
            idx.shuffle(rng);
            let (mut a, mut b) = (idx[0], idx[1]);
            if chart.values[a] < chart.values[b] {
                std::mem::swap(&mut a, &mut b);
            }
            let (va, vb) = (chart.values[a], chart.values[b]);
            let (la, lb) = (BarChart::label(a), BarChart::label(b));
            (
                format!("How much larger is the value of bar {la} than the value of bar {lb}? Answer with a number."),
                (va - vb).to_string(),
                format!(
                    "{axis} Bar {la} reaches {va} and bar {lb} reaches {vb}, so the difference is {va} − {vb} = {}.",
                    va - vb
                ),
                number_space,
            )
        }
        _ => {
            let i = rng.gen_range(0..n);
            let label = BarChart::label(i);
            let v = chart.values[i];
            (
                format!("What is the value of bar {label}? Answer with a number."),
                v.to_string(),
                format!("{axis} The top of bar {label} lines up with {v} on the y-axis."),
                number_space,
            )
        }
    };
    SceneTask { task: "bar", question, answer, reasoning, space, image: chart.render() }
}

#[cfg(test)]
mod tests {
    use rand::SeedableRng;

    use super::*;

    #[test]
    fn shapes_are_in_bounds_and_apart() {
        for size in [64u32, 100, 256, 1024] {
            for seed in 0..50 {
                let scene = ShapeScene::random(&mut ChaCha8Rng::seed_from_u64(seed), size);
                assert!(!scene.shapes.is_empty() && scene.shapes.len() <= 12);
                for (i, a) in scene.shapes.iter().enumerate() {
                    assert!(a.cx - a.r >= 0 && a.cy - a.r >= 0 && a.cx + a.r < size as i64 && a.cy + a.r < size as i64);
                    for b in &scene.shapes[i + 1..] {
                        let apart = (a.cx - b.cx).abs() > a.r + b.r + GAP || (a.cy - b.cy).abs() > a.r + b.r + GAP;
                        assert!(apart, "{a:?} {b:?}");
                    }
                }
            }
        }
    }

    #[test]
    fn bar_values_are_readable() {
        for size in [64u32, 256, 1024] {
            for seed in 0..100 {
                let chart = BarChart::random(&mut ChaCha8Rng::seed_from_u64(seed), size);
                let max = *chart.values.iter().max().unwrap();
                assert_eq!(chart.values.iter().filter(|&&v| v == max).count(), 1, "unique largest bar");
                assert!(chart.values.iter().all(|&v| v > 0 && v <= chart.y_max() && v % chart.unit() == 0));
                let l = chart.layout();
                assert!(l.top_y - 7 * l.scale / 2 >= 0, "top label inside");
                assert!((l.base_y - l.top_y) / chart.ticks >= 9 * l.scale, "tick labels apart");
                assert!(l.base_y + 11 * l.scale <= size as i64, "bar labels inside");
                let (x0, x1) = chart.bar_columns(chart.values.len() - 1);
                assert!(x0 < x1 && x1 <= l.right_x);
            }
        }
    }

    #[test]
    fn render_is_byte_stable() {
        let mut a = ChaCha8Rng::seed_from_u64(3);
        let mut b = ChaCha8Rng::seed_from_u64(3);
        assert_eq!(count_task(&mut a, 200).image.to_png(), count_task(&mut b, 200).image.to_png());
        assert_eq!(bar_task(&mut a, 200).image.to_png(), bar_task(&mut b, 200).image.to_png());
    }
}
