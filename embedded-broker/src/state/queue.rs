//! Queues: their definition, effective settings (arguments over policy), messages, consumers and
//! the dispatch to consumers with credit.

use std::collections::VecDeque;
use std::sync::atomic::{AtomicBool, AtomicU32, AtomicUsize, Ordering};
use std::sync::{Arc, Mutex, MutexGuard};

use amq_protocol::types::FieldTable;

use super::message::{Message, Names};
use super::{ConnectionId, clock_ms, lock};
use crate::store::{self, Mark, QueueStore};

/// Ready messages of one priority level kept in memory, beyond which (with a data directory) new
/// messages go to the queue's tail on disk, read back in order as the head runs low.
pub const HEAD_MESSAGES: usize = 2048;
/// Body bytes of ready messages of one priority level kept in memory (see [`HEAD_MESSAGES`]).
pub const HEAD_BYTES: usize = 4 << 20;

/// What happens when a queue reaches its length limit.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Default)]
pub enum Overflow {
    /// Drop (or dead-letter) the oldest message.
    #[default]
    DropHead,
    /// Refuse the new message (nack with confirms).
    RejectPublish,
    /// Refuse the new message and dead-letter it.
    RejectPublishDlx,
}

/// Classic, quorum (accepted, behaves as classic plus a delivery limit) or stream (refused).
#[derive(Debug, Clone, Copy, PartialEq, Eq, Default)]
pub enum QueueType {
    /// The default.
    #[default]
    Classic,
    /// Accepted for compatibility; `x-delivery-limit` is honoured.
    Quorum,
}

impl QueueType {
    /// As RabbitMQ reports it.
    pub fn as_str(self) -> &'static str {
        match self {
            QueueType::Classic => "classic",
            QueueType::Quorum => "quorum",
        }
    }
}

/// The settings in force for a queue: its arguments, with policies filling what the arguments
/// leave out (and operator policies capping numeric limits), recomputed when policies change.
#[derive(Debug, Clone, Default, PartialEq, Eq)]
pub struct QueueSettings {
    /// Queue type.
    pub kind: QueueType,
    /// Per-queue message TTL, ms.
    pub message_ttl: Option<u64>,
    /// Delete the queue after this long unused, ms.
    pub expires: Option<u64>,
    /// Maximum ready messages.
    pub max_length: Option<u64>,
    /// Maximum total body bytes of ready messages.
    pub max_length_bytes: Option<u64>,
    /// Behaviour at the limit.
    pub overflow: Overflow,
    /// Dead-letter exchange.
    pub dead_letter_exchange: Option<String>,
    /// Dead-letter routing key (the message's own key when absent).
    pub dead_letter_routing_key: Option<String>,
    /// Highest priority level (priority queue when set).
    pub max_priority: Option<u8>,
    /// Only one consumer receives at a time.
    pub single_active_consumer: bool,
    /// Quorum queues: dead-letter/drop a message once delivered this many times.
    pub delivery_limit: Option<u32>,
    /// Name of the policy applied, for the management API.
    pub policy: Option<String>,
    /// Name of the operator policy applied, for the management API.
    pub operator_policy: Option<String>,
}

/// A message in a queue, with its per-queue delivery state.
#[derive(Debug, Clone)]
pub struct QueuedMessage {
    /// The shared message.
    pub message: Arc<Message>,
    /// Broker-clock millisecond after which it is dead; [`QueuedMessage::NEVER`] without a TTL
    /// (a sentinel rather than an `Option`, which would grow every queued message by 8 bytes).
    pub expires_at: u64,
    /// Its place in the queue's publish order: a requeued message of a classic queue goes back
    /// between the messages published before and after it, as RabbitMQ puts it back.
    pub seq: u64,
    /// Delivered before (requeued).
    pub redelivered: bool,
    /// Times delivered, for the quorum delivery limit.
    pub delivery_count: u32,
    /// Also in a segment file of the queue's store, which must hear when it is gone.
    pub on_disk: bool,
}

impl QueuedMessage {
    /// `expires_at` of a message without a TTL.
    pub const NEVER: u64 = u64::MAX;

    fn fresh(message: Arc<Message>, expires_at: u64, seq: u64) -> Self {
        QueuedMessage { message, expires_at, seq, redelivered: false, delivery_count: 0, on_disk: false }
    }
}

/// Where [`Queue::publish`] put a message with a store.
enum Stored {
    /// In memory only.
    Memory,
    /// In memory and in a segment (to survive a restart).
    Both,
    /// In a segment only (the queue's tail).
    Tail { recover: bool },
    /// It had to survive a restart and could not be written.
    Failed,
}

/// Milliseconds since the Unix epoch.
fn wall_ms() -> u64 {
    std::time::SystemTime::now().duration_since(std::time::UNIX_EPOCH).map_or(0, |d| d.as_millis() as u64)
}

