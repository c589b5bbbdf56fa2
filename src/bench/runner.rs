//! Runs a scenario: connects every actor, starts them on one clock, walks
//! the phases (warmup, measure, drain) and collects what each actor hands back.
//!
//! ```text
//!   connect consumers ─▶ connect producers ─▶ t0 ─ warmup ─▶ measure ─▶ producers stop
//!        ─▶ drain (until every expected message arrived, or the drain limit) ─▶ consumers stop
//! ```
//!
//! Every wait is bounded: nothing outlives duration + drain + [`GRACE`]; an
//! actor that does not stop by then is aborted and the run marked failed.

use std::collections::BTreeMap;
use std::sync::atomic::{AtomicU64, Ordering};
use std::sync::{Arc, Mutex};
use std::time::{Duration, Instant};

use amq_protocol::frame::{AMQPContentHeader, AMQPFrame, WriteContext, gen_frame};
use anyhow::Context;
use lapin::options::{BasicConsumeOptions, BasicQosOptions, ConfirmSelectOptions};
use lapin::types::FieldTable;
use lapin::{Channel, Connection};
use tokio::task::JoinHandle;
use tokio_util::sync::CancellationToken;

use crate::bench::actors::consumer::{self, ConsumerPlan, ConsumerReport, Shared};
use crate::bench::actors::producer::{self, ProducerPlan, ProducerReport};
use crate::bench::actors::{Clock, Schedule};
use crate::bench::host;
use crate::bench::link::{self, Link};
use crate::bench::metrics::series::{Aggregate, SeriesRecorder, SharedAggregate};
use crate::bench::progress::{Reporter, Snapshot};
use crate::bench::scenario::{AckMode, ConnectionLayout, Scenario};

/// How long actors get to stop after their phase ended before they are aborted.
pub const GRACE: Duration = Duration::from_secs(5);

const TICK: Duration = Duration::from_millis(200);

/// What a run produced, complete or not.
#[derive(Debug)]
pub struct RunOutput {
    /// The clock the run used.
    pub clock: Clock,
    /// Producer reports, by producer id.
    pub producers: Vec<ProducerReport>,
    /// Consumer reports.
    pub consumers: Vec<ConsumerReport>,
    /// Every producer's schedule, by id.
    pub schedules: Arc<[Schedule]>,
    /// Per-second figures.
    pub aggregate: SharedAggregate,
    /// When producers were told to stop, ns since the epoch (the measured window's real end).
    pub producers_stopped_ns: u64,
    /// When the drain ended, ns since the epoch.
    pub drain_ended_ns: u64,
    /// CPU seconds warren's client used in the measured window (see
    /// [`host::cpu::ClientThreads`]); `None` when the window never began.
    pub window_cpu: Option<f64>,
    /// The largest share of the measured window one client thread spent
    /// running or waiting for a CPU; `None` when the window never began.
    pub busiest_thread: Option<f64>,
    /// True when every expected delivery arrived before the drain limit.
    pub drain_complete: bool,
    /// The first failure, if any.
    pub failure: Option<String>,
    /// True when Ctrl-C stopped the run.
    pub interrupted: bool,
}

struct Connected {
    links: Vec<Link>,
    channels: Vec<Channel>,
    /// Each with the index of its link in `links`.
    consumers: Vec<(Channel, lapin::Consumer, ConsumerPlan, usize)>,
    producers: Vec<(Channel, ProducerPlan, usize)>,
}

/// Expected first deliveries per consumed queue, given what producers published so far.
pub type Expectation<'a> = dyn Fn(&[ProducerReport]) -> BTreeMap<String, u64> + Send + Sync + 'a;

