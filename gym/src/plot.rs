//! `gym plot`: training curves from a `metrics.jsonl` to PNG or SVG, without
//! Python.
//!
//! ```text
//! gym plot runs/math/metrics.jsonl                         # reward and kl -> runs/math/metrics.png
//! gym plot runs/math/metrics.jsonl -o curves.svg --metrics reward,kl,entropy,tokens_per_second
//! ```
//!
//! One panel per metric, over `step` (the line number when a line has no
//! `step`). `reward` gets a ±`reward_std` band when the file has
//! `reward_std`. The format follows the output's extension (`.png` or
//! `.svg`); text is drawn with the bundled DejaVu Sans (`gym/assets/`), so
//! no system fonts are needed. Without `--metrics`, whichever of `reward`
//! and `kl` the file has are drawn. A line that is not a JSON object names
//! the file and line; an unknown metric lists the ones the file has.

use std::collections::{BTreeMap, BTreeSet};
use std::path::{Path, PathBuf};
use std::sync::Once;

use anyhow::{bail, Context};
use plotters::coord::Shift;
use plotters::prelude::*;

/// Arguments of `gym plot`.
#[derive(Debug, clap::Args)]
pub struct PlotArgs {
    /// A `metrics.jsonl` written by `gym train`.
    pub file: PathBuf,
    /// Output image, `.png` or `.svg` (default: the input with `.png`).
    #[arg(short, long)]
    pub out: Option<PathBuf>,
    /// Metrics to draw, comma-separated (default: reward,kl).
    #[arg(long, value_delimiter = ',')]
    pub metrics: Vec<String>,
}

/// The default metrics, drawn when present.
pub const DEFAULT_METRICS: &[&str] = &["reward", "kl"];

/// Numeric series of a metrics file: metric → (step, value) points.
#[derive(Debug, Clone, Default, PartialEq)]
pub struct Series {
    /// Points per metric, in file order.
    pub metrics: BTreeMap<String, Vec<(f64, f64)>>,
}

impl Series {
    /// Reads a JSONL metrics file.
    pub fn read(path: &Path) -> anyhow::Result<Self> {
        let text = std::fs::read_to_string(path).with_context(|| format!("cannot read {}", path.display()))?;
        let mut metrics: BTreeMap<String, Vec<(f64, f64)>> = BTreeMap::new();
        for (i, line) in text.lines().enumerate() {
            if line.trim().is_empty() {
                continue;
            }
            let v: serde_json::Value =
                serde_json::from_str(line).with_context(|| format!("{}:{}: not valid JSON", path.display(), i + 1))?;
            let Some(obj) = v.as_object() else {
                bail!("{}:{}: expected a JSON object of metrics", path.display(), i + 1);
            };
            let step = match obj.get("step") {
                None => (i + 1) as f64,
                Some(s) => {
                    s.as_f64().with_context(|| format!("{}:{}: field `step` is not a number", path.display(), i + 1))?
                }
            };
            for (k, val) in obj {
                if k == "step" {
                    continue;
                }
                // NaN and infinities are written as null: a gap, not an error.
                if let Some(x) = val.as_f64().filter(|x| x.is_finite()) {
                    metrics.entry(k.clone()).or_default().push((step, x));
                } else if val.is_null() {
                    metrics.entry(k.clone()).or_default();
                }
            }
        }
        if metrics.is_empty() {
            bail!("{}: no metrics (empty file?)", path.display());
        }
        Ok(Self { metrics })
    }

    /// The metric names, sorted.
    pub fn names(&self) -> BTreeSet<&str> {
        self.metrics.keys().map(String::as_str).collect()
    }

    /// The metrics to draw for a request (empty: the defaults present).
    pub fn select(&self, wanted: &[String], file: &Path) -> anyhow::Result<Vec<String>> {
        let names = self.names();
        if wanted.is_empty() {
            let found: Vec<String> =
                DEFAULT_METRICS.iter().filter(|m| names.contains(**m)).map(|m| m.to_string()).collect();
            if found.is_empty() {
                bail!(
                    "{} has none of the default metrics ({}); choose with --metrics from: {}",
                    file.display(),
                    DEFAULT_METRICS.join(", "),
                    names.into_iter().collect::<Vec<_>>().join(", ")
                );
            }
            return Ok(found);
        }
        for m in wanted {
            if !names.contains(m.as_str()) {
                bail!(
                    "unknown metric `{m}` in {} (available: {})",
                    file.display(),
                    names.into_iter().collect::<Vec<_>>().join(", ")
                );
            }
        }
        Ok(wanted.to_vec())
    }
}

static FONT: Once = Once::new();

