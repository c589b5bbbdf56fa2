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
//!
//! When its connection drops, the producer connects to the next node that
//! answers ([`Failover`]) and sends again, with the same stamp, every message
//! the broker had not confirmed ([`Unconfirmed`]); then it goes on with its
//! schedule, so the messages due meanwhile go out late and the outage shows
//! in send delay and intended-time latency.
//!
//! A `protocol: stream` producer ([`run_stream`]) runs the same loop over
//! RabbitMQ's stream protocol: its window holds messages handed to the
//! stream client (which batches them) until the broker confirms them. When
//! its connection drops it declares a producer again through the first node
//! that answers ([`StreamReconnect`]) and sends again what was unconfirmed.

use std::future::Future;
use std::pin::Pin;
use std::sync::Arc;
use std::sync::atomic::{AtomicU64, Ordering};
use std::time::Duration;

use futures::FutureExt;
use futures::stream::{FuturesUnordered, StreamExt};
use lapin::options::{BasicPublishOptions, ConfirmSelectOptions};
use lapin::types::ShortString;
use lapin::{BasicProperties, Channel, Confirmation, Connection, ConnectionStatus};
use rabbitmq_stream_client::types::Message;
use rand::{Rng, SeedableRng};
use tokio_util::sync::CancellationToken;

use super::pace::Pacer;
use super::unconfirmed::Unconfirmed;
use super::wait::{Progress, WaitMeter, Waited};
use super::{ActorError, Clock, Outage, Schedule, StreamFailure, field_table};
use crate::bench::link::{BlockedTime, Failover, Link, ReconnectError, connection_lost};
use crate::bench::message::{HEADER_LEN, Stamp};
use crate::bench::metrics::series::SeriesRecorder;
use crate::bench::metrics::tracker::SeqSet;
use crate::bench::scenario::{ProducerGroup, SizeSpec};
use crate::bench::stream_link::{StreamProducer, StreamReconnect};
use crate::result::histogram::{self, Latency};

/// Window used when publisher confirms are off: publishes still overlap, bounded.
const UNCONFIRMED_WINDOW: usize = 64;

/// How long after a reconnection a nack means the new channel came up while
/// its queue was still changing leader, rather than a refusal to count.
///
/// RabbitMQ 3.10 can nack every publish of a channel opened while a quorum
/// queue elects a new leader, for as long as that channel lives; a channel
/// opened a moment later publishes normally. So a nack in this window sends
/// the producer to a fresh channel (the message stays unconfirmed, and is
/// re-sent), at most [`MAX_RENEWALS`] times per outage.
const RENEW_WINDOW: Duration = Duration::from_secs(5);

/// How many fresh channels one outage may take (see [`RENEW_WINDOW`]).
const MAX_RENEWALS: u32 = 5;

/// The pause before a fresh channel replaces one whose publishes were refused.
const RENEW_PAUSE: Duration = Duration::from_millis(200);

/// Why a producer left its channel.
#[derive(Debug)]
enum Broken {
    /// lapin's error: the channel or the connection failed.
    Lapin(lapin::Error),
    /// Over the stream protocol: the publish or the connection failed.
    Stream(StreamFailure),
    /// The broker nacked a publish on a channel opened by a reconnection (see [`RENEW_WINDOW`]).
    Refused,
}

impl From<lapin::Error> for Broken {
    fn from(error: lapin::Error) -> Self {
        Broken::Lapin(error)
    }
}

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
    /// The node its layout gave it: reconnections try it first.
    pub home: usize,
    /// The node its first connection went to.
    pub node: usize,
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

    /// A channel on `connection` for this producer, in confirm mode when it wants confirms.
    pub async fn open_channel(&self, connection: &Connection) -> Result<Channel, lapin::Error> {
        let channel = connection.create_channel().await?;
        if self.confirms.is_some() {
            channel.confirm_select(ConfirmSelectOptions::default()).await?;
        }
        Ok(channel)
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
    /// Messages sent again after a lost connection (the broker had not confirmed them).
    pub resent: u64,
    /// Every sequence number the broker confirmed (acked), over the whole run.
    pub confirmed_seqs: SeqSet,
    /// Its connection's losses, and when it was connected again.
    pub outages: Vec<Outage>,
    /// Why it stopped early, if it did.
    pub failure: Option<ActorError>,
}

