//! A consumer: reads deliveries, checks each body's producer and sequence
//! number, records end-to-end latency, simulates work and acknowledges as
//! the scenario says.
//!
//! When its connection drops, it connects to the next node that answers and
//! subscribes again ([`Failover`]); the broker redelivers what it had sent
//! and not seen acknowledged, which the tracker tells from first arrivals.
//!
//! A `protocol: stream` consumer ([`run_stream`]) reads its stream over
//! RabbitMQ's stream protocol, where the client grants the broker credit
//! chunk by chunk and nothing is acknowledged; it records each message as
//! an AMQP consumer does. When its connection or its subscription is
//! dropped, it subscribes again after the last offset it read.

use std::sync::Arc;
use std::sync::atomic::{AtomicU64, Ordering};
use std::time::{Duration, Instant};

use std::future::Future;
use std::pin::Pin;

use futures::StreamExt;
use futures::stream::FuturesUnordered;
use lapin::message::Delivery;
use lapin::options::{BasicAckOptions, BasicCancelOptions, BasicConsumeOptions, BasicNackOptions, BasicQosOptions};
use lapin::types::{AMQPValue, FieldTable, LongString, ShortString};
use lapin::{Channel, Connection, ConnectionStatus, Consumer};
use tokio_util::sync::CancellationToken;

use super::pace::Pacer;
use super::{ActorError, Clock, Outage, Schedule, StreamFailure};
use crate::bench::link::{Failover, connection_lost};
use crate::bench::message::Stamp;
use crate::bench::metrics::series::SeriesRecorder;
use crate::bench::metrics::tracker::{Noted, Tracker};
use crate::bench::scenario::{AckMode, ConsumerGroup, Reject, StreamOffset};
use crate::bench::stream_link::{StreamConsumer, StreamReconnect};
use crate::result::histogram::{self, Latency};

/// Acks and rejects handed to lapin and not yet written.
const MAX_PENDING_ACKS: usize = 4096;

type Pending<'c> = Pin<Box<dyn Future<Output = Result<(), lapin::Error>> + Send + 'c>>;

/// What one consumer instance does.
#[derive(Debug, Clone)]
pub struct ConsumerPlan {
    /// Index of its group in the scenario.
    pub group: usize,
    /// Group name, for errors.
    pub group_name: String,
    /// Instance number within the group.
    pub instance: u32,
    /// Source queue.
    pub queue: String,
    /// Acknowledgement mode.
    pub ack: AckMode,
    /// Rejections.
    pub reject: Option<Reject>,
    /// Simulated work per message.
    pub work: Duration,
    /// How it subscribes, again after a reconnection.
    pub subscription: Subscription,
    /// The node its layout gave it: reconnections try it first.
    pub home: usize,
    /// The node its first connection went to.
    pub node: usize,
}

impl ConsumerPlan {
    /// The plan of instance `instance` of group `group` (index `index`), subscribing as
    /// `subscription`, with its (home, first) nodes.
    pub fn of(
        index: usize,
        group: &ConsumerGroup,
        instance: u32,
        subscription: Subscription,
        (home, node): (usize, usize),
    ) -> Self {
        ConsumerPlan {
            group: index,
            group_name: group.name.clone(),
            instance,
            queue: group.queue.clone(),
            ack: group.ack,
            reject: group.reject,
            work: group.work,
            subscription,
            home,
            node,
        }
    }
}

/// How a consumer subscribes: its prefetch, acknowledgement mode and, on a
/// stream, where it starts reading.
#[derive(Debug, Clone)]
pub struct Subscription {
    queue: String,
    prefetch: u16,
    global_prefetch: Option<u16>,
    no_ack: bool,
    exclusive: bool,
    offset: Option<StreamOffset>,
}

impl Subscription {
    /// The subscription a group's consumers make.
    pub fn of(group: &ConsumerGroup) -> Self {
        Subscription {
            queue: group.queue.clone(),
            prefetch: group.prefetch,
            global_prefetch: group.global_prefetch,
            no_ack: group.ack == AckMode::Auto,
            exclusive: group.exclusive,
            offset: group.offset.or(group.stream.then_some(StreamOffset::Next)),
        }
    }

