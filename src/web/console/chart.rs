//! The dashboard's chart, drawn on the server as SVG (no script): parts per hour over the last
//! days as stacked bars (delivered, failed, and sent without an outcome yet), a day grid with
//! dates, and a legend.
//!
//! What must always hold: every text put into the SVG is escaped here (the template inserts
//! the SVG unescaped); any input, including none, empty hours or huge counts, gives a valid
//! drawing without panicking.

use serde::Deserialize;

/// One hour of `GET /v1/stats`'s `hours`.
#[derive(Debug, Clone, Copy, Default, PartialEq, Eq, Deserialize)]
pub struct Hour {
    /// Start of the hour, Unix milliseconds.
    pub hour: i64,
    #[serde(default)]
    pub sent: u64,
    #[serde(default)]
    pub delivered: u64,
    #[serde(default)]
    pub failed: u64,
}

const WIDTH: f64 = 960.0;
const HEIGHT: f64 = 260.0;
const LEFT: f64 = 48.0;
const TOP: f64 = 16.0;
const BOTTOM: f64 = 40.0;

pub const DELIVERED: &str = "#2e9d5b";
pub const FAILED: &str = "#d9534f";
pub const SENT: &str = "#9bb7d4";

/// Text for SVG/XML.
fn esc(s: &str) -> String {
    s.replace('&', "&amp;")
        .replace('<', "&lt;")
        .replace('>', "&gt;")
        .replace('"', "&quot;")
}

/// The SVG of `hours` (oldest first); `labels` are the legend's words for sent, delivered
/// and failed, and `title` the accessible name.
pub fn svg(hours: &[Hour], labels: [&str; 3], title: &str) -> String {
    let plot_w = WIDTH - LEFT - 8.0;
    let plot_h = HEIGHT - TOP - BOTTOM;
    // The bar's height is the parts sent in that hour (delivered and failed are among them,
    // or settle later: the bar is never lower than its outcomes).
    let total = |h: &Hour| h.sent.max(h.delivered.saturating_add(h.failed));
    let max = hours.iter().map(total).max().unwrap_or(0).max(1);
    let n = hours.len().max(1) as f64;
    let bar_w = plot_w / n;
    let y = |v: u64| TOP + plot_h - (v as f64 / max as f64) * plot_h;
    let mut out = String::with_capacity(64 * hours.len() + 1024);
    out.push_str(&format!(
        "<svg id=\"chart\" xmlns=\"http://www.w3.org/2000/svg\" viewBox=\"0 0 {WIDTH} {HEIGHT}\" \
         role=\"img\" aria-label=\"{t}\"><title>{t}</title>",
        t = esc(title)
    ));
    // Axis: zero and the maximum.
    out.push_str(&format!(
        "<line x1=\"{LEFT}\" y1=\"{b}\" x2=\"{r}\" y2=\"{b}\" stroke=\"#888\" stroke-width=\"1\"/>\
         <text x=\"{lx}\" y=\"{b}\" font-size=\"11\" text-anchor=\"end\" fill=\"#555\">0</text>\
         <text x=\"{lx}\" y=\"{tt}\" font-size=\"11\" text-anchor=\"end\" fill=\"#555\">{max}</text>",
        b = TOP + plot_h,
        r = WIDTH - 8.0,
        lx = LEFT - 6.0,
        tt = TOP + 10.0,
    ));
    let tz = super::china();
    for (i, h) in hours.iter().enumerate() {
        let x = LEFT + i as f64 * bar_w;
        let local = jiff::Timestamp::from_millisecond(h.hour)
            .ok()
            .map(|t| t.to_zoned_datetime(tz.clone()));
        // A day line and its date at local midnight.
        if let Some(z) = &local {
            if z.hour() == 0 {
                out.push_str(&format!(
                    "<line x1=\"{x:.1}\" y1=\"{TOP}\" x2=\"{x:.1}\" y2=\"{b}\" stroke=\"#ddd\" stroke-width=\"1\"/>\
                     <text x=\"{tx:.1}\" y=\"{ty}\" font-size=\"11\" fill=\"#555\">{d}</text>",
                    b = TOP + plot_h,
                    tx = x + 2.0,
                    ty = HEIGHT - BOTTOM + 14.0,
                    d = esc(&z.strftime("%m-%d").to_string()),
                ));
            }
        }
        let w = (bar_w - 0.6).max(0.4);
        let delivered = h.delivered;
        let failed = h.failed;
        let pending = total(h).saturating_sub(delivered.saturating_add(failed));
        let mut base = 0u64;
        for (value, colour) in [(delivered, DELIVERED), (failed, FAILED), (pending, SENT)] {
            if value == 0 {
                continue;
            }
            let top = y(base.saturating_add(value));
            let height = y(base) - top;
            out.push_str(&format!(
                "<rect x=\"{x:.1}\" y=\"{top:.1}\" width=\"{w:.2}\" height=\"{height:.1}\" fill=\"{colour}\"/>"
            ));
            base = base.saturating_add(value);
        }
    }
    // Legend.
    let ly = HEIGHT - 10.0;
    for (i, (label, colour)) in [
        (labels[0], SENT),
        (labels[1], DELIVERED),
        (labels[2], FAILED),
    ]
    .iter()
    .enumerate()
    {
        let lx = LEFT + i as f64 * 140.0;
        out.push_str(&format!(
            "<rect x=\"{lx}\" y=\"{ry}\" width=\"10\" height=\"10\" fill=\"{colour}\"/>\
             <text x=\"{tx}\" y=\"{ly}\" font-size=\"12\" fill=\"#333\">{l}</text>",
            ry = ly - 9.0,
            tx = lx + 14.0,
            l = esc(label),
        ));
    }
    out.push_str("</svg>");
    out
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn draws_bars_and_escapes_labels() {
        let hours: Vec<Hour> = (0..168)
            .map(|i| Hour {
                hour: 1_764_432_000_000 + i * 3_600_000,
                sent: (i as u64) % 7,
                delivered: (i as u64) % 5,
                failed: (i as u64) % 2,
            })
            .collect();
        let s = svg(&hours, ["s<", "d", "f"], "t&");
        assert!(s.starts_with("<svg id=\"chart\""));
        assert!(s.ends_with("</svg>"));
        assert!(s.contains("s&lt;") && s.contains("t&amp;") && !s.contains("s<"));
        assert!(s.matches("<rect").count() > 100);
        assert!(s.contains(">11-30<") || s.contains(">12-01<"), "day labels");
        // Nothing, or absurd numbers, still draw.
        assert!(svg(&[], ["a", "b", "c"], "x").ends_with("</svg>"));
        let huge = [Hour {
            hour: i64::MAX,
            sent: u64::MAX,
            delivered: u64::MAX,
            failed: 1,
        }];
        assert!(svg(&huge, ["a", "b", "c"], "x").contains("<rect"));
    }
}
