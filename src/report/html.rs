//! The HTML report: one self-contained file (inline CSS and SVG, no request
//! to anywhere) that a CI job can keep as an artifact and anyone can open.

use std::fmt::Write as _;

use crate::compare::{Comparison, Verdict, format_delta, format_gate_value, format_value, verdict_line};
use crate::report::svg::{Band, Chart, Scale, Series, percentile_position};
use crate::report::units::{bytes_rate, bytes_size, micros, si};
use crate::result::histogram::{self, Latency, Percentiles};
use crate::result::{RunResult, RunStatus};

fn escape(text: &str) -> String {
    text.replace('&', "&amp;").replace('<', "&lt;").replace('>', "&gt;").replace('"', "&quot;")
}

fn ms(value: f64) -> String {
    micros(value * 1000.0)
}

/// The whole report for `result`, overlaying `baseline` when given, with the
/// comparison's verdicts (or why the two could not be compared).
pub fn render(
    result: &RunResult,
    baseline: Option<&RunResult>,
    comparison: Option<Result<&Comparison, String>>,
) -> String {
    let mut out = String::new();
    let title = format!("warren bench: {}", result.scenario.name);
    let _ = write!(
        out,
        "<!DOCTYPE html>\n<html lang=\"en\"><head><meta charset=\"utf-8\"><title>{}</title>\n<style>{STYLE}</style></head><body>\n",
        escape(&title)
    );
    let status = match result.status {
        RunStatus::Completed => "completed",
        RunStatus::Interrupted => "interrupted",
        RunStatus::Failed => "failed",
    };
    let _ = writeln!(out, "<h1>{}</h1>", escape(&title));
    let _ = writeln!(
        out,
        "<p class=\"meta\"><span class=\"status {status}\">{status}</span> started {} · {} after {:.1}s warmup · on {}{}</p>",
        escape(&result.started_at),
        result.scenario.measured_text(),
        result.scenario.warmup_s,
        escape(&broker_name(result)),
        baseline.map(|b| format!(" · baseline from {} (dashed lines)", escape(&b.started_at))).unwrap_or_default()
    );
    if let Some(error) = &result.error {
        let _ = writeln!(out, "<p class=\"error\">{}</p>", escape(error));
    }
    cards(&mut out, result, baseline);
    if let Some(comparison) = comparison {
        verdicts(&mut out, comparison);
    }

    out.push_str("<h2>Throughput over time</h2>\n");
    out.push_str(&throughput_chart(result, baseline).render());
    out.push_str("<h2>Latency over time (end to end, per second)</h2>\n");
    out.push_str(&latency_chart(result, baseline).render());
    outages(&mut out, result);
    broker_charts(&mut out, result);

    out.push_str("<h2>Latency distribution</h2>\n<p class=\"hint\">HdrHistogram percentile plot: each step right is one more nine.</p>\n");
    for (id, label, mine, theirs) in histograms(result, baseline) {
        let _ = writeln!(out, "<h3>{}</h3>", escape(&label));
        out.push_str(&distribution_chart(&id, &label, &mine, theirs.as_ref()).render());
    }

    groups(&mut out, result);
    gates(&mut out, result);
    details(&mut out, result, baseline);
    out.push_str(SCRIPT);
    out.push_str("</body></html>\n");
    out
}

fn broker_name(result: &RunResult) -> String {
    let b = &result.broker;
    match (&b.product, &b.version) {
        (Some(p), Some(v)) => format!("{p} {v}{}", if b.embedded { " (embedded)" } else { "" }),
        _ => b.url.clone(),
    }
}