/// Runs `scenario` against the broker at `amqp_url` (already pointing at the run's vhost).
///
/// `interrupt` is Ctrl-C: producers stop, consumers drain, the output is
/// marked interrupted. `expected` says how many first deliveries each queue
/// should see, so the drain can end as soon as everything arrived.
pub async fn run(
    scenario: &Scenario,
    amqp_url: &str,
    reporter: &mut Reporter,
    interrupt: CancellationToken,
    expected: &Expectation<'_>,
) -> anyhow::Result<RunOutput> {
    let epoch = Instant::now();
    let connected = connect(scenario, amqp_url).await?;
    // Stops the drivers of ended connections' runtimes, however this function returns.
    let ended_links = CancellationToken::new();
    let _stop_driving = ended_links.clone().drop_guard();
    tokio::spawn(link::keep_driven(connected.links.iter().map(Link::watch).collect(), ended_links.clone()));
    let aggregate: SharedAggregate = Arc::new(Mutex::new(Aggregate::default()));

    let start_ns = u64::try_from(epoch.elapsed().as_nanos()).unwrap_or(0);
    let measure_start_ns = start_ns + nanos(scenario.warmup);
    let measure_end_ns = measure_start_ns + nanos(scenario.duration);
    let clock = Clock {
        epoch,
        start_ns,
        measure_start_ns,
        measure_end_ns,
        drain_end_ns: measure_end_ns + nanos(scenario.drain),
    };

    let mut plans_by_id: Vec<ProducerPlan> = connected.producers.iter().map(|(_, p, _)| p.clone()).collect();
    plans_by_id.sort_by_key(|p| p.id);
    let schedules: Arc<[Schedule]> =
        plans_by_id.iter().map(|p| Schedule { start_ns, ..p.schedule }).collect::<Vec<_>>().into();

    let fault = CancellationToken::new();
    let stop_producers = CancellationToken::new();
    let abort = CancellationToken::new();
    let stop_consumers = CancellationToken::new();
    let failure: Arc<Mutex<Option<String>>> = Arc::new(Mutex::new(None));

    let mut arrived: BTreeMap<String, Arc<AtomicU64>> = BTreeMap::new();
    let mut consumer_tasks: Vec<JoinHandle<ConsumerReport>> = Vec::new();
    for (channel, stream, plan, link) in connected.consumers {
        let counter = arrived.entry(plan.queue.clone()).or_default().clone();
        let shared = Shared { schedules: schedules.clone(), arrived: counter };
        let series = SeriesRecorder::new(aggregate.clone(), start_ns);
        let (stop, fault, failure) = (stop_consumers.clone(), fault.clone(), failure.clone());
        consumer_tasks.push(connected.links[link].spawn(async move {
            let report = consumer::run(channel, stream, plan, clock, shared, series, stop).await;
            if let Some(error) = &report.failure {
                note_failure(&failure, format!("{:#}", anyhow::Error::new(error.clone())));
                fault.cancel();
            }
            report
        }));
    }
    let mut producer_tasks: Vec<JoinHandle<ProducerReport>> = Vec::new();
    for (channel, mut plan, link) in connected.producers {
        plan.schedule.start_ns = start_ns;
        let series = SeriesRecorder::new(aggregate.clone(), start_ns);
        let (stop, abort, fault, failure) = (stop_producers.clone(), abort.clone(), fault.clone(), failure.clone());
        producer_tasks.push(connected.links[link].spawn(async move {
            let report = producer::run(channel, plan, clock, series, stop, abort).await;
            if let Some(error) = &report.failure {
                note_failure(&failure, format!("{:#}", anyhow::Error::new(error.clone())));
                fault.cancel();
            }
            report
        }));
    }

    // Warmup and measure: until the window ends, every producer reached its limit, Ctrl-C, or a fault.
    let mut interrupted = false;
    let mut ticker = tokio::time::interval(TICK);
    // The client's threads at the window's start; this task polls on the run's own thread.
    let mut window_start = None;
    loop {
        let now = clock.now_ns();
        if window_start.is_none() && now >= measure_start_ns {
            window_start = Some(host::cpu::ClientThreads::sample());
        }
        if now >= measure_end_ns || producer_tasks.iter().all(JoinHandle::is_finished) {
            break;
        }
        tokio::select! {
            _ = tokio::time::sleep_until(clock.instant(measure_start_ns)), if window_start.is_none() => {}
            _ = tokio::time::sleep_until(clock.instant(measure_end_ns)) => {}
            _ = ticker.tick() => reporter.update(&snapshot(&clock, &aggregate, "measure")),
            _ = interrupt.cancelled() => { interrupted = true; break; }
            _ = fault.cancelled() => break,
        }
    }
    let producers_stopped_ns = clock.now_ns().min(measure_end_ns);
    stop_producers.cancel();
    let window_end = window_start.flatten().and_then(|start| Some((start, host::cpu::ClientThreads::sample()?)));
    let window_s = clock.window_ns(producers_stopped_ns) as f64 / 1e9;
    let window_cpu = window_end.as_ref().map(|(start, end)| end.cpu_seconds_since(start));
    let busiest_thread = window_end.as_ref().map(|(start, end)| end.busiest_share_since(start, window_s));
    if fault.is_cancelled() {
        abort.cancel();
        stop_consumers.cancel();
    }

    // Producers wait for their last confirms, at most until the drain limit.
    let drain_limit = if interrupted { clock.now_ns() + nanos(scenario.drain) } else { clock.drain_end_ns };
    let producers_done = {
        let mut deadline_abort = Box::pin(tokio::time::sleep_until(clock.instant(drain_limit)));
        // Producers stop at once when aborted; one that does not within the grace is left behind.
        let hard_deadline = tokio::time::sleep_until(clock.instant(drain_limit) + GRACE);
        tokio::pin!(hard_deadline);
        let joined = futures::future::join_all(producer_tasks.iter_mut());
        tokio::pin!(joined);
        loop {
            tokio::select! {
                results = &mut joined => break results,
                _ = &mut deadline_abort, if !abort.is_cancelled() => abort.cancel(),
                _ = &mut hard_deadline => {
                    note_failure(&failure, format!("producers did not stop within {}s of the drain's end", GRACE.as_secs()));
                    break Vec::new();
                }
                _ = ticker.tick() => reporter.update(&snapshot(&clock, &aggregate, "drain")),
                _ = fault.cancelled(), if !abort.is_cancelled() => abort.cancel(),
            }
        }
    };
    let mut producers = Vec::new();
    for result in producers_done {
        match result {
            Ok(report) => producers.push(report),
            Err(error) => note_failure(&failure, format!("a producer task ended abnormally: {error}")),
        }
    }
    producers.sort_by_key(|r| r.id);

    // Drain: consumers go on until every expected message arrived or the limit passed.
    let wanted = expected(&producers);
    let mut drain_complete = false;
    while !stop_consumers.is_cancelled() {
        let done = wanted
            .iter()
            .all(|(queue, want)| arrived.get(queue).is_some_and(|got| got.load(Ordering::Relaxed) >= *want));
        if done {
            drain_complete = true;
            break;
        }
        if clock.now_ns() >= drain_limit {
            break;
        }
        tokio::select! {
            _ = tokio::time::sleep(Duration::from_millis(10)) => {}
            _ = fault.cancelled() => break,
            _ = interrupt.cancelled(), if !interrupted => { interrupted = true; break; }
        }
        reporter.update(&snapshot(&clock, &aggregate, "drain"));
    }
    let drain_ended_ns = clock.now_ns();
    stop_consumers.cancel();

    let mut consumers = Vec::new();
    let grace = tokio::time::sleep(GRACE);
    tokio::pin!(grace);
    for task in consumer_tasks.iter_mut() {
        tokio::select! {
            result = &mut *task => match result {
                Ok(report) => consumers.push(report),
                Err(error) => note_failure(&failure, format!("a consumer task ended abnormally: {error}")),
            },
            _ = &mut grace => {
                note_failure(&failure, format!("consumers did not stop within {}s of the drain's end", GRACE.as_secs()));
                break;
            }
        }
    }
    // Finished tasks ignore this; one still running past its grace is stopped here.
    for task in &consumer_tasks {
        task.abort();
    }
    for task in &producer_tasks {
        task.abort();
    }
    ended_links.cancel();
    close(connected.channels, connected.links.into_iter().map(|link| link.connection).collect()).await;
    reporter.update(&snapshot(&clock, &aggregate, "done"));
    let failure = failure.lock().ok().and_then(|mut f| f.take());
    Ok(RunOutput {
        clock,
        producers,
        consumers,
        schedules,
        aggregate,
        producers_stopped_ns,
        drain_ended_ns,
        window_cpu,
        busiest_thread,
        drain_complete,
        failure,
        interrupted,
    })
}

