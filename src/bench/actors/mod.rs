//! The tasks that make the load: producers publish on a schedule and keep a
//! window of publisher confirms; consumers read, check and acknowledge.
//! [`wait`] accounts the time a producer waits on the broker; [`unconfirmed`]
//! keeps what a producer re-sends after a lost connection.
//! Each owns its histograms and counters and hands them back once, when it
//! ends (per-second figures go to the aggregate once per second).
//! Groups with `protocol: stream` run the same actors over RabbitMQ's stream
//! protocol ([`crate::bench::stream_link`]): the same schedule, window,
//! stamps and figures, another connection underneath.

pub mod consumer;
pub mod pace;
pub mod producer;
pub mod unconfirmed;
pub mod wait;

use std::sync::Arc;
use std::time::{Duration, Instant};

use lapin::types::FieldTable;

/// The run's one monotonic clock and its phases, in nanoseconds since `epoch`.
#[derive(Debug, Clone, Copy)]
pub struct Clock {
    /// The process-wide origin of every timestamp in message bodies.
    pub epoch: Instant,
    /// When producers start (the schedule's t0).
    pub start_ns: u64,
    /// When the measured window starts (start + warmup).
    pub measure_start_ns: u64,
    /// When the measured window ends and producers stop.
    pub measure_end_ns: u64,
    /// When the drain phase ends at the latest.
    pub drain_end_ns: u64,
}

impl Clock {
    /// Now, in nanoseconds since the epoch.
    #[inline]
    pub fn now_ns(&self) -> u64 {
        u64::try_from(self.epoch.elapsed().as_nanos()).unwrap_or(u64::MAX)
    }

    /// The instant `ns` nanoseconds after the epoch, for timers.
    pub fn instant(&self, ns: u64) -> tokio::time::Instant {
        tokio::time::Instant::from_std(self.epoch + Duration::from_nanos(ns))
    }

    /// The measured window's length, in nanoseconds (at least 1), given when
    /// producers stopped: at its planned end, or earlier on a fault or Ctrl-C.
    pub fn window_ns(&self, producers_stopped_ns: u64) -> u64 {
        producers_stopped_ns.saturating_sub(self.measure_start_ns).max(1)
    }

    /// True when `ns` lies in the measured window.
    #[inline]
    pub fn measured(&self, ns: u64) -> bool {
        ns >= self.measure_start_ns && ns < self.measure_end_ns
    }
}

/// A producer's intended schedule: message `seq` is due at `start + seq * interval`.
#[derive(Debug, Clone, Copy, PartialEq)]
pub struct Schedule {
    /// t0, nanoseconds since the epoch.
    pub start_ns: u64,
    /// Nanoseconds between messages; `None` for as fast as possible.
    pub interval_ns: Option<f64>,
}

impl Schedule {
    /// When message `seq` was due; `None` for unscheduled producers.
    #[inline]
    pub fn intended_ns(&self, seq: u32) -> Option<u64> {
        self.interval_ns.map(|interval| self.start_ns + (f64::from(seq) * interval) as u64)
    }
}

/// A stretch without a connection: from the moment an actor saw its
/// connection lost until it was connected (and subscribed, or ready to
/// publish) again.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Outage {
    /// The actor, e.g. `producer web#0`.
    pub actor: String,
    /// The node whose connection was lost (its URL, password redacted).
    pub node: String,
    /// When the loss was seen, nanoseconds since the run's epoch.
    pub start_ns: u64,
    /// When the actor was connected again; `None` if it never was.
    pub end_ns: Option<u64>,
    /// The node it was connected to again.
    pub reconnected_to: Option<String>,
}

impl Outage {
    /// A loss at `start_ns` the actor came back from at `end_ns`, on node `to`.
    pub fn ended(actor: String, node: String, start_ns: u64, end_ns: u64, to: String) -> Outage {
        Outage { actor, node, start_ns, end_ns: Some(end_ns), reconnected_to: Some(to) }
    }

    /// A loss at `start_ns` the actor never came back from.
    pub fn unended(actor: String, node: String, start_ns: u64) -> Outage {
        Outage { actor, node, start_ns, end_ns: None, reconnected_to: None }
    }
}

/// Why an actor stopped before its time.
#[derive(Debug, Clone, thiserror::Error)]
pub enum ActorError {
    /// Publishing failed, usually because the connection or channel closed.
    #[error("producer {group}#{instance}: publishing to exchange `{exchange}` failed")]
    Publish {
        /// Producer group.
        group: String,
        /// Instance within the group.
        instance: u32,
        /// Target exchange.
        exchange: String,
        /// lapin's error.
        #[source]
        source: lapin::Error,
    },
    /// Consuming or acknowledging failed.
    #[error("consumer {group}#{instance}: consuming from queue `{queue}` failed")]
    Consume {
        /// Consumer group.
        group: String,
        /// Instance within the group.
        instance: u32,
        /// Source queue.
        queue: String,
        /// lapin's error.
        #[source]
        source: lapin::Error,
    },
    /// Its connection was lost and no node took it back in time.
    #[error("{actor}: its connection was lost and it could not reconnect")]
    Reconnect {
        /// The actor, e.g. `producer web#0`.
        actor: String,
        /// Why not.
        #[source]
        source: crate::bench::link::ReconnectError,
    },
    /// A `protocol: stream` actor failed (and reconnection is off).
    #[error("{actor}: {doing} stream `{stream}` over the stream protocol failed")]
    Stream {
        /// The actor, e.g. `producer web#0`.
        actor: String,
        /// `publishing to` or `reading`.
        doing: &'static str,
        /// The stream.
        stream: String,
        /// What happened.
        #[source]
        source: StreamFailure,
    },
    /// The broker ended the subscription (queue deleted, or connection closed).
    #[error(
        "consumer {group}#{instance}: the subscription to queue `{queue}` ended (queue deleted or connection lost)"
    )]
    SubscriptionEnded {
        /// Consumer group.
        group: String,
        /// Instance within the group.
        instance: u32,
        /// Source queue.
        queue: String,
    },
}

/// What ended a `protocol: stream` actor.
#[derive(Debug, Clone, thiserror::Error)]
pub enum StreamFailure {
    /// The client could not hand a message over, or the broker refused it.
    #[error("the publish failed")]
    Publish(#[source] Arc<rabbitmq_stream_client::error::ProducerPublishError>),
    /// A delivery could not be read.
    #[error("a delivery failed")]
    Deliver(#[source] Arc<rabbitmq_stream_client::error::ConsumerDeliveryError>),
    /// The connection closed, or the broker dropped the subscription.
    #[error("the connection closed or the broker dropped the subscription")]
    Closed,
}

/// Converts a map of header values from the scenario file to an AMQP field
/// table, as RabbitMQ's management API converts JSON.
pub fn field_table<'a>(entries: impl Iterator<Item = (&'a String, &'a serde_json::Value)>) -> FieldTable {
    warren_definitions::arguments::table_from_json(entries)
}
