//! The CI gate: a run judged against a baseline, so CI fails on a real
//! regression and not on noise. Each headline figure of a run against its
//! baseline, with a verdict, plus the scenario's absolute gates; [`junit`]
//! writes them as test cases.
//!
//! Built to be kept switched on: a latency rise must pass both the relative
//! tolerance and an absolute floor (a p99 going from 80µs to 110µs is noise,
//! not a regression), and when repeated runs spread wider than the tolerance
//! the comparison says it cannot tell.

pub mod junit;

use std::fmt::Write as _;

use schemars::JsonSchema;
use serde::Serialize;

use crate::report::units::{micros, si};
use crate::result::tolerance::Tolerance;
use crate::result::{GateResult, RunResult, RunStatus};

/// A figure's verdict.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Serialize, JsonSchema)]
#[serde(rename_all = "snake_case")]
pub enum Verdict {
    /// Within tolerance.
    Ok,
    /// Better than the baseline by more than the tolerance.
    Improved,
    /// Worse than the baseline by more than the tolerance.
    Regression,
}

impl Verdict {
    fn label(self) -> &'static str {
        match self {
            Verdict::Ok => "ok",
            Verdict::Improved => "improved",
            Verdict::Regression => "REGRESSION",
        }
    }
}

/// Which way is better for a figure.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Serialize, JsonSchema)]
#[serde(rename_all = "snake_case")]
pub enum Kind {
    /// Messages per second: higher is better.
    Throughput,
    /// Microseconds: lower is better.
    Latency,
}

/// One compared figure.
#[derive(Debug, Clone, Serialize, JsonSchema)]
pub struct Figure {
    /// What it is (`consumed msgs/s`, `e2e latency p99`).
    pub name: String,
    /// Throughput or latency.
    pub kind: Kind,
    /// The baseline's value (msgs/s or µs).
    pub baseline: f64,
    /// The run's value.
    pub current: f64,
    /// `(current - baseline) / baseline`; 0 when both are 0, absent when only the baseline is.
    pub delta: Option<f64>,
    /// The accepted change in the bad direction, a fraction.
    pub tolerance: f64,
    /// The verdict.
    pub verdict: Verdict,
    /// How far repeated runs spread (`(max - min) / median`), the wider of baseline and run.
    pub spread: Option<f64>,
    /// Why the verdict may not mean much.
    pub note: Option<String>,
}

/// The comparison of a run with its baseline: the document `warren compare
/// --format json` prints (schema: `schemas/compare.schema.json`).
#[derive(Debug, Clone, Serialize, JsonSchema)]
pub struct Comparison {
    /// The scenario both ran.
    pub scenario: String,
    /// The tolerances used.
    pub tolerance: Tolerance,
    /// Relative figures.
    pub figures: Vec<Figure>,
    /// The run's absolute gates (from the scenario file).
    pub gates: Vec<GateResult>,
    /// Things that make the comparison less telling (different broker, generator-limited, …).
    pub notes: Vec<String>,
    /// True when a figure regressed or a gate failed.
    pub failed: bool,
}

impl Comparison {
    /// Figures that regressed.
    pub fn regressions(&self) -> impl Iterator<Item = &Figure> {
        self.figures.iter().filter(|f| f.verdict == Verdict::Regression)
    }

    /// Gates the run missed.
    pub fn failed_gates(&self) -> impl Iterator<Item = &GateResult> {
        self.gates.iter().filter(|g| !g.passed)
    }
}

/// Why two results cannot be compared.
#[derive(Debug, thiserror::Error)]
pub enum CompareError {
    /// Different scenarios.
    #[error("the baseline ran scenario `{baseline}` but the result ran `{current}`: they cannot be compared")]
    Scenario {
        /// The baseline's scenario.
        baseline: String,
        /// The result's scenario.
        current: String,
    },
    /// Same name, different groups.
    #[error("scenario `{scenario}`: the baseline's {what} groups are {baseline} but the result's are {current}")]
    Groups {
        /// The scenario.
        scenario: String,
        /// `producer` or `consumer`.
        what: &'static str,
        /// The baseline's groups, `name×instances`.
        baseline: String,
        /// The result's groups.
        current: String,
    },
    /// Different `--rate-scale`.
    #[error("scenario `{scenario}`: the baseline ran with rate scale {baseline} but the result with {current}")]
    RateScale {
        /// The scenario.
        scenario: String,
        /// The baseline's scale.
        baseline: f64,
        /// The result's scale.
        current: f64,
    },
    /// A run that did not complete is no measure.
    #[error("the {which} run of scenario `{scenario}` did not complete ({status:?}): its figures are partial")]
    Incomplete {
        /// `baseline` or `result`.
        which: &'static str,
        /// The scenario.
        scenario: String,
        /// How it ended.
        status: RunStatus,
    },
}