impl ProducerReport {
    /// Messages published in the measured window.
    pub fn measured(&self) -> u64 {
        u64::from(self.published - self.measured_from)
    }

    fn new(plan: &ProducerPlan) -> Self {
        ProducerReport {
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
            resent: 0,
            confirmed_seqs: SeqSet::default(),
            outages: Vec::new(),
            failure: None,
        }
    }
}

type Pending<'c> = Pin<Box<dyn Future<Output = Done> + Send + 'c>>;

struct Done {
    seq: u32,
    sent_ns: u64,
    outcome: Result<Confirmation, Broken>,
}

/// Where a producer publishes now.
struct Attached {
    channel: Channel,
    status: ConnectionStatus,
    node: usize,
    /// A connection opened mid-run, kept open while the producer uses it.
    _link: Option<Arc<Link>>,
}

/// Runs one producer until the measured window ends, its limit is reached,
/// or `stop` fires (Ctrl-C); then waits for outstanding confirms until the
/// drain ends or `abort` fires. A lost connection is replaced by one to the
/// next node that answers, unless reconnection is off.
#[allow(clippy::too_many_arguments)]
pub async fn run(
    channel: Channel,
    status: ConnectionStatus,
    plan: ProducerPlan,
    clock: Clock,
    series: SeriesRecorder,
    stop: CancellationToken,
    abort: CancellationToken,
    failover: Failover,
) -> ProducerReport {
    // Declared before the futures that update it.
    let writes = Writes::default();
    let mut state = Publishing::new(&plan, clock, series, &writes);
    let mut attached = Attached { channel, status, node: plan.node, _link: None };
    let failure = loop {
        let sink = Sink::amqp(&attached.channel, &plan);
        let error = match state.attached(sink, &stop, &abort).await {
            Ok(()) => break None,
            Err(Broken::Refused) => {
                tokio::select! {
                    _ = tokio::time::sleep(RENEW_PAUSE) => {}
                    _ = abort.cancelled() => break None,
                }
                match state.reattach(&failover, attached.node, &abort, false).await {
                    Ok(next) => attached = next,
                    Err(failure) => break failure,
                }
                continue;
            }
            Err(Broken::Lapin(error)) => error,
            Err(Broken::Stream(failure)) => break Some(state.fail_stream(failure)),
        };
        let lost = failover.give_up_after.is_some()
            && !abort.is_cancelled()
            && connection_lost(&attached.status, Some(&error)).await;
        if !lost {
            break Some(state.fail(error));
        }
        match state.reattach(&failover, attached.node, &abort, true).await {
            Ok(next) => attached = next,
            Err(failure) => break failure,
        }
    };
    state.finish(failure)
}