/// Registers the bundled font as `sans-serif` (once).
fn register_font() {
    FONT.call_once(|| {
        // The font is a constant of the binary; a failure would be caught by every plot test.
        let _ =
            plotters::style::register_font("sans-serif", FontStyle::Normal, include_bytes!("../assets/DejaVuSans.ttf"));
    });
}

/// Width and height of a chart with `panels` panels.
fn size(panels: usize) -> (u32, u32) {
    (960, 60 + 280 * panels as u32)
}

fn range(values: impl Iterator<Item = f64>) -> (f64, f64) {
    let (lo, hi) = values.fold((f64::INFINITY, f64::NEG_INFINITY), |(l, h), v| (l.min(v), h.max(v)));
    if !lo.is_finite() {
        return (0.0, 1.0);
    }
    if hi - lo < 1e-12 {
        let pad = if lo.abs() > 1e-12 { lo.abs() * 0.1 } else { 1.0 };
        return (lo - pad, hi + pad);
    }
    let pad = (hi - lo) * 0.05;
    (lo - pad, hi + pad)
}

const COLORS: [RGBColor; 6] = [
    RGBColor(31, 119, 180),
    RGBColor(214, 39, 40),
    RGBColor(44, 160, 44),
    RGBColor(148, 103, 189),
    RGBColor(255, 127, 14),
    RGBColor(23, 190, 207),
];

fn draw<DB: DrawingBackend>(
    root: DrawingArea<DB, Shift>,
    series: &Series,
    metrics: &[String],
    title: &str,
) -> anyhow::Result<()>
where
    DB::ErrorType: 'static,
{
    let err = |e: DrawingAreaErrorKind<DB::ErrorType>| anyhow::anyhow!("drawing failed: {e:?}");
    root.fill(&WHITE).map_err(err)?;
    let root = root.titled(title, ("sans-serif", 22)).map_err(err)?;
    let panels = root.split_evenly((metrics.len(), 1));
    for (i, (area, name)) in panels.iter().zip(metrics).enumerate() {
        let color = COLORS[i % COLORS.len()];
        let points = &series.metrics[name];
        let band: Vec<(f64, f64, f64)> = if name == "reward" {
            let std: BTreeMap<u64, f64> = series
                .metrics
                .get("reward_std")
                .map(|s| s.iter().map(|(x, v)| (x.to_bits(), *v)).collect())
                .unwrap_or_default();
            points.iter().filter_map(|(x, y)| std.get(&x.to_bits()).map(|s| (*x, y - s, y + s))).collect()
        } else {
            Vec::new()
        };
        let (x0, x1) = range(points.iter().map(|p| p.0));
        let (y0, y1) = range(points.iter().map(|p| p.1).chain(band.iter().flat_map(|b| [b.1, b.2])));
        let caption = if band.is_empty() { name.clone() } else { format!("{name} (band: ± reward_std)") };
        let mut chart = ChartBuilder::on(area)
            .caption(caption, ("sans-serif", 18))
            .margin(12)
            .x_label_area_size(36)
            .y_label_area_size(70)
            .build_cartesian_2d(x0..x1, y0..y1)
            .map_err(err)?;
        chart
            .configure_mesh()
            .x_desc("step")
            .light_line_style(RGBColor(235, 235, 235))
            .label_style(("sans-serif", 13))
            .draw()
            .map_err(err)?;
        if band.len() > 1 {
            let mut poly: Vec<(f64, f64)> = band.iter().map(|b| (b.0, b.2)).collect();
            poly.extend(band.iter().rev().map(|b| (b.0, b.1)));
            chart.draw_series(std::iter::once(Polygon::new(poly, color.mix(0.2).filled()))).map_err(err)?;
        }
        chart.draw_series(LineSeries::new(points.iter().copied(), color.stroke_width(2))).map_err(err)?;
        if points.len() == 1 {
            chart.draw_series(points.iter().map(|p| Circle::new(*p, 3, color.filled()))).map_err(err)?;
        }
    }
    root.present().map_err(err)?;
    Ok(())
}

/// Draws `metrics` of `series` to `out` (`.png` or `.svg`).
pub fn render(series: &Series, metrics: &[String], title: &str, out: &Path) -> anyhow::Result<()> {
    register_font();
    let (w, h) = size(metrics.len());
    let ext = out.extension().and_then(|e| e.to_str()).map(str::to_ascii_lowercase);
    match ext.as_deref() {
        Some("svg") => {
            let mut svg = String::new();
            draw(SVGBackend::with_string(&mut svg, (w, h)).into_drawing_area(), series, metrics, title)?;
            std::fs::write(out, svg).with_context(|| format!("cannot write {}", out.display()))?;
        }
        Some("png") => {
            let mut buf = vec![0u8; (w * h * 3) as usize];
            draw(BitMapBackend::with_buffer(&mut buf, (w, h)).into_drawing_area(), series, metrics, title)?;
            let img = image::RgbImage::from_raw(w, h, buf).context("internal: image buffer size")?;
            img.save_with_format(out, image::ImageFormat::Png)
                .with_context(|| format!("cannot write {}", out.display()))?;
        }
        _ => bail!("{}: the output must end in .png or .svg", out.display()),
    }
    Ok(())
}

