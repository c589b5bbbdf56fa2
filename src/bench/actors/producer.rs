//! A producer: publishes on its schedule (or as fast as its confirm window
//! allows), stamps every body, and records send delay and confirm latency.
//!
//! The hot loop keeps up to `max_in_flight` publishes in one
//! `FuturesUnordered` instead of awaiting each publish and confirm in turn:
//! lapin then writes many frames per wake-up of its I/O loop, which is where
//! a naive loop spends its CPU.
//!
//! While its window is full the producer waits on the broker; [`WaitMeter`]
//! records for how long and on what, so a producer that fell behind its
//! schedule can tell the broker's pace from its own.

use std::future::Future;
use std::pin::Pin;
use std::sync::Arc;
use std::sync::atomic::{AtomicU64, Ordering};
use std::time::Duration;

use futures::FutureExt;
use futures::stream::{FuturesUnordered, StreamExt};
use lapin::options::BasicPublishOptions;
use lapin::types::ShortString;
use lapin::{BasicProperties, Channel, Confirmation};
use rand::{Rng, SeedableRng};
use tokio_util::sync::CancellationToken;

use super::pace::Pacer;
use super::wait::{Progress, WaitMeter, Waited};
use super::{ActorError, Clock, Schedule, field_table};
use crate::bench::link::BlockedTime;
use crate::bench::message::{HEADER_LEN, Stamp};
use crate::bench::metrics::series::SeriesRecorder;
use crate::bench::scenario::{ProducerGroup, SizeSpec};
use crate::result::histogram::{self, Latency};

/// Window used when publisher confirms are off: publishes still overlap, bounded.
const UNCONFIRMED_WINDOW: usize = 64;

/// What one producer instance does.
#[derive(Debug, Clone)]
pub struct ProducerPlan {
    /// Producer id carried in every body; index into the run's producer list.
    pub id: u32,
    /// Index of its group in the scenario.
    pub group: usize,
    /// Group name, for errors.
    pub group_name: String,
    /// Instance number within the group.
    pub instance: u32,
    /// Target exchange.
    pub exchange: String,
    /// Routing keys used in turn.
    pub routing_keys: Vec<String>,
    /// Body sizes.
    pub size: SizeSpec,
    /// Properties of every message.
    pub properties: BasicProperties,
    /// Mandatory flag.
    pub mandatory: bool,
    /// Confirm window when confirms are on.
    pub confirms: Option<u32>,
    /// When each message is due.
    pub schedule: Schedule,
    /// Stop after this many messages.
    pub limit: Option<u64>,
    /// How long the broker has blocked the producer's connection.
    pub blocked: Arc<BlockedTime>,
}

impl ProducerPlan {
    /// The properties a group's messages carry.
    pub fn properties(group: &ProducerGroup) -> BasicProperties {
        let p = &group.properties;
        let mut properties = BasicProperties::default();
        if group.persistent {
            properties = properties.with_delivery_mode(2);
        }
        if !p.headers.is_empty() {
            properties = properties.with_headers(field_table(p.headers.iter()));
        }
        if let Some(content_type) = &p.content_type {
            properties = properties.with_content_type(content_type.as_str().into());
        }
        if let Some(priority) = p.priority {
            properties = properties.with_priority(priority);
        }
        if let Some(ms) = p.expiration_ms {
            properties = properties.with_expiration(ms.to_string().into());
        }
        if let Some(kind) = &p.kind {
            properties = properties.with_type(kind.as_str().into());
        }
        if let Some(app_id) = &p.app_id {
            properties = properties.with_app_id(app_id.as_str().into());
        }
        properties
    }
}

/// What a producer hands back when it ends.
#[derive(Debug)]
pub struct ProducerReport {
    /// Producer id.
    pub id: u32,
    /// Group index.
    pub group: usize,
    /// Messages published over the whole run (sequence numbers `0..published`).
    pub published: u32,
    /// First sequence number sent in the measured window (`published` if none).
    pub measured_from: u32,
    /// Bytes published in the measured window.
    pub measured_bytes: u64,
    /// Confirms (acks) received for measured messages.
    pub confirmed: u64,
    /// Negative confirms for any message.
    pub nacked: u64,
    /// Returned (unroutable mandatory) messages.
    pub returned: u64,
    /// Messages still unconfirmed when the producer stopped waiting.
    pub unconfirmed: u64,
    /// Actual minus intended send time, measured window, scheduled producers only.
    pub send_delay: Latency,
    /// The part of each send delay after the producer last waited on the broker:
    /// the delay that was the producer's own.
    pub own_send_delay: Latency,
    /// Time spent waiting on the broker in the measured window.
    pub waited: Waited,
    /// Publish to confirm, measured window.
    pub confirm: Latency,
    /// Why it stopped early, if it did.
    pub failure: Option<ActorError>,
}

