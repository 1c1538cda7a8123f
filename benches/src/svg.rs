//! The chart, as a hand-written SVG document: one row of small panels per measure, one panel
//! per record size, one line per contender.
//!
//! - End-to-end throughput (records/s, log scale) by producer count.
//! - Producer latency CDF at one producer count: x is the latency (log scale), y the
//!   percentile on a "nines" scale (50%, 90%, 99%, 99.9%, ...), which shows the tail.
//! - CPU per record (ns, log scale, all processes) by producer count.

use crate::latency;
use crate::machine::Machine;
use crate::plan::Summary;
use crate::record::SizeSpec;
use crate::roles::Contender;
use std::fmt::Write;

const PANEL_W: f64 = 360.0;
const PANEL_H: f64 = 230.0;
const GAP_X: f64 = 70.0;
const LEFT: f64 = 70.0;
const COLS: usize = 3;

fn color(c: Contender) -> &'static str {
    match c {
        Contender::Ringlog => "#d62728",
        Contender::Append => "#1f77b4",
        Contender::Flock => "#ff7f0e",
        Contender::Socket => "#2ca02c",
        Contender::Tracing => "#9467bd",
    }
}

fn esc(s: &str) -> String {
    s.replace('&', "&amp;")
        .replace('<', "&lt;")
        .replace('>', "&gt;")
        .replace('"', "&quot;")
}

fn si_tick(v: f64) -> String {
    match v {
        v if v >= 1e9 => format!("{}G", v / 1e9),
        v if v >= 1e6 => format!("{}M", v / 1e6),
        v if v >= 1e3 => format!("{}k", v / 1e3),
        v => format!("{v}"),
    }
}

/// A plotting area in document coordinates, with log-scale y (and x when asked).
struct Panel {
    x: f64,
    y: f64,
    w: f64,
    h: f64,
}

impl Panel {
    fn frame(&self, out: &mut String, title: &str) {
        let _ = writeln!(
            out,
            r##"<rect x="{:.1}" y="{:.1}" width="{:.1}" height="{:.1}" fill="#fff" stroke="#999"/>"##,
            self.x, self.y, self.w, self.h
        );
        let _ = writeln!(
            out,
            r#"<text x="{:.1}" y="{:.1}" font-size="13" font-weight="bold" text-anchor="middle">{}</text>"#,
            self.x + self.w / 2.0,
            self.y - 6.0,
            esc(title)
        );
    }

    /// Horizontal grid lines and labels at each decade of `[lo, hi]` (log10 values).
    fn y_decades(&self, out: &mut String, lo: f64, hi: f64, label: impl Fn(f64) -> String) {
        let mut d = lo.floor();
        while d <= hi + 1e-9 {
            if d >= lo - 1e-9 {
                let y = self.y + self.h - (d - lo) / (hi - lo) * self.h;
                let _ = writeln!(
                    out,
                    r##"<line x1="{:.1}" y1="{y:.1}" x2="{:.1}" y2="{y:.1}" stroke="#e4e4e4"/><text x="{:.1}" y="{:.1}" font-size="10" text-anchor="end">{}</text>"##,
                    self.x,
                    self.x + self.w,
                    self.x - 4.0,
                    y + 3.5,
                    esc(&label(10f64.powf(d)))
                );
            }
            d += 1.0;
        }
    }