fn cards(out: &mut String, result: &RunResult, baseline: Option<&RunResult>) {
    let s = &result.summary;
    let card = |out: &mut String, label: &str, value: String, base: Option<String>| {
        let base = base.map(|b| format!("<div class=\"base\">baseline {}</div>", escape(&b))).unwrap_or_default();
        let _ = writeln!(
            out,
            "<div class=\"card\"><div class=\"label\">{label}</div><div class=\"value\">{}</div>{base}</div>",
            escape(&value)
        );
    };
    out.push_str("<div class=\"cards\">\n");
    let b = baseline.map(|b| &b.summary);
    card(out, "published / s", si(s.publish_rate), b.map(|b| si(b.publish_rate)));
    card(out, "consumed / s", si(s.consume_rate), b.map(|b| si(b.consume_rate)));
    card(out, "e2e p50", micros(s.latency.e2e.p50_us), b.map(|b| micros(b.latency.e2e.p50_us)));
    card(out, "e2e p99", micros(s.latency.e2e.p99_us), b.map(|b| micros(b.latency.e2e.p99_us)));
    card(out, "e2e p99.9", micros(s.latency.e2e.p999_us), b.map(|b| micros(b.latency.e2e.p999_us)));
    card(out, "lost", s.lost.to_string(), b.map(|b| b.lost.to_string()));
    out.push_str("</div>\n");
}

fn verdicts(out: &mut String, comparison: Result<&Comparison, String>) {
    out.push_str("<h2>Against the baseline</h2>\n");
    let comparison = match comparison {
        Ok(comparison) => comparison,
        Err(why) => {
            let _ = writeln!(out, "<p class=\"error\" id=\"verdict\">not comparable: {}</p>", escape(&why));
            return;
        }
    };
    out.push_str("<table id=\"comparison\"><tr><th>figure</th><th>baseline</th><th>this run</th><th>delta</th><th>spread</th><th>verdict</th></tr>\n");
    for f in &comparison.figures {
        let spread = f.spread.map_or_else(|| "-".to_owned(), |s| format!("{:.1}%", s * 100.0));
        let _ = writeln!(
            out,
            "<tr class=\"{}\"><td>{}</td><td>{}</td><td>{}</td><td>{}</td><td>{}</td><td>{}</td></tr>",
            if f.verdict == Verdict::Regression { "fail" } else { "pass" },
            escape(&f.name),
            escape(&format_value(f.kind, f.baseline)),
            escape(&format_value(f.kind, f.current)),
            escape(&format_delta(f.delta)),
            escape(&spread),
            match f.verdict {
                Verdict::Ok => "ok",
                Verdict::Improved => "improved",
                Verdict::Regression => "REGRESSION",
            }
        );
    }
    out.push_str("</table>\n");
    let notes = comparison.figures.iter().filter_map(|f| f.note.as_ref().map(|n| format!("{}: {n}", f.name)));
    for note in notes.chain(comparison.notes.iter().cloned()) {
        let _ = writeln!(out, "<p class=\"hint\">note: {}</p>", escape(&note));
    }
    let class = if comparison.failed { "error" } else { "meta" };
    let _ = writeln!(out, "<p class=\"{class}\" id=\"verdict\">{}</p>", escape(&verdict_line(comparison)));
}

fn bands(result: &RunResult) -> Vec<Band> {
    let warmup = result.scenario.warmup_s;
    // The window's real end: a run stopped early drains from there.
    let end = warmup + result.scenario.window_s();
    let last = result.time_series.last().map_or(end, |s| s.t as f64 + 1.0);
    let mut bands = Vec::new();
    if warmup > 0.0 {
        bands.push(Band { from: 0.0, to: warmup, label: "warmup".into() });
    }
    if last > end {
        bands.push(Band { from: end, to: last, label: "drain".into() });
    }
    bands.extend(outage_bands(result, last));
    bands
}

/// The stretches in which at least one actor had no connection, overlapping
/// outages joined; one never ended runs to `last`.
fn outage_bands(result: &RunResult, last: f64) -> Vec<Band> {
    let mut spans: Vec<(f64, f64)> =
        result.outages.iter().map(|o| (o.start_s, o.length_s.map_or(last, |length| o.start_s + length))).collect();
    spans.sort_by(|a, b| a.0.total_cmp(&b.0));
    let mut joined: Vec<(f64, f64, usize)> = Vec::new();
    for (from, to) in spans {
        match joined.last_mut() {
            Some(span) if from <= span.1 => {
                span.1 = span.1.max(to);
                span.2 += 1;
            }
            _ => joined.push((from, to, 1)),
        }
    }
    joined
        .into_iter()
        .map(|(from, to, count)| Band {
            from,
            // Short outages still show: at least a tenth of a second wide.
            to: to.max(from + 0.1),
            label: format!("outage ({count} connection{} lost)", if count == 1 { "" } else { "s" }),
        })
        .collect()
}

