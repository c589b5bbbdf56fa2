//! Turning what the actors handed back into the run's figures: merged
//! histograms, loss per queue, rates, the time series, and who set the pace
//! ([`blame`]: the broker, or warren itself).

pub mod blame;

use std::collections::{BTreeMap, BTreeSet};

use crate::bench::actors::producer::ProducerReport;
use crate::bench::metrics::tracker::Seen;
use crate::bench::routing::Routes;
use crate::bench::runner::RunOutput;
use crate::bench::scenario::Scenario;
use crate::result::histogram::{self, Latency, Percentiles};
use crate::result::{
    BrokerPace, BrokerWait, ConsumerGroupResult, DrainInfo, Histograms, LatencySummary, ProducerGroupResult,
    SecondResult, Summary,
};
use blame::{Blame, GroupPace};

/// Everything the result file and the table need.
#[derive(Debug)]
pub struct Analysis {
    /// Whole-run figures.
    pub summary: Summary,
    /// Per producer group.
    pub producers: Vec<ProducerGroupResult>,
    /// Per consumer group.
    pub consumers: Vec<ConsumerGroupResult>,
    /// Per second.
    pub time_series: Vec<SecondResult>,
    /// Merged histograms.
    pub histograms: Histograms,
    /// Drain phase.
    pub drain: DrainInfo,
    /// Reasons the generator may have set the pace (late by itself, a thread without idle time).
    pub generator_reasons: Vec<String>,
    /// How long producers waited on the broker, and where that set their pace.
    pub broker_pace: BrokerPace,
}

