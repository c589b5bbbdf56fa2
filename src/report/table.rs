//! The summary people read after a run: per group and in total.

use std::fmt::Write as _;

use super::units::{bytes_rate, bytes_size, micros, si};
use crate::result::histogram::Percentiles;
use crate::result::{BrokerSample, RunResult, RunStatus};

/// Renders a result as the human summary.
pub fn render(result: &RunResult) -> String {
    let mut out = String::new();
    heading(&mut out, result);
    producers(&mut out, result);
    consumers(&mut out, result);
    latencies(&mut out, result);
    totals(&mut out, result);
    outages(&mut out, result);
    broker_view(&mut out, result);
    pace_and_warnings(&mut out, result);
    gates(&mut out, result);
    out
}

/// The scenario, its status, its timing and the broker.
fn heading(out: &mut String, result: &RunResult) {
    let broker = match (&result.broker.product, &result.broker.version) {
        (Some(product), Some(version)) => format!("{product} {version}"),
        (Some(product), None) => product.clone(),
        _ => result.broker.url.clone(),
    };
    let status = match result.status {
        RunStatus::Completed => "completed",
        RunStatus::Interrupted => "INTERRUPTED",
        RunStatus::Failed => "FAILED",
    };
    let _ = writeln!(
        out,
        "{} {status}: {} after {:.1}s warmup, drain {:.2}s{}, on {broker}",
        result.scenario.name,
        result.scenario.measured_text(),
        result.scenario.warmup_s,
        result.drain.seconds,
        if result.drain.complete { "" } else { " (INCOMPLETE)" },
    );
    if let Some(error) = &result.error {
        let _ = writeln!(out, "error: {error}");
    }
}

/// One row per producer group.
fn producers(out: &mut String, result: &RunResult) {
    if !result.producers.is_empty() {
        let _ = writeln!(
            out,
            "\n{:<16} {:>4} {:>10} {:>9} {:>11} {:>10} {:>6} {:>8} {:>9} {:>9} {:>8}",
            "producers",
            "inst",
            "published",
            "msgs/s",
            "bytes/s",
            "confirmed",
            "nacks",
            "returns",
            "send p99",
            "conf p99",
            "waited"
        );
        for p in &result.producers {
            // Per instance: how long one of them waited on the broker in the measured window.
            let waited = p.broker_wait.each(p.instances).total_s();
            let _ = writeln!(
                out,
                "{:<16} {:>4} {:>10} {:>9} {:>11} {:>10} {:>6} {:>8} {:>9} {:>9} {:>8}",
                p.name,
                p.instances,
                p.published,
                si(p.publish_rate),
                bytes_rate(p.publish_bytes_rate),
                p.confirmed,
                p.nacked,
                p.returned,
                if p.send_delay.count == 0 { "-".to_owned() } else { micros(p.send_delay.p99_us) },
                if p.confirm.count == 0 { "-".to_owned() } else { micros(p.confirm.p99_us) },
                if waited < 0.005 { "-".to_owned() } else { format!("{waited:.2}s") },
            );
        }
    }
}

/// One row per consumer group.
fn consumers(out: &mut String, result: &RunResult) {
    if !result.consumers.is_empty() {
        let _ = writeln!(
            out,
            "\n{:<16} {:<14} {:>4} {:>10} {:>10} {:>5} {:>5} {:>5} {:>7} {:>9} {:>8} {:>8}",
            "consumers",
            "queue",
            "inst",
            "consumed",
            "expected",
            "lost",
            "dup",
            "reord",
            "redeliv",
            "msgs/s",
            "e2e p50",
            "e2e p99"
        );
        for c in &result.consumers {
            let _ = writeln!(
                out,
                "{:<16} {:<14} {:>4} {:>10} {:>10} {:>5} {:>5} {:>5} {:>7} {:>9} {:>8} {:>8}",
                c.name,
                c.queue,
                c.instances,
                c.consumed,
                c.expected,
                c.lost,
                c.duplicated,
                c.reordered,
                c.redelivered,
                si(c.consume_rate),
                micros(c.e2e.p50_us),
                micros(c.e2e.p99_us),
            );
        }
    }
}