    /// The arguments of `basic.consume`: on a stream, `x-stream-offset`.
    fn arguments(&self) -> FieldTable {
        let mut arguments = FieldTable::default();
        let offset = match self.offset {
            None => return arguments,
            Some(StreamOffset::First) => AMQPValue::LongString(LongString::from("first")),
            Some(StreamOffset::Last) => AMQPValue::LongString(LongString::from("last")),
            Some(StreamOffset::Next) => AMQPValue::LongString(LongString::from("next")),
            Some(StreamOffset::At(offset)) => AMQPValue::LongLongInt(i64::try_from(offset).unwrap_or(i64::MAX)),
        };
        arguments.insert(ShortString::from("x-stream-offset"), offset);
        arguments
    }

    /// A channel on `connection` with the prefetch set, subscribed to the queue.
    pub async fn subscribe(&self, connection: &Connection) -> Result<(Channel, Consumer), lapin::Error> {
        let channel = connection.create_channel().await?;
        if let Some(global) = self.global_prefetch {
            channel.basic_qos(global, BasicQosOptions { global: true }).await?;
        }
        channel.basic_qos(self.prefetch, BasicQosOptions { global: false }).await?;
        let options = BasicConsumeOptions { no_ack: self.no_ack, exclusive: self.exclusive, ..Default::default() };
        let consumer = channel.basic_consume(self.queue.as_str().into(), "".into(), options, self.arguments()).await?;
        Ok((channel, consumer))
    }
}

/// What a consumer hands back when it ends.
#[derive(Debug)]
pub struct ConsumerReport {
    /// Group index.
    pub group: usize,
    /// Sequence numbers seen, per producer.
    pub tracker: Tracker,
    /// First deliveries of messages sent in the measured window.
    pub consumed: u64,
    /// Bytes of those.
    pub consumed_bytes: u64,
    /// First deliveries received during the measured window (for the consume rate).
    pub delivered_in_window: u64,
    /// First deliveries received after the measured window (the drain).
    pub delivered_in_drain: u64,
    /// Deliveries flagged redelivered.
    pub redelivered: u64,
    /// Deliveries rejected on purpose.
    pub rejected: u64,
    /// End-to-end from the intended send time (coordinated omission corrected).
    pub e2e: Latency,
    /// End-to-end from the actual send time.
    pub e2e_actual: Latency,
    /// Its connection's losses, and when it was connected again.
    pub outages: Vec<Outage>,
    /// Why it stopped early, if it did.
    pub failure: Option<ActorError>,
}

/// Everything a consumer shares with the runner.
#[derive(Debug, Clone)]
pub struct Shared {
    /// Every producer's schedule, by producer id.
    pub schedules: Arc<[Schedule]>,
    /// First deliveries of the consumer's queue, for the runner to see when the drain is done.
    pub arrived: Arc<AtomicU64>,
}

/// Where a consumer is subscribed now.
struct Attached {
    channel: Channel,
    consumer: Consumer,
    status: ConnectionStatus,
    node: usize,
    /// A connection opened mid-run, kept open while the consumer uses it.
    _link: Option<Arc<crate::bench::link::Link>>,
}

/// How one subscription ended.
enum Ended {
    /// `stop` fired (or the consumer failed and said why in its report).
    Done,
    /// The subscription ended or failed; the error, if lapin gave one.
    Broken(Option<lapin::Error>),
}