/// The outages as a table: who lost which node when, and for how long.
fn outages(out: &mut String, result: &RunResult) {
    if result.outages.is_empty() {
        return;
    }
    let s = &result.summary;
    let _ = writeln!(
        out,
        "<h2>Outages</h2>\n<p>{} connection{} lost; {} messages re-sent, {} duplicated, {} lost of which {} had been confirmed by the broker.</p>",
        result.outages.len(),
        if result.outages.len() == 1 { "" } else { "s" },
        s.resent,
        s.duplicated,
        s.lost,
        s.confirmed_lost
    );
    out.push_str("<table id=\"outages\">\n<tr><th>actor</th><th>node lost</th><th>at (s)</th><th>without a connection</th><th>connected again to</th></tr>\n");
    for o in &result.outages {
        let _ = writeln!(
            out,
            "<tr><td>{}</td><td>{}</td><td>{:.2}</td><td>{}</td><td>{}</td></tr>",
            escape(&o.actor),
            escape(&o.node),
            o.start_s,
            o.length_s.map_or_else(|| "never reconnected".to_owned(), |l| format!("{:.3}s", l)),
            escape(o.reconnected_to.as_deref().unwrap_or("-"))
        );
    }
    out.push_str("</table>\n");
}

fn throughput_chart(result: &RunResult, baseline: Option<&RunResult>) -> Chart {
    let mut series = Vec::new();
    let mut add = |r: &RunResult, dashed: bool| {
        let prefix = if dashed { "baseline " } else { "" };
        // A second is plotted at its midpoint.
        let at = |t: u64| t as f64 + 0.5;
        series.push(Series {
            label: format!("{prefix}published"),
            points: r.time_series.iter().map(|s| (at(s.t), s.published as f64)).collect(),
            colour: 0,
            dashed,
        });
        series.push(Series {
            label: format!("{prefix}delivered"),
            points: r.time_series.iter().map(|s| (at(s.t), s.delivered as f64)).collect(),
            colour: 2,
            dashed,
        });
    };
    add(result, false);
    if let Some(b) = baseline {
        add(b, true);
    }
    Chart {
        id: "chart-throughput".into(),
        x_label: "seconds since producers started".into(),
        y_label: "messages / s".into(),
        x_scale: Scale::Linear,
        y_format: si,
        y_log: false,
        series,
        bands: bands(result),
    }
}

fn latency_chart(result: &RunResult, baseline: Option<&RunResult>) -> Chart {
    let mut series = Vec::new();
    let mut add = |r: &RunResult, dashed: bool| {
        let prefix = if dashed { "baseline " } else { "" };
        let at = |t: u64| t as f64 + 0.5;
        series.push(Series {
            label: format!("{prefix}p50"),
            points: r.time_series.iter().filter_map(|s| s.p50_us.map(|v| (at(s.t), v / 1000.0))).collect(),
            colour: 0,
            dashed,
        });
        series.push(Series {
            label: format!("{prefix}p99"),
            points: r.time_series.iter().filter_map(|s| s.p99_us.map(|v| (at(s.t), v / 1000.0))).collect(),
            colour: 1,
            dashed,
        });
    };
    add(result, false);
    if let Some(b) = baseline {
        add(b, true);
    }
    Chart {
        id: "chart-latency".into(),
        x_label: "seconds since producers started".into(),
        y_label: "latency".into(),
        x_scale: Scale::Linear,
        y_format: ms,
        y_log: true,
        series,
        bands: bands(result),
    }
}