/// Latency percentiles of the whole run.
fn latencies(out: &mut String, result: &RunResult) {
    let _ = writeln!(
        out,
        "\n{:<26} {:>9} {:>9} {:>9} {:>9} {:>9} {:>9}",
        "latency", "p50", "p90", "p99", "p99.9", "max", "count"
    );
    let l = &result.summary.latency;
    for (name, p) in [
        ("end to end (intended)", &l.e2e),
        ("end to end (actual send)", &l.e2e_actual),
        ("send delay", &l.send_delay),
        ("confirm", &l.confirm),
    ] {
        latency_row(out, name, p);
    }
}

/// Totals: rates, and every way a message went astray.
fn totals(out: &mut String, result: &RunResult) {
    let s = &result.summary;
    let _ = writeln!(
        out,
        "\ntotal: published {} ({}/s, {}), consumed {} of {} expected ({}/s, {})",
        s.published,
        si(s.publish_rate),
        bytes_rate(s.publish_bytes_rate),
        s.consumed,
        s.expected,
        si(s.consume_rate),
        bytes_rate(s.consume_bytes_rate),
    );
    let _ = writeln!(
        out,
        "       lost {}, duplicated {}, reordered {}, redelivered {}, rejected {}, returned {}, nacked {}, unconfirmed {}, errors {}",
        s.lost, s.duplicated, s.reordered, s.redelivered, s.rejected, s.returned, s.nacked, s.unconfirmed, s.errors
    );
}

/// What the broker's management API said during the run.
fn broker_view(out: &mut String, result: &RunResult) {
    let Some(view) = &result.broker_view else { return };
    let mut parts = vec![format!("peak {} queued", si(view.peak_messages as f64))];
    if let Some(queue) = view.peak_queue.as_ref().filter(|_| view.samples.iter().any(|s| s.queues.len() > 1)) {
        parts[0] += &format!(" (deepest queue {} at {})", queue.name, si(queue.messages as f64));
    }
    if let Some(memory) = view.peak_memory_bytes {
        parts.push(format!("peak memory {}", bytes_size(memory as f64)));
    }
    let most = |figure: fn(&BrokerSample) -> Option<u64>| view.samples.iter().filter_map(figure).max();
    if let Some(connections) = most(|s| s.connections) {
        parts.push(format!("{connections} connections"));
    }
    if let Some(channels) = most(|s| s.channels) {
        parts.push(format!("{channels} channels"));
    }
    if let Some(cpu) = view.cpu_seconds {
        parts.push(format!("CPU {cpu:.2}s"));
    }
    let _ = writeln!(out, "broker: {} ({} samples)", parts.join(", "), view.samples.len());
}

/// CPU, who set the pace, and warnings.
fn pace_and_warnings(out: &mut String, result: &RunResult) {
    if let Some(cpu) = cpu_summary(result) {
        let _ = writeln!(out, "CPU: {cpu}");
    }
    if result.broker_pace.paced {
        let _ = writeln!(out, "BROKER-PACED: producers waited on the broker, which set the pace:");
        for reason in &result.broker_pace.reasons {
            let _ = writeln!(out, "  - {reason}");
        }
    }
    if result.generator.limited {
        let _ =
            writeln!(out, "GENERATOR-LIMITED: warren itself may have set the pace; the figures describe warren too:");
        for reason in &result.generator.reasons {
            let _ = writeln!(out, "  - {reason}");
        }
    }
    for warning in &result.warnings {
        let _ = writeln!(out, "warning: {warning}");
    }
}

