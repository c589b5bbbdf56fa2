//! Message counters, named as RabbitMQ's `message_stats`, and what a connection reports of itself
//! when the management API asks.
//!
//! Nothing here is shared on the message path: each connection task counts in plain integers of
//! its own (per channel, per queue and per exchange it touched) and hands a copy over only when
//! asked ([`ConnectionReport`]); what closed connections counted is kept in [`Retired`]. Readers
//! add the two up, so counting costs a publish or a delivery a few additions and no atomic.

use std::collections::HashMap;
use std::sync::{Arc, Weak};

use super::queue::Queue;

/// Counts of one channel, of a sum of channels, or of one queue (where `publish` counts the
/// messages routed to it), under RabbitMQ's names.
#[derive(Debug, Clone, Copy, Default, PartialEq, Eq)]
pub struct MessageStats {
    /// Messages published (for a queue: routed to it).
    pub publish: u64,
    /// Published messages confirmed to the publisher.
    pub confirm: u64,
    /// Mandatory messages returned as unroutable.
    pub return_unroutable: u64,
    /// Non-mandatory messages dropped as unroutable.
    pub drop_unroutable: u64,
    /// Deliveries to consumers that acknowledge.
    pub deliver: u64,
    /// Deliveries to no-ack consumers.
    pub deliver_no_ack: u64,
    /// Messages fetched with `basic.get`, to be acknowledged.
    pub get: u64,
    /// Messages fetched with `basic.get` and `no_ack`.
    pub get_no_ack: u64,
    /// `basic.get` that found the queue empty.
    pub get_empty: u64,
    /// Deliveries and gets of messages delivered before.
    pub redeliver: u64,
    /// Messages acknowledged.
    pub ack: u64,
}

impl MessageStats {
    /// Adds `other`'s counts.
    pub fn add(&mut self, other: &MessageStats) {
        self.publish += other.publish;
        self.confirm += other.confirm;
        self.return_unroutable += other.return_unroutable;
        self.drop_unroutable += other.drop_unroutable;
        self.deliver += other.deliver;
        self.deliver_no_ack += other.deliver_no_ack;
        self.get += other.get;
        self.get_no_ack += other.get_no_ack;
        self.get_empty += other.get_empty;
        self.redeliver += other.redeliver;
        self.ack += other.ack;
    }

    /// Everything handed to clients: deliveries and gets, with or without acks.
    pub fn deliver_get(&self) -> u64 {
        self.deliver + self.deliver_no_ack + self.get + self.get_no_ack
    }

    /// Counts one message handed out by a delivery (`get` false) or a `basic.get`.
    pub fn handed_out(&mut self, get: bool, ack_required: bool, redelivered: bool) {
        match (get, ack_required) {
            (false, true) => self.deliver += 1,
            (false, false) => self.deliver_no_ack += 1,
            (true, true) => self.get += 1,
            (true, false) => self.get_no_ack += 1,
        }
        self.redeliver += u64::from(redelivered);
    }
}

/// Counts of one exchange.
#[derive(Debug, Clone, Copy, Default, PartialEq, Eq)]
pub struct ExchangeStats {
    /// Messages published to it.
    pub publish_in: u64,
    /// Copies it routed to queues.
    pub publish_out: u64,
}

impl ExchangeStats {
    /// Adds `other`'s counts.
    pub fn add(&mut self, other: &ExchangeStats) {
        self.publish_in += other.publish_in;
        self.publish_out += other.publish_out;
    }
}

/// Bytes and socket operations of a connection.
#[derive(Debug, Clone, Copy, Default, PartialEq, Eq)]
pub struct IoStats {
    /// Bytes read.
    pub recv_oct: u64,
    /// Socket reads.
    pub recv_cnt: u64,
    /// Bytes written.
    pub send_oct: u64,
    /// Socket writes.
    pub send_cnt: u64,
}

impl IoStats {
    /// Adds `other`'s counts.
    pub fn add(&mut self, other: &IoStats) {
        self.recv_oct += other.recv_oct;
        self.recv_cnt += other.recv_cnt;
        self.send_oct += other.send_oct;
        self.send_cnt += other.send_cnt;
    }
}

/// A queue's counts as one connection keeps them. The queue is held weakly, so a deleted queue is
/// freed; holding the allocation keeps its address, the key, unique.
#[derive(Debug, Clone)]
pub struct QueueTally {
    /// The queue.
    pub queue: Weak<Queue>,
    /// Its counts.
    pub stats: MessageStats,
}

/// Per-queue counts, by the queue's address.
pub type QueueTallies = HashMap<usize, QueueTally, foldhash::fast::FixedState>;

/// The counts of `queue` in `tallies`, created at zero.
pub fn queue_tally<'a>(tallies: &'a mut QueueTallies, queue: &Arc<Queue>) -> &'a mut MessageStats {
    &mut tallies
        .entry(Arc::as_ptr(queue) as usize)
        .or_insert_with(|| QueueTally { queue: Arc::downgrade(queue), stats: MessageStats::default() })
        .stats
}

