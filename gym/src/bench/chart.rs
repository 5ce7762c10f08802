//! The report chart: grouped bars (one group per env, one bar per policy)
//! of success rate and mean reward with 95% interval whiskers, as a
//! self-contained SVG (no fonts or image libraries needed).

use std::fmt::Write;

use super::report::{Report, Row};

const COLORS: [&str; 8] = ["#1f77b4", "#ff7f0e", "#2ca02c", "#d62728", "#9467bd", "#8c564b", "#e377c2", "#7f7f7f"];

fn esc(s: &str) -> String {
    s.replace('&', "&amp;").replace('<', "&lt;").replace('>', "&gt;").replace('"', "&quot;")
}

/// The chart as SVG text.
pub fn svg(r: &Report) -> String {
    let mut envs: Vec<&str> = Vec::new();
    let mut policies: Vec<&str> = Vec::new();
    for row in &r.rows {
        if !envs.contains(&row.env.as_str()) {
            envs.push(&row.env);
        }
        if !policies.contains(&row.policy.as_str()) {
            policies.push(&row.policy);
        }
    }
    let find = |e: &str, p: &str| r.rows.iter().find(|x| x.env == e && x.policy == p && x.skipped.is_none());
    let bar_w = 18.0;
    let group_w = bar_w * policies.len().max(1) as f64 + 30.0;
    let left = 70.0;
    let plot_w = group_w * envs.len().max(1) as f64;
    let width = left + plot_w + 160.0;
    let panel_h = 200.0;
    let height = 60.0 + 2.0 * (panel_h + 70.0);
    let mut s = String::new();
    let _ = write!(
        s,
        r#"<svg xmlns="http://www.w3.org/2000/svg" width="{width}" height="{height}" viewBox="0 0 {width} {height}" font-family="sans-serif" font-size="11">"#
    );
    let _ = write!(s, r#"<rect width="100%" height="100%" fill="white"/>"#);
    let _ = write!(
        s,
        r#"<text x="{left}" y="22" font-size="14" font-weight="bold">gym bench: suite {} v{}, policy {}</text>"#,
        esc(&r.suite),
        r.suite_version,
        esc(&r.policy)
    );
    // Panel 1: success rate on a shared 0..1 axis. Panel 2: mean reward,
    // each env scaled to its own largest |value| (labels give the values).
    for (panel, title) in [(0usize, "success rate (95% Wilson CI)"), (1, "mean reward (95% t CI; per-env scale)")] {
        let top = 50.0 + panel as f64 * (panel_h + 70.0);
        let base = top + panel_h;
        let _ = write!(s, r#"<text x="{left}" y="{}" font-size="12">{title}</text>"#, top - 8.0);
        let _ = write!(
            s,
            r##"<line x1="{left}" y1="{base}" x2="{}" y2="{base}" stroke="#333"/><line x1="{left}" y1="{top}" x2="{left}" y2="{base}" stroke="#333"/>"##,
            left + plot_w
        );
        if panel == 0 {
            for k in 0..=4 {
                let v = k as f64 / 4.0;
                let y = base - v * panel_h;
                let _ = write!(
                    s,
                    r##"<line x1="{}" y1="{y}" x2="{left}" y2="{y}" stroke="#333"/><text x="{}" y="{}" text-anchor="end">{:.0}%</text>"##,
                    left - 4.0,
                    left - 6.0,
                    y + 4.0,
                    v * 100.0
                );
            }
        }
        for (ei, env) in envs.iter().enumerate() {
            let gx = left + ei as f64 * group_w + 15.0;
            let rows: Vec<(usize, &Row)> =
                policies.iter().enumerate().filter_map(|(pi, p)| find(env, p).map(|row| (pi, row))).collect();
            let scale = if panel == 0 {
                1.0
            } else {
                rows.iter()
                    .flat_map(|(_, r)| [r.mean_reward.abs(), r.reward_ci[0].abs(), r.reward_ci[1].abs()])
                    .fold(0.0f64, f64::max)
                    .max(1e-12)
            };
            // Negative rewards grow downwards from the axis; keep bars inside the panel.
            let y_of = |v: f64| base - (v / scale).clamp(-0.2, 1.0) * panel_h * if panel == 0 { 1.0 } else { 0.8 };
            for (pi, row) in rows {
                let (v, lo, hi) = if panel == 0 {
                    (row.success_rate, row.success_ci[0], row.success_ci[1])
                } else {
                    (row.mean_reward, row.reward_ci[0], row.reward_ci[1])
                };
                let x = gx + pi as f64 * bar_w;
                let (y0, y1) = (y_of(v).min(base), y_of(v).max(base));
                let color = COLORS[pi % COLORS.len()];
                let _ = write!(
                    s,
                    r#"<rect x="{x:.1}" y="{y0:.1}" width="{:.1}" height="{:.1}" fill="{color}"><title>{} on {}: {v:.4} [{lo:.4}, {hi:.4}]</title></rect>"#,
                    bar_w - 3.0,
                    (y1 - y0).max(0.5),
                    esc(&row.policy),
                    esc(env)
                );
                let cx = x + (bar_w - 3.0) / 2.0;
                let _ = write!(
                    s,
                    r##"<line x1="{cx:.1}" y1="{:.1}" x2="{cx:.1}" y2="{:.1}" stroke="#000"/>"##,
                    y_of(lo),
                    y_of(hi)
                );
                if panel == 1 {
                    let _ = write!(
                        s,
                        r#"<text x="{cx:.1}" y="{:.1}" font-size="9" text-anchor="middle">{}</text>"#,
                        y_of(hi).min(y_of(v)) - 3.0,
                        short(v)
                    );
                }
            }
            let _ = write!(
                s,
                r#"<text x="{:.1}" y="{:.1}" text-anchor="middle">{}</text>"#,
                gx + bar_w * policies.len() as f64 / 2.0,
                base + 16.0,
                esc(env)
            );
        }
    }
    for (pi, p) in policies.iter().enumerate() {
        let y = 60.0 + pi as f64 * 18.0;
        let x = left + plot_w + 20.0;
        let _ = write!(
            s,
            r#"<rect x="{x}" y="{}" width="12" height="12" fill="{}"/><text x="{}" y="{}">{}</text>"#,
            y - 10.0,
            COLORS[pi % COLORS.len()],
            x + 18.0,
            y,
            esc(p)
        );
    }
    s.push_str("</svg>\n");
    s
}

fn short(v: f64) -> String {
    if v.abs() >= 1000.0 {
        format!("{:.0}", v)
    } else if v.abs() >= 10.0 {
        format!("{:.1}", v)
    } else {
        format!("{:.2}", v)
    }
}