/// A broker-clock expiry as wall-clock milliseconds (0 for none), so a TTL runs on across restarts.
fn wall_expiry(expires_at: u64) -> u64 {
    if expires_at == QueuedMessage::NEVER {
        return 0;
    }
    wall_ms().saturating_add(expires_at.saturating_sub(clock_ms())).max(1)
}

// One per queued message: the memory figures in ARCHITECTURE.md count on this size.
const _: () = assert!(std::mem::size_of::<QueuedMessage>() <= 32);

/// Why a message leaves a queue without being acknowledged; its `x-death` reason.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum DeathReason {
    /// Rejected or nacked without requeue.
    Rejected,
    /// TTL passed.
    Expired,
    /// Dropped by the length limit.
    Maxlen,
    /// The quorum delivery limit was reached.
    DeliveryLimit,
}

impl DeathReason {
    /// As written into `x-death`.
    pub fn as_str(self) -> &'static str {
        match self {
            DeathReason::Rejected => "rejected",
            DeathReason::Expired => "expired",
            DeathReason::Maxlen => "maxlen",
            DeathReason::DeliveryLimit => "delivery_limit",
        }
    }
}

/// A message leaving a queue towards its dead-letter exchange; routed by the caller once the queue
/// lock is released.
#[derive(Debug)]
pub struct DeadLetter {
    /// The message.
    pub message: Arc<Message>,
    /// The queue it died in.
    pub queue: String,
    /// Why.
    pub reason: DeathReason,
    /// Where to.
    pub exchange: String,
    /// With which key (the original key when `None`).
    pub routing_key: Option<String>,
}

/// A delivery waiting in a connection's outbox; the connection assigns the delivery tag when it
/// writes the frames, so tags increase in write order.
#[derive(Debug)]
pub struct Delivery {
    /// Channel of the consumer.
    pub channel: u16,
    /// Consumer tag.
    pub consumer_tag: Arc<str>,
    /// The queue it came from (for ack/requeue).
    pub queue: Arc<Queue>,
    /// The message.
    pub message: QueuedMessage,
    /// Whether the consumer acknowledges (false for no-ack consumers).
    pub ack_required: bool,
    /// The consumer's prefetch window, released on ack.
    pub credit: Arc<Credit>,
}

/// What a queue sends to a consumer's connection.
#[derive(Debug)]
pub enum Outgoing {
    /// A message for a consumer.
    Deliver(Delivery),
    /// The queue went away: the connection sends `basic.cancel` (consumer_cancel_notify).
    Cancelled {
        /// Channel of the consumer.
        channel: u16,
        /// Consumer tag.
        tag: Arc<str>,
    },
    /// The broker closes the whole connection (its vhost or user was deleted).
    Close {
        /// Reply code (320, `CONNECTION_FORCED`).
        code: u16,
        /// Reply text.
        text: String,
    },
}

impl Outgoing {
    /// The channel it is for (0, the connection's, for a close).
    pub fn channel(&self) -> u16 {
        match self {
            Outgoing::Deliver(d) => d.channel,
            Outgoing::Cancelled { channel, .. } => *channel,
            Outgoing::Close { .. } => 0,
        }
    }
}

/// A connection's inbox from queues: queues push under their own lock and wake the connection
/// task, which drains the whole batch into one write.
#[derive(Debug, Default)]
pub struct Outbox {
    pending: Mutex<Vec<Outgoing>>,
    /// Woken when items were added.
    pub notify: tokio::sync::Notify,
}

impl Outbox {
    /// Takes every pending item, in order.
    pub fn drain_into(&self, out: &mut Vec<Outgoing>) {
        out.append(&mut lock(&self.pending));
    }

    /// Queues an item; returns whether the outbox was empty (the caller then wakes the task).
    pub fn push(&self, item: Outgoing) -> bool {
        let mut pending = lock(&self.pending);
        let was_empty = pending.is_empty();
        pending.push(item);
        was_empty
    }
}

/// Prefetch shared by every consumer of one channel (`basic.qos` with `global`) plus the channel's
/// flow state.
#[derive(Debug)]
pub struct ChannelCredit {
    /// Channel-wide limit, 0 = none.
    pub prefetch: AtomicU32,
    /// Unacked deliveries on the channel.
    pub in_flight: AtomicU32,
    /// `channel.flow` active.
    pub active: AtomicBool,
}

impl Default for ChannelCredit {
    fn default() -> Self {
        Self { prefetch: AtomicU32::new(0), in_flight: AtomicU32::new(0), active: AtomicBool::new(true) }
    }
}