fn groups(result: &RunResult, producers: bool) -> String {
    let list: Vec<String> = if producers {
        result.producers.iter().map(|g| format!("{}×{}", g.name, g.instances)).collect()
    } else {
        result.consumers.iter().map(|g| format!("{}×{}", g.name, g.instances)).collect()
    };
    format!("[{}]", list.join(", "))
}

fn check_comparable(baseline: &RunResult, current: &RunResult) -> Result<(), CompareError> {
    let scenario = current.scenario.name.clone();
    if baseline.scenario.name != current.scenario.name {
        return Err(CompareError::Scenario { baseline: baseline.scenario.name.clone(), current: scenario });
    }
    for (which, result) in [("baseline", baseline), ("result", current)] {
        if result.status != RunStatus::Completed {
            return Err(CompareError::Incomplete { which, scenario, status: result.status });
        }
    }
    for (what, producers) in [("producer", true), ("consumer", false)] {
        let (b, c) = (groups(baseline, producers), groups(current, producers));
        if b != c {
            return Err(CompareError::Groups { scenario, what, baseline: b, current: c });
        }
    }
    let (b, c) = (baseline.scenario.rate_scale.unwrap_or(1.0), current.scenario.rate_scale.unwrap_or(1.0));
    if (b - c).abs() > 1e-9 {
        return Err(CompareError::RateScale { scenario, baseline: b, current: c });
    }
    Ok(())
}

/// `(max - min) / median` of `values`; `None` for fewer than two.
pub fn spread(values: &[f64]) -> Option<f64> {
    if values.len() < 2 {
        return None;
    }
    let mut sorted = values.to_vec();
    sorted.sort_by(f64::total_cmp);
    let median = sorted[(sorted.len() - 1) / 2];
    let (min, max) = (sorted[0], sorted[sorted.len() - 1]);
    Some(if median.abs() < f64::EPSILON { 0.0 } else { (max - min) / median })
}

/// The spread of one figure over a result's repeated runs.
fn run_spread(result: &RunResult, figure: &dyn Fn(&crate::result::RepeatRun) -> f64) -> Option<f64> {
    let repeat = result.repeat.as_ref()?;
    spread(&repeat.runs.iter().map(figure).collect::<Vec<_>>())
}

/// The value a figure is judged on: with `--repeat`, the median over every
/// run (so one noisy run cannot move it), else the run's own.
fn judged(result: &RunResult, own: f64, figure: &dyn Fn(&crate::result::RepeatRun) -> f64) -> f64 {
    match &result.repeat {
        Some(repeat) if !repeat.runs.is_empty() => {
            let mut values: Vec<f64> = repeat.runs.iter().map(figure).collect();
            values.sort_by(f64::total_cmp);
            let middle = values.len() / 2;
            if values.len() % 2 == 1 { values[middle] } else { (values[middle - 1] + values[middle]) / 2.0 }
        }
        _ => own,
    }
}

/// The JSON Schema of `warren compare --format json`.
pub fn json_schema() -> serde_json::Value {
    serde_json::to_value(schemars::schema_for!(Comparison)).unwrap_or(serde_json::Value::Null)
}