/// The broker's own view, when the result has one: messages queued and memory.
fn broker_charts(out: &mut String, result: &RunResult) {
    let Some(view) = result.broker_view.as_ref().filter(|v| !v.samples.is_empty()) else { return };
    let _ = writeln!(
        out,
        "<h2>The broker's view</h2>\n<p class=\"hint\">Its management API ({}), read once a second.</p>",
        // The address without its scheme: the page links to nothing.
        escape(view.source.trim_start_matches("http://").trim_start_matches("https://").trim_end_matches('/'))
    );
    let mut names: Vec<&str> = Vec::new();
    for queue in view.samples.iter().flat_map(|s| &s.queues) {
        if !names.contains(&queue.name.as_str()) {
            names.push(&queue.name);
        }
    }
    // The deepest queues by name; more lines than colours would not be read.
    names.sort_by_key(|name| {
        let deepest = view.samples.iter().flat_map(|s| &s.queues).filter(|q| q.name == *name);
        std::cmp::Reverse(deepest.map(|q| q.ready + q.unacked).max().unwrap_or(0))
    });
    let mut series: Vec<Series> = names
        .iter()
        .take(5)
        .enumerate()
        .map(|(colour, name)| Series {
            label: (*name).to_owned(),
            points: view
                .samples
                .iter()
                .map(|s| (s.t, s.queues.iter().filter(|q| q.name == *name).map(|q| (q.ready + q.unacked) as f64).sum()))
                .collect(),
            colour,
            dashed: false,
        })
        .collect();
    if names.len() > 1 {
        let points = view.samples.iter().map(|s| (s.t, s.messages() as f64)).collect();
        series.push(Series { label: "all queues".into(), points, colour: 5, dashed: true });
    }
    let chart = |id: &str, y_label: &str, y_format: fn(f64) -> String, series: Vec<Series>| Chart {
        id: id.into(),
        x_label: "seconds since producers started".into(),
        y_label: y_label.into(),
        x_scale: Scale::Linear,
        y_format,
        y_log: false,
        series,
        bands: bands(result),
    };
    out.push_str(&chart("chart-broker-queued", "messages queued (ready + unacked)", si, series).render());
    let memory: Vec<(f64, f64)> = view.samples.iter().filter_map(|s| s.memory_bytes.map(|m| (s.t, m as f64))).collect();
    if !memory.is_empty() {
        let series = vec![Series { label: "memory".into(), points: memory, colour: 3, dashed: false }];
        out.push_str(&chart("chart-broker-memory", "broker memory", bytes_size, series).render());
    }
}

/// Every non-empty histogram of the run: `(id, label, run's, baseline's)`.
fn histograms(result: &RunResult, baseline: Option<&RunResult>) -> Vec<(String, String, Latency, Option<Latency>)> {
    let decode = |text: &str| histogram::decode(text).ok().filter(|h| !h.is_empty());
    let mut out = Vec::new();
    let whole = |r: &RunResult| {
        let h = &r.histograms;
        [
            ("e2e", "end to end (from the intended send time)", h.e2e.clone()),
            ("e2e-actual", "end to end (from the actual send time)", h.e2e_actual.clone()),
            ("send-delay", "send delay (actual minus intended send time)", h.send_delay.clone()),
            ("confirm", "publisher confirm latency", h.confirm.clone()),
        ]
    };
    let theirs = baseline.map(whole);
    for (index, (id, label, text)) in whole(result).into_iter().enumerate() {
        if let Some(mine) = decode(&text) {
            let base = theirs.as_ref().and_then(|t| decode(&t[index].2));
            out.push((format!("chart-hdr-{id}"), label.to_owned(), mine, base));
        }
    }
    // Per group only where there is more than one group, else it repeats the whole run's.
    if result.consumers.len() > 1 {
        for (index, group) in result.consumers.iter().enumerate() {
            if let Some(mine) = decode(&group.e2e_histogram) {
                let base = baseline
                    .and_then(|b| b.consumers.iter().find(|g| g.name == group.name))
                    .and_then(|g| decode(&g.e2e_histogram));
                out.push((
                    format!("chart-hdr-consumer-{index}"),
                    format!("consumer group `{}`: end to end", group.name),
                    mine,
                    base,
                ));
            }
        }
    }
    if result.producers.len() > 1 {
        for (index, group) in result.producers.iter().enumerate() {
            if let Some(mine) = decode(&group.confirm_histogram) {
                let base = baseline
                    .and_then(|b| b.producers.iter().find(|g| g.name == group.name))
                    .and_then(|g| decode(&g.confirm_histogram));
                out.push((
                    format!("chart-hdr-producer-{index}"),
                    format!("producer group `{}`: confirm latency", group.name),
                    mine,
                    base,
                ));
            }
        }
    }
    out
}