/// Adds the counts of `from` to `into`.
pub fn add_queue_tallies(into: &mut QueueTallies, from: &QueueTallies) {
    for (key, tally) in from {
        into.entry(*key)
            .or_insert_with(|| QueueTally { queue: tally.queue.clone(), stats: MessageStats::default() })
            .stats
            .add(&tally.stats);
    }
}

/// Forgets queues that were deleted (their counts go with them, as in RabbitMQ).
pub fn forget_deleted_queues(tallies: &mut QueueTallies) {
    tallies.retain(|_, t| t.queue.upgrade().is_some_and(|q| !q.is_deleted()));
}

/// Per-queue and per-exchange counts of one connection (its exchanges are in its vhost).
#[derive(Debug, Clone, Default)]
pub struct Tallies {
    /// By the queue's address.
    pub queues: QueueTallies,
    /// By exchange name.
    pub exchanges: HashMap<Arc<str>, ExchangeStats, foldhash::fast::FixedState>,
}

impl Tallies {
    /// The counts of `queue`, created at zero.
    pub fn queue(&mut self, queue: &Arc<Queue>) -> &mut MessageStats {
        queue_tally(&mut self.queues, queue)
    }

    /// Counts one message published to `exchange` and routed to `routed` queues. Looked up by the
    /// name's text, so the shared name (whose count every queued message also holds) is cloned
    /// only the first time.
    pub fn exchange_published(&mut self, exchange: &Arc<str>, routed: usize) {
        let count = |stats: &mut ExchangeStats| {
            stats.publish_in += 1;
            stats.publish_out += routed as u64;
        };
        if let Some(stats) = self.exchanges.get_mut(&**exchange) {
            count(stats);
            return;
        }
        let mut stats = ExchangeStats::default();
        count(&mut stats);
        self.exchanges.insert(Arc::clone(exchange), stats);
    }
}

/// One channel as its connection reports it.
#[derive(Debug, Clone, Default)]
pub struct ChannelReport {
    /// Channel number.
    pub number: u16,
    /// Consumers on it.
    pub consumers: usize,
    /// Prefetch for new consumers (`basic.qos` without `global`).
    pub prefetch: u32,
    /// Channel-wide prefetch (`basic.qos` with `global`).
    pub global_prefetch: u32,
    /// Delivered, not yet acknowledged.
    pub unacked: usize,
    /// Published in confirm mode, not yet confirmed.
    pub unconfirmed: u64,
    /// Publishes held by an open transaction.
    pub uncommitted_messages: usize,
    /// Acknowledgements held by an open transaction.
    pub uncommitted_acks: usize,
    /// In confirm mode.
    pub confirm: bool,
    /// In transaction mode.
    pub transactional: bool,
    /// Its counts.
    pub stats: MessageStats,
}

/// What an open connection says of itself, at the moment it was asked.
#[derive(Debug, Clone, Default)]
pub struct ConnectionReport {
    /// Its socket.
    pub io: IoStats,
    /// Not reading its socket under a resource alarm.
    pub blocked: bool,
    /// Its open channels, by number.
    pub channels: Vec<ChannelReport>,
    /// What its channels closed so far counted.
    pub closed_channels: MessageStats,
    /// Channels opened and closed over its life.
    pub channels_opened: u64,
    /// See `channels_opened`.
    pub channels_closed: u64,
    /// Per queue and per exchange.
    pub tallies: Tallies,
}

impl ConnectionReport {
    /// Everything its channels, open and closed, counted.
    pub fn totals(&self) -> MessageStats {
        let mut totals = self.closed_channels;
        for channel in &self.channels {
            totals.add(&channel.stats);
        }
        totals
    }
}

/// What closed connections and the management API's own publishes and gets counted.
#[derive(Debug, Clone, Default)]
pub struct Retired {
    /// Their message counts.
    pub totals: MessageStats,
    /// Per queue.
    pub queues: QueueTallies,
    /// By (vhost, exchange name).
    pub exchanges: HashMap<(String, String), ExchangeStats>,
    /// Connections opened since the start.
    pub connections_opened: u64,
    /// Connections closed since the start.
    pub connections_closed: u64,
    /// Channels opened by the closed connections.
    pub channels_opened: u64,
    /// Channels closed by the closed connections (all of theirs).
    pub channels_closed: u64,
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn deliveries_and_gets_are_counted_under_their_own_names() {
        let mut stats = MessageStats::default();
        stats.handed_out(false, true, false);
        stats.handed_out(false, false, true);
        stats.handed_out(true, true, false);
        stats.handed_out(true, false, false);
        assert_eq!((stats.deliver, stats.deliver_no_ack, stats.get, stats.get_no_ack), (1, 1, 1, 1));
        assert_eq!((stats.deliver_get(), stats.redeliver), (4, 1));
        let mut sum = MessageStats { publish: 2, ..Default::default() };
        sum.add(&stats);
        assert_eq!((sum.publish, sum.deliver_get()), (2, 4));
    }
}