/// Judges `current` against `baseline`. With repeated runs each figure is the
/// median over the runs.
pub fn compare(baseline: &RunResult, current: &RunResult, tolerance: &Tolerance) -> Result<Comparison, CompareError> {
    check_comparable(baseline, current)?;
    let metric = tolerance.metric;
    let name = metric.name();
    let mut figures = Vec::new();
    let mut throughput = |label: &str, b: f64, c: f64, of: &dyn Fn(&crate::result::RepeatRun) -> f64| {
        let (b, c) = (judged(baseline, b, of), judged(current, c, of));
        let delta = relative(b, c);
        let verdict = if delta < -tolerance.max_throughput_drop {
            Verdict::Regression
        } else if delta > tolerance.max_throughput_drop {
            Verdict::Improved
        } else {
            Verdict::Ok
        };
        let spread = widest(run_spread(baseline, of), run_spread(current, of));
        figures.push(figure(label, Kind::Throughput, b, c, tolerance.max_throughput_drop, verdict, spread));
    };
    throughput("consumed msgs/s", baseline.summary.consume_rate, current.summary.consume_rate, &|r| r.consume_rate);
    throughput("published msgs/s", baseline.summary.publish_rate, current.summary.publish_rate, &|r| r.publish_rate);

    let mut latency = |label: String, b: f64, c: f64, of: &dyn Fn(&crate::result::RepeatRun) -> f64| {
        let (b, c) = (judged(baseline, b, of), judged(current, c, of));
        let delta = relative(b, c);
        let beyond_floor = (c - b).abs() > tolerance.min_latency_rise_us;
        let verdict = if delta > tolerance.max_latency_rise && beyond_floor {
            Verdict::Regression
        } else if delta < -tolerance.max_latency_rise && beyond_floor {
            Verdict::Improved
        } else {
            Verdict::Ok
        };
        let spread = widest(run_spread(baseline, of), run_spread(current, of));
        figures.push(figure(&label, Kind::Latency, b, c, tolerance.max_latency_rise, verdict, spread));
    };
    let (b, c) = (&baseline.summary.latency, &current.summary.latency);
    if b.e2e.count > 0 || c.e2e.count > 0 {
        latency(format!("e2e latency {name}"), metric.of(&b.e2e), metric.of(&c.e2e), &|r| metric.of(&r.e2e));
    }
    if b.confirm.count > 0 || c.confirm.count > 0 {
        latency(format!("confirm latency {name}"), metric.of(&b.confirm), metric.of(&c.confirm), &|r| {
            metric.of(&r.confirm)
        });
    }

    let mut notes = Vec::new();
    let broker = |r: &RunResult| {
        format!(
            "{} {}{}",
            r.broker.product.as_deref().unwrap_or("unknown broker"),
            r.broker.version.as_deref().unwrap_or(""),
            if r.broker.embedded { " (embedded)" } else { "" }
        )
    };
    if broker(baseline) != broker(current) {
        notes.push(format!("the broker differs: baseline on {}, result on {}", broker(baseline), broker(current)));
    }
    if (baseline.scenario.duration_s - current.scenario.duration_s).abs() > 1e-9 {
        notes.push(format!(
            "the measured durations differ: baseline {:.1}s, result {:.1}s (shorter runs are noisier)",
            baseline.scenario.duration_s, current.scenario.duration_s
        ));
    }
    let changed = changed_keys(&baseline.scenario.document, &current.scenario.document);
    if !changed.is_empty() {
        notes.push(format!("the scenario file changed since the baseline: {}", changed.join(", ")));
    }
    if baseline.machine.cores != current.machine.cores {
        notes.push(format!(
            "the machine differs: baseline on {} cores, result on {}",
            baseline.machine.cores, current.machine.cores
        ));
    }
    for (which, result) in [("baseline", baseline), ("result", current)] {
        if let Some(repeat) = &result.repeat {
            notes.push(format!("the {which}'s figures are medians over its {} runs", repeat.runs.len()));
        }
        if result.generator.limited {
            notes.push(format!(
                "the {which} run was generator-limited (warren itself may have set the pace): {}",
                result.generator.reasons.join("; ")
            ));
        }
        if result.broker_pace.paced {
            notes.push(format!(
                "the {which} run was paced by the broker (its producers waited on it): {}",
                result.broker_pace.reasons.join("; ")
            ));
        }
    }
    let gates = current.gates.clone();
    let failed = figures.iter().any(|f| f.verdict == Verdict::Regression) || gates.iter().any(|g| !g.passed);
    Ok(Comparison { scenario: current.scenario.name.clone(), tolerance: *tolerance, figures, gates, notes, failed })
}