/// `(quantile, milliseconds)` points of a histogram's percentile curve.
pub fn percentile_curve(h: &Latency) -> Vec<(f64, f64)> {
    let mut points: Vec<(f64, f64)> = h
        .iter_quantiles(5)
        .map(|v| (v.quantile_iterated_to(), h.highest_equivalent(v.value_iterated_to()) as f64 / 1e6))
        .filter(|(q, _)| *q < 1.0)
        .collect();
    // The maximum goes where the percentiles run out: one nine per tenfold of values.
    let nines = (h.len().max(10) as f64).log10().ceil().min(6.0);
    points.retain(|(q, _)| percentile_position(*q) < nines);
    points.push((1.0 - 10f64.powf(-nines), h.max() as f64 / 1e6));
    points
}

fn distribution_chart(id: &str, label: &str, mine: &Latency, theirs: Option<&Latency>) -> Chart {
    let mut series = vec![Series {
        label: format!("this run ({} values)", mine.len()),
        points: percentile_curve(mine),
        colour: 3,
        dashed: false,
    }];
    if let Some(theirs) = theirs {
        series.push(Series {
            label: format!("baseline ({} values)", theirs.len()),
            points: percentile_curve(theirs),
            colour: 4,
            dashed: true,
        });
    }
    Chart {
        id: id.to_owned(),
        x_label: format!("percentile — {label}"),
        y_label: "latency".into(),
        x_scale: Scale::Percentile,
        y_format: ms,
        y_log: true,
        series,
        bands: Vec::new(),
    }
}

fn percentiles_cells(p: &Percentiles) -> String {
    [p.p50_us, p.p90_us, p.p99_us, p.p999_us, p.max_us].iter().map(|v| format!("<td>{}</td>", micros(*v))).collect()
}

fn groups(out: &mut String, result: &RunResult) {
    out.push_str("<h2>Groups</h2>\n<div class=\"scroll\"><table id=\"producers\"><tr><th>producer group</th><th>instances</th><th>published</th><th>msgs/s</th><th>bytes/s</th><th>confirmed</th><th>nacked</th><th>returned</th><th>confirm p50</th><th>p90</th><th>p99</th><th>p99.9</th><th>max</th></tr>\n");
    for p in &result.producers {
        let _ = writeln!(
            out,
            "<tr><td>{}</td><td>{}</td><td>{}</td><td>{}</td><td>{}</td><td>{}</td><td>{}</td><td>{}</td>{}</tr>",
            escape(&p.name),
            p.instances,
            p.published,
            si(p.publish_rate),
            bytes_rate(p.publish_bytes_rate),
            p.confirmed,
            p.nacked,
            p.returned,
            percentiles_cells(&p.confirm)
        );
    }
    out.push_str("</table></div>\n<div class=\"scroll\"><table id=\"consumers\"><tr><th>consumer group</th><th>queue</th><th>instances</th><th>consumed</th><th>msgs/s</th><th>lost</th><th>duplicated</th><th>reordered</th><th>redelivered</th><th>e2e p50</th><th>p90</th><th>p99</th><th>p99.9</th><th>max</th></tr>\n");
    for c in &result.consumers {
        let _ = writeln!(
            out,
            "<tr><td>{}</td><td>{}</td><td>{}</td><td>{}</td><td>{}</td><td>{}</td><td>{}</td><td>{}</td><td>{}</td>{}</tr>",
            escape(&c.name),
            escape(&c.queue),
            c.instances,
            c.consumed,
            si(c.consume_rate),
            c.lost,
            c.duplicated,
            c.reordered,
            c.redelivered,
            percentiles_cells(&c.e2e)
        );
    }
    out.push_str("</table></div>\n");
}