/// Runs one `protocol: stream` producer as [`run`] runs an AMQP one, on a
/// stream producer already declared. When its connection drops (or a publish
/// fails), it declares a producer again through the first node that answers
/// and sends again what was not confirmed, unless reconnection is off.
pub async fn run_stream(
    mut stream: StreamProducer,
    plan: ProducerPlan,
    clock: Clock,
    series: SeriesRecorder,
    stop: CancellationToken,
    abort: CancellationToken,
    reconnect: Option<StreamReconnect>,
) -> ProducerReport {
    let writes = Writes::default();
    let mut state = Publishing::new(&plan, clock, series, &writes);
    let failure = loop {
        let failure = match state.attached(Sink::Stream(&stream), &stop, &abort).await {
            // Refusals renew AMQP channels after a reconnection only.
            Ok(()) | Err(Broken::Refused) => break None,
            Err(Broken::Lapin(error)) => break Some(state.fail(error)),
            Err(Broken::Stream(failure)) => failure,
        };
        let Some(reconnect) = reconnect.as_ref().filter(|_| !abort.is_cancelled()) else {
            break Some(state.fail_stream(failure));
        };
        tracing::info!("{}: {:#}", reconnect.name, anyhow::Error::new(state.fail_stream(failure)));
        close_stream(&stream).await;
        match state.reopen_stream(reconnect, &stream.node, &abort).await {
            Ok(next) => stream = next,
            Err(failure) => break failure,
        }
    };
    let report = state.finish(failure);
    close_stream(&stream).await;
    report
}

/// Closes a stream producer, bounded: on a dead connection the client would wait for the broker's reply.
async fn close_stream(stream: &StreamProducer) {
    let _ = tokio::time::timeout(Duration::from_secs(2), stream.producer.clone().close()).await;
}

/// Publishes lapin (or the stream client) has written, and when the last was: what the wait meter
/// needs to tell a wait for writes from a wait for confirms.
#[derive(Default)]
struct Writes {
    count: AtomicU64,
    last_ns: AtomicU64,
}

/// Where a producer's messages go.
enum Sink<'a> {
    /// An AMQP channel, an exchange and routing keys used in turn.
    Amqp {
        channel: &'a Channel,
        exchange: ShortString,
        keys: Vec<ShortString>,
        options: BasicPublishOptions,
        properties: &'a BasicProperties,
    },
    /// A stream, over the stream protocol.
    Stream(&'a StreamProducer),
}

impl<'a> Sink<'a> {
    fn amqp(channel: &'a Channel, plan: &'a ProducerPlan) -> Self {
        Sink::Amqp {
            channel,
            exchange: ShortString::from(plan.exchange.as_str()),
            keys: plan.routing_keys.iter().map(|k| ShortString::from(k.as_str())).collect(),
            options: BasicPublishOptions { mandatory: plan.mandatory, immediate: false },
            properties: &plan.properties,
        }
    }
}

/// What every publish of one producer shares: where its messages go, and
/// what counts their writes.
struct Publisher<'a> {
    sink: Sink<'a>,
    writes: &'a Writes,
    clock: &'a Clock,
}

impl Publisher<'_> {
    /// One message's publish and confirm, as one future.
    #[inline]
    fn publish(&self, stamp: Stamp, size: usize) -> Pending<'_> {
        match &self.sink {
            Sink::Amqp { channel, exchange, keys, options, properties } => {
                let key = &keys[stamp.seq as usize % keys.len()];
                // The future captures only references and numbers, so boxing it copies a few words;
                // the body, the clones and lapin's own (large) future are built in place on first poll.
                Box::pin(async move {
                    let mut body = vec![0u8; size];
                    stamp.write(&mut body);
                    let publish =
                        channel.basic_publish(exchange.clone(), key.clone(), *options, &body, (*properties).clone());
                    let outcome = match publish.await {
                        Ok(confirm) => {
                            self.wrote();
                            confirm.await.map_err(Broken::Lapin)
                        }
                        Err(error) => Err(Broken::Lapin(error)),
                    };
                    Done { seq: stamp.seq, sent_ns: stamp.sent_ns, outcome }
                })
            }
            Sink::Stream(stream) => Box::pin(async move {
                let mut body = vec![0u8; size];
                stamp.write(&mut body);
                let (confirmed, confirmation) = tokio::sync::oneshot::channel();
                let message = Message::builder().body(body).build();
                let send = stream.producer.send(message, move |status| {
                    let _ = confirmed.send(status.map(|status| status.confirmed()));
                    std::future::ready(())
                });
                // The client's queue holds a whole window (its batch size), so the hand-off
                // completes on first poll, in publish order: unless tokio's budget made it yield,
                // and the next publishes overtook it.
                let handed = tokio::task::unconstrained(send).await;
                let failed = |error| Broken::Stream(StreamFailure::Publish(Arc::new(error)));
                let outcome = match handed {
                    Ok(()) => {
                        self.wrote();
                        tokio::select! {
                            biased;
                            confirmation = confirmation => match confirmation {
                                Ok(Ok(true)) => Ok(Confirmation::Ack(None)),
                                Ok(Ok(false)) => Ok(Confirmation::Nack(None)),
                                Ok(Err(error)) => Err(failed(error)),
                                Err(_) => Err(Broken::Stream(StreamFailure::Closed)),
                            },
                            _ = stream.closed.cancelled() => Err(Broken::Stream(StreamFailure::Closed)),
                        }
                    }
                    Err(error) => Err(failed(error)),
                };
                Done { seq: stamp.seq, sent_ns: stamp.sent_ns, outcome }
            }),
        }
    }

    /// Counts a publish handed to the connection.
    #[inline]
    fn wrote(&self) {
        self.writes.count.fetch_add(1, Ordering::Relaxed);
        self.writes.last_ns.store(self.clock.now_ns(), Ordering::Relaxed);
    }
}