/// The paths (`producers[0].rate`) where two scenario documents differ,
/// leaving out `duration` and `warmup`, which the command line overrides anyway.
fn changed_keys(a: &serde_json::Value, b: &serde_json::Value) -> Vec<String> {
    fn walk(path: &str, a: &serde_json::Value, b: &serde_json::Value, out: &mut Vec<String>) {
        use serde_json::Value;
        match (a, b) {
            (Value::Object(x), Value::Object(y)) => {
                let mut keys: Vec<&String> = x.keys().chain(y.keys()).collect();
                keys.sort();
                keys.dedup();
                for key in keys {
                    if path.is_empty() && matches!(key.as_str(), "duration" | "warmup") {
                        continue;
                    }
                    let child = if path.is_empty() { key.clone() } else { format!("{path}.{key}") };
                    walk(&child, x.get(key).unwrap_or(&Value::Null), y.get(key).unwrap_or(&Value::Null), out);
                }
            }
            (Value::Array(x), Value::Array(y)) if x.len() == y.len() => {
                for (index, (a, b)) in x.iter().zip(y).enumerate() {
                    walk(&format!("{path}[{index}]"), a, b, out);
                }
            }
            (a, b) if a != b => out.push(path.to_owned()),
            _ => {}
        }
    }
    let mut out = Vec::new();
    walk("", a, b, &mut out);
    out
}

fn relative(baseline: f64, current: f64) -> f64 {
    if baseline.abs() < f64::EPSILON {
        if current.abs() < f64::EPSILON { 0.0 } else { f64::INFINITY.copysign(current) }
    } else {
        (current - baseline) / baseline
    }
}

fn widest(a: Option<f64>, b: Option<f64>) -> Option<f64> {
    match (a, b) {
        (Some(a), Some(b)) => Some(a.max(b)),
        (a, b) => a.or(b),
    }
}

fn figure(
    name: &str,
    kind: Kind,
    baseline: f64,
    current: f64,
    tolerance: f64,
    verdict: Verdict,
    spread: Option<f64>,
) -> Figure {
    let note = spread.filter(|s| *s > tolerance).map(|s| {
        format!(
            "repeated runs spread {:.1}%, wider than the {:.1}% tolerance: this figure cannot tell a regression from noise",
            s * 100.0,
            tolerance * 100.0
        )
    });
    Figure {
        name: name.to_owned(),
        kind,
        baseline,
        current,
        delta: Some(relative(baseline, current)).filter(|d| d.is_finite()),
        tolerance,
        verdict,
        spread,
        note,
    }
}

/// A value in its figure's unit, for people.
pub fn format_value(kind: Kind, value: f64) -> String {
    match kind {
        Kind::Throughput => si(value),
        Kind::Latency => micros(value),
    }
}

/// A fraction as a signed percentage; `new` when the baseline was zero.
pub fn format_delta(delta: Option<f64>) -> String {
    delta.map_or_else(|| "new".to_owned(), |d| format!("{:+.1}%", d * 100.0))
}

/// A gate's threshold or figure in the gate's unit.
pub fn format_gate_value(gate: &str, value: f64) -> String {
    if gate.starts_with("latency_") {
        micros(value)
    } else if gate.starts_with("throughput") {
        format!("{} msgs/s", si(value))
    } else {
        format!("{value:.0}")
    }
}