/// One consumer's prefetch window.
#[derive(Debug)]
pub struct Credit {
    /// Per-consumer limit, 0 = none.
    pub prefetch: u32,
    /// Unacked deliveries to this consumer.
    pub in_flight: AtomicU32,
    /// The channel's shared window.
    pub channel: Arc<ChannelCredit>,
}

impl Credit {
    fn available(&self) -> bool {
        let ch = &self.channel;
        if !ch.active.load(Ordering::Relaxed) {
            return false;
        }
        let per = self.prefetch == 0 || self.in_flight.load(Ordering::Relaxed) < self.prefetch;
        let global = ch.prefetch.load(Ordering::Relaxed);
        per && (global == 0 || ch.in_flight.load(Ordering::Relaxed) < global)
    }

    fn take(&self) {
        self.in_flight.fetch_add(1, Ordering::Relaxed);
        self.channel.in_flight.fetch_add(1, Ordering::Relaxed);
    }

    /// Returns `n` deliveries' worth of credit (on ack, nack, reject or requeue).
    pub fn release(&self, n: u32) {
        let _ = self.in_flight.fetch_update(Ordering::Relaxed, Ordering::Relaxed, |v| Some(v.saturating_sub(n)));
        let _ =
            self.channel.in_flight.fetch_update(Ordering::Relaxed, Ordering::Relaxed, |v| Some(v.saturating_sub(n)));
    }
}

/// A subscription to a queue.
#[derive(Debug, Clone)]
pub struct Consumer {
    /// Consumer tag, unique per channel.
    pub tag: Arc<str>,
    /// Channel number.
    pub channel: u16,
    /// Owning connection.
    pub connection: ConnectionId,
    /// Where deliveries go.
    pub outbox: Arc<Outbox>,
    /// Messages count as acknowledged when sent.
    pub no_ack: bool,
    /// Exclusive consumer.
    pub exclusive: bool,
    /// `x-priority`; higher-priority consumers with credit receive first.
    pub priority: i64,
    /// Prefetch window.
    pub credit: Arc<Credit>,
}

/// A queue. Its definition is immutable; messages and consumers sit behind its own lock so
/// publishers and consumers of different queues never contend.
#[derive(Debug)]
pub struct Queue {
    /// Its virtual host.
    pub vhost: String,
    /// Its name.
    pub name: String,
    /// Survives a restart (definition only; messages are kept in memory).
    pub durable: bool,
    /// The owning connection of an exclusive queue.
    pub exclusive_owner: Option<ConnectionId>,
    /// Deleted when its last consumer goes away.
    pub auto_delete: bool,
    /// Arguments as declared.
    pub arguments: FieldTable,
    inner: Mutex<QueueInner>,
    memory: Arc<AtomicUsize>,
    /// Its messages may be on disk (the broker has a data directory).
    stored: bool,
    /// Above this many bytes of messages in memory (the broker's), new messages go to disk.
    page_above: usize,
    /// Ready messages of a level kept in memory before new ones go to disk.
    head_messages: usize,
}

#[derive(Debug)]
struct QueueInner {
    settings: QueueSettings,
    /// One deque per priority level (a single one for non-priority queues).
    levels: Vec<VecDeque<QueuedMessage>>,
    ready: usize,
    ready_bytes: usize,
    unacked: usize,
    /// The `seq` of the next published message.
    next_seq: u64,
    /// Body bytes of the ready messages held in memory (the rest of `ready_bytes` is on disk).
    head_bytes: usize,
    /// The messages on disk, with a data directory.
    store: Option<QueueStore>,
    /// Exchange names and routing keys of messages read back from disk, each kept once.
    names: Names,
    consumers: Vec<Consumer>,
    next_consumer: usize,
    had_consumer: bool,
    last_used: u64,
    deleted: bool,
}

/// What became of a published message at one queue.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Enqueued {
    /// Stored or delivered.
    Accepted,
    /// Written to the queue's store to survive a restart: its confirm waits for the next sync.
    Persisted,
    /// Refused by `x-overflow: reject-publish` (publisher confirms nack it).
    Rejected,
}

/// Counters the management API shows.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Default)]
pub struct QueueCounts {
    /// Ready plus unacknowledged.
    pub messages: usize,
    /// Waiting for delivery.
    pub ready: usize,
    /// Delivered, not yet acknowledged.
    pub unacked: usize,
    /// Consumers.
    pub consumers: usize,
    /// Body bytes of ready messages.
    pub ready_bytes: usize,
}