/// Runs one consumer until `stop` fires or the subscription ends for good.
///
/// The per-delivery work is one pass of its loop: count and measure the
/// delivery, then send the reply without awaiting it. A subscription lost
/// with its connection is made again on the next node that answers.
#[allow(clippy::too_many_arguments)]
pub async fn run(
    channel: Channel,
    consumer: Consumer,
    status: ConnectionStatus,
    plan: ConsumerPlan,
    clock: Clock,
    shared: Shared,
    series: SeriesRecorder,
    stop: CancellationToken,
    failover: Failover,
) -> ConsumerReport {
    let report = ConsumerReport::new(plan.group, shared.schedules.len());
    let node = plan.node;
    let mut state = Consuming { plan, clock, shared, series, report, replies: Replies::default(), stream_next: None };
    let mut attached = Attached { channel, consumer, status, node, _link: None };
    loop {
        let error = match state.consume(&attached.channel, &mut attached.consumer, &stop).await {
            Ended::Done => break,
            Ended::Broken(error) => error,
        };
        let lost = failover.give_up_after.is_some()
            && !stop.is_cancelled()
            && connection_lost(&attached.status, error.as_ref()).await;
        if !lost {
            state.broken(error, &stop);
            break;
        }
        match state.reattach(&failover, attached.node, &stop).await {
            Some(next) => attached = next,
            None => break,
        }
    }
    state.series.flush();
    state.report
}

impl ConsumerReport {
    fn new(group: usize, producers: usize) -> Self {
        ConsumerReport {
            group,
            tracker: Tracker::new(producers),
            consumed: 0,
            consumed_bytes: 0,
            delivered_in_window: 0,
            delivered_in_drain: 0,
            redelivered: 0,
            rejected: 0,
            e2e: histogram::new_latency(),
            e2e_actual: histogram::new_latency(),
            outages: Vec::new(),
            failure: None,
        }
    }
}

/// A running consumer's state: its plan, what it has counted so far, and
/// where it stands with acknowledgements.
struct Consuming {
    plan: ConsumerPlan,
    clock: Clock,
    shared: Shared,
    series: SeriesRecorder,
    report: ConsumerReport,
    replies: Replies,
    /// On a stream: the offset after the last message read, where a new subscription resumes.
    stream_next: Option<u64>,
}

/// Where a consumer stands with its replies to the broker.
#[derive(Default)]
struct Replies {
    /// Deliveries not yet acknowledged under `MultipleEvery`.
    unacked: u32,
    /// The delivery tag of the latest of those.
    last_tag: u64,
    /// Rejections owed: the reject fraction adds up here, one is due per whole unit.
    reject_credit: f64,
}

/// What to send the broker for one delivery, or for every delivery up to its tag.
enum Reply {
    Ack { tag: u64, multiple: bool },
    Nack { tag: u64, requeue: bool },
}

impl Reply {
    fn send(self, channel: &Channel) -> Pending<'_> {
        match self {
            Reply::Ack { tag, multiple } => Box::pin(channel.basic_ack(tag, BasicAckOptions { multiple })),
            Reply::Nack { tag, requeue } => {
                Box::pin(channel.basic_nack(tag, BasicNackOptions { multiple: false, requeue }))
            }
        }
    }
}

impl Consuming {
    fn fail(&self, source: lapin::Error) -> ActorError {
        ActorError::Consume {
            group: self.plan.group_name.clone(),
            instance: self.plan.instance,
            queue: self.plan.queue.clone(),
            source,
        }
    }

    /// Reads, records and replies until `stop` fires or the subscription
    /// breaks. On `stop`, acknowledges what it held back and cancels.
    async fn consume(&mut self, channel: &Channel, consumer: &mut Consumer, stop: &CancellationToken) -> Ended {
        let mut pacer = Pacer::new();
        // Acks go out without waiting for lapin to write them: awaiting each would
        // stall the consumer on a round trip to lapin's I/O thread per ack.
        let mut acks: FuturesUnordered<Pending<'_>> = FuturesUnordered::new();
        // One waiter for the whole run: a fresh `cancelled()` per message would register (and lock) each time.
        let stopped = stop.cancelled();
        tokio::pin!(stopped);
        loop {
            let delivery = tokio::select! {
                biased;
                _ = &mut stopped => break,
                Some(result) = acks.next(), if !acks.is_empty() => {
                    if let Err(error) = result {
                        return Ended::Broken(Some(error));
                    }
                    continue;
                }
                delivery = consumer.next() => delivery,
            };
            let delivery = match delivery {
                Some(Ok(delivery)) => delivery,
                Some(Err(error)) => return Ended::Broken(Some(error)),
                None if stop.is_cancelled() => break,
                None => return Ended::Broken(None),
            };
            let now = self.clock.now_ns();
            let offset = if self.plan.subscription.offset.is_some() { stream_offset(&delivery) } else { None };
            self.record(delivery.redelivered, offset, &delivery.data, now);
            if !self.plan.work.is_zero() {
                work(self.plan.work, &mut pacer).await;
            }
            if self.plan.ack == AckMode::Auto {
                continue;
            }
            if let Some(reply) = self.reply(delivery.delivery_tag, now) {
                acks.push(reply.send(channel));
            }
            // Bounded all the same: with an unlimited prefetch nothing else would stop the pile.
            while acks.len() >= MAX_PENDING_ACKS {
                if let Some(Err(error)) = acks.next().await {
                    return Ended::Broken(Some(error));
                }
            }
        }
        self.finish(channel, consumer, acks).await;
        Ended::Done
    }