fn gates(out: &mut String, result: &RunResult) {
    if result.gates.is_empty() {
        return;
    }
    out.push_str(
        "<h2>Gates</h2>\n<table id=\"gates\"><tr><th>gate</th><th>threshold</th><th>actual</th><th>verdict</th></tr>\n",
    );
    for g in &result.gates {
        let _ = writeln!(
            out,
            "<tr class=\"{}\"><td>{}</td><td>{}</td><td>{}</td><td>{}</td></tr>",
            if g.passed { "pass" } else { "fail" },
            escape(&g.name),
            escape(&format_gate_value(&g.name, g.threshold)),
            escape(&format_gate_value(&g.name, g.actual)),
            if g.passed { "ok" } else { "FAILED" }
        );
    }
    out.push_str("</table>\n");
}

/// Whether warren itself set the pace.
fn generator(result: &RunResult) -> String {
    let g = &result.generator;
    if g.limited {
        format!("LIMITED: {}", g.reasons.join("; "))
    } else if result.broker_pace.paced {
        "not limited: it fell behind only while waiting on the broker".to_owned()
    } else {
        "kept its schedule".to_owned()
    }
}

/// How long producers waited on the broker, and whether that set the pace.
fn broker_pace(result: &RunResult) -> String {
    let pace = &result.broker_pace;
    let parts = pace.waited.parts().unwrap_or_else(|| "none".to_owned());
    if pace.paced {
        format!("SET THE PACE: {} (all producers: {parts})", pace.reasons.join("; "))
    } else {
        format!("all producers: {parts}")
    }
}

fn details(out: &mut String, result: &RunResult, baseline: Option<&RunResult>) {
    let s = &result.scenario;
    let m = &result.machine;
    let mut rows: Vec<(&str, String)> = vec![
        ("scenario file", s.file.clone()),
        (
            "duration / warmup / drain limit",
            format!(
                "{:.1}s / {:.1}s / {:.1}s (drained in {:.2}s{})",
                s.duration_s,
                s.warmup_s,
                s.drain_s,
                result.drain.seconds,
                if result.drain.complete { "" } else { ", incomplete" }
            ),
        ),
        ("rate scale", s.rate_scale.map_or_else(|| "1".to_owned(), |r| r.to_string())),
        ("vhost", s.vhost.clone()),
        ("broker", format!("{} — {}", broker_name(result), result.broker.url)),
        (
            "machine",
            format!(
                "{} {}, {} cores, {} memory{}",
                m.os,
                m.arch,
                m.cores,
                m.memory_bytes
                    .map_or_else(|| "unknown".to_owned(), |b| format!("{:.1} GiB", b as f64 / (1u64 << 30) as f64)),
                m.hostname.as_ref().map(|h| format!(", host {h}")).unwrap_or_default()
            ),
        ),
        ("git revision", result.git_revision.clone().unwrap_or_else(|| "-".to_owned())),
        ("warren", result.warren_version.clone()),
        ("generator", generator(result)),
        ("waits on the broker", broker_pace(result)),
        ("warren CPU", crate::report::table::cpu_summary(result).unwrap_or_else(|| "-".to_owned())),
    ];
    if let Some(repeat) = &result.repeat {
        let rates: Vec<String> = repeat.runs.iter().map(|r| si(r.consume_rate)).collect();
        rows.push((
            "repeated runs",
            format!(
                "{} runs, median run {} shown; consumed msgs/s: {}",
                repeat.runs.len(),
                repeat.median_run,
                rates.join(", ")
            ),
        ));
    }
    if let Some(shard) = &result.shard {
        rows.push(("shard", format!("{} of {}", shard.index, shard.count)));
    }
    if let Some(merged) = &result.merged {
        rows.push(("merged from", merged.files.join(", ")));
    }
    if let Some(b) = baseline {
        rows.push(("baseline", format!("{} started {} on {}", b.scenario.file, b.started_at, broker_name(b))));
    }
    out.push_str("<h2>Details</h2>\n<table id=\"details\">\n");
    for (key, value) in rows {
        let _ = writeln!(out, "<tr><th>{}</th><td>{}</td></tr>", escape(key), escape(&value));
    }
    out.push_str("</table>\n");
    if !result.warnings.is_empty() {
        out.push_str("<h3>Warnings</h3><ul>");
        for w in &result.warnings {
            let _ = write!(out, "<li>{}</li>", escape(w));
        }
        out.push_str("</ul>\n");
    }
    let document = serde_json::to_string_pretty(&s.document).unwrap_or_default();
    let _ = writeln!(out, "<details><summary>scenario as run</summary><pre>{}</pre></details>", escape(&document));
}

