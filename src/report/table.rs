//! The summary people read after a run: per group and in total.

use std::fmt::Write as _;

use super::units::{bytes_rate, micros, si};
use crate::result::histogram::Percentiles;
use crate::result::{RunResult, RunStatus};

/// Renders a result as the human summary.
pub fn render(result: &RunResult) -> String {
    let mut out = String::new();
    let s = &result.summary;
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
        "{} {status}: {:.1}s measured after {:.1}s warmup, drain {:.2}s{}, on {broker}",
        result.scenario.name,
        result.scenario.duration_s,
        result.scenario.warmup_s,
        result.drain.seconds,
        if result.drain.complete { "" } else { " (INCOMPLETE)" },
    );
    if let Some(error) = &result.error {
        let _ = writeln!(out, "error: {error}");
    }

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

    let _ = writeln!(
        out,
        "\n{:<26} {:>9} {:>9} {:>9} {:>9} {:>9} {:>9}",
        "latency", "p50", "p90", "p99", "p99.9", "max", "count"
    );
    let l = &s.latency;
    for (name, p) in [
        ("end to end (intended)", &l.e2e),
        ("end to end (actual send)", &l.e2e_actual),
        ("send delay", &l.send_delay),
        ("confirm", &l.confirm),
    ] {
        latency_row(&mut out, name, p);
    }

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
    outages(&mut out, result);
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
    out
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
        let wall = result.scenario.warmup_s + result.scenario.duration_s + result.drain.seconds;
        let broker = if result.broker.embedded { ", embedded broker included" } else { "" };
        format!(
            "whole process {cpu:.2}s over {wall:.1}s{}{}{broker}",
            share(cpu, wall),
            per_million(generator.cpu_seconds_per_million)
        )
    });
    match (generator.window_cpu_seconds, process) {
        (Some(cpu), process) => {
            let window = result.scenario.duration_s;
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
    use super::{cpu_summary, render};
    use crate::result::BrokerWait;
    use crate::result::sample;

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
}
