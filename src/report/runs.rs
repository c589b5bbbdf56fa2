//! Several runs side by side (`warren report A.json B.json …`): the
//! headline figures of each, and each run's change against the first.

use std::fmt::Write as _;

use serde::Serialize;

use crate::report::units::{micros, si};
use crate::result::{RunResult, RunStatus};

/// One run's row.
#[derive(Debug, Clone, Serialize)]
pub struct Row {
    /// The file, as given.
    pub file: String,
    /// Its scenario.
    pub scenario: String,
    /// When it started.
    pub started_at: String,
    /// How it ended.
    pub status: RunStatus,
    /// Broker product and version, or its URL.
    pub broker: String,
    /// Published msgs/s.
    pub publish_rate: f64,
    /// Consumed msgs/s.
    pub consume_rate: f64,
    /// Consumed msgs/s change against the first run, a fraction.
    pub consume_rate_delta: Option<f64>,
    /// End-to-end p50, µs.
    pub e2e_p50_us: f64,
    /// End-to-end p99, µs.
    pub e2e_p99_us: f64,
    /// End-to-end p99 change against the first run, a fraction.
    pub e2e_p99_delta: Option<f64>,
    /// End-to-end p99.9, µs.
    pub e2e_p999_us: f64,
    /// Messages lost.
    pub lost: u64,
    /// Gates missed.
    pub gates_failed: usize,
    /// warren's own CPU seconds per million messages.
    pub cpu_seconds_per_million: Option<f64>,
}

/// The rows of `runs`, in the order given.
pub fn rows(runs: &[(String, RunResult)]) -> Vec<Row> {
    let first = runs.first().map(|(_, r)| r);
    let change = |base: f64, value: f64| (base.abs() > f64::EPSILON).then(|| (value - base) / base);
    runs.iter()
        .enumerate()
        .map(|(index, (file, r))| {
            let s = &r.summary;
            let broker = match (&r.broker.product, &r.broker.version) {
                (Some(p), Some(v)) => format!("{p} {v}"),
                _ => r.broker.url.clone(),
            };
            let base = first.filter(|_| index > 0);
            Row {
                file: file.clone(),
                scenario: r.scenario.name.clone(),
                started_at: r.started_at.clone(),
                status: r.status,
                broker,
                publish_rate: s.publish_rate,
                consume_rate: s.consume_rate,
                consume_rate_delta: base.and_then(|b| change(b.summary.consume_rate, s.consume_rate)),
                e2e_p50_us: s.latency.e2e.p50_us,
                e2e_p99_us: s.latency.e2e.p99_us,
                e2e_p99_delta: base.and_then(|b| change(b.summary.latency.e2e.p99_us, s.latency.e2e.p99_us)),
                e2e_p999_us: s.latency.e2e.p999_us,
                lost: s.lost,
                gates_failed: r.gates.iter().filter(|g| !g.passed).count(),
                cpu_seconds_per_million: r.generator.client_cpu_per_million(),
            }
        })
        .collect()
}

/// The rows as a table for people.
pub fn render(rows: &[Row]) -> String {
    let mut out = String::new();
    let delta = |d: Option<f64>| d.map(|d| format!("{:+.1}%", d * 100.0)).unwrap_or_default();
    let _ = writeln!(
        out,
        "{:<28} {:<16} {:>10} {:>10} {:>8} {:>9} {:>9} {:>8} {:>9} {:>6} {:>6} {:>8}",
        "run", "scenario", "pub/s", "cons/s", "Δ", "e2e p50", "e2e p99", "Δ", "p99.9", "lost", "gates", "cpu s/M"
    );
    for r in rows {
        let status = match r.status {
            RunStatus::Completed => "",
            RunStatus::Interrupted => " (interrupted)",
            RunStatus::Failed => " (FAILED)",
        };
        let gates = if r.gates_failed == 0 { "ok".to_owned() } else { format!("{} ✗", r.gates_failed) };
        let _ = writeln!(
            out,
            "{:<28} {:<16} {:>10} {:>10} {:>8} {:>9} {:>9} {:>8} {:>9} {:>6} {:>6} {:>8}",
            format!("{}{status}", r.file),
            r.scenario,
            si(r.publish_rate),
            si(r.consume_rate),
            delta(r.consume_rate_delta),
            micros(r.e2e_p50_us),
            micros(r.e2e_p99_us),
            delta(r.e2e_p99_delta),
            micros(r.e2e_p999_us),
            r.lost,
            gates,
            r.cpu_seconds_per_million.map(|c| format!("{c:.1}")).unwrap_or_else(|| "-".to_owned()),
        );
    }
    let scenarios: Vec<&str> = rows.iter().map(|r| r.scenario.as_str()).collect();
    if scenarios.windows(2).any(|w| w[0] != w[1]) {
        out.push_str("note: these runs are of different scenarios; Δ compares them anyway\n");
    }
    out
}
