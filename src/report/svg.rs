//! Line charts as inline SVG, drawn here so the HTML report needs no
//! script from anywhere and renders the same in every browser.

use std::fmt::Write as _;

const WIDTH: f64 = 760.0;
const HEIGHT: f64 = 300.0;
const LEFT: f64 = 70.0;
const RIGHT: f64 = 44.0;
/// Room above the plot per row of legend.
const LEGEND_ROW: f64 = 16.0;
const BOTTOM: f64 = 46.0;

/// How an axis maps values to positions.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Scale {
    /// Evenly spaced.
    Linear,
    /// Percentiles on HdrHistogram's axis: position `log10(1 / (1 - q))`,
    /// so 90%, 99%, 99.9% are evenly spaced. Values are quantiles in `0..1`.
    Percentile,
}

/// One line.
#[derive(Debug, Clone)]
pub struct Series {
    /// Legend text.
    pub label: String,
    /// Points `(x, y)`; x in the x scale's unit.
    pub points: Vec<(f64, f64)>,
    /// Colour slot, so the same figure has the same colour in every chart.
    pub colour: usize,
    /// Drawn dashed: the baseline's lines.
    pub dashed: bool,
}

/// A shaded stretch of the x axis (warmup, drain).
#[derive(Debug, Clone)]
pub struct Band {
    /// Where it starts, x units.
    pub from: f64,
    /// Where it ends.
    pub to: f64,
    /// Its label.
    pub label: String,
}

/// A chart.
#[derive(Debug, Clone)]
pub struct Chart {
    /// Element id, for links and tests.
    pub id: String,
    /// The x axis's label.
    pub x_label: String,
    /// The y axis's label.
    pub y_label: String,
    /// The x scale.
    pub x_scale: Scale,
    /// Formats a y value for the axis.
    pub y_format: fn(f64) -> String,
    /// A logarithmic y axis (one gridline per decade), for latencies that span
    /// microseconds to seconds; values at or below zero sit on the bottom line.
    pub y_log: bool,
    /// The lines.
    pub series: Vec<Series>,
    /// Shaded stretches.
    pub bands: Vec<Band>,
}

const COLOURS: [&str; 6] = ["#1f77b4", "#d62728", "#2ca02c", "#9467bd", "#ff7f0e", "#17becf"];

/// The position of the percentile `q` on the [`Scale::Percentile`] axis.
pub fn percentile_position(q: f64) -> f64 {
    (1.0 / (1.0 - q.clamp(0.0, 0.999_999))).log10()
}

fn escape(text: &str) -> String {
    text.replace('&', "&amp;").replace('<', "&lt;").replace('>', "&gt;").replace('"', "&quot;")
}

/// A step of 1, 2 or 5 times a power of ten giving about `count` ticks over `span`.
fn nice_step(span: f64, count: f64) -> f64 {
    if !(span.is_finite() && span > 0.0) {
        return 1.0;
    }
    let raw = span / count;
    let magnitude = 10f64.powf(raw.log10().floor());
    let step = [1.0, 2.0, 5.0, 10.0].into_iter().map(|m| m * magnitude).find(|s| *s >= raw).unwrap_or(10.0 * magnitude);
    step.max(f64::MIN_POSITIVE)
}

impl Chart {
    fn x_of(&self, x: f64) -> f64 {
        match self.x_scale {
            Scale::Linear => x,
            Scale::Percentile => percentile_position(x),
        }
    }