fn note_failure(slot: &Mutex<Option<String>>, message: String) {
    if let Ok(mut slot) = slot.lock()
        && slot.is_none()
    {
        *slot = Some(message);
    }
}

fn nanos(duration: Duration) -> u64 {
    u64::try_from(duration.as_nanos()).unwrap_or(u64::MAX / 4)
}

fn snapshot(clock: &Clock, aggregate: &SharedAggregate, phase: &'static str) -> Snapshot {
    let now = clock.now_ns();
    let elapsed = Duration::from_nanos(now.saturating_sub(clock.start_ns));
    let remaining = Duration::from_nanos(clock.measure_end_ns.saturating_sub(now));
    // Actors hand a second over when they first record in the next one, so look a little behind.
    let second = now.saturating_sub(clock.start_ns).saturating_sub(250_000_000) / 1_000_000_000;
    let (last, totals) = match aggregate.lock() {
        Ok(aggregate) => {
            let last = second.checked_sub(1).and_then(|s| aggregate.second(s)).map(|(c, h)| {
                let p99 = if h.is_empty() { None } else { Some(h.value_at_quantile(0.99) as f64 / 1000.0) };
                (*c, p99)
            });
            (last, aggregate.totals())
        }
        Err(_) => (None, Default::default()),
    };
    let phase = if phase == "measure" && now < clock.measure_start_ns { "warmup" } else { phase };
    Snapshot {
        phase,
        elapsed,
        remaining,
        publish_rate: last.map_or(0, |(c, _)| c.published),
        deliver_rate: last.map_or(0, |(c, _)| c.delivered),
        p99_us: last.and_then(|(_, p)| p),
        errors: totals.errors + totals.nacked,
        published: totals.published,
        delivered: totals.delivered,
    }
}