/// The comparison as a table for people.
pub fn render(comparison: &Comparison, baseline_name: &str, result_name: &str) -> String {
    let mut out = String::new();
    let t = &comparison.tolerance;
    let _ = writeln!(
        out,
        "{}: {result_name} against baseline {baseline_name} (throughput may drop {:.0}%, latency {} may rise {:.0}% and at least {})\n",
        comparison.scenario,
        t.max_throughput_drop * 100.0,
        t.metric.name(),
        t.max_latency_rise * 100.0,
        micros(t.min_latency_rise_us),
    );
    let _ =
        writeln!(out, "{:<22} {:>10} {:>10} {:>9} {:>8}  verdict", "figure", "baseline", "current", "delta", "spread");
    for f in &comparison.figures {
        let spread = f.spread.map(|s| format!("{:.1}%", s * 100.0)).unwrap_or_else(|| "-".to_owned());
        let _ = writeln!(
            out,
            "{:<22} {:>10} {:>10} {:>9} {:>8}  {}",
            f.name,
            format_value(f.kind, f.baseline),
            format_value(f.kind, f.current),
            format_delta(f.delta),
            spread,
            f.verdict.label()
        );
    }
    if !comparison.gates.is_empty() {
        let _ = writeln!(out, "\n{:<22} {:>14} {:>14}  verdict", "gate (scenario)", "threshold", "actual");
        for g in &comparison.gates {
            let _ = writeln!(
                out,
                "{:<22} {:>14} {:>14}  {}",
                g.name,
                format_gate_value(&g.name, g.threshold),
                format_gate_value(&g.name, g.actual),
                if g.passed { "ok" } else { "FAILED" }
            );
        }
    }
    let mut notes: Vec<String> =
        comparison.figures.iter().filter_map(|f| f.note.as_ref().map(|n| format!("{}: {n}", f.name))).collect();
    notes.extend(comparison.notes.iter().cloned());
    if !notes.is_empty() {
        out.push('\n');
        for note in notes {
            let _ = writeln!(out, "note: {note}");
        }
    }
    out.push('\n');
    out.push_str(&verdict_line(comparison));
    out.push('\n');
    out
}