    fn polyline(&self, out: &mut String, pts: &[(f64, f64)], c: &str, markers: bool) {
        if pts.is_empty() {
            return;
        }
        let p: Vec<String> = pts.iter().map(|(x, y)| format!("{x:.1},{y:.1}")).collect();
        let _ = writeln!(
            out,
            r#"<polyline points="{}" fill="none" stroke="{c}" stroke-width="2"/>"#,
            p.join(" ")
        );
        if markers {
            for (x, y) in pts {
                let _ = writeln!(out, r#"<circle cx="{x:.1}" cy="{y:.1}" r="3" fill="{c}"/>"#);
            }
        }
    }
}

fn bounds(values: impl Iterator<Item = f64>) -> Option<(f64, f64)> {
    let (mut lo, mut hi) = (f64::INFINITY, f64::NEG_INFINITY);
    for v in values.filter(|v| v.is_finite() && *v > 0.0) {
        lo = lo.min(v.log10());
        hi = hi.max(v.log10());
    }
    if !lo.is_finite() {
        return None;
    }
    let (lo, hi) = (lo.floor(), hi.ceil());
    Some((lo, if hi <= lo { lo + 1.0 } else { hi }))
}

/// One row of panels: y = `value(summary)` on a log scale, x = producer count.
fn by_producers(
    out: &mut String,
    top: f64,
    summaries: &[Summary],
    sizes: &[SizeSpec],
    ns: &[u32],
    value: impl Fn(&Summary) -> f64,
    y_label: impl Fn(f64) -> String + Copy,
) -> f64 {
    let mut bottom = top;
    for (i, &size) in sizes.iter().enumerate() {
        let panel = Panel {
            x: LEFT + (i % COLS) as f64 * (PANEL_W + GAP_X),
            y: top + (i / COLS) as f64 * (PANEL_H + 60.0),
            w: PANEL_W,
            h: PANEL_H,
        };
        bottom = bottom.max(panel.y + panel.h + 40.0);
        let here: Vec<&Summary> = summaries.iter().filter(|s| s.config.size == size).collect();
        panel.frame(out, &format!("{} records", size.label()));
        let Some((lo, hi)) = bounds(here.iter().map(|s| value(s))) else {
            continue;
        };
        panel.y_decades(out, lo, hi, y_label);
        let step = panel.w / ns.len().max(1) as f64;
        let xs = |n: u32| {
            let k = ns.iter().position(|&m| m == n).unwrap_or(0);
            panel.x + step * (k as f64 + 0.5)
        };
        for &n in ns {
            let _ = writeln!(
                out,
                r#"<text x="{:.1}" y="{:.1}" font-size="10" text-anchor="middle">{n}</text>"#,
                xs(n),
                panel.y + panel.h + 14.0
            );
        }
        let _ = writeln!(
            out,
            r##"<text x="{:.1}" y="{:.1}" font-size="10" text-anchor="middle" fill="#555">producers</text>"##,
            panel.x + panel.w / 2.0,
            panel.y + panel.h + 27.0
        );
        for c in Contender::ALL {
            let pts: Vec<(f64, f64)> = ns
                .iter()
                .filter_map(|&n| {
                    here.iter()
                        .find(|s| s.contender == c && s.config.producers == n)
                })
                .filter(|s| value(s) > 0.0)
                .map(|s| {
                    let y = panel.y + panel.h - (value(s).log10() - lo) / (hi - lo) * panel.h;
                    (xs(s.config.producers), y)
                })
                .collect();
            panel.polyline(out, &pts, color(c), true);
        }
    }
    bottom
}

/// The nines of percentile `q`: 0 for 0%, 1 for 90%, 2 for 99%, ...
fn nines(q: f64) -> f64 {
    -(1.0 - q.min(0.999_999)).log10()
}

/// The chart for `summaries`; `cdf_producers` picks the producer count of the latency panels.
pub fn chart(
    summaries: &[Summary],
    machine: &Machine,
    cdf_producers: u32,
    subtitle: &str,
) -> String {
    let mut sizes: Vec<SizeSpec> = summaries.iter().map(|s| s.config.size).collect();
    sizes.sort();
    sizes.dedup();
    let mut ns: Vec<u32> = summaries.iter().map(|s| s.config.producers).collect();
    ns.sort_unstable();
    ns.dedup();
    let mut contenders: Vec<Contender> = summaries.iter().map(|s| s.contender).collect();
    contenders.sort();
    contenders.dedup();
    let width = LEFT + COLS as f64 * (PANEL_W + GAP_X);
    let mut body = String::new();

    // Legend.
    let mut y = 64.0;
    for (i, &c) in contenders.iter().enumerate() {
        let x = LEFT + (i % 2) as f64 * 560.0;
        let yy = y + (i / 2) as f64 * 17.0;
        let _ = writeln!(
            body,
            r#"<rect x="{x:.1}" y="{:.1}" width="18" height="4" fill="{}"/><text x="{:.1}" y="{yy:.1}" font-size="12"><tspan font-weight="bold">{}</tspan>: {}</text>"#,
            yy - 5.0,
            color(c),
            x + 24.0,
            c.name(),
            esc(c.description())
        );
    }
    y += contenders.len().div_ceil(2) as f64 * 17.0 + 26.0;

    let _ = writeln!(
        body,
        r#"<text x="{LEFT}" y="{y:.1}" font-size="15" font-weight="bold">End-to-end throughput: records/s until every record is in the file (log scale; higher is better)</text>"#
    );
    y = by_producers(
        &mut body,
        y + 28.0,
        summaries,
        &sizes,
        &ns,
        Summary::records_per_sec,
        si_tick,
    );

    let _ = writeln!(
        body,
        r#"<text x="{LEFT}" y="{y:.1}" font-size="15" font-weight="bold">Producer latency per write call, {cdf_producers} producers: CDF (x: latency, log scale; y: percentile, nines scale)</text>"#
    );
    let top = y + 28.0;
    let mut bottom = top;
    let fmt_lat = |ns: f64| latency::fmt_ns(ns.round() as u64);
    for (i, &size) in sizes.iter().enumerate() {
        let panel = Panel {
            x: LEFT + (i % COLS) as f64 * (PANEL_W + GAP_X),
            y: top + (i / COLS) as f64 * (PANEL_H + 60.0),
            w: PANEL_W,
            h: PANEL_H,
        };
        bottom = bottom.max(panel.y + panel.h + 40.0);
        panel.frame(&mut body, &format!("{} records", size.label()));
        let here: Vec<&Summary> = summaries
            .iter()
            .filter(|s| s.config.size == size && s.config.producers == cdf_producers)
            .collect();
        let Some((lo, hi)) = bounds(
            here.iter()
                .flat_map(|s| [s.hist.min().max(1) as f64, s.hist.max().max(1) as f64]),
        ) else {
            continue;
        };
        // x: decades of latency.
        let mut d = lo;
        while d <= hi + 1e-9 {
            let x = panel.x + (d - lo) / (hi - lo) * panel.w;
            let _ = writeln!(
                body,
                r##"<line x1="{x:.1}" y1="{:.1}" x2="{x:.1}" y2="{:.1}" stroke="#e4e4e4"/><text x="{x:.1}" y="{:.1}" font-size="10" text-anchor="middle">{}</text>"##,
                panel.y,
                panel.y + panel.h,
                panel.y + panel.h + 14.0,
                esc(&fmt_lat(10f64.powf(d)))
            );
            d += 1.0;
        }
        // y: 0%, 90%, 99%, ... 99.999%, and max on top.
        let top_nines = 6.0;
        let ypos = |q: f64| panel.y + panel.h - nines(q) / top_nines * panel.h;
        for (q, label) in [
            (0.0, "0%"),
            (0.9, "90%"),
            (0.99, "99%"),
            (0.999, "99.9%"),
            (0.9999, "99.99%"),
            (0.99999, "99.999%"),
            (1.0, "max"),
        ] {
            let yy = ypos(q);
            let _ = writeln!(
                body,
                r##"<line x1="{:.1}" y1="{yy:.1}" x2="{:.1}" y2="{yy:.1}" stroke="#e4e4e4"/><text x="{:.1}" y="{:.1}" font-size="10" text-anchor="end">{label}</text>"##,
                panel.x,
                panel.x + panel.w,
                panel.x - 4.0,
                yy + 3.5
            );
        }
        let p50 = ypos(0.5);
        let _ = writeln!(
            body,
            r##"<line x1="{:.1}" y1="{p50:.1}" x2="{:.1}" y2="{p50:.1}" stroke="#bbb" stroke-dasharray="3,3"/><text x="{:.1}" y="{:.1}" font-size="9" fill="#777">p50</text>"##,
            panel.x,
            panel.x + panel.w,
            panel.x + 3.0,
            p50 - 2.0
        );
        for s in &here {
            let pts: Vec<(f64, f64)> = latency::cdf(&s.hist)
                .into_iter()
                .map(|(q, v)| {
                    let x = panel.x + ((v.max(1) as f64).log10() - lo) / (hi - lo) * panel.w;
                    (x, ypos(q))
                })
                .collect();
            panel.polyline(&mut body, &pts, color(s.contender), false);
        }
    }
    y = bottom + 10.0;

    let _ = writeln!(
        body,
        r#"<text x="{LEFT}" y="{y:.1}" font-size="15" font-weight="bold">CPU time per record, all processes (producers + drain/collector), ns (log scale; lower is better)</text>"#
    );
    y = by_producers(
        &mut body,
        y + 28.0,
        summaries,
        &sizes,
        &ns,
        Summary::cpu_per_record_ns,
        si_tick,
    );

    let height = y + 10.0;
    let mut out = String::new();
    let _ = writeln!(
        out,
        r#"<svg xmlns="http://www.w3.org/2000/svg" width="{width:.0}" height="{height:.0}" viewBox="0 0 {width:.0} {height:.0}" font-family="Helvetica, Arial, sans-serif">"#
    );
    let _ = writeln!(
        out,
        r##"<rect width="100%" height="100%" fill="#fafafa"/><text x="{LEFT}" y="24" font-size="18" font-weight="bold">ringlog-bench: N producer processes writing one log file</text><text x="{LEFT}" y="44" font-size="11" fill="#444">{}</text>"##,
        esc(&format!("{subtitle} | {}", machine.line()))
    );
    out.push_str(&body);
    out.push_str("</svg>\n");
    out
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn nines_grow_by_one_per_nine() {
        assert!((nines(0.9) - 1.0).abs() < 1e-9);
        assert!((nines(0.999) - 3.0).abs() < 1e-9);
        assert_eq!(nines(0.0), 0.0);
    }

    #[test]
    fn text_is_escaped() {
        assert_eq!(esc("a<b & c>"), "a&lt;b &amp; c&gt;");
    }
}