/// Closes channels first, then connections, each politely and within the grace.
async fn close(channels: Vec<Channel>, connections: Vec<Connection>) {
    let open = channels.iter().filter(|c| c.status().connected());
    let closing = open.map(|c| c.close(200, "warren bench done".into()));
    let _ = tokio::time::timeout(GRACE, futures::future::join_all(closing)).await;
    let open = connections.iter().filter(|c| c.status().connected());
    let closing = open.map(|c| c.close(200, "warren bench done".into()));
    let _ = tokio::time::timeout(GRACE, futures::future::join_all(closing)).await;
}

/// The `frame_max` warren's connections ask for, unless the URL names one.
///
/// lapin keeps two ring buffers of 32 frames per connection, sized by the
/// negotiated `frame_max`: 8 MiB per connection at RabbitMQ's default of
/// 128 KiB, gigabytes for a few hundred simulated clients. The smallest
/// power of two that still carries the scenario's largest body and its
/// content header in one frame each (4 KiB at least, 128 KiB at most) puts the
/// same bytes on the wire with buffers a fraction of that size.
fn frame_max_for(scenario: &Scenario, amqp_url: &str) -> Option<usize> {
    let named = url::Url::parse(amqp_url).ok()?.query_pairs().any(|(key, _)| key == "frame_max");
    if named {
        return None;
    }
    let largest = scenario
        .producers
        .iter()
        .map(|group| group.size.max().max(content_header_len(&ProducerPlan::properties(group))))
        .max()
        .unwrap_or(0);
    // A frame adds 8 bytes around its payload.
    Some((largest + 8).next_power_of_two().clamp(4096, 131_072))
}