/// A running producer's state: its plan and clock, what it has counted so
/// far, and its window of publishes in flight.
struct Publishing<'a> {
    plan: &'a ProducerPlan,
    clock: Clock,
    series: SeriesRecorder,
    report: ProducerReport,
    writes: &'a Writes,
    meter: WaitMeter,
    /// Publishes in flight at most.
    window: usize,
    /// Once the window is full, wait until half of it has drained before publishing again:
    /// publishes then go out in bursts that lapin writes together, instead of one wake-up
    /// of its I/O thread per message.
    refilling: bool,
    /// The next message's sequence number.
    seq: u32,
    /// The first sequence number sent in the measured window.
    measured_from: Option<u32>,
    /// Publishing is over (the window ended, the limit, Ctrl-C): only confirms are awaited.
    published_all: bool,
    /// What the broker has not confirmed, to re-send on the next connection (with confirms only).
    unconfirmed: Unconfirmed,
    /// Publishes in flight when the producer stopped waiting.
    left_in_flight: usize,
    /// How long the broker has blocked the connection in use.
    blocked: Arc<BlockedTime>,
    /// Until when a nack sends the producer to a fresh channel ([`RENEW_WINDOW`]).
    renew_until_ns: u64,
    /// Fresh channels taken since the last outage.
    renewals: u32,
}

impl<'a> Publishing<'a> {
    fn new(plan: &'a ProducerPlan, clock: Clock, series: SeriesRecorder, writes: &'a Writes) -> Self {
        Publishing {
            plan,
            clock,
            series,
            report: ProducerReport::new(plan),
            writes,
            meter: WaitMeter::new(clock.measure_start_ns, clock.measure_end_ns),
            window: plan.confirms.map_or(UNCONFIRMED_WINDOW, |window| window as usize),
            refilling: true,
            seq: 0,
            measured_from: None,
            published_all: false,
            unconfirmed: Unconfirmed::default(),
            left_in_flight: 0,
            blocked: plan.blocked.clone(),
            renew_until_ns: 0,
            renewals: 0,
        }
    }

