//! Turning what the actors handed back into the run's figures: merged
//! histograms, loss per queue, rates, the time series, and who set the pace
//! ([`blame`]: the broker, or warren itself).

pub mod blame;

use std::collections::{BTreeMap, BTreeSet};

use crate::bench::actors::producer::ProducerReport;
use crate::bench::metrics::tracker::Seen;
use crate::bench::routing::Routes;
use crate::bench::runner::RunOutput;
use crate::bench::scenario::{ProducerGroup, Scenario};
use crate::result::histogram::{self, Latency, Percentiles};
use crate::result::{
    BrokerPace, BrokerWait, ConsumerGroupResult, DrainInfo, Histograms, LatencySummary, OutageResult,
    ProducerGroupResult, SecondResult, Summary,
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
    /// Every connection an actor lost, in the order they happened.
    pub outages: Vec<OutageResult>,
}

/// Computes the run's figures.
pub fn analyse(scenario: &Scenario, output: &RunOutput, routes: &Routes) -> Analysis {
    let window_s = output.clock.window_ns(output.producers_stopped_ns) as f64 / 1e9;
    let mut totals = Totals::new();
    let producers = producer_groups(scenario, output, window_s, &mut totals);
    let queues = queue_figures(scenario, output, routes);
    let consumers = consumer_groups(scenario, output, &queues, window_s, &mut totals);
    let blame = producers.blame;
    Analysis {
        summary: summary(output, &producers.groups, &consumers, &totals),
        producers: producers.groups,
        consumers,
        time_series: time_series(output),
        histograms: totals.histograms(),
        drain: DrainInfo {
            seconds: output.drain_ended_ns.saturating_sub(output.producers_stopped_ns) as f64 / 1e9,
            delivered: output.consumers.iter().map(|r| r.delivered_in_drain).sum(),
            complete: output.drain_complete,
        },
        generator_reasons: blame.generator.into_iter().chain(blame::busy_client(output.busiest_thread)).collect(),
        broker_pace: BrokerPace { paced: !blame.broker.is_empty(), reasons: blame.broker, waited: producers.waited },
        outages: outages(output),
    }
}

/// Every actor's outages, by when they began, timed from the producers' start.
fn outages(output: &RunOutput) -> Vec<OutageResult> {
    let start_ns = output.clock.start_ns;
    let all = output.producers.iter().flat_map(|r| &r.outages).chain(output.consumers.iter().flat_map(|r| &r.outages));
    let mut outages: Vec<_> = all.collect();
    outages.sort_by_key(|outage| outage.start_ns);
    outages
        .into_iter()
        .map(|outage| OutageResult {
            actor: outage.actor.clone(),
            node: outage.node.clone(),
            start_s: outage.start_ns.saturating_sub(start_ns) as f64 / 1e9,
            length_s: outage.end_ns.map(|end| end.saturating_sub(outage.start_ns) as f64 / 1e9),
            reconnected_to: outage.reconnected_to.clone(),
        })
        .collect()
}

/// Events per second of the measured window.
fn per_s(count: u64, window_s: f64) -> f64 {
    count as f64 / window_s
}

/// The whole run's latency histograms, merged over every group.
struct Totals {
    e2e: Latency,
    e2e_actual: Latency,
    send_delay: Latency,
    confirm: Latency,
}

impl Totals {
    fn new() -> Self {
        Totals {
            e2e: histogram::new_latency(),
            e2e_actual: histogram::new_latency(),
            send_delay: histogram::new_latency(),
            confirm: histogram::new_latency(),
        }
    }

    fn latency(&self) -> LatencySummary {
        LatencySummary {
            e2e: Percentiles::of(&self.e2e),
            e2e_actual: Percentiles::of(&self.e2e_actual),
            send_delay: Percentiles::of(&self.send_delay),
            confirm: Percentiles::of(&self.confirm),
        }
    }

    fn histograms(&self) -> Histograms {
        Histograms {
            unit: "ns".into(),
            encoding: "hdrhistogram-v2-deflate-base64".into(),
            e2e: histogram::encode(&self.e2e),
            e2e_actual: histogram::encode(&self.e2e_actual),
            send_delay: histogram::encode(&self.send_delay),
            confirm: histogram::encode(&self.confirm),
        }
    }
}

/// The producer groups' results, who set their pace, and how long they waited on the broker in all.
struct ProducerSide {
    groups: Vec<ProducerGroupResult>,
    blame: Blame,
    waited: BrokerWait,
}