    /// A subscription that broke without its connection being lost (or
    /// with reconnection off): the consumer stops and says why.
    fn broken(&mut self, error: Option<lapin::Error>, stop: &CancellationToken) {
        self.series.at(self.clock.now_ns()).errors += 1;
        self.report.failure = match error {
            Some(error) => Some(self.fail(error)),
            None if !stop.is_cancelled() => Some(ActorError::SubscriptionEnded {
                group: self.plan.group_name.clone(),
                instance: self.plan.instance,
                queue: self.plan.queue.clone(),
            }),
            None => None,
        };
    }

    /// After the connection to node `lost` dropped: subscribes again through
    /// the next node that answers, and notes the outage. `None` when the
    /// consumer stops instead (the run ended, or no node answered in time).
    async fn reattach(&mut self, failover: &Failover, lost: usize, stop: &CancellationToken) -> Option<Attached> {
        let start_ns = self.clock.now_ns();
        // What `MultipleEvery` held back went with the channel: the broker redelivers it.
        self.replies = Replies::default();
        let actor = format!("consumer {}#{}", self.plan.group_name, self.plan.instance);
        let mut subscription = self.plan.subscription.clone();
        if let Some(next) = self.stream_next {
            subscription.offset = Some(StreamOffset::At(next));
        }
        let attempt = failover
            .reconnect(self.plan.home, &format!("warren bench {actor}"), stop, move |link| {
                let subscription = subscription.clone();
                async move { subscription.subscribe(&link.connection).await }
            })
            .await;
        let end_ns = self.clock.now_ns();
        let node = failover.nodes.name(lost);
        match attempt {
            Ok((link, node_index, (channel, consumer))) => {
                let to = failover.nodes.name(node_index);
                self.report.outages.push(Outage::ended(actor, node, start_ns, end_ns, to));
                let status = link.connection.status().clone();
                Some(Attached { channel, consumer, status, node: node_index, _link: Some(link) })
            }
            Err(error) => self.gave_up(actor, node, start_ns, error, stop),
        }
    }

    /// [`Consuming::reattach`] for a stream consumer whose connection through `lost` dropped:
    /// subscribed again through the first node that answers, after the last offset it read (or
    /// from its own offset when it read nothing).
    async fn reopen_stream(
        &mut self,
        reconnect: &StreamReconnect,
        lost: &str,
        stop: &CancellationToken,
    ) -> Option<StreamConsumer> {
        let start_ns = self.clock.now_ns();
        let actor = format!("consumer {}#{}", self.plan.group_name, self.plan.instance);
        let offset = match self.stream_next {
            Some(next) => StreamOffset::At(next),
            None => self.plan.subscription.offset.unwrap_or(StreamOffset::Next),
        };
        let stream = self.plan.queue.clone();
        let attempt =
            reconnect.retry(stop, || reconnect.endpoint.open_consumer(&reconnect.name, &stream, offset)).await;
        let end_ns = self.clock.now_ns();
        match attempt {
            Ok(next) => {
                let to = next.node.clone();
                self.report.outages.push(Outage::ended(actor, lost.to_owned(), start_ns, end_ns, to));
                Some(next)
            }
            Err(error) => self.gave_up(actor, lost.to_owned(), start_ns, error, stop),
        }
    }