impl ProducerReport {
    /// Messages published in the measured window.
    pub fn measured(&self) -> u64 {
        u64::from(self.published - self.measured_from)
    }
}

type Pending<'c> = Pin<Box<dyn Future<Output = Done> + Send + 'c>>;

struct Done {
    sent_ns: u64,
    outcome: Result<Confirmation, lapin::Error>,
}

struct Tally<'a> {
    clock: &'a Clock,
    series: &'a mut SeriesRecorder,
    report: &'a mut ProducerReport,
    confirms: bool,
}

impl Tally<'_> {
    fn settle(&mut self, done: Done) -> Result<(), lapin::Error> {
        let now = self.clock.now_ns();
        let counters = self.series.at(now);
        match done.outcome {
            Ok(Confirmation::NotRequested) => Ok(()),
            Ok(confirmation) => {
                let returned = matches!(&confirmation, Confirmation::Ack(Some(_)) | Confirmation::Nack(Some(_)));
                if returned {
                    counters.returned += 1;
                    self.report.returned += 1;
                }
                if confirmation.is_ack() {
                    counters.confirmed += 1;
                    if self.clock.measured(done.sent_ns) {
                        self.report.confirmed += 1;
                        histogram::record(&mut self.report.confirm, now.saturating_sub(done.sent_ns));
                    }
                } else {
                    counters.nacked += 1;
                    self.report.nacked += 1;
                }
                Ok(())
            }
            Err(error) => {
                counters.errors += 1;
                Err(error)
            }
        }
    }

    fn window(&self, plan: &ProducerPlan) -> usize {
        match plan.confirms {
            Some(window) if self.confirms => window as usize,
            _ => UNCONFIRMED_WINDOW,
        }
    }
}