    /// What the producer does on one connection: re-sends what the last one
    /// left unconfirmed, publishes (unless that is over) and awaits confirms.
    /// An error is the connection's or the channel's.
    async fn attached(
        &mut self,
        sink: Sink<'_>,
        stop: &CancellationToken,
        abort: &CancellationToken,
    ) -> Result<(), Broken> {
        let clock = self.clock;
        let publisher = Publisher { sink, writes: self.writes, clock: &clock };
        let mut in_flight: FuturesUnordered<Pending<'_>> = FuturesUnordered::new();
        for sent in self.unconfirmed.pending() {
            let stamp = Stamp { seq: sent.seq, sent_ns: sent.sent_ns, producer: self.plan.id };
            in_flight.push(publisher.publish(stamp, sent.size));
            self.report.resent += 1;
        }
        if !self.published_all {
            self.publish(&publisher, &mut in_flight, stop).await?;
            self.published_all = true;
            self.stop_metering();
        }
        self.await_confirms(&mut in_flight, abort).await?;
        self.left_in_flight = in_flight.len();
        Ok(())
    }

    /// After the connection to node `lost` dropped (`outage`), or its
    /// channel's publishes were refused: a channel on the next node that
    /// answers, and the outage noted. `Err` when the producer stops instead:
    /// with a failure when no node answered in time, without one when the
    /// drain ended first (what was unconfirmed stays so).
    async fn reattach(
        &mut self,
        failover: &Failover,
        lost: usize,
        abort: &CancellationToken,
        outage: bool,
    ) -> Result<Attached, Option<ActorError>> {
        let start_ns = self.clock.now_ns();
        let actor = format!("producer {}#{}", self.plan.group_name, self.plan.instance);
        let plan = self.plan;
        let attempt = failover
            .reconnect(plan.home, &format!("warren bench {actor}"), abort, move |link| async move {
                plan.open_channel(&link.connection).await
            })
            .await;
        let end_ns = self.clock.now_ns();
        let node = failover.nodes.name(lost);
        if !self.published_all {
            self.meter.reconnected(start_ns, end_ns);
        }
        match attempt {
            Ok((link, node_index, channel)) => {
                if outage {
                    let to = failover.nodes.name(node_index);
                    self.report.outages.push(Outage::ended(actor, node, start_ns, end_ns, to));
                    self.renewals = 0;
                } else {
                    self.renewals += 1;
                    tracing::info!("{actor}: publishes refused on a new channel; publishing on a fresh one");
                }
                self.renew_until_ns = end_ns + RENEW_WINDOW.as_nanos() as u64;
                self.blocked = link.blocked.clone();
                let status = link.connection.status().clone();
                Ok(Attached { channel, status, node: node_index, _link: Some(link) })
            }
            Err(error) => Err(self.gave_up(actor, node, start_ns, error)),
        }
    }

    /// After a reconnection that began at `start_ns` failed: the outage that never ended, and
    /// the failure (none when the run ended first). What was unconfirmed stays so.
    fn gave_up(&mut self, actor: String, node: String, start_ns: u64, error: ReconnectError) -> Option<ActorError> {
        self.report.outages.push(Outage::unended(actor.clone(), node, start_ns));
        self.left_in_flight = self.unconfirmed.len();
        match error {
            ReconnectError::Stopped => None,
            source => Some(ActorError::Reconnect { actor, source }),
        }
    }

    /// [`Publishing::reattach`] for a stream producer whose connection through `lost` dropped:
    /// a producer declared again through the first node that answers.
    async fn reopen_stream(
        &mut self,
        reconnect: &StreamReconnect,
        lost: &str,
        abort: &CancellationToken,
    ) -> Result<StreamProducer, Option<ActorError>> {
        let start_ns = self.clock.now_ns();
        let actor = format!("producer {}#{}", self.plan.group_name, self.plan.instance);
        let stream = self.plan.routing_keys.first().cloned().unwrap_or_default();
        let batch = self.plan.confirms.map_or(1, |window| window as usize);
        let attempt =
            reconnect.retry(abort, || reconnect.endpoint.open_producer(&reconnect.name, &stream, batch)).await;
        let end_ns = self.clock.now_ns();
        if !self.published_all {
            self.meter.reconnected(start_ns, end_ns);
        }
        match attempt {
            Ok(next) => {
                let to = next.node.clone();
                self.report.outages.push(Outage::ended(actor, lost.to_owned(), start_ns, end_ns, to));
                Ok(next)
            }
            Err(error) => Err(self.gave_up(actor, lost.to_owned(), start_ns, error)),
        }
    }