fn producer_groups(scenario: &Scenario, output: &RunOutput, window_s: f64, totals: &mut Totals) -> ProducerSide {
    let mut side = ProducerSide { groups: Vec::new(), blame: Blame::default(), waited: BrokerWait::default() };
    for (index, group) in scenario.producers.iter().enumerate() {
        let reports: Vec<&ProducerReport> = output.producers.iter().filter(|r| r.group == index).collect();
        let merged = ProducerMerge::of(&reports);
        side.waited.add(&merged.waited);
        histogram::merge(&mut totals.send_delay, &merged.send_delay);
        histogram::merge(&mut totals.confirm, &merged.confirm);
        let result = producer_group(group, &reports, &merged, window_s);
        if let Some(target_rate) = result.target_rate {
            side.blame.judge(&GroupPace {
                name: &group.name,
                instances: group.instances,
                target_rate,
                window_s,
                published: result.published,
                send_delay_p99_us: result.send_delay.p99_us,
                own_send_delay_p99_us: result.own_send_delay.p99_us,
                waited: merged.waited,
            });
        }
        side.groups.push(result);
    }
    side
}

/// One producer group's histograms and waits, merged over its instances.
struct ProducerMerge {
    send_delay: Latency,
    own_send_delay: Latency,
    confirm: Latency,
    waited: BrokerWait,
}

impl ProducerMerge {
    fn of(reports: &[&ProducerReport]) -> Self {
        let mut merged = ProducerMerge {
            send_delay: histogram::new_latency(),
            own_send_delay: histogram::new_latency(),
            confirm: histogram::new_latency(),
            waited: BrokerWait::default(),
        };
        for report in reports {
            histogram::merge(&mut merged.send_delay, &report.send_delay);
            histogram::merge(&mut merged.own_send_delay, &report.own_send_delay);
            histogram::merge(&mut merged.confirm, &report.confirm);
            merged.waited.add(&BrokerWait::from(report.waited));
        }
        merged
    }
}

fn producer_group(
    group: &ProducerGroup,
    reports: &[&ProducerReport],
    merged: &ProducerMerge,
    window_s: f64,
) -> ProducerGroupResult {
    let published: u64 = reports.iter().map(|r| r.measured()).sum();
    let bytes: u64 = reports.iter().map(|r| r.measured_bytes).sum();
    ProducerGroupResult {
        name: group.name.clone(),
        instances: group.instances,
        published,
        confirmed: reports.iter().map(|r| r.confirmed).sum(),
        nacked: reports.iter().map(|r| r.nacked).sum(),
        returned: reports.iter().map(|r| r.returned).sum(),
        resent: reports.iter().map(|r| r.resent).sum(),
        publish_rate: per_s(published, window_s),
        publish_bytes_rate: per_s(bytes, window_s),
        target_rate: group.rate.map(|rate| rate * f64::from(group.instances)),
        send_delay: Percentiles::of(&merged.send_delay),
        confirm: Percentiles::of(&merged.confirm),
        send_delay_histogram: histogram::encode(&merged.send_delay),
        confirm_histogram: histogram::encode(&merged.confirm),
        broker_wait: merged.waited,
        own_send_delay: Percentiles::of(&merged.own_send_delay),
        own_send_delay_histogram: histogram::encode(&merged.own_send_delay),
    }
}

/// One queue's delivery figures, counted once however many groups consume from it.
#[derive(Debug, Clone, Copy, Default)]
struct QueueFigures {
    /// First deliveries expected of messages sent in the measured window.
    expected: u64,
    /// Messages routed to the queue that never arrived, over the whole run.
    lost: u64,
    /// Of those, the ones the broker had confirmed.
    confirmed_lost: u64,
    /// Messages that reached more than one of the queue's consumers.
    cross_duplicated: u64,
}

/// Who reads a queue's messages: every consumer of a queue together, or on a
/// stream each consumer on its own (by its index among the reports), since
/// each reads every message.
type Readers<'s> = (&'s str, Option<usize>);

/// Per queue (per consumer on a stream): merges the consumers' views, then
/// counts what never arrived.
fn queue_figures<'s>(
    scenario: &'s Scenario,
    output: &RunOutput,
    routes: &Routes,
) -> BTreeMap<Readers<'s>, QueueFigures> {
    let producer_count = output.schedules.len();
    // What the queue's consumers saw together, and the sum of what each saw on its own.
    let mut by_queue: BTreeMap<Readers<'s>, (Vec<Seen>, u64)> = BTreeMap::new();
    for (index, report) in output.consumers.iter().enumerate() {
        let group = scenario.consumers.get(report.group);
        let queue = group.map_or("", |g| g.queue.as_str());
        let reader = group.is_some_and(|g| g.stream).then_some(index);
        let entry = by_queue.entry((queue, reader)).or_insert_with(|| (vec![Seen::default(); producer_count], 0));
        for (merged, seen) in entry.0.iter_mut().zip(&report.tracker.producers) {
            entry.1 += seen.distinct_first();
            merged.merge(seen);
        }
    }
    let mut figures = BTreeMap::new();
    for ((queue, reader), (seen, distinct_sum)) in by_queue {
        let (mut expected, mut lost, mut confirmed_lost) = (0, 0, 0);
        for report in &output.producers {
            expected += routes.expected(report, queue, report.measured_from, report.published);
            let want = routes.expected(report, queue, 0, report.published);
            let keys = routes.keys(report.group);
            let reaches = |seq: u32| routes.reaches(report.group, seq as usize % keys, queue);
            let nothing = Seen::default();
            let seen = seen.get(report.id as usize).unwrap_or(&nothing);
            lost += want.saturating_sub(seen.arrived(0..report.published, reaches));
            let confirmed = |seq: u32| reaches(seq) && report.confirmed_seqs.contains(seq);
            confirmed_lost += seen.missing(0..report.published, confirmed).count() as u64;
        }
        let merged_distinct: u64 = seen.iter().map(Seen::distinct_first).sum();
        let cross_duplicated = distinct_sum.saturating_sub(merged_distinct);
        figures.insert((queue, reader), QueueFigures { expected, lost, confirmed_lost, cross_duplicated });
    }
    figures
}