/// Each gate's verdict.
fn gates(out: &mut String, result: &RunResult) {
    if !result.gates.is_empty() {
        let _ = writeln!(out, "\ngates:");
        for gate in &result.gates {
            let verdict = if gate.passed { "pass" } else { "FAIL" };
            let (threshold, actual) = if gate.name.starts_with("latency") {
                (micros(gate.threshold), micros(gate.actual))
            } else {
                (si(gate.threshold), si(gate.actual))
            };
            let _ = writeln!(out, "  {verdict}  {:<18} limit {threshold:>9}  actual {actual:>9}", gate.name);
        }
    }
}

fn latency_row(out: &mut String, name: &str, p: &Percentiles) {
    if p.count == 0 {
        let _ = writeln!(out, "{name:<26} {:>9} {:>9} {:>9} {:>9} {:>9} {:>9}", "-", "-", "-", "-", "-", 0);
        return;
    }
    let _ = writeln!(
        out,
        "{name:<26} {:>9} {:>9} {:>9} {:>9} {:>9} {:>9}",
        micros(p.p50_us),
        micros(p.p90_us),
        micros(p.p99_us),
        micros(p.p999_us),
        micros(p.max_us),
        p.count
    );
}

/// What the run cost warren's client (and the whole process beside it), for
/// the summary and the HTML report; `None` when nothing was measured.
pub fn cpu_summary(result: &RunResult) -> Option<String> {
    let generator = &result.generator;
    let per_million = |m: Option<f64>| m.map(|m| format!(", {m:.1}s per million messages")).unwrap_or_default();
    // Per million messages means something at full speed; at a modest rate the share of a core says more.
    let share = |cpu: f64, wall: f64| {
        if wall > 0.0 { format!(" ({:.0}% of one core)", cpu / wall * 100.0) } else { String::new() }
    };
    let process = generator.cpu_seconds.map(|cpu| {
        let wall = result.scenario.warmup_s + result.scenario.window_s() + result.drain.seconds;
        let broker = if result.broker.embedded { ", embedded broker included" } else { "" };
        format!(
            "whole process {cpu:.2}s over {wall:.1}s{}{}{broker}",
            share(cpu, wall),
            per_million(generator.cpu_seconds_per_million)
        )
    });
    match (generator.window_cpu_seconds, process) {
        (Some(cpu), process) => {
            let window = result.scenario.window_s();
            Some(format!(
                "client {cpu:.2}s in the {window:.1}s measured window{}{}{}",
                share(cpu, window),
                per_million(generator.window_cpu_seconds_per_million),
                process.map(|p| format!("; {p}")).unwrap_or_default()
            ))
        }
        (None, process) => process,
    }
}

/// Each lost connection on the time line, and what the losses cost: shown
/// only when a connection was lost or a confirmed message went missing.
fn outages(out: &mut String, result: &RunResult) {
    let s = &result.summary;
    if result.outages.is_empty() && s.confirmed_lost == 0 && s.resent == 0 {
        return;
    }
    let _ = writeln!(
        out,
        "outages: {} connection{} lost; re-sent {}, confirmed lost {} (the broker confirmed them, no consumer got them)",
        result.outages.len(),
        if result.outages.len() == 1 { "" } else { "s" },
        s.resent,
        s.confirmed_lost
    );
    for o in &result.outages {
        let back = match (o.length_s, &o.reconnected_to) {
            (Some(length), Some(to)) => format!("connected again after {length:.3}s to {to}"),
            _ => "never connected again".to_owned(),
        };
        let _ = writeln!(out, "  t={:>7.2}s  {:<24} lost {}, {back}", o.start_s, o.actor, o.node);
    }
}

#[cfg(test)]
mod tests {
    use super::{BrokerSample, cpu_summary, render};
    use crate::result::sample;
    use crate::result::{BrokerView, BrokerWait, QueuePeak, QueueSample};