const STYLE: &str = "body{font-family:system-ui,sans-serif;margin:24px auto;max-width:920px;color:#222}\
h1{font-size:22px}h2{font-size:17px;margin-top:28px;border-bottom:1px solid #ddd}h3{font-size:14px}\
.meta{color:#555}.status{padding:2px 8px;border-radius:4px;color:#fff}.completed{background:#2ca02c}\
.interrupted{background:#ff7f0e}.failed{background:#d62728}.error{color:#d62728}.hint{color:#777;font-size:12px}\
.cards{display:flex;flex-wrap:wrap;gap:10px}.card{border:1px solid #ddd;border-radius:6px;padding:8px 14px;min-width:120px}\
.card .label{font-size:12px;color:#666}.card .value{font-size:20px;font-weight:600}.card .base{font-size:11px;color:#888}\
table{border-collapse:collapse;margin:8px 0;font-size:13px}td,th{border:1px solid #ddd;padding:3px 8px;text-align:right}\
th{background:#f6f6f6}td:first-child,th:first-child{text-align:left}tr.fail td{background:#fde0e0}\
svg.chart{display:block;margin:6px 0;max-width:100%;height:auto}.scroll{overflow-x:auto}#details td{text-align:left}pre{background:#f6f6f6;padding:8px;overflow:auto;font-size:12px}";

/// Marks each chart once the browser has laid it out, so a headless check
/// can tell drawn charts from markup that failed to render.
const SCRIPT: &str = "<script>\nfor (const svg of document.querySelectorAll('svg.chart')) {\n  const paths = svg.querySelectorAll('path.series');\n  let drawn = 0;\n  for (const p of paths) { const b = p.getBBox(); if (b.width > 0 || b.height > 0) drawn++; }\n  svg.setAttribute('data-drawn-series', String(drawn));\n}\n</script>\n";

#[cfg(test)]
mod tests {
    use super::*;
    use crate::result::sample::{result, spread_us};

    #[test]
    fn every_histogram_with_values_gets_a_chart_and_empty_ones_none() {
        let run = result("s", 1000, &spread_us(1000, 100, 5000), &[]);
        let html = render(&run, None, None);
        for id in ["chart-throughput", "chart-latency", "chart-hdr-e2e", "chart-hdr-e2e-actual"] {
            assert!(html.contains(&format!("id=\"{id}\"")), "{id}");
        }
        assert!(!html.contains("id=\"chart-hdr-confirm\""), "no confirms, no confirm chart");
        assert!(!html.contains("id=\"chart-hdr-send-delay\""));
        assert!(!html.contains("baseline"), "no baseline, no overlay");
    }

    #[test]
    fn a_run_stopped_early_drains_from_where_it_stopped() {
        let mut run = result("s", 1000, &spread_us(1000, 100, 5000), &[]);
        let drain = |run: &RunResult| bands(run).into_iter().find(|b| b.label == "drain").map(|b| b.from);
        let last = run.time_series.last().map_or(0.0, |s| s.t as f64 + 1.0);
        assert!(drain(&run).is_none_or(|from| from >= run.scenario.duration_s), "a full window: {last}");
        run.scenario.measured_s = Some(3.0);
        assert_eq!(drain(&run), Some(3.0), "the drain band starts where the window ended");
        assert!(render(&run, None, None).contains("3.0s measured of 10.0s"));
    }