    /// After a reconnection that began at `start_ns` failed: the outage that never ended, and the
    /// failure unless the run ended first. Always `None`: the consumer stops.
    fn gave_up<T>(
        &mut self,
        actor: String,
        node: String,
        start_ns: u64,
        error: crate::bench::link::ReconnectError,
        stop: &CancellationToken,
    ) -> Option<T> {
        self.report.outages.push(Outage::unended(actor.clone(), node, start_ns));
        if !stop.is_cancelled() {
            self.report.failure = Some(ActorError::Reconnect { actor, source: error });
        }
        None
    }

    /// Counts one delivery of `data` received at `now` (from the stream
    /// `offset`, on a stream) and, for a first delivery of a measured
    /// message, its end-to-end latency.
    #[inline]
    fn record(&mut self, redelivered: bool, offset: Option<u64>, data: &[u8], now: u64) {
        {
            let counters = self.series.at(now);
            counters.delivered += 1;
            if redelivered {
                counters.redelivered += 1;
            }
        }
        if redelivered {
            self.report.redelivered += 1;
        }
        if let Some(offset) = offset {
            self.stream_next = Some(offset + 1);
        }
        match Stamp::read(data) {
            Some(stamp) => match self.report.tracker.note(stamp.producer, stamp.seq, redelivered) {
                Noted::First | Noted::FirstRedelivered => self.first_delivery(&stamp, data.len(), now),
                Noted::Again | Noted::Foreign => {}
            },
            None => self.report.tracker.foreign += 1,
        }
    }

    /// A message's first arrival: what the drain waits for, the consume rate
    /// counts, and end-to-end latency measures (from the intended send time).
    #[inline]
    fn first_delivery(&mut self, stamp: &Stamp, bytes: usize, now: u64) {
        let (clock, report) = (&self.clock, &mut self.report);
        self.shared.arrived.fetch_add(1, Ordering::Relaxed);
        if now < clock.measure_end_ns {
            if now >= clock.measure_start_ns {
                report.delivered_in_window += 1;
            }
        } else {
            report.delivered_in_drain += 1;
        }
        if clock.measured(stamp.sent_ns) {
            let intended = self
                .shared
                .schedules
                .get(stamp.producer as usize)
                .and_then(|s| s.intended_ns(stamp.seq))
                .map_or(stamp.sent_ns, |i| i.min(stamp.sent_ns));
            let e2e = now.saturating_sub(intended);
            report.consumed += 1;
            report.consumed_bytes += bytes as u64;
            histogram::record(&mut report.e2e, e2e);
            histogram::record(&mut report.e2e_actual, now.saturating_sub(stamp.sent_ns));
            self.series.e2e(now, e2e);
        }
    }

    /// The reply to the delivery `tag` (not in auto-ack mode): a reject when
    /// one is due, else an ack, which `MultipleEvery` holds back until it
    /// covers enough deliveries.
    #[inline]
    fn reply(&mut self, tag: u64, now: u64) -> Option<Reply> {
        let reject = match self.plan.reject {
            Some(policy) if policy.fraction > 0.0 => {
                self.replies.reject_credit += policy.fraction;
                if self.replies.reject_credit >= 1.0 {
                    self.replies.reject_credit -= 1.0;
                    Some(policy.requeue)
                } else {
                    None
                }
            }
            _ => None,
        };
        if let Some(requeue) = reject {
            self.report.rejected += 1;
            return Some(Reply::Nack { tag, requeue });
        }
        match self.plan.ack {
            AckMode::MultipleEvery(every) => {
                let replies = &mut self.replies;
                replies.unacked += 1;
                replies.last_tag = tag;
                if replies.unacked < every {
                    return None;
                }
                self.series.at(now).acked += u64::from(replies.unacked);
                replies.unacked = 0;
                Some(Reply::Ack { tag, multiple: true })
            }
            _ => {
                self.series.at(now).acked += 1;
                Some(Reply::Ack { tag, multiple: false })
            }
        }
    }