impl Queue {
    pub(crate) fn new(
        vhost: &str,
        decl: super::QueueDecl,
        settings: QueueSettings,
        memory: Arc<AtomicUsize>,
        store: Option<QueueStore>,
        (page_above, head_messages): (usize, usize),
    ) -> Self {
        let levels = usize::from(settings.max_priority.unwrap_or(0)) + 1;
        let (mut ready, mut ready_bytes) = (0, 0);
        if let Some(store) = &store {
            for level in 0..levels {
                let (count, bytes) = store.tail(level);
                ready += count as usize;
                ready_bytes += bytes as usize;
            }
        }
        let next_seq = store.as_ref().map_or(0, QueueStore::next_seq);
        let stored = store.is_some();
        Queue {
            vhost: vhost.to_owned(),
            name: decl.name,
            durable: decl.durable,
            exclusive_owner: decl.exclusive_owner,
            auto_delete: decl.auto_delete,
            arguments: decl.arguments,
            inner: Mutex::new(QueueInner {
                settings,
                levels: (0..levels).map(|_| VecDeque::new()).collect(),
                ready,
                ready_bytes,
                unacked: 0,
                next_seq,
                head_bytes: 0,
                store,
                names: Names::default(),
                consumers: Vec::new(),
                next_consumer: 0,
                had_consumer: false,
                last_used: clock_ms(),
                deleted: false,
            }),
            memory,
            stored,
            page_above,
            head_messages: head_messages.max(1),
        }
    }