    /// The chart as an `<svg>` element.
    pub fn render(&self) -> String {
        let mut out = String::new();
        // The legend sits above the plot, three entries a row, so it never hides a line.
        let top = 14.0 + self.series.len().div_ceil(3) as f64 * LEGEND_ROW;
        let points = || self.series.iter().flat_map(|s| s.points.iter().copied());
        let xs: Vec<f64> = points().map(|(x, _)| self.x_of(x)).filter(|x| x.is_finite()).collect();
        let ys: Vec<f64> = points().map(|(_, y)| y).filter(|y| y.is_finite()).collect();
        let (x_min, mut x_max) = match self.x_scale {
            Scale::Linear => {
                // Whole units: per-second points sit at midpoints, their seconds end on the next unit.
                (
                    xs.iter().copied().fold(f64::INFINITY, f64::min).min(0.0),
                    xs.iter().copied().fold(0.0, f64::max).ceil(),
                )
            }
            Scale::Percentile => (0.0, (xs.iter().copied().fold(1.0, f64::max) - 1e-6).ceil()),
        };
        if x_max <= x_min {
            x_max = x_min + 1.0;
        }
        // Headroom above the highest point, so a flat line at the top stays visible.
        let highest = ys.iter().copied().fold(0.0, f64::max) * 1.05;
        let y_step = nice_step(highest, 5.0);
        let y_max = (highest / y_step).ceil().max(1.0) * y_step;
        // Log axis: whole decades around the positive values.
        let positive = || ys.iter().copied().filter(|y| *y > 0.0);
        let decade_low = positive().fold(f64::INFINITY, f64::min).log10().floor();
        let decade_high = positive().fold(0.0, f64::max).log10().ceil();
        let (decade_low, decade_high) = if decade_low.is_finite() && decade_high.is_finite() {
            (decade_low, decade_high.max(decade_low + 1.0))
        } else {
            (0.0, 1.0)
        };
        let plot_w = WIDTH - LEFT - RIGHT;
        let plot_h = HEIGHT - top - BOTTOM;
        let px = |x: f64| LEFT + (self.x_of(x) - x_min) / (x_max - x_min) * plot_w;
        let px_raw = |x: f64| LEFT + (x - x_min) / (x_max - x_min) * plot_w;
        let py = |y: f64| {
            let share = if self.y_log {
                let decades = if y > 0.0 { y.log10().max(decade_low) } else { decade_low };
                (decades - decade_low) / (decade_high - decade_low)
            } else {
                y / y_max
            };
            top + plot_h - share * plot_h
        };

        let _ = writeln!(
            out,
            "<svg class=\"chart\" id=\"{}\" viewBox=\"0 0 {WIDTH} {HEIGHT}\" width=\"{WIDTH}\" height=\"{HEIGHT}\" role=\"img\" xmlns=\"http://www.w3.org/2000/svg\">",
            escape(&self.id)
        );
        for band in &self.bands {
            let (a, b) = (px(band.from).max(LEFT), px(band.to).min(LEFT + plot_w));
            if b > a {
                let _ = writeln!(
                    out,
                    "<rect class=\"band\" x=\"{a:.1}\" y=\"{top}\" width=\"{:.1}\" height=\"{plot_h}\" fill=\"#f0f0f0\"><title>{}</title></rect>\
                     <text x=\"{:.1}\" y=\"{:.1}\" font-size=\"10\" fill=\"#888\" text-anchor=\"middle\">{}</text>",
                    b - a,
                    escape(&band.label),
                    (a + b) / 2.0,
                    top + 12.0,
                    escape(&band.label)
                );
            }
        }
        // Grid and y ticks.
        let ticks: Vec<f64> = if self.y_log {
            (decade_low as i32..=decade_high as i32).map(|d| 10f64.powi(d)).collect()
        } else {
            (0..=(y_max / y_step).round() as i64).map(|k| k as f64 * y_step).collect()
        };
        for y in ticks {
            let at = py(y);
            let _ = writeln!(
                out,
                "<line x1=\"{LEFT}\" x2=\"{:.1}\" y1=\"{at:.1}\" y2=\"{at:.1}\" stroke=\"#ddd\"/><text x=\"{:.1}\" y=\"{:.1}\" font-size=\"11\" text-anchor=\"end\">{}</text>",
                LEFT + plot_w,
                LEFT - 6.0,
                at + 4.0,
                escape(&(self.y_format)(y))
            );
        }
        // X ticks.
        match self.x_scale {
            Scale::Linear => {
                let step = nice_step(x_max - x_min, 8.0);
                // Ticks counted in steps, not summed, so no float drift reaches a label.
                let first = (x_min / step).ceil() as i64;
                let last = (x_max / step + 1e-6).floor() as i64;
                for k in first..=last {
                    let x = k as f64 * step;
                    let at = px_raw(x);
                    let label = format!("{:.2}", x).trim_end_matches('0').trim_end_matches('.').to_owned();
                    let _ = writeln!(
                        out,
                        "<line x1=\"{at:.1}\" x2=\"{at:.1}\" y1=\"{:.1}\" y2=\"{:.1}\" stroke=\"#999\"/><text x=\"{at:.1}\" y=\"{:.1}\" font-size=\"11\" text-anchor=\"middle\">{label}</text>",
                        top + plot_h,
                        top + plot_h + 4.0,
                        top + plot_h + 16.0
                    );
                }
            }
            Scale::Percentile => {
                let labels = ["0%", "90%", "99%", "99.9%", "99.99%", "99.999%", "99.9999%"];
                for (position, label) in labels.iter().enumerate().take(x_max as usize + 1) {
                    let at = px_raw(position as f64);
                    let _ = writeln!(
                        out,
                        "<line x1=\"{at:.1}\" x2=\"{at:.1}\" y1=\"{top}\" y2=\"{:.1}\" stroke=\"#eee\"/><text x=\"{at:.1}\" y=\"{:.1}\" font-size=\"11\" text-anchor=\"middle\">{label}</text>",
                        top + plot_h,
                        top + plot_h + 16.0
                    );
                }
            }
        }
        let _ = writeln!(
            out,
            "<rect x=\"{LEFT}\" y=\"{top}\" width=\"{plot_w}\" height=\"{plot_h}\" fill=\"none\" stroke=\"#999\"/>\
             <text x=\"{:.1}\" y=\"{:.1}\" font-size=\"12\" text-anchor=\"middle\">{}</text>\
             <text x=\"14\" y=\"{:.1}\" font-size=\"12\" text-anchor=\"middle\" transform=\"rotate(-90 14 {:.1})\">{}</text>",
            LEFT + plot_w / 2.0,
            HEIGHT - 8.0,
            escape(&self.x_label),
            top + plot_h / 2.0,
            top + plot_h / 2.0,
            escape(&self.y_label)
        );
        // Lines and legend.
        for (index, series) in self.series.iter().enumerate() {
            let colour = COLOURS[series.colour % COLOURS.len()];
            let mut d = String::new();
            for (x, y) in series.points.iter().filter(|(x, y)| self.x_of(*x).is_finite() && y.is_finite()) {
                let _ = write!(d, "{}{:.1},{:.1}", if d.is_empty() { "M" } else { " L" }, px(*x), py(*y));
            }
            let dash = if series.dashed { " stroke-dasharray=\"6 4\"" } else { "" };
            let _ = writeln!(
                out,
                "<path class=\"series\" data-label=\"{}\" d=\"{d}\" fill=\"none\" stroke=\"{colour}\" stroke-width=\"1.8\"{dash}><title>{}</title></path>",
                escape(&series.label),
                escape(&series.label)
            );
            let lx = LEFT + 10.0 + (index % 3) as f64 * 220.0;
            let ly = 12.0 + (index / 3) as f64 * LEGEND_ROW;
            let _ = writeln!(
                out,
                "<line x1=\"{lx:.1}\" x2=\"{:.1}\" y1=\"{ly:.1}\" y2=\"{ly:.1}\" stroke=\"{colour}\" stroke-width=\"2\"{dash}/><text class=\"legend\" x=\"{:.1}\" y=\"{:.1}\" font-size=\"11\">{}</text>",
                lx + 22.0,
                lx + 27.0,
                ly + 4.0,
                escape(&series.label)
            );
        }
        out.push_str("</svg>\n");
        out
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn percentile_axis_spaces_nines_evenly() {
        assert!((percentile_position(0.9) - 1.0).abs() < 1e-9);
        assert!((percentile_position(0.99) - 2.0).abs() < 1e-9);
        assert!((percentile_position(0.999) - 3.0).abs() < 1e-9);
        assert!(percentile_position(1.0).is_finite(), "100% is clamped onto the axis");
    }

    #[test]
    fn a_log_axis_puts_one_gridline_on_each_decade() {
        let chart = Chart {
            id: "c".into(),
            x_label: "s".into(),
            y_label: "ms".into(),
            x_scale: Scale::Linear,
            y_format: |v| format!("{v}"),
            y_log: true,
            series: vec![Series {
                label: "a".into(),
                points: vec![(0.0, 0.05), (1.0, 30.0)],
                colour: 0,
                dashed: false,
            }],
            bands: vec![],
        };
        let svg = chart.render();
        let labels: Vec<&str> =
            svg.split("text-anchor=\"end\">").skip(1).filter_map(|rest| rest.split('<').next()).collect();
        assert_eq!(labels, vec!["0.01", "0.1", "1", "10", "100"]);
    }

    #[test]
    fn steps_are_round() {
        assert_eq!(nice_step(1000.0, 5.0), 200.0);
        assert_eq!(nice_step(7.0, 8.0), 1.0);
        assert_eq!(nice_step(0.0, 5.0), 1.0);
    }

    #[test]
    fn every_series_becomes_a_path_with_its_points() {
        let chart = Chart {
            id: "c".into(),
            x_label: "s".into(),
            y_label: "msgs/s".into(),
            x_scale: Scale::Linear,
            y_format: |v| format!("{v}"),
            y_log: false,
            series: vec![Series {
                label: "a<b".into(),
                points: vec![(0.0, 1.0), (1.0, 2.0), (2.0, 3.0)],
                colour: 0,
                dashed: true,
            }],
            bands: vec![],
        };
        let svg = chart.render();
        assert_eq!(svg.matches("<path class=\"series\"").count(), 1);
        assert_eq!(svg.matches(" L").count(), 2, "{svg}");
        assert!(svg.contains("data-label=\"a&lt;b\""));
        assert!(svg.contains("stroke-dasharray"));
    }
}
