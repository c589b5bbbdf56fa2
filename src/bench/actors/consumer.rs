//! A consumer: reads deliveries, checks each body's producer and sequence
//! number, records end-to-end latency, simulates work and acknowledges as
//! the scenario says.

use std::sync::Arc;
use std::sync::atomic::{AtomicU64, Ordering};
use std::time::{Duration, Instant};

use std::future::Future;
use std::pin::Pin;

use futures::StreamExt;
use futures::stream::FuturesUnordered;
use lapin::options::{BasicAckOptions, BasicCancelOptions, BasicNackOptions};
use lapin::{Channel, Consumer};
use tokio_util::sync::CancellationToken;

use super::pace::Pacer;
use super::{ActorError, Clock, Schedule};
use crate::bench::message::Stamp;
use crate::bench::metrics::series::SeriesRecorder;
use crate::bench::metrics::tracker::Tracker;
use crate::bench::scenario::{AckMode, Reject};
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

/// Runs one consumer until `stop` fires or the subscription ends.
pub async fn run(
    channel: Channel,
    mut consumer: Consumer,
    plan: ConsumerPlan,
    clock: Clock,
    shared: Shared,
    mut series: SeriesRecorder,
    stop: CancellationToken,
) -> ConsumerReport {
    let mut report = ConsumerReport {
        group: plan.group,
        tracker: Tracker::new(shared.schedules.len()),
        consumed: 0,
        consumed_bytes: 0,
        delivered_in_window: 0,
        delivered_in_drain: 0,
        redelivered: 0,
        rejected: 0,
        e2e: histogram::new_latency(),
        e2e_actual: histogram::new_latency(),
        failure: None,
    };
    let fail = |source: lapin::Error| ActorError::Consume {
        group: plan.group_name.clone(),
        instance: plan.instance,
        queue: plan.queue.clone(),
        source,
    };
    let mut unacked: u32 = 0;
    let mut last_tag = 0;
    let mut reject_credit = 0.0f64;
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
                    series.at(clock.now_ns()).errors += 1;
                    report.failure = Some(fail(error));
                    break;
                }
                continue;
            }
            delivery = consumer.next() => delivery,
        };
        let delivery = match delivery {
            Some(Ok(delivery)) => delivery,
            Some(Err(error)) => {
                report.failure = Some(fail(error));
                break;
            }
            None => {
                if !stop.is_cancelled() {
                    report.failure = Some(ActorError::SubscriptionEnded {
                        group: plan.group_name.clone(),
                        instance: plan.instance,
                        queue: plan.queue.clone(),
                    });
                }
                break;
            }
        };
        let now = clock.now_ns();
        let redelivered = delivery.redelivered;
        {
            let counters = series.at(now);
            counters.delivered += 1;
            if redelivered {
                counters.redelivered += 1;
            }
        }
        if redelivered {
            report.redelivered += 1;
        }
        match Stamp::read(&delivery.data) {
            Some(stamp) if report.tracker.note(stamp.producer, stamp.seq, redelivered) => {
                if !redelivered {
                    shared.arrived.fetch_add(1, Ordering::Relaxed);
                    if now < clock.measure_end_ns {
                        if now >= clock.measure_start_ns {
                            report.delivered_in_window += 1;
                        }
                    } else {
                        report.delivered_in_drain += 1;
                    }
                    if clock.measured(stamp.sent_ns) {
                        let intended = shared
                            .schedules
                            .get(stamp.producer as usize)
                            .and_then(|s| s.intended_ns(stamp.seq))
                            .map_or(stamp.sent_ns, |i| i.min(stamp.sent_ns));
                        let e2e = now.saturating_sub(intended);
                        report.consumed += 1;
                        report.consumed_bytes += delivery.data.len() as u64;
                        histogram::record(&mut report.e2e, e2e);
                        histogram::record(&mut report.e2e_actual, now.saturating_sub(stamp.sent_ns));
                        series.e2e(now, e2e);
                    }
                }
            }
            Some(_) => {}
            None => report.tracker.foreign += 1,
        }
        if !plan.work.is_zero() {
            work(plan.work, &mut pacer).await;
        }
        if plan.ack == AckMode::Auto {
            continue;
        }
        let reject = match plan.reject {
            Some(policy) if policy.fraction > 0.0 => {
                reject_credit += policy.fraction;
                if reject_credit >= 1.0 {
                    reject_credit -= 1.0;
                    Some(policy.requeue)
                } else {
                    None
                }
            }
            _ => None,
        };
        let tag = delivery.delivery_tag;
        let channel = &channel;
        if let Some(requeue) = reject {
            report.rejected += 1;
            acks.push(Box::pin(channel.basic_nack(tag, BasicNackOptions { multiple: false, requeue })));
        } else {
            match plan.ack {
                AckMode::MultipleEvery(every) => {
                    unacked += 1;
                    last_tag = tag;
                    if unacked >= every {
                        series.at(now).acked += u64::from(unacked);
                        unacked = 0;
                        acks.push(Box::pin(channel.basic_ack(tag, BasicAckOptions { multiple: true })));
                    }
                }
                _ => {
                    series.at(now).acked += 1;
                    acks.push(Box::pin(channel.basic_ack(tag, BasicAckOptions { multiple: false })));
                }
            }
        }
        // Bounded all the same: with an unlimited prefetch nothing else would stop the pile.
        while acks.len() >= MAX_PENDING_ACKS {
            if let Some(Err(error)) = acks.next().await {
                series.at(clock.now_ns()).errors += 1;
                report.failure = Some(fail(error));
                break;
            }
        }
        if report.failure.is_some() {
            break;
        }
    }
    while let Some(result) = acks.next().await {
        if let Err(error) = result
            && report.failure.is_none()
        {
            report.failure = Some(fail(error));
        }
    }
    if report.failure.is_none() {
        if unacked > 0 {
            series.at(clock.now_ns()).acked += u64::from(unacked);
            let _ = channel.basic_ack(last_tag, BasicAckOptions { multiple: true }).await;
        }
        let _ = channel.basic_cancel(consumer.tag(), BasicCancelOptions::default()).await;
    }
    series.flush();
    report
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