/// One line saying what failed, naming relative regressions and absolute gates apart.
pub fn verdict_line(comparison: &Comparison) -> String {
    let regressions: Vec<String> = comparison
        .regressions()
        .map(|f| format!("{} {} (tolerance {:.0}%)", f.name, format_delta(f.delta), f.tolerance * 100.0))
        .collect();
    let gates: Vec<String> = comparison
        .failed_gates()
        .map(|g| {
            format!(
                "{} (threshold {}, actual {})",
                g.name,
                format_gate_value(&g.name, g.threshold),
                format_gate_value(&g.name, g.actual)
            )
        })
        .collect();
    if regressions.is_empty() && gates.is_empty() {
        return format!(
            "PASSED: {} figures within tolerance of the baseline, {} scenario gates met",
            comparison.figures.len(),
            comparison.gates.len()
        );
    }
    let mut parts = Vec::new();
    if !regressions.is_empty() {
        parts.push(format!("regression against the baseline: {}", regressions.join(", ")));
    }
    if !gates.is_empty() {
        parts.push(format!("scenario gates failed: {}", gates.join(", ")));
    }
    format!("FAILED: {}", parts.join("; "))
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::result::sample::{result, spread_us};
    use crate::result::tolerance::Metric;

    fn verdicts(c: &Comparison) -> Vec<(&str, Verdict)> {
        c.figures.iter().map(|f| (f.name.as_str(), f.verdict)).collect()
    }

    #[test]
    fn a_throughput_drop_beyond_tolerance_is_a_regression_and_within_it_is_not() {
        let base = result("s", 10_000, &spread_us(1000, 100, 2000), &spread_us(1000, 50, 500));
        let slower = result("s", 7_900, &spread_us(1000, 100, 2000), &spread_us(1000, 50, 500));
        let c = compare(&base, &slower, &Tolerance::default()).expect("comparable");
        assert_eq!(c.figures[0].verdict, Verdict::Regression, "{:?}", verdicts(&c));
        assert!(c.failed);
        assert!((c.figures[0].delta.expect("a delta") + 0.21).abs() < 1e-9);
        assert!(
            verdict_line(&c).contains("regression against the baseline: consumed msgs/s -21.0%"),
            "{}",
            verdict_line(&c)
        );

        let noise = result("s", 9_500, &spread_us(1000, 100, 2000), &spread_us(1000, 50, 500));
        let c = compare(&base, &noise, &Tolerance::default()).expect("comparable");
        assert!(!c.failed, "{:?}", verdicts(&c));
        assert!(verdict_line(&c).starts_with("PASSED"));
    }

    #[test]
    fn latency_rises_need_both_the_percentage_and_the_absolute_floor() {
        let base = result("s", 1000, &spread_us(1000, 100, 1000), &[]);
        // p99 from ~1.0ms to ~1.5ms: +50%, but only ~0.5ms, under the default 1ms floor.
        let small = result("s", 1000, &spread_us(1000, 100, 1500), &[]);
        let c = compare(&base, &small, &Tolerance::default()).expect("comparable");
        let e2e = c.figures.iter().find(|f| f.name == "e2e latency p99").expect("e2e figure");
        assert!(e2e.delta.expect("a delta") > 0.2);
        assert_eq!(e2e.verdict, Verdict::Ok);
        // With a 100µs floor the same rise is a regression.
        let fine = Tolerance { min_latency_rise_us: 100.0, ..Tolerance::default() };
        let c = compare(&base, &small, &fine).expect("comparable");
        let e2e = c.figures.iter().find(|f| f.name == "e2e latency p99").expect("e2e figure");
        assert_eq!(e2e.verdict, Verdict::Regression);
        // From ~1ms to ~10ms: a regression under the default floor too.
        let big = result("s", 1000, &spread_us(1000, 100, 10_000), &[]);
        let c = compare(&base, &big, &Tolerance::default()).expect("comparable");
        let e2e = c.figures.iter().find(|f| f.name == "e2e latency p99").expect("e2e figure");
        assert_eq!(e2e.verdict, Verdict::Regression);
        assert!(c.figures.iter().all(|f| f.name != "confirm latency p99"), "no confirms, no confirm figure");
    }

    #[test]
    fn the_metric_chooses_the_percentile() {
        let base = result("s", 1000, &spread_us(1000, 1000, 2000), &[]);
        let current = result("s", 1000, &spread_us(1000, 1000, 2000), &[]);
        let tolerance = Tolerance { metric: Metric::P50, ..Tolerance::default() };
        let c = compare(&base, &current, &tolerance).expect("comparable");
        let e2e = c.figures.iter().find(|f| f.name == "e2e latency p50").expect("p50 figure");
        assert!((e2e.baseline - base.summary.latency.e2e.p50_us).abs() < 1e-9);
    }

    #[test]
    fn mismatched_scenarios_are_an_error_not_a_pass() {
        let a = result("seed", 1000, &[1000], &[]);
        let b = result("orders", 1000, &[1000], &[]);
        let error = compare(&a, &b, &Tolerance::default()).expect_err("different scenarios");
        assert!(error.to_string().contains("`seed`") && error.to_string().contains("`orders`"), "{error}");

        let mut more = result("seed", 1000, &[1000], &[]);
        more.consumers[0].instances = 3;
        let error = compare(&a, &more, &Tolerance::default()).expect_err("different groups");
        assert!(error.to_string().contains("consumer×3"), "{error}");

        let mut failed = result("seed", 1000, &[1000], &[]);
        failed.status = RunStatus::Failed;
        assert!(compare(&a, &failed, &Tolerance::default()).is_err());
    }

    #[test]
    fn failed_gates_fail_the_comparison_and_are_named_apart_from_regressions() {
        let base = result("s", 1000, &[1000], &[]);
        let mut current = result("s", 1000, &[1000], &[]);
        current.gates.push(GateResult {
            name: "latency_p99_max".into(),
            threshold: 500.0,
            actual: 1000.0,
            passed: false,
        });
        let c = compare(&base, &current, &Tolerance::default()).expect("comparable");
        assert!(c.failed);
        assert_eq!(c.regressions().count(), 0);
        let line = verdict_line(&c);
        assert!(line.contains("scenario gates failed: latency_p99_max"), "{line}");
        assert!(!line.contains("regression against the baseline"), "{line}");
    }

    #[test]
    fn a_spread_wider_than_the_tolerance_is_said() {
        let base = result("s", 1000, &[1000], &[]);
        let runs: Vec<RunResult> = [800, 1000, 1300].iter().map(|n| result("s", *n, &[1000], &[])).collect();
        let current = crate::bench::repeat::median(runs).expect("three runs");
        assert_eq!(current.summary.consumed, 1000, "the median run");
        let c = compare(&base, &current, &Tolerance::default()).expect("comparable");
        let consumed = &c.figures[0];
        assert!((consumed.spread.expect("a spread") - 0.5).abs() < 1e-9, "(130 - 80) / 100");
        assert!(consumed.note.as_deref().is_some_and(|n| n.contains("wider than the 10.0% tolerance")), "{consumed:?}");
        assert!(render(&c, "base.json", "run.json").contains("cannot tell a regression from noise"));
    }

    #[test]
    fn repeated_runs_are_judged_on_the_median_of_each_figure() {
        let base = result("s", 1000, &spread_us(1000, 100, 1000), &[]);
        // Three runs at the same rate; one has a p99 five times the others'.
        let runs: Vec<RunResult> =
            [1000, 2000, 5000].iter().map(|top| result("s", 1000, &spread_us(1000, 100, *top), &[])).collect();
        let current = crate::bench::repeat::median(runs).expect("runs");
        let c =
            compare(&base, &current, &Tolerance { max_latency_rise: 5.0, ..Tolerance::default() }).expect("comparable");
        let e2e = c.figures.iter().find(|f| f.name == "e2e latency p99").expect("e2e");
        let middle = result("s", 1000, &spread_us(1000, 100, 2000), &[]).summary.latency.e2e.p99_us;
        assert_eq!(e2e.current, middle, "the median run's p99, whichever run the result holds");
    }

    #[test]
    fn a_zero_baseline_has_no_delta_and_the_json_says_so() {
        let mut base = result("s", 1000, &[1000], &[]);
        base.summary.publish_rate = 0.0;
        let current = result("s", 1000, &[1000], &[]);
        let c = compare(&base, &current, &Tolerance::default()).expect("comparable");
        let published = c.figures.iter().find(|f| f.name == "published msgs/s").expect("figure");
        assert_eq!(published.delta, None);
        assert_eq!(published.verdict, Verdict::Improved);
        assert_eq!(format_delta(published.delta), "new");
        let json = serde_json::to_value(&c).expect("encodes");
        assert!(json["figures"][1]["delta"].is_null());
    }

    /// `schemas/compare.schema.json` is what scripts validate `compare --format json` against.
    #[test]
    fn committed_compare_schema_is_current() {
        crate::result::assert_schema_is_current("schemas/compare.schema.json", &json_schema(), "compare");
    }

    #[test]
    fn a_changed_scenario_file_is_noted_by_path() {
        let mut base = result("s", 1000, &[1000], &[]);
        base.scenario.document = serde_json::json!({ "name": "s", "duration": "30s", "producers": [{ "rate": 100 }] });
        let mut current = result("s", 1000, &[1000], &[]);
        current.scenario.document =
            serde_json::json!({ "name": "s", "duration": "5s", "producers": [{ "rate": 200 }] });
        let c = compare(&base, &current, &Tolerance::default()).expect("comparable");
        assert!(
            c.notes.iter().any(|n| n == "the scenario file changed since the baseline: producers[0].rate"),
            "{:?}",
            c.notes
        );
    }

    #[test]
    fn a_run_the_broker_paced_is_noted_as_such_and_not_as_generator_limited() {
        let base = result("s", 1000, &[1000], &[]);
        let mut current = result("s", 1000, &[1000], &[]);
        current.broker_pace.paced = true;
        current.broker_pace.reasons = vec![
            "producer group `web` published 200 of 1000 scheduled messages because it waited on the broker".into(),
        ];
        let c = compare(&base, &current, &Tolerance::default()).expect("comparable");
        assert_eq!(
            c.notes,
            vec![
                "the result run was paced by the broker (its producers waited on it): producer group `web` published \
                 200 of 1000 scheduled messages because it waited on the broker"
                    .to_owned()
            ]
        );
        // Lateness of warren's own is still called generator-limited, beside the broker's.
        current.generator.limited = true;
        current.generator.reasons = vec!["producer group `web` sent late by itself".into()];
        let c = compare(&base, &current, &Tolerance::default()).expect("comparable");
        assert!(c.notes.iter().any(|n| n.starts_with("the result run was generator-limited")), "{:?}", c.notes);
        assert!(c.notes.iter().any(|n| n.starts_with("the result run was paced by the broker")), "{:?}", c.notes);
    }
}