/// Runs one producer until the measured window ends, its limit is reached,
/// or `stop` fires (Ctrl-C); then waits for outstanding confirms until the
/// drain ends or `abort` fires.
pub async fn run(
    channel: Channel,
    plan: ProducerPlan,
    clock: Clock,
    mut series: SeriesRecorder,
    stop: CancellationToken,
    abort: CancellationToken,
) -> ProducerReport {
    let cancel = stop;
    let mut report = ProducerReport {
        id: plan.id,
        group: plan.group,
        published: 0,
        measured_from: 0,
        measured_bytes: 0,
        confirmed: 0,
        nacked: 0,
        returned: 0,
        unconfirmed: 0,
        send_delay: histogram::new_latency(),
        own_send_delay: histogram::new_latency(),
        waited: Waited::default(),
        confirm: histogram::new_latency(),
        failure: None,
    };
    // Publishes lapin has written, and when the last was: what the wait meter needs to tell a
    // wait for writes from a wait for confirms. Declared before the futures that update them.
    let written = AtomicU64::new(0);
    let last_write_ns = AtomicU64::new(0);
    let progress = |handed: u32, now_ns: u64| Progress {
        handed: u64::from(handed),
        written: written.load(Ordering::Relaxed),
        last_write_ns: last_write_ns.load(Ordering::Relaxed),
        blocked: plan.blocked.until(clock.epoch + Duration::from_nanos(now_ns)),
    };
    let mut meter = WaitMeter::new(clock.measure_start_ns, clock.measure_end_ns);
    let exchange = ShortString::from(plan.exchange.as_str());
    let keys: Vec<ShortString> = plan.routing_keys.iter().map(|k| ShortString::from(k.as_str())).collect();
    let options = BasicPublishOptions { mandatory: plan.mandatory, immediate: false };
    let mut rng = rand::rngs::SmallRng::from_rng(&mut rand::rng());
    let mut in_flight: FuturesUnordered<Pending<'_>> = FuturesUnordered::new();
    // Once the window is full, wait until half of it has drained before publishing again:
    // publishes then go out in bursts that lapin writes together, instead of one wake-up
    // of its I/O thread per message.
    let mut refilling = true;
    let mut pacer = Pacer::new();
    let mut measured_from: Option<u32> = None;
    let mut seq: u32 = 0;
    let mut tally =
        Tally { clock: &clock, series: &mut series, report: &mut report, confirms: plan.confirms.is_some() };
    let window = tally.window(&plan);
    let fail = |source: lapin::Error| ActorError::Publish {
        group: plan.group_name.clone(),
        instance: plan.instance,
        exchange: plan.exchange.clone(),
        source,
    };
    let mut failure = None;

    'publish: loop {
        // Settle whatever completed without waiting; this poll is also what hands new publishes to lapin.
        while let Some(Some(done)) = in_flight.next().now_or_never() {
            if let Err(error) = tally.settle(done) {
                failure = Some(fail(error));
                break 'publish;
            }
        }
        if cancel.is_cancelled() || plan.limit.is_some_and(|limit| u64::from(seq) >= limit) || seq == u32::MAX {
            break;
        }
        let now = clock.now_ns();
        let intended = plan.schedule.intended_ns(seq);
        let due = intended.unwrap_or(now);
        if due >= clock.measure_end_ns || now >= clock.measure_end_ns {
            break;
        }
        if in_flight.len() >= window {
            refilling = false;
        } else if in_flight.len() <= window / 2 {
            refilling = true;
        }
        if !refilling {
            meter.hold(now, due, progress(seq, now));
        } else if meter.holding() {
            meter.release(now, progress(seq, now));
        }
        if due > now || !refilling {
            let wake = clock.instant(due.max(now));
            let timer = due > now;
            tokio::select! {
                biased;
                _ = cancel.cancelled() => break,
                done = in_flight.next(), if !in_flight.is_empty() => {
                    if let Some(done) = done && let Err(error) = tally.settle(done) {
                        failure = Some(fail(error));
                        break 'publish;
                    }
                }
                _ = pacer.sleep_until(wake), if timer => {}
            }
            continue;
        }
        let sent_ns = clock.now_ns();
        // The window may have closed since `now` was read: a message stamped after it is not
        // measured by consumers, so it must not be published (and expected) either.
        if sent_ns >= clock.measure_end_ns {
            break;
        }
        let size = match &plan.size {
            SizeSpec::Fixed(size) => *size,
            SizeSpec::Range { min, max } => rng.random_range(*min..=*max),
            SizeSpec::Choices(choices) => pick(choices, &mut rng),
        };
        let size = size.max(HEADER_LEN);
        if clock.measured(sent_ns) {
            if measured_from.is_none() {
                measured_from = Some(seq);
            }
            tally.report.measured_bytes += size as u64;
            if let Some(intended) = intended {
                histogram::record(&mut tally.report.send_delay, sent_ns.saturating_sub(intended));
                let own_from = intended.max(meter.released_ns());
                histogram::record(&mut tally.report.own_send_delay, sent_ns.saturating_sub(own_from));
            }
        }
        tally.series.at(sent_ns).published += 1;
        let stamp = Stamp { seq, sent_ns, producer: plan.id };
        let (channel, exchange, key, properties) =
            (&channel, &exchange, &keys[seq as usize % keys.len()], &plan.properties);
        let (written, last_write_ns, clock) = (&written, &last_write_ns, &clock);
        // The future captures only references and numbers, so boxing it copies a few words;
        // the body, the clones and lapin's own (large) future are built in place on first poll.
        in_flight.push(Box::pin(async move {
            let mut body = vec![0u8; size];
            stamp.write(&mut body);
            let publish = channel.basic_publish(exchange.clone(), key.clone(), options, &body, properties.clone());
            let outcome = match publish.await {
                Ok(confirm) => {
                    written.fetch_add(1, Ordering::Relaxed);
                    last_write_ns.store(clock.now_ns(), Ordering::Relaxed);
                    confirm.await
                }
                Err(error) => Err(error),
            };
            Done { sent_ns, outcome }
        }));
        seq += 1;
    }

    if meter.holding() {
        let now = clock.now_ns();
        meter.release(now, progress(seq, now));
    }
    tally.report.waited = meter.waited();

    // Producers have stopped; wait for outstanding confirms, but never past the drain.
    let drain_end = clock.instant(clock.drain_end_ns);
    while failure.is_none() && !in_flight.is_empty() {
        tokio::select! {
            biased;
            _ = abort.cancelled() => break,
            _ = tokio::time::sleep_until(drain_end) => break,
            Some(done) = in_flight.next() => {
                if let Err(error) = tally.settle(done) {
                    failure = Some(fail(error));
                }
            }
        }
    }
    tally.report.unconfirmed = in_flight.len() as u64;
    series.flush();
    report.published = seq;
    report.measured_from = measured_from.unwrap_or(seq);
    report.failure = failure;
    report
}

fn pick(choices: &[(usize, u32)], rng: &mut impl Rng) -> usize {
    let total: u64 = choices.iter().map(|(_, w)| u64::from(*w)).sum();
    let mut ticket = rng.random_range(0..total.max(1));
    for (size, weight) in choices {
        if ticket < u64::from(*weight) {
            return *size;
        }
        ticket -= u64::from(*weight);
    }
    choices.last().map(|(size, _)| *size).unwrap_or(HEADER_LEN)
}