    fn inner(&self) -> MutexGuard<'_, QueueInner> {
        lock(&self.inner)
    }

    /// The settings in force.
    pub fn settings(&self) -> QueueSettings {
        self.inner().settings.clone()
    }

    pub(crate) fn set_settings(&self, settings: QueueSettings) {
        self.inner().settings = settings;
    }

    /// Message, ready, unacked and consumer counts.
    pub fn counts(&self) -> QueueCounts {
        let q = self.inner();
        QueueCounts {
            messages: q.ready + q.unacked,
            ready: q.ready,
            unacked: q.unacked,
            consumers: q.consumers.len(),
            ready_bytes: q.ready_bytes,
        }
    }

    /// Whether the queue was deleted (handles may outlive it briefly).
    pub fn is_deleted(&self) -> bool {
        self.inner().deleted
    }

    /// Consumers, for the management API and for cancel notifications on delete.
    pub fn consumers(&self) -> Vec<Consumer> {
        self.inner().consumers.clone()
    }

    /// Records use (declare, get, consume) for `x-expires`.
    pub fn touch(&self) {
        self.inner().last_used = clock_ms();
    }

    /// Stores a message or hands it to a consumer with credit. Dead letters from overflow are
    /// appended to `dead` for the caller to route after releasing locks.
    pub fn publish(self: &Arc<Self>, message: Arc<Message>, dead: &mut Vec<DeadLetter>) -> Enqueued {
        let now = clock_ms();
        let mut q = self.inner();
        if q.deleted {
            return Enqueued::Accepted;
        }
        let ttl = match (q.settings.message_ttl, message.expiration_ms) {
            (Some(a), Some(b)) => Some(a.min(b)),
            (a, b) => a.or(b),
        };
        // RabbitMQ drops a message with TTL 0 immediately unless a consumer can take it now.
        let expires_at = ttl.map_or(QueuedMessage::NEVER, |t| now.saturating_add(t));
        let body_len = message.body_len();
        if (q.settings.max_length.is_some() || q.settings.max_length_bytes.is_some())
            && Self::over_limits(&q, 1, body_len)
            && !self.can_deliver_now(&q)
        {
            match q.settings.overflow {
                Overflow::DropHead => self.drop_head_over_limits(&mut q, 1, body_len, dead),
                Overflow::RejectPublish => return Enqueued::Rejected,
                Overflow::RejectPublishDlx => {
                    self.die(&mut q, QueuedMessage::fresh(message, expires_at, 0), DeathReason::Maxlen, dead);
                    return Enqueued::Rejected;
                }
            }
        }
        if ttl == Some(0) && !self.can_deliver_now(&q) {
            self.die(&mut q, QueuedMessage::fresh(message, expires_at, 0), DeathReason::Expired, dead);
            return Enqueued::Accepted;
        }
        let seq = q.next_seq;
        q.next_seq += 1;
        let mut entry = QueuedMessage::fresh(message, expires_at, seq);
        let mut outcome = Enqueued::Accepted;
        if q.store.is_some() {
            match self.store_published(&mut q, &entry) {
                Stored::Memory => {}
                Stored::Both => {
                    entry.on_disk = true;
                    outcome = Enqueued::Persisted;
                }
                Stored::Tail { recover } => {
                    q.ready += 1;
                    q.ready_bytes += body_len;
                    self.dispatch_locked(&mut q, now, dead);
                    return if recover { Enqueued::Persisted } else { Enqueued::Accepted };
                }
                Stored::Failed => return Enqueued::Rejected,
            }
        }
        self.push_ready(&mut q, entry);
        self.dispatch_locked(&mut q, now, dead);
        outcome
    }

    /// Writes a newly published message to the store when it must survive a restart or does not
    /// fit in memory. A message goes to the tail (disk only) when the level already has one, or
    /// its head is full, or the broker's memory is over the paging threshold — unless a consumer
    /// can take it at once.
    fn store_published(&self, q: &mut QueueInner, entry: &QueuedMessage) -> Stored {
        let level = Self::level_of(q, &entry.message);
        let recover = self.durable && entry.message.persistent;
        let head_len = q.levels[level].len();
        let to_tail = !self.can_deliver_now(q)
            && q.store.as_ref().is_some_and(|s| {
                s.in_tail(level)
                    || head_len >= self.head_messages
                    || q.head_bytes + entry.message.body_len() > HEAD_BYTES
                    || self.memory.load(Ordering::Relaxed) > self.page_above
            });
        if !to_tail && !recover {
            return Stored::Memory;
        }
        let Some(store) = q.store.as_mut() else { return Stored::Memory };
        let m = &entry.message;
        let mut flags = if m.persistent { store::record::FLAG_PERSISTENT } else { 0 };
        if recover {
            flags |= store::record::FLAG_RECOVER;
        }
        let record = store::record::RecordRef {
            seq: entry.seq,
            flags,
            priority: m.priority,
            expires: wall_expiry(entry.expires_at),
            exchange: &m.exchange,
            routing_key: &m.routing_key,
            properties: &m.properties,
            body: &m.body,
        };
        match store.append(level, &record, to_tail) {
            Ok(()) if to_tail => Stored::Tail { recover },
            Ok(()) => Stored::Both,
            Err(error) => {
                tracing::error!(%error, vhost = %self.vhost, queue = %self.name, "cannot write a message to disk");
                if recover { Stored::Failed } else { Stored::Memory }
            }
        }
    }

    /// Writes what this queue's store buffered (once per batch of work); `false` when the disk
    /// refused (the data stays buffered for the next try).
    pub fn flush(&self) -> bool {
        if !self.stored {
            return true;
        }
        let mut q = self.inner();
        let Some(store) = q.store.as_mut() else { return true };
        match store.flush() {
            Ok(()) => true,
            Err(error) => {
                tracing::error!(%error, vhost = %self.vhost, queue = %self.name, "cannot write queued messages to disk");
                false
            }
        }
    }

    /// Bytes of this queue's segment files.
    pub fn disk_bytes(&self) -> u64 {
        if !self.stored {
            return 0;
        }
        self.inner().store.as_ref().map_or(0, QueueStore::disk_bytes)
    }

    /// Reads tail messages of a level back into memory, up to the head's limits.
    fn refill(&self, q: &mut QueueInner, level: usize) {
        let QueueInner { store, levels, names, head_bytes, .. } = q;
        let Some(store) = store.as_mut() else { return };
        let now = clock_ms();
        let wall = wall_ms();
        while levels[level].len() < self.head_messages.div_ceil(2) && *head_bytes < HEAD_BYTES / 2 {
            let Some(loaded) = store.load(level) else { break };
            let r = loaded.record;
            let message = Message {
                exchange: names.intern(&String::from_utf8_lossy(&r.exchange)),
                routing_key: names.intern(&String::from_utf8_lossy(&r.routing_key)),
                properties: r.properties,
                body: r.body,
                priority: r.priority,
                expiration_ms: None,
                persistent: r.flags & store::record::FLAG_PERSISTENT != 0,
            };
            let expires_at =
                if r.expires == 0 { QueuedMessage::NEVER } else { now.saturating_add(r.expires.saturating_sub(wall)) };
            self.memory.fetch_add(message.footprint(), Ordering::Relaxed);
            *head_bytes += message.body_len();
            levels[level].push_back(QueuedMessage {
                message: Arc::new(message),
                expires_at,
                seq: r.seq,
                redelivered: loaded.redelivered,
                delivery_count: u32::from(loaded.redelivered),
                on_disk: true,
            });
        }
    }

    /// Tells the store a message left the queue for good.
    fn forget(&self, q: &mut QueueInner, entry: &QueuedMessage) {
        if entry.on_disk
            && let Some(store) = q.store.as_mut()
        {
            let level = usize::from(entry.message.priority).min(q.levels.len() - 1);
            store.mark(level, entry.seq, Mark::Gone, self.durable && entry.message.persistent);
        }
    }

    /// Tells the store a message was handed to a consumer that will acknowledge it, so a restart
    /// returns it flagged redelivered.
    fn delivered(&self, q: &mut QueueInner, entry: &QueuedMessage) {
        if entry.on_disk
            && self.durable
            && entry.message.persistent
            && let Some(store) = q.store.as_mut()
        {
            let level = usize::from(entry.message.priority).min(q.levels.len() - 1);
            store.mark(level, entry.seq, Mark::Delivered, true);
        }
    }

    /// Whether `count` more ready messages of `bytes` more body bytes would pass `x-max-length` or
    /// `x-max-length-bytes`.
    fn over_limits(q: &QueueInner, count: usize, bytes: usize) -> bool {
        let limit = |l: Option<u64>| l.map_or(usize::MAX, |l| usize::try_from(l).unwrap_or(usize::MAX));
        q.ready + count > limit(q.settings.max_length)
            || q.ready_bytes.saturating_add(bytes) > limit(q.settings.max_length_bytes)
    }

    /// `x-overflow: drop-head`: drops (dead-letters) messages at the head until `count` more messages
    /// of `bytes` more bytes fit.
    fn drop_head_over_limits(&self, q: &mut QueueInner, count: usize, bytes: usize, dead: &mut Vec<DeadLetter>) {
        while Self::over_limits(q, count, bytes) {
            let Some(head) = self.pop_ready(q) else { break };
            self.die(q, head, DeathReason::Maxlen, dead);
        }
    }

    fn can_deliver_now(&self, q: &QueueInner) -> bool {
        q.ready == 0 && q.consumers.iter().any(|c| c.no_ack || c.credit.available())
    }

    fn level_of(q: &QueueInner, message: &Message) -> usize {
        usize::from(message.priority).min(q.levels.len() - 1)
    }

    /// Appends a newly published message (its memory is counted from here on).
    fn push_ready(&self, q: &mut QueueInner, entry: QueuedMessage) {
        let level = Self::level_of(q, &entry.message);
        q.ready += 1;
        q.ready_bytes += entry.message.body_len();
        q.head_bytes += entry.message.body_len();
        self.memory.fetch_add(entry.message.footprint(), Ordering::Relaxed);
        q.levels[level].push_back(entry);
    }

    /// Puts a delivered message back among the ready ones of its priority, where RabbitMQ puts it.
    /// A classic queue keeps each level in publish order (`seq`), whatever order the messages come
    /// back in (its backing queue merges requeued messages by sequence id). A quorum queue serves
    /// returned messages first, in the order they were returned (`rabbit_fifo`'s returns queue):
    /// each goes behind the returns already waiting, which are exactly the redelivered messages at
    /// the head, since every redelivered message got there this way.
    fn return_ready(q: &mut QueueInner, entry: QueuedMessage) {
        let level = Self::level_of(q, &entry.message);
        q.ready += 1;
        q.ready_bytes += entry.message.body_len();
        q.head_bytes += entry.message.body_len();
        let ready = &mut q.levels[level];
        let at = match q.settings.kind {
            QueueType::Quorum => ready.partition_point(|e| e.redelivered),
            // Usually it was published before everything still ready: no search.
            QueueType::Classic if ready.front().is_none_or(|head| entry.seq < head.seq) => 0,
            QueueType::Classic => ready.partition_point(|e| e.seq < entry.seq),
        };
        if at == 0 {
            ready.push_front(entry);
        } else {
            ready.insert(at, entry);
        }
    }

    /// Pops the next ready message (highest priority first); the memory it holds stays counted
    /// until it is acknowledged or dropped.
    fn pop_ready(&self, q: &mut QueueInner) -> Option<QueuedMessage> {
        for level in (0..q.levels.len()).rev() {
            if q.levels[level].is_empty() && q.store.as_ref().is_some_and(|s| s.in_tail(level)) {
                self.refill(q, level);
            }
            if let Some(entry) = q.levels[level].pop_front() {
                q.ready -= 1;
                q.ready_bytes -= entry.message.body_len();
                q.head_bytes -= entry.message.body_len();
                return Some(entry);
            }
        }
        None
    }

    fn release_memory(&self, message: &Message) {
        let _ = self
            .memory
            .fetch_update(Ordering::Relaxed, Ordering::Relaxed, |v| Some(v.saturating_sub(message.footprint())));
    }

    fn die(&self, q: &mut QueueInner, entry: QueuedMessage, reason: DeathReason, dead: &mut Vec<DeadLetter>) {
        self.forget(q, &entry);
        let message = entry.message;
        self.release_memory(&message);
        if let Some(exchange) = &q.settings.dead_letter_exchange {
            dead.push(DeadLetter {
                message,
                queue: self.name.clone(),
                reason,
                exchange: exchange.clone(),
                routing_key: q.settings.dead_letter_routing_key.clone(),
            });
        }
    }

    /// Pops expired messages at the head (as RabbitMQ does: expiry is checked at the head).
    fn drop_expired_head(&self, q: &mut QueueInner, now: u64, dead: &mut Vec<DeadLetter>) {
        for level in (0..q.levels.len()).rev() {
            loop {
                if q.levels[level].is_empty() && q.store.as_ref().is_some_and(|s| s.in_tail(level)) {
                    self.refill(q, level);
                }
                let Some(head) = q.levels[level].front() else { break };
                if head.expires_at > now {
                    break;
                }
                if let Some(entry) = q.levels[level].pop_front() {
                    q.ready -= 1;
                    q.ready_bytes -= entry.message.body_len();
                    q.head_bytes -= entry.message.body_len();
                    self.die(q, entry, DeathReason::Expired, dead);
                }
            }
        }
    }

    /// Delivers ready messages to consumers with credit; called after publish, ack and consume.
    pub fn dispatch(self: &Arc<Self>, dead: &mut Vec<DeadLetter>) {
        let mut q = self.inner();
        self.dispatch_locked(&mut q, clock_ms(), dead);
    }

    fn dispatch_locked(self: &Arc<Self>, q: &mut QueueInner, now: u64, dead: &mut Vec<DeadLetter>) {
        if q.consumers.is_empty() || q.deleted {
            if q.ready > 0 {
                self.drop_expired_head(q, now, dead);
            }
            return;
        }
        while q.ready > 0 {
            let Some(index) = Self::pick_consumer(q) else { break };
            self.drop_expired_head(q, now, dead);
            let Some(mut entry) = self.pop_ready(q) else { break };
            let consumer = &q.consumers[index];
            entry.delivery_count += 1;
            if !consumer.no_ack {
                consumer.credit.take();
            }
            let no_ack = consumer.no_ack;
            let delivery = Delivery {
                channel: consumer.channel,
                consumer_tag: consumer.tag.clone(),
                queue: Arc::clone(self),
                message: entry,
                ack_required: !no_ack,
                credit: Arc::clone(&consumer.credit),
            };
            if no_ack {
                self.forget(q, &delivery.message);
                self.release_memory(&delivery.message.message);
            } else {
                self.delivered(q, &delivery.message);
                q.unacked += 1;
            }
            let outbox = Arc::clone(&q.consumers[index].outbox);
            if outbox.push(Outgoing::Deliver(delivery)) {
                outbox.notify.notify_one();
            }
            q.next_consumer = index + 1;
        }
    }

    /// Round-robin among the highest-priority consumers that have credit; single-active-consumer
    /// queues only ever consider the first consumer.
    fn pick_consumer(q: &QueueInner) -> Option<usize> {
        let n = q.consumers.len();
        if q.settings.single_active_consumer {
            let c = q.consumers.first()?;
            return (c.no_ack || c.credit.available()).then_some(0);
        }
        let ready = |c: &Consumer| c.no_ack || c.credit.available();
        let top = q.consumers.iter().filter(|c| ready(c)).map(|c| c.priority).max()?;
        (0..n).map(|i| (q.next_consumer + i) % n).find(|&i| q.consumers[i].priority == top && ready(&q.consumers[i]))
    }

    /// `basic.get`: the next message and the count left, or `None` when empty.
    pub fn get(self: &Arc<Self>, no_ack: bool, dead: &mut Vec<DeadLetter>) -> Option<(QueuedMessage, usize)> {
        let mut q = self.inner();
        q.last_used = clock_ms();
        self.drop_expired_head(&mut q, clock_ms(), dead);
        let mut entry = self.pop_ready(&mut q)?;
        entry.delivery_count += 1;
        if no_ack {
            self.forget(&mut q, &entry);
            self.release_memory(&entry.message);
        } else {
            self.delivered(&mut q, &entry);
            q.unacked += 1;
        }
        let left = q.ready;
        Some((entry, left))
    }

    /// Adds a consumer. Exclusivity is checked here so two connections cannot race past it.
    pub fn add_consumer(self: &Arc<Self>, consumer: Consumer, dead: &mut Vec<DeadLetter>) -> Result<(), String> {
        let mut q = self.inner();
        if q.consumers.iter().any(|c| c.exclusive) || (consumer.exclusive && !q.consumers.is_empty()) {
            return Err(format!("queue '{}' in vhost '{}' in exclusive use", self.name, self.vhost));
        }
        q.consumers.push(consumer);
        q.had_consumer = true;
        q.last_used = clock_ms();
        self.dispatch_locked(&mut q, clock_ms(), dead);
        Ok(())
    }

    /// Removes a consumer; returns whether the queue should now be auto-deleted.
    pub fn remove_consumer(self: &Arc<Self>, connection: ConnectionId, channel: u16, tag: &str) -> bool {
        let mut q = self.inner();
        q.consumers.retain(|c| !(c.connection == connection && c.channel == channel && &*c.tag == tag));
        if q.next_consumer >= q.consumers.len() {
            q.next_consumer = 0;
        }
        q.last_used = clock_ms();
        self.auto_delete && q.had_consumer && q.consumers.is_empty() && !q.deleted
    }

    /// Acknowledges delivered messages of this queue.
    pub fn ack(&self, messages: impl IntoIterator<Item = QueuedMessage>) {
        let mut q = self.inner();
        for m in messages {
            q.unacked = q.unacked.saturating_sub(1);
            if !q.deleted {
                self.forget(&mut q, &m);
            }
            self.release_memory(&m.message);
        }
    }

    /// Returns delivered messages (pass them in delivery order, the order a quorum queue takes them
    /// back in) to where RabbitMQ puts them (see `return_ready`), marked redelivered; quorum queues
    /// dead-letter those past the delivery limit. Every requeue path (reject, nack, recover, a
    /// closed channel or connection, a delivery its channel could no longer take) comes here.
    pub fn requeue(self: &Arc<Self>, entries: Vec<QueuedMessage>, dead: &mut Vec<DeadLetter>) {
        let mut q = self.inner();
        if q.settings.kind == QueueType::Classic {
            // Delivery order is mostly publish order: backwards, each one goes to the front.
            for entry in entries.into_iter().rev() {
                self.requeue_one(&mut q, entry, dead);
            }
            // A classic queue applies its length limit to what came back before delivering again
            // (`rabbit_amqqueue_process:requeue_and_run`), so the head, often the requeued message
            // itself, is dropped.
            if q.settings.overflow == Overflow::DropHead {
                self.drop_head_over_limits(&mut q, 0, 0, dead);
            }
        } else {
            for entry in entries {
                self.requeue_one(&mut q, entry, dead);
            }
        }
        self.dispatch_locked(&mut q, clock_ms(), dead);
    }

    fn requeue_one(&self, q: &mut QueueInner, mut entry: QueuedMessage, dead: &mut Vec<DeadLetter>) {
        q.unacked = q.unacked.saturating_sub(1);
        if q.deleted {
            self.release_memory(&entry.message);
            return;
        }
        if let Some(limit) = q.settings.delivery_limit
            && entry.delivery_count > limit
        {
            self.die(q, entry, DeathReason::DeliveryLimit, dead);
            return;
        }
        entry.redelivered = true;
        Self::return_ready(q, entry);
    }

    /// Rejects delivered messages without requeue: they are dead-lettered when configured.
    pub fn reject(&self, entries: Vec<QueuedMessage>, dead: &mut Vec<DeadLetter>) {
        let mut q = self.inner();
        for entry in entries {
            q.unacked = q.unacked.saturating_sub(1);
            if q.deleted {
                self.release_memory(&entry.message);
                continue;
            }
            self.die(&mut q, entry, DeathReason::Rejected, dead);
        }
    }

    /// Removes every ready message; returns how many.
    pub fn purge(&self) -> usize {
        let mut q = self.inner();
        let n = q.ready;
        let drained: Vec<QueuedMessage> = q.levels.iter_mut().flat_map(|l| l.drain(..)).collect();
        for e in &drained {
            self.forget(&mut q, e);
            self.release_memory(&e.message);
        }
        let levels = q.levels.len();
        if let Some(store) = q.store.as_mut() {
            for level in 0..levels {
                store.purge_tail(level);
            }
        }
        q.ready = 0;
        q.ready_bytes = 0;
        q.head_bytes = 0;
        n
    }

    /// Marks the queue deleted and returns its consumers (to notify) and the ready count.
    pub(crate) fn mark_deleted(&self) -> (Vec<Consumer>, usize) {
        let mut q = self.inner();
        q.deleted = true;
        let n = q.ready;
        for level in q.levels.iter_mut() {
            for e in level.drain(..) {
                self.release_memory(&e.message);
            }
        }
        if let Some(store) = q.store.as_mut() {
            store.destroy();
        }
        q.ready = 0;
        q.ready_bytes = 0;
        q.head_bytes = 0;
        (std::mem::take(&mut q.consumers), n)
    }

    /// Periodic work: drops expired head messages, writes what the store buffered (setting
    /// `write_failed` when it cannot), compacts its sparse segments, and tells whether
    /// `x-expires` has passed.
    pub(crate) fn sweep(self: &Arc<Self>, now: u64, dead: &mut Vec<DeadLetter>, write_failed: &mut bool) -> bool {
        let mut q = self.inner();
        if q.ready > 0 {
            self.drop_expired_head(&mut q, now, dead);
        }
        if let Some(store) = q.store.as_mut() {
            if store.has_buffered()
                && let Err(error) = store.flush()
            {
                tracing::error!(%error, vhost = %self.vhost, queue = %self.name, "cannot write queued messages to disk");
                *write_failed = true;
            }
            store.compact();
        }
        match q.settings.expires {
            Some(ms) => q.consumers.is_empty() && now.saturating_sub(q.last_used) >= ms && !q.deleted,
            None => false,
        }
    }
}