/// `gym plot`.
pub fn plot(a: PlotArgs) -> anyhow::Result<()> {
    let series = Series::read(&a.file)?;
    let metrics = series.select(&a.metrics, &a.file)?;
    let out = a.out.clone().unwrap_or_else(|| a.file.with_extension("png"));
    let title = a.file.display().to_string();
    render(&series, &metrics, &title, &out)?;
    eprintln!("wrote {} ({})", out.display(), metrics.join(", "));
    Ok(())
}

#[cfg(test)]
mod tests {
    use super::*;

    fn metrics_file(dir: &Path) -> PathBuf {
        let p = dir.join("metrics.jsonl");
        let mut text = String::new();
        for s in 1..=20 {
            let r = (s as f64 / 20.0).sqrt();
            text.push_str(&format!(
                "{{\"step\":{s},\"reward\":{r},\"reward_std\":0.1,\"kl\":{},\"entropy\":1.5,\"loss\":null}}\n",
                s as f64 * 0.001
            ));
        }
        std::fs::write(&p, text).unwrap();
        p
    }

    #[test]
    fn png_and_svg_are_written_and_decode() {
        let tmp = tempfile::tempdir().unwrap();
        let file = metrics_file(tmp.path());
        let png = tmp.path().join("out.png");
        plot(PlotArgs { file: file.clone(), out: Some(png.clone()), metrics: vec![] }).unwrap();
        let img = image::open(&png).unwrap().to_rgb8();
        assert_eq!(img.dimensions(), size(2));
        // The reward line (first colour) and some text/axes (dark pixels) were drawn.
        let line = img.pixels().filter(|p| p.0 == [31, 119, 180]).count();
        let dark = img.pixels().filter(|p| p.0.iter().all(|c| *c < 80)).count();
        assert!(line > 200, "{line} line pixels");
        assert!(dark > 500, "{dark} dark pixels");
        // The ± reward_std band is a lighter blend of the same colour.
        let band = img.pixels().filter(|p| p.0[2] > 200 && p.0[0] > 180 && p.0[0] < 240 && p.0[1] < 240).count();
        assert!(band > 1000, "{band} band pixels");

        let svg = tmp.path().join("out.svg");
        let metrics = vec!["reward".to_string(), "entropy".to_string(), "kl".to_string()];
        plot(PlotArgs { file, out: Some(svg.clone()), metrics }).unwrap();
        let text = std::fs::read_to_string(&svg).unwrap();
        assert!(text.starts_with("<svg") && text.trim_end().ends_with("</svg>"));
        for needle in ["reward", "entropy", "kl", "step", "<polyline"] {
            assert!(text.contains(needle), "svg lacks {needle}");
        }
    }

    #[test]
    fn a_bad_line_names_file_and_line() {
        let tmp = tempfile::tempdir().unwrap();
        let p = tmp.path().join("m.jsonl");
        std::fs::write(&p, "{\"step\":1,\"reward\":0.5}\n\n{\"step\":2,\"reward\":\n").unwrap();
        let e = format!("{:#}", Series::read(&p).unwrap_err());
        assert!(e.contains("m.jsonl:3"), "{e}");
        std::fs::write(&p, "{\"step\":1,\"reward\":0.5}\n[1, 2]\n").unwrap();
        let e = format!("{:#}", Series::read(&p).unwrap_err());
        assert!(e.contains("m.jsonl:2") && e.contains("object"), "{e}");
    }

    #[test]
    fn unknown_metrics_list_the_available_ones() {
        let tmp = tempfile::tempdir().unwrap();
        let file = metrics_file(tmp.path());
        let out = tmp.path().join("x.png");
        let e = plot(PlotArgs { file: file.clone(), out: Some(out.clone()), metrics: vec!["rewrd".into()] })
            .unwrap_err()
            .to_string();
        assert!(e.contains("`rewrd`") && e.contains("entropy, kl, loss, reward, reward_std"), "{e}");
        assert!(!out.exists());
        let e = plot(PlotArgs { file, out: Some(tmp.path().join("x.jpg")), metrics: vec![] }).unwrap_err().to_string();
        assert!(e.contains(".png or .svg"), "{e}");
    }
}