/// Computes the run's figures.
pub fn analyse(scenario: &Scenario, output: &RunOutput, routes: &Routes) -> Analysis {
    let clock = &output.clock;
    let window_s = clock.window_ns(output.producers_stopped_ns) as f64 / 1e9;
    let per_s = |count: u64| count as f64 / window_s;

    let mut totals =
        [histogram::new_latency(), histogram::new_latency(), histogram::new_latency(), histogram::new_latency()];
    let [e2e_all, e2e_actual_all, send_delay_all, confirm_all] = &mut totals;

    // Producer groups.
    let mut producers = Vec::new();
    let mut blame = Blame::default();
    let mut waited_all = BrokerWait::default();
    for (index, group) in scenario.producers.iter().enumerate() {
        let reports: Vec<&ProducerReport> = output.producers.iter().filter(|r| r.group == index).collect();
        let (mut send_delay, mut own_send_delay, mut confirm) =
            (histogram::new_latency(), histogram::new_latency(), histogram::new_latency());
        let mut waited = BrokerWait::default();
        for report in &reports {
            histogram::merge(&mut send_delay, &report.send_delay);
            histogram::merge(&mut own_send_delay, &report.own_send_delay);
            histogram::merge(&mut confirm, &report.confirm);
            waited.add(&BrokerWait::from(report.waited));
        }
        waited_all.add(&waited);
        histogram::merge(send_delay_all, &send_delay);
        histogram::merge(confirm_all, &confirm);
        let published: u64 = reports.iter().map(|r| r.measured()).sum();
        let bytes: u64 = reports.iter().map(|r| r.measured_bytes).sum();
        let target_rate = group.rate.map(|rate| rate * f64::from(group.instances));
        let delay = Percentiles::of(&send_delay);
        let own_delay = Percentiles::of(&own_send_delay);
        if let Some(target_rate) = target_rate {
            blame.judge(&GroupPace {
                name: &group.name,
                instances: group.instances,
                target_rate,
                window_s,
                published,
                send_delay_p99_us: delay.p99_us,
                own_send_delay_p99_us: own_delay.p99_us,
                waited,
            });
        }
        producers.push(ProducerGroupResult {
            name: group.name.clone(),
            instances: group.instances,
            published,
            confirmed: reports.iter().map(|r| r.confirmed).sum(),
            nacked: reports.iter().map(|r| r.nacked).sum(),
            returned: reports.iter().map(|r| r.returned).sum(),
            publish_rate: per_s(published),
            publish_bytes_rate: per_s(bytes),
            target_rate,
            send_delay: delay,
            confirm: Percentiles::of(&confirm),
            send_delay_histogram: histogram::encode(&send_delay),
            confirm_histogram: histogram::encode(&confirm),
            broker_wait: waited,
            own_send_delay: own_delay,
            own_send_delay_histogram: histogram::encode(&own_send_delay),
        });
    }

    // Per queue: merge every consumer's view, then count what never arrived.
    let producer_count = output.schedules.len();
    let mut by_queue: BTreeMap<&str, (Vec<Seen>, u64)> = BTreeMap::new();
    for report in &output.consumers {
        let queue = scenario.consumers.get(report.group).map_or("", |g| g.queue.as_str());
        let entry = by_queue.entry(queue).or_insert_with(|| (vec![Seen::default(); producer_count], 0));
        for (merged, seen) in entry.0.iter_mut().zip(&report.tracker.producers) {
            entry.1 += seen.distinct_first();
            merged.merge(seen);
        }
    }
    let mut queue_figures: BTreeMap<&str, (u64, u64, u64)> = BTreeMap::new(); // expected (measured), lost, cross-consumer duplicates
    for (queue, (seen, distinct_sum)) in &by_queue {
        let (mut expected, mut lost) = (0, 0);
        for report in &output.producers {
            expected += routes.expected(report, queue, report.measured_from, report.published);
            let want = routes.expected(report, queue, 0, report.published);
            let keys = routes.keys(report.group);
            let got = seen.get(report.id as usize).map_or(0, |s| {
                s.arrived(0..report.published, |seq| routes.reaches(report.group, seq as usize % keys, queue))
            });
            lost += want.saturating_sub(got);
        }
        let merged_distinct: u64 = seen.iter().map(Seen::distinct_first).sum();
        queue_figures.insert(queue, (expected, lost, distinct_sum.saturating_sub(merged_distinct)));
    }

    // Consumer groups.
    let mut consumers = Vec::new();
    let mut counted_queues = BTreeSet::new();
    for (index, group) in scenario.consumers.iter().enumerate() {
        let reports: Vec<_> = output.consumers.iter().filter(|r| r.group == index).collect();
        let (mut e2e, mut e2e_actual) = (histogram::new_latency(), histogram::new_latency());
        for report in &reports {
            histogram::merge(&mut e2e, &report.e2e);
            histogram::merge(&mut e2e_actual, &report.e2e_actual);
        }
        histogram::merge(e2e_all, &e2e);
        histogram::merge(e2e_actual_all, &e2e_actual);
        let first_for_queue = counted_queues.insert(group.queue.clone());
        let (expected, lost, cross) = if first_for_queue {
            queue_figures.get(group.queue.as_str()).copied().unwrap_or_default()
        } else {
            (0, 0, 0)
        };
        let consumed: u64 = reports.iter().map(|r| r.consumed).sum();
        consumers.push(ConsumerGroupResult {
            name: group.name.clone(),
            queue: group.queue.clone(),
            instances: group.instances,
            consumed,
            expected,
            lost,
            duplicated: reports.iter().map(|r| r.tracker.duplicated).sum::<u64>() + cross,
            reordered: reports.iter().map(|r| r.tracker.reordered).sum(),
            redelivered: reports.iter().map(|r| r.redelivered).sum(),
            rejected: reports.iter().map(|r| r.rejected).sum(),
            consume_rate: per_s(reports.iter().map(|r| r.delivered_in_window).sum()),
            consume_bytes_rate: per_s(reports.iter().map(|r| r.consumed_bytes).sum()),
            e2e: Percentiles::of(&e2e),
            e2e_actual: Percentiles::of(&e2e_actual),
            e2e_histogram: histogram::encode(&e2e),
            e2e_actual_histogram: histogram::encode(&e2e_actual),
        });
    }

    let foreign: u64 = output.consumers.iter().map(|r| r.tracker.foreign).sum();
    let nacked: u64 = output.producers.iter().map(|r| r.nacked).sum();
    let series_errors = output.aggregate.lock().map(|a| a.totals().errors).unwrap_or(0);
    let summary = Summary {
        published: producers.iter().map(|p| p.published).sum(),
        consumed: consumers.iter().map(|c| c.consumed).sum(),
        expected: consumers.iter().map(|c| c.expected).sum(),
        lost: consumers.iter().map(|c| c.lost).sum(),
        duplicated: consumers.iter().map(|c| c.duplicated).sum(),
        reordered: consumers.iter().map(|c| c.reordered).sum(),
        redelivered: consumers.iter().map(|c| c.redelivered).sum(),
        rejected: consumers.iter().map(|c| c.rejected).sum(),
        confirmed: producers.iter().map(|p| p.confirmed).sum(),
        nacked,
        returned: producers.iter().map(|p| p.returned).sum(),
        unconfirmed: output.producers.iter().map(|r| r.unconfirmed).sum(),
        errors: nacked + foreign + series_errors,
        publish_rate: add_up(producers.iter().map(|p| p.publish_rate)),
        consume_rate: add_up(consumers.iter().map(|c| c.consume_rate)),
        publish_bytes_rate: add_up(producers.iter().map(|p| p.publish_bytes_rate)),
        consume_bytes_rate: add_up(consumers.iter().map(|c| c.consume_bytes_rate)),
        latency: LatencySummary {
            e2e: Percentiles::of(e2e_all),
            e2e_actual: Percentiles::of(e2e_actual_all),
            send_delay: Percentiles::of(send_delay_all),
            confirm: Percentiles::of(confirm_all),
        },
    };

    let drain = DrainInfo {
        seconds: output.drain_ended_ns.saturating_sub(output.producers_stopped_ns) as f64 / 1e9,
        delivered: output.consumers.iter().map(|r| r.delivered_in_drain).sum(),
        complete: output.drain_complete,
    };
    Analysis {
        summary,
        producers,
        consumers,
        time_series: time_series(output),
        histograms: Histograms {
            unit: "ns".into(),
            encoding: "hdrhistogram-v2-deflate-base64".into(),
            e2e: histogram::encode(e2e_all),
            e2e_actual: histogram::encode(e2e_actual_all),
            send_delay: histogram::encode(send_delay_all),
            confirm: histogram::encode(confirm_all),
        },
        drain,
        generator_reasons: blame.generator.into_iter().chain(blame::busy_client(output.busiest_thread)).collect(),
        broker_pace: BrokerPace { paced: !blame.broker.is_empty(), reasons: blame.broker, waited: waited_all },
    }
}