/// The consumer groups' results; a queue's figures go to the first group that
/// consumes from it, a stream's to each group, from its own consumers.
fn consumer_groups(
    scenario: &Scenario,
    output: &RunOutput,
    queues: &BTreeMap<Readers<'_>, QueueFigures>,
    window_s: f64,
    totals: &mut Totals,
) -> Vec<ConsumerGroupResult> {
    let mut consumers = Vec::new();
    let mut counted_queues = BTreeSet::new();
    for (index, group) in scenario.consumers.iter().enumerate() {
        let reports: Vec<_> = output.consumers.iter().filter(|r| r.group == index).collect();
        let (mut e2e, mut e2e_actual) = (histogram::new_latency(), histogram::new_latency());
        for report in &reports {
            histogram::merge(&mut e2e, &report.e2e);
            histogram::merge(&mut e2e_actual, &report.e2e_actual);
        }
        histogram::merge(&mut totals.e2e, &e2e);
        histogram::merge(&mut totals.e2e_actual, &e2e_actual);
        let queue = if group.stream {
            let own = output.consumers.iter().enumerate().filter(|(_, r)| r.group == index);
            own.filter_map(|(reader, _)| queues.get(&(group.queue.as_str(), Some(reader)))).fold(
                QueueFigures::default(),
                |sum, one| QueueFigures {
                    expected: sum.expected + one.expected,
                    lost: sum.lost + one.lost,
                    confirmed_lost: sum.confirmed_lost + one.confirmed_lost,
                    cross_duplicated: 0,
                },
            )
        } else if counted_queues.insert(group.queue.clone()) {
            queues.get(&(group.queue.as_str(), None)).copied().unwrap_or_default()
        } else {
            QueueFigures::default()
        };
        consumers.push(ConsumerGroupResult {
            name: group.name.clone(),
            queue: group.queue.clone(),
            instances: group.instances,
            consumed: reports.iter().map(|r| r.consumed).sum(),
            expected: queue.expected,
            lost: queue.lost,
            confirmed_lost: queue.confirmed_lost,
            duplicated: reports.iter().map(|r| r.tracker.duplicated).sum::<u64>() + queue.cross_duplicated,
            reordered: reports.iter().map(|r| r.tracker.reordered).sum(),
            redelivered: reports.iter().map(|r| r.redelivered).sum(),
            rejected: reports.iter().map(|r| r.rejected).sum(),
            consume_rate: per_s(reports.iter().map(|r| r.delivered_in_window).sum(), window_s),
            consume_bytes_rate: per_s(reports.iter().map(|r| r.consumed_bytes).sum(), window_s),
            e2e: Percentiles::of(&e2e),
            e2e_actual: Percentiles::of(&e2e_actual),
            e2e_histogram: histogram::encode(&e2e),
            e2e_actual_histogram: histogram::encode(&e2e_actual),
        });
    }
    consumers
}

/// The whole run's figures: the groups' added up, and errors from every source.
fn summary(
    output: &RunOutput,
    producers: &[ProducerGroupResult],
    consumers: &[ConsumerGroupResult],
    totals: &Totals,
) -> Summary {
    let foreign: u64 = output.consumers.iter().map(|r| r.tracker.foreign).sum();
    let nacked: u64 = output.producers.iter().map(|r| r.nacked).sum();
    let series_errors = output.aggregate.lock().map(|a| a.totals().errors).unwrap_or(0);
    Summary {
        published: producers.iter().map(|p| p.published).sum(),
        consumed: consumers.iter().map(|c| c.consumed).sum(),
        expected: consumers.iter().map(|c| c.expected).sum(),
        lost: consumers.iter().map(|c| c.lost).sum(),
        confirmed_lost: consumers.iter().map(|c| c.confirmed_lost).sum(),
        resent: producers.iter().map(|p| p.resent).sum(),
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
        latency: totals.latency(),
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