    /// The publish loop: each pass settles what completed, then waits (for
    /// the schedule, or for room in the window) or publishes the next message.
    /// Ends with the measured window, the limit, `cancel`, or a failure.
    async fn publish<'p>(
        &mut self,
        publisher: &'p Publisher<'_>,
        in_flight: &mut FuturesUnordered<Pending<'p>>,
        cancel: &CancellationToken,
    ) -> Result<(), Broken> {
        let mut pacer = Pacer::new();
        let mut rng = rand::rngs::SmallRng::from_rng(&mut rand::rng());
        loop {
            // Settle whatever completed without waiting; this poll is also what hands new publishes to lapin.
            while let Some(Some(done)) = in_flight.next().now_or_never() {
                self.settle(done)?;
            }
            let seq = self.seq;
            if cancel.is_cancelled() || self.plan.limit.is_some_and(|limit| u64::from(seq) >= limit) || seq == u32::MAX
            {
                return Ok(());
            }
            let now = self.clock.now_ns();
            let intended = self.plan.schedule.intended_ns(seq);
            let due = intended.unwrap_or(now);
            if due >= self.clock.measure_end_ns || now >= self.clock.measure_end_ns {
                return Ok(());
            }
            let refilling = self.refilling(in_flight.len(), now, due);
            if due > now || !refilling {
                let wake = self.clock.instant(due.max(now));
                let timer = due > now;
                tokio::select! {
                    biased;
                    _ = cancel.cancelled() => return Ok(()),
                    done = in_flight.next(), if !in_flight.is_empty() => {
                        if let Some(done) = done {
                            self.settle(done)?;
                        }
                    }
                    _ = pacer.sleep_until(wake), if timer => {}
                }
                continue;
            }
            let sent_ns = self.clock.now_ns();
            // The window may have closed since `now` was read: a message stamped after it is not
            // measured by consumers, so it must not be published (and expected) either.
            if sent_ns >= self.clock.measure_end_ns {
                return Ok(());
            }
            let size = body_size(&self.plan.size, &mut rng);
            self.count_sent(sent_ns, size, intended);
            if self.plan.confirms.is_some() {
                self.unconfirmed.sent(seq, sent_ns, size);
            }
            in_flight.push(publisher.publish(Stamp { seq, sent_ns, producer: self.plan.id }, size));
            self.seq += 1;
        }
    }

    /// Whether the window has room; the wait meter times the stretches it has none.
    #[inline]
    fn refilling(&mut self, in_flight: usize, now: u64, due: u64) -> bool {
        if in_flight >= self.window {
            self.refilling = false;
        } else if in_flight <= self.window / 2 {
            self.refilling = true;
        }
        if !self.refilling {
            self.meter.hold(now, due, self.progress(now));
        } else if self.meter.holding() {
            self.meter.release(now, self.progress(now));
        }
        self.refilling
    }

    /// How far the publishes had got at `now_ns`.
    fn progress(&self, now_ns: u64) -> Progress {
        Progress {
            handed: u64::from(self.seq) + self.report.resent,
            written: self.writes.count.load(Ordering::Relaxed),
            last_write_ns: self.writes.last_ns.load(Ordering::Relaxed),
            blocked: self.blocked.until(self.clock.epoch + Duration::from_nanos(now_ns)),
        }
    }

    /// Counts the message about to go out at `sent_ns`; in the measured
    /// window also its bytes and its send delay, whole and the producer's own
    /// part (after it last waited on the broker).
    #[inline]
    fn count_sent(&mut self, sent_ns: u64, size: usize, intended: Option<u64>) {
        if self.clock.measured(sent_ns) {
            if self.measured_from.is_none() {
                self.measured_from = Some(self.seq);
            }
            self.report.measured_bytes += size as u64;
            if let Some(intended) = intended {
                histogram::record(&mut self.report.send_delay, sent_ns.saturating_sub(intended));
                let own_from = intended.max(self.meter.released_ns());
                histogram::record(&mut self.report.own_send_delay, sent_ns.saturating_sub(own_from));
            }
        }
        self.series.at(sent_ns).published += 1;
    }

    /// Counts a completed publish: its confirm, nack or return, or the error that ends the producer.
    fn settle(&mut self, done: Done) -> Result<(), Broken> {
        let now = self.clock.now_ns();
        match done.outcome {
            Ok(Confirmation::NotRequested) => Ok(()),
            Ok(Confirmation::Nack(None)) if now < self.renew_until_ns && self.renewals < MAX_RENEWALS => {
                // Kept unconfirmed: it goes out again on the fresh channel.
                Err(Broken::Refused)
            }
            Ok(confirmation) => {
                let counters = self.series.at(now);
                self.unconfirmed.settled(done.seq);
                let returned = matches!(&confirmation, Confirmation::Ack(Some(_)) | Confirmation::Nack(Some(_)));
                if returned {
                    counters.returned += 1;
                    self.report.returned += 1;
                }
                if confirmation.is_ack() {
                    counters.confirmed += 1;
                    self.report.confirmed_seqs.insert(done.seq);
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
            Err(broken) => {
                self.series.at(now).errors += 1;
                Err(broken)
            }
        }
    }

    fn fail(&self, source: lapin::Error) -> ActorError {
        ActorError::Publish {
            group: self.plan.group_name.clone(),
            instance: self.plan.instance,
            exchange: self.plan.exchange.clone(),
            source,
        }
    }

    fn fail_stream(&self, source: StreamFailure) -> ActorError {
        ActorError::Stream {
            actor: format!("producer {}#{}", self.plan.group_name, self.plan.instance),
            doing: "publishing to",
            stream: self.plan.routing_keys.first().cloned().unwrap_or_default(),
            source,
        }
    }

    /// Publishing has ended: closes the wait still open and keeps what the meter measured.
    fn stop_metering(&mut self) {
        if self.meter.holding() {
            let now = self.clock.now_ns();
            self.meter.release(now, self.progress(now));
        }
        self.report.waited = self.meter.waited();
    }

    /// Waits for outstanding confirms, but never past the drain.
    async fn await_confirms(
        &mut self,
        in_flight: &mut FuturesUnordered<Pending<'_>>,
        abort: &CancellationToken,
    ) -> Result<(), Broken> {
        let drain_end = self.clock.instant(self.clock.drain_end_ns);
        while !in_flight.is_empty() {
            tokio::select! {
                biased;
                _ = abort.cancelled() => break,
                _ = tokio::time::sleep_until(drain_end) => break,
                Some(done) = in_flight.next() => self.settle(done)?,
            }
        }
        Ok(())
    }

    fn finish(mut self, failure: Option<ActorError>) -> ProducerReport {
        if failure.is_some() {
            if !self.published_all {
                self.stop_metering();
            }
            self.left_in_flight = self.left_in_flight.max(self.unconfirmed.len());
        }
        self.report.unconfirmed = self.left_in_flight as u64;
        self.series.flush();
        self.report.published = self.seq;
        self.report.measured_from = self.measured_from.unwrap_or(self.seq);
        self.report.failure = failure;
        self.report
    }
}

/// A body size drawn from the group's spec, never smaller than the stamp.
#[inline]
fn body_size(spec: &SizeSpec, rng: &mut impl Rng) -> usize {
    let size = match spec {
        SizeSpec::Fixed(size) => *size,
        SizeSpec::Range { min, max } => rng.random_range(*min..=*max),
        SizeSpec::Choices(choices) => pick(choices, rng),
    };
    size.max(HEADER_LEN)
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