/// Payload bytes of a content header carrying `properties`.
fn content_header_len(properties: &lapin::BasicProperties) -> usize {
    let header = AMQPContentHeader { class_id: 60, body_size: 0, properties: properties.clone() };
    match gen_frame(&AMQPFrame::Header(1, header))(WriteContext::from(Vec::new())) {
        Ok(written) => written.write.len(),
        // Cannot be encoded at all: lapin will say so on publish; ask for the largest frames meanwhile.
        Err(_) => 131_072,
    }
}

/// `amqp_url` with `frame_max` added to its query.
fn with_frame_max(amqp_url: &str, frame_max: usize) -> String {
    match url::Url::parse(amqp_url) {
        Ok(mut url) => {
            url.query_pairs_mut().append_pair("frame_max", &frame_max.to_string());
            url.to_string()
        }
        Err(_) => amqp_url.to_owned(),
    }
}

async fn connect(scenario: &Scenario, amqp_url: &str) -> anyhow::Result<Connected> {
    let url = match frame_max_for(scenario, amqp_url) {
        Some(frame_max) => with_frame_max(amqp_url, frame_max),
        None => amqp_url.to_owned(),
    };
    host::limits::allow_open_files();
    let mut connected =
        Connected { links: Vec::new(), channels: Vec::new(), consumers: Vec::new(), producers: Vec::new() };
    for (index, group) in scenario.consumers.iter().enumerate() {
        for instance in 0..group.instances {
            let label = format!("consumer {}#{instance}", group.name);
            let link = Link::open(&url, amqp_url, format!("warren bench {label}")).await?;
            let channel =
                link.connection.create_channel().await.with_context(|| format!("opening a channel for {label}"))?;
            if let Some(global) = group.global_prefetch {
                channel
                    .basic_qos(global, BasicQosOptions { global: true })
                    .await
                    .with_context(|| format!("setting the global prefetch of {label}"))?;
            }
            channel
                .basic_qos(group.prefetch, BasicQosOptions { global: false })
                .await
                .with_context(|| format!("setting the prefetch of {label}"))?;
            let options = BasicConsumeOptions {
                no_ack: group.ack == AckMode::Auto,
                exclusive: group.exclusive,
                ..Default::default()
            };
            let stream = channel
                .basic_consume(group.queue.as_str().into(), "".into(), options, FieldTable::default())
                .await
                .with_context(|| format!("{label}: subscribing to queue `{}`", group.queue))?;
            let plan = ConsumerPlan {
                group: index,
                group_name: group.name.clone(),
                instance,
                queue: group.queue.clone(),
                ack: group.ack,
                reject: group.reject,
                work: group.work,
            };
            connected.channels.push(channel.clone());
            connected.consumers.push((channel, stream, plan, connected.links.len()));
            connected.links.push(link);
        }
    }
    let mut id = 0u32;
    for (index, group) in scenario.producers.iter().enumerate() {
        let properties = ProducerPlan::properties(group);
        let shared = match group.layout {
            ConnectionLayout::Shared => {
                let link = Link::open(&url, amqp_url, format!("warren bench producers {}", group.name)).await?;
                connected.links.push(link);
                Some(connected.links.len() - 1)
            }
            ConnectionLayout::PerInstance => None,
        };
        for instance in 0..group.instances {
            let label = format!("producer {}#{instance}", group.name);
            let link = match shared {
                Some(link) => link,
                None => {
                    connected.links.push(Link::open(&url, amqp_url, format!("warren bench {label}")).await?);
                    connected.links.len() - 1
                }
            };
            let channel = connected.links[link]
                .connection
                .create_channel()
                .await
                .with_context(|| format!("opening a channel for {label}"))?;
            if group.confirms.is_some() {
                channel
                    .confirm_select(ConfirmSelectOptions::default())
                    .await
                    .with_context(|| format!("enabling publisher confirms for {label}"))?;
            }
            let plan = ProducerPlan {
                id,
                group: index,
                group_name: group.name.clone(),
                instance,
                exchange: group.exchange.clone(),
                routing_keys: group.routing_keys.clone(),
                size: group.size.clone(),
                properties: properties.clone(),
                mandatory: group.mandatory,
                confirms: group.confirms,
                schedule: Schedule { start_ns: 0, interval_ns: group.rate.map(|rate| 1e9 / rate) },
                limit: scenario.message_limit,
                blocked: connected.links[link].blocked.clone(),
            };
            connected.channels.push(channel.clone());
            connected.producers.push((channel, plan, link));
            id += 1;
        }
    }
    Ok(connected)
}