    #[test]
    fn the_summary_tells_the_brokers_pace_from_warrens_own() {
        let mut result = sample::result("s", 1000, &[1_000_000], &[1_000_000]);
        result.producers[0].instances = 2;
        result.producers[0].broker_wait =
            BrokerWait { blocked_s: 3.0, confirm_window_s: 0.5, write_s: 0.0, ..BrokerWait::default() };
        result.broker_pace.paced = true;
        result.broker_pace.reasons = vec!["producer group `producer` fell behind because it waited".into()];
        let text = render(&result);
        let row = text.lines().find(|l| l.starts_with("producer ")).expect("the producer row");
        assert!(row.ends_with(" 1.75s"), "one instance's wait, on average: {row}");
        assert!(
            text.contains(
                "BROKER-PACED: producers waited on the broker, which set the pace:\n  - producer group `producer` fell behind because it waited\n"
            ),
            "{text}"
        );
        assert!(!text.contains("GENERATOR-LIMITED"), "{text}");
        result.generator.limited = true;
        result.generator.reasons = vec!["a client thread was busy".into()];
        let text = render(&result);
        assert!(text.contains("BROKER-PACED") && text.contains("GENERATOR-LIMITED"), "{text}");
    }

    #[test]
    fn cpu_shows_the_client_alone_and_the_whole_process_with_the_embedded_broker() {
        let mut result = sample::result("s", 1000, &[1_000_000], &[1_000_000]);
        result.generator.window_cpu_seconds = Some(0.5);
        result.generator.window_cpu_seconds_per_million = Some(500.0);
        let summary = cpu_summary(&result).expect("a summary");
        assert!(summary.starts_with("client 0.50s in the "), "{summary}");
        assert!(summary.contains("500.0s per million messages; whole process 1.00s"), "{summary}");
        assert!(summary.ends_with("embedded broker included"), "{summary}");
        // A result file from before the client figure: the whole process only.
        result.generator.window_cpu_seconds = None;
        let summary = cpu_summary(&result).expect("a summary");
        assert!(summary.starts_with("whole process 1.00s"), "{summary}");
        result.generator.cpu_seconds = None;
        assert_eq!(cpu_summary(&result), None);
    }

    #[test]
    fn the_summary_says_what_the_broker_went_through() {
        let mut result = sample::result("s", 1000, &[1_000_000], &[1_000_000]);
        assert!(!render(&result).contains("broker:"), "no view, no line");
        let queue = |name: &str, ready| QueueSample { name: name.into(), ready, unacked: 0 };
        result.broker_view = Some(BrokerView {
            source: "http://127.0.0.1:15672".into(),
            peak_messages: 12_500,
            peak_queue: Some(QueuePeak { name: "orders".into(), messages: 12_000 }),
            peak_memory_bytes: Some(85_200_000),
            cpu_seconds: Some(1.234),
            samples: vec![BrokerSample {
                t: 0.5,
                queues: vec![queue("orders", 12_000), queue("audit", 500)],
                connections: Some(4),
                channels: Some(8),
                ..BrokerSample::default()
            }],
        });
        let text = render(&result);
        let line = text.lines().find(|l| l.starts_with("broker:")).expect("the broker line");
        assert_eq!(
            line,
            "broker: peak 12.5k queued (deepest queue orders at 12.0k), peak memory 85.20 MB, 4 connections, \
             8 channels, CPU 1.23s (1 samples)"
        );
    }

    #[test]
    fn the_summary_of_a_run_with_gates_reads_as_a_table() {
        let mut result = sample::result("s", 1000, &[1_000_000], &[1_000_000]);
        result.gates = vec![
            crate::result::GateResult { name: "min_throughput".into(), threshold: 500.0, actual: 1000.0, passed: true },
            crate::result::GateResult {
                name: "latency_p99_max".into(),
                threshold: 500.0,
                actual: 1_000_000.0,
                passed: false,
            },
        ];
        result.warnings = vec!["a warning".into()];
        insta::assert_snapshot!(render(&result));
    }
}