    /// Waits for the replies still pending, acknowledges what `MultipleEvery`
    /// held back and cancels the subscription.
    async fn finish(&mut self, channel: &Channel, consumer: &Consumer, mut acks: FuturesUnordered<Pending<'_>>) {
        while let Some(result) = acks.next().await {
            if let Err(error) = result
                && self.report.failure.is_none()
            {
                self.report.failure = Some(self.fail(error));
            }
        }
        if self.report.failure.is_none() {
            let unacked = self.replies.unacked;
            if unacked > 0 {
                self.series.at(self.clock.now_ns()).acked += u64::from(unacked);
                let _ = channel.basic_ack(self.replies.last_tag, BasicAckOptions { multiple: true }).await;
            }
            let _ = channel.basic_cancel(consumer.tag(), BasicCancelOptions::default()).await;
        }
    }
}

/// The stream offset RabbitMQ gives an AMQP delivery from a stream.
fn stream_offset(delivery: &Delivery) -> Option<u64> {
    match delivery.properties.headers().as_ref().and_then(|h| h.inner().get("x-stream-offset")) {
        Some(AMQPValue::LongLongInt(offset)) => u64::try_from(*offset).ok(),
        _ => None,
    }
}

/// Runs one `protocol: stream` consumer, subscribed already, until `stop`
/// fires. When its connection drops it subscribes again through the first
/// node that answers, after the last offset it read, unless reconnection is
/// off; a failure it does not come back from ends it.
pub async fn run_stream(
    mut stream: StreamConsumer,
    plan: ConsumerPlan,
    clock: Clock,
    shared: Shared,
    series: SeriesRecorder,
    stop: CancellationToken,
    reconnect: Option<StreamReconnect>,
) -> ConsumerReport {
    let report = ConsumerReport::new(plan.group, shared.schedules.len());
    let mut state = Consuming { plan, clock, shared, series, report, replies: Replies::default(), stream_next: None };
    let mut pacer = Pacer::new();
    let stopped = stop.cancelled();
    tokio::pin!(stopped);
    loop {
        let delivery = tokio::select! {
            biased;
            _ = &mut stopped => break,
            delivery = stream.consumer.next() => delivery,
        };
        let failure = match delivery {
            Some(Ok(delivery)) => {
                let now = state.clock.now_ns();
                let data = delivery.message().data().unwrap_or_default();
                state.record(false, Some(delivery.offset()), data, now);
                if !state.plan.work.is_zero() {
                    work(state.plan.work, &mut pacer).await;
                }
                continue;
            }
            Some(Err(error)) => StreamFailure::Deliver(Arc::new(error)),
            None if stop.is_cancelled() => break,
            None => StreamFailure::Closed,
        };
        state.series.at(state.clock.now_ns()).errors += 1;
        let failure = ActorError::Stream {
            actor: format!("consumer {}#{}", state.plan.group_name, state.plan.instance),
            doing: "reading",
            stream: state.plan.queue.clone(),
            source: failure,
        };
        let Some(reconnect) = reconnect.as_ref() else {
            state.report.failure = Some(failure);
            break;
        };
        tracing::info!("{}: {:#}", reconnect.name, anyhow::Error::new(failure));
        close_stream(&stream).await;
        match state.reopen_stream(reconnect, &stream.node, &stop).await {
            Some(next) => stream = next,
            None => break,
        }
    }
    close_stream(&stream).await;
    state.series.flush();
    state.report
}

/// Closes a stream consumer, bounded: on a dead connection the client would wait for the broker's reply.
async fn close_stream(stream: &StreamConsumer) {
    let _ = tokio::time::timeout(Duration::from_secs(2), stream.consumer.handle().close()).await;
}

/// Simulated processing: a timer at 1 ms and above (the precise one producers
/// use, so 2 ms of work takes 2 ms and not up to 3); below that the task spins
/// (and holds its worker thread, as real CPU work would).
async fn work(duration: Duration, pacer: &mut Pacer) {
    if duration >= Duration::from_millis(1) {
        pacer.sleep_until(tokio::time::Instant::now() + duration).await;
    } else {
        let until = Instant::now() + duration;
        while Instant::now() < until {
            std::hint::spin_loop();
        }
    }
}