/// [`run`] on a runtime of its own: the thread that connects, walks the
/// phases and collects reports, while the actors run on their connections'
/// I/O threads ([`link`]). The embedded broker, when there is one, keeps the
/// command's runtime to itself.
pub async fn run_on_own_thread(
    scenario: Scenario,
    amqp_url: String,
    mut reporter: Reporter,
    interrupt: CancellationToken,
    routes: crate::bench::routing::Routes,
) -> (anyhow::Result<RunOutput>, Reporter) {
    let (done, result) = tokio::sync::oneshot::channel();
    let spawned = std::thread::Builder::new().name("warren-bench".into()).spawn(move || {
        let output = match tokio::runtime::Builder::new_current_thread().enable_all().build() {
            Ok(runtime) => runtime.block_on(async {
                let expected = |reports: &[ProducerReport]| routes.expected_all(reports);
                run(&scenario, &amqp_url, &mut reporter, interrupt, &expected).await
            }),
            Err(error) => Err(anyhow::Error::new(error).context("starting the bench's runtime")),
        };
        let _ = done.send((output, reporter));
    });
    if let Err(error) = spawned {
        return (Err(anyhow::Error::new(error).context("starting the bench's thread")), Reporter::Silent);
    }
    result
        .await
        .unwrap_or_else(|_| (Err(anyhow::anyhow!("the bench's thread ended without a result")), Reporter::Silent))
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::bench::scenario::load::load_str;
    use std::path::Path;

    fn scenario(producer: &str) -> Scenario {
        let text = format!(
            "name: t\ntopology: {{ vhosts: {{ /: {{ queues: {{ q: {{}} }} }} }} }}\nduration: 1s\n\
             producers:\n  - {{ name: p, exchange: \"\", routing_key: q, {producer} }}\n"
        );
        load_str(Path::new("t.yaml"), &text).expect("a valid scenario")
    }

    #[test]
    fn frame_max_is_the_smallest_power_of_two_that_carries_the_largest_body() {
        let url = "amqp://guest:guest@127.0.0.1:5672/%2f";
        assert_eq!(frame_max_for(&scenario("message: { size: 16 }"), url), Some(4096));
        assert_eq!(frame_max_for(&scenario("message: { size: 4088 }"), url), Some(4096));
        assert_eq!(frame_max_for(&scenario("message: { size: 4089 }"), url), Some(8192));
        assert_eq!(frame_max_for(&scenario("message: { size: { min: 16, max: 20000 } }"), url), Some(32768));
        assert_eq!(frame_max_for(&scenario("message: { size: 1000000 }"), url), Some(131_072));
    }

    #[test]
    fn large_headers_raise_frame_max_and_a_frame_max_in_the_url_is_kept() {
        let header = "x".repeat(6000);
        let with_headers = scenario(&format!("message: {{ size: 16, headers: {{ big: {header} }} }}"));
        assert_eq!(frame_max_for(&with_headers, "amqp://127.0.0.1/%2f"), Some(8192));
        assert_eq!(frame_max_for(&with_headers, "amqp://127.0.0.1/%2f?frame_max=131072"), None);
        assert_eq!(
            with_frame_max("amqp://u:p@127.0.0.1:5672/%2f?heartbeat=10", 4096),
            "amqp://u:p@127.0.0.1:5672/%2f?heartbeat=10&frame_max=4096"
        );
    }
}