    #[test]
    fn the_brokers_view_gets_its_queue_and_memory_charts() {
        use crate::result::{BrokerSample, BrokerView, QueueSample};
        let mut run = result("s", 1000, &spread_us(1000, 100, 5000), &[]);
        assert!(!render(&run, None, None).contains("chart-broker"), "no view, no broker charts");
        let sample = |t: f64, depth: u64, memory: Option<u64>| BrokerSample {
            t,
            queues: vec![
                QueueSample { name: "orders".into(), ready: depth, unacked: 1 },
                QueueSample { name: "audit".into(), ready: 0, unacked: 0 },
            ],
            memory_bytes: memory,
            ..BrokerSample::default()
        };
        run.broker_view = Some(BrokerView {
            source: "http://127.0.0.1:15672".into(),
            samples: vec![sample(0.2, 10, None), sample(1.2, 500, None)],
            ..BrokerView::default()
        });
        let html = render(&run, None, None);
        let queued = &html[html.find("id=\"chart-broker-queued\"").expect("the queue chart")..];
        assert!(queued.contains("orders") && queued.contains("all queues"), "a line per queue and their sum");
        assert!(!html.contains("chart-broker-memory"), "no memory figures, no memory chart");
        if let Some(view) = run.broker_view.as_mut() {
            view.samples[1].memory_bytes = Some(90_000_000);
        }
        assert!(render(&run, None, None).contains("id=\"chart-broker-memory\""));
    }

    #[test]
    fn a_baseline_adds_a_dashed_line_to_every_chart() {
        let run = result("s", 1000, &spread_us(1000, 100, 5000), &spread_us(1000, 50, 500));
        let base = result("s", 900, &spread_us(900, 100, 4000), &spread_us(900, 50, 400));
        let comparison = crate::compare::compare(&base, &run, &Default::default()).expect("comparable");
        let html = render(&run, Some(&base), Some(Ok(&comparison)));
        assert!(html.contains("id=\"comparison\"") && html.contains("consumed msgs/s"), "the verdicts are shown");
        assert!(html.contains("PASSED") || html.contains("FAILED"));
        let charts = html.matches("<svg class=\"chart\"").count();
        assert_eq!(charts, 5, "throughput, latency, e2e, e2e actual, confirm");
        // Throughput and latency draw two lines per run; each distribution one per run.
        assert_eq!(html.matches("stroke-dasharray=\"6 4\"><title>").count(), 2 + 2 + 3);
    }

    #[test]
    fn the_details_say_who_set_the_pace() {
        let mut run = result("s", 1000, &[1000], &[]);
        let html = render(&run, None, None);
        assert!(html.contains("<th>generator</th><td>kept its schedule</td>"), "{html}");
        assert!(html.contains("<th>waits on the broker</th><td>all producers: none</td>"), "{html}");
        run.broker_pace.paced = true;
        run.broker_pace.reasons = vec!["producer group `web` fell behind because it waited on the broker".into()];
        run.broker_pace.waited.blocked_s = 1.5;
        let html = render(&run, None, None);
        assert!(
            html.contains("<th>generator</th><td>not limited: it fell behind only while waiting on the broker</td>"),
            "{html}"
        );
        assert!(
            html.contains(
                "<th>waits on the broker</th><td>SET THE PACE: producer group `web` fell behind because it waited on \
                 the broker (all producers: connection blocked 1.50s)</td>"
            ),
            "{html}"
        );
        run.generator.limited = true;
        run.generator.reasons = vec!["a client thread was busy".into()];
        assert!(render(&run, None, None).contains("<th>generator</th><td>LIMITED: a client thread was busy</td>"));
    }

    #[test]
    fn text_from_the_result_is_escaped() {
        let mut run = result("<script>", 10, &[1000], &[]);
        run.warnings.push("a & b < c".into());
        let html = render(&run, None, None);
        assert!(!html.contains("<script>alert") && html.contains("&lt;script&gt;"));
        assert!(html.contains("a &amp; b &lt; c"));
    }

    #[test]
    fn the_percentile_curve_rises_and_ends_at_the_maximum() {
        let h = crate::result::sample::histogram_of(&spread_us(1000, 100, 5000));
        let curve = percentile_curve(&h);
        assert!(curve.windows(2).all(|w| w[0].0 <= w[1].0 && w[0].1 <= w[1].1), "{curve:?}");
        let last = curve.last().expect("points");
        assert_eq!(last.1, h.max() as f64 / 1e6);
        assert!((percentile_position(last.0) - 3.0).abs() < 1e-6, "1000 values reach 99.9%");
    }
}