/// The sum of `rates`, 0 when there are none: `Iterator::sum` of no `f64` is -0.0, which the
/// summary would print as `-0/s` for a scenario without consumers.
fn add_up(rates: impl Iterator<Item = f64>) -> f64 {
    rates.fold(0.0, |sum, rate| sum + rate)
}

fn time_series(output: &RunOutput) -> Vec<SecondResult> {
    let clock = &output.clock;
    let Ok(aggregate) = output.aggregate.lock() else { return Vec::new() };
    let quantile = |h: &Latency, q: f64| (!h.is_empty()).then(|| h.value_at_quantile(q) as f64 / 1000.0);
    aggregate
        .seconds()
        .map(|(t, c, h)| {
            let at = clock.start_ns + t * 1_000_000_000;
            let phase = if at < clock.measure_start_ns {
                "warmup"
            } else if at < output.producers_stopped_ns {
                "measure"
            } else {
                "drain"
            };
            SecondResult {
                t,
                phase: phase.into(),
                published: c.published,
                confirmed: c.confirmed,
                nacked: c.nacked,
                returned: c.returned,
                delivered: c.delivered,
                acked: c.acked,
                redelivered: c.redelivered,
                errors: c.errors,
                p50_us: quantile(h, 0.5),
                p99_us: quantile(h, 0.99),
                e2e_histogram: (!h.is_empty()).then(|| histogram::encode(h)),
            }
        })
        .collect()
}
