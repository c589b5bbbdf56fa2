//! Per-channel state: unacknowledged deliveries, consumers, prefetch, confirm/tx mode and the
//! message being assembled from method, header and body frames.

use std::collections::{HashMap, VecDeque};
use std::sync::Arc;

use amq_protocol::protocol::basic;
use bytes::{Bytes, BytesMut};

use crate::state::message::Message;
use crate::state::queue::{ChannelCredit, Credit, Queue, QueuedMessage};
use crate::state::stats::{ChannelReport, MessageStats};

/// One delivered, not yet acknowledged message.
#[derive(Debug)]
pub struct Unacked {
    /// Its delivery tag on this channel.
    pub tag: u64,
    /// The queue it came from.
    pub queue: Arc<Queue>,
    /// The message with its delivery state.
    pub message: QueuedMessage,
    /// The consumer's window to release (`None` for `basic.get`).
    pub credit: Option<Arc<Credit>>,
}

/// A consumer as its channel sees it.
#[derive(Debug)]
pub struct ConsumerInfo {
    /// The queue.
    pub queue: Arc<Queue>,
}

/// A publish being assembled.
#[derive(Debug)]
pub struct Incoming {
    /// The method.
    pub publish: basic::Publish,
    /// Raw properties, once the header arrived.
    pub properties: Option<Bytes>,
    /// Declared body size.
    pub body_size: u64,
    /// Body fragments so far.
    pub body: BodyParts,
}

/// Body fragments: one frame is kept as is (no copy); several are joined.
#[derive(Debug, Default)]
pub enum BodyParts {
    /// Nothing yet.
    #[default]
    Empty,
    /// One fragment.
    One(Bytes),
    /// Several, being joined.
    Many(BytesMut),
}

impl BodyParts {
    /// Bytes received so far.
    pub fn len(&self) -> usize {
        match self {
            BodyParts::Empty => 0,
            BodyParts::One(b) => b.len(),
            BodyParts::Many(b) => b.len(),
        }
    }

    /// Adds a fragment.
    pub fn push(&mut self, part: Bytes) {
        *self = match std::mem::take(self) {
            BodyParts::Empty => BodyParts::One(part),
            BodyParts::One(first) => {
                let mut joined = BytesMut::with_capacity(first.len() + part.len());
                joined.extend_from_slice(&first);
                joined.extend_from_slice(&part);
                BodyParts::Many(joined)
            }
            BodyParts::Many(mut joined) => {
                joined.extend_from_slice(&part);
                BodyParts::Many(joined)
            }
        };
    }

    /// The whole body. Small single-frame bodies are copied out of the read buffer into the
    /// connection's arena, so a queued message neither pins a whole read chunk nor costs an
    /// allocation of its own.
    pub fn finish(self, arena: &mut Arena) -> Bytes {
        match self {
            BodyParts::Empty => Bytes::new(),
            BodyParts::One(b) if b.len() <= 4096 => arena.copy(&b),
            BodyParts::One(b) => b,
            BodyParts::Many(b) => b.freeze(),
        }
    }
}

/// Packs small message parts of one connection into shared 64 KiB blocks: each part is a `Bytes`
/// view into a block, so a 16-byte body costs 16 bytes instead of an allocation. A block is freed
/// when the last message in it is.
#[derive(Debug, Default)]
pub struct Arena {
    block: BytesMut,
}

impl Arena {
    const BLOCK: usize = 64 * 1024;

    /// Copies `data` into the current block.
    pub fn copy(&mut self, data: &[u8]) -> Bytes {
        if data.is_empty() {
            return Bytes::new();
        }
        if self.block.capacity() - self.block.len() < data.len() {
            self.block = BytesMut::with_capacity(Self::BLOCK.max(data.len()));
        }
        self.block.extend_from_slice(data);
        self.block.split().freeze()
    }
}

/// A publish or acknowledgement held back by a transaction until commit.
#[derive(Debug)]
pub enum TxOp {
    /// A complete publish.
    Publish { mandatory: bool, message: Arc<Message>, headers: Option<amq_protocol::types::FieldTable> },
    /// `basic.ack`.
    Ack { tag: u64, multiple: bool },
    /// `basic.nack` / `basic.reject`.
    Nack { tag: u64, multiple: bool, requeue: bool },
}

/// A reply that waits for the message store: it goes out once the sync round numbered with it is
/// done (round 0: no wait; [`Reply::PENDING`]: the round is not known until the batch ends).
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Reply {
    /// `basic.ack` with `multiple`, up to this sequence number.
    Ack(u64),
    /// `basic.nack` of this sequence number.
    Nack(u64),
    /// `tx.commit-ok`.
    CommitOk,
}

impl Reply {
    /// The round of a reply whose batch has not ended yet.
    pub const PENDING: u64 = u64::MAX;
}

/// Publisher-confirm bookkeeping: sequence numbers, and a run of acks not yet sent so one
/// `multiple` ack covers a whole read batch.
#[derive(Debug, Default)]
pub struct Confirms {
    /// Last sequence number given to a publish.
    pub next_seq: u64,
    /// Highest sequence number to ack in the next flush (0 = none pending).
    pub ack_upto: u64,
    /// Highest sequence number already confirmed (acked or nacked).
    pub confirmed: u64,
}

/// Lifecycle of a channel.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum ChannelPhase {
    /// Usable.
    Open,
    /// We sent `channel.close` and wait for `close-ok`; other frames are dropped.
    Closing,
}

/// An open channel.
#[derive(Debug)]
pub struct Channel {
    /// Usable or closing.
    pub phase: ChannelPhase,
    /// Next delivery tag.
    pub next_tag: u64,
    /// Unacked deliveries, tags increasing.
    pub unacked: VecDeque<Unacked>,
    /// Consumers by tag.
    pub consumers: HashMap<Arc<str>, ConsumerInfo>,
    /// Prefetch for consumers created from now on (`basic.qos` without `global`).
    pub consumer_prefetch: u32,
    /// Channel-wide window and flow state.
    pub credit: Arc<ChannelCredit>,
    /// Confirm mode.
    pub confirms: Option<Confirms>,
    /// Transaction mode and its pending operations.
    pub tx: Option<Vec<TxOp>>,
    /// A publish being assembled.
    pub incoming: Option<Incoming>,
    /// Queue named by the last `queue.declare`, for empty queue names.
    pub last_queue: Option<String>,
    /// Exchanges this channel was allowed to publish to (permission cache), as the connection's
    /// interned names.
    pub write_allowed: Vec<Arc<str>>,
    /// Confirms and commit-oks waiting for a sync round, in the order they go out.
    pub replies: VecDeque<(u64, Reply)>,
    /// What it counted.
    pub stats: MessageStats,
    /// The highest publish sequence number an ack or a nack sent to the client covered.
    pub confirm_sent: u64,
}

impl Channel {
    /// A fresh channel.
    pub fn new() -> Self {
        Channel {
            phase: ChannelPhase::Open,
            next_tag: 1,
            unacked: VecDeque::new(),
            consumers: HashMap::new(),
            consumer_prefetch: 0,
            credit: Arc::new(ChannelCredit::default()),
            confirms: None,
            tx: None,
            incoming: None,
            last_queue: None,
            write_allowed: Vec::new(),
            replies: VecDeque::new(),
            stats: MessageStats::default(),
            confirm_sent: 0,
        }
    }

    /// The channel as the management API shows it.
    pub fn report(&self, number: u16) -> ChannelReport {
        let (uncommitted_messages, uncommitted_acks) = self.tx.as_ref().map_or((0, 0), |ops| {
            let publishes = ops.iter().filter(|op| matches!(op, TxOp::Publish { .. })).count();
            (publishes, ops.len() - publishes)
        });
        ChannelReport {
            number,
            consumers: self.consumers.len(),
            prefetch: self.consumer_prefetch,
            global_prefetch: self.credit.prefetch.load(std::sync::atomic::Ordering::Relaxed),
            unacked: self.unacked.len(),
            unconfirmed: self.confirms.as_ref().map_or(0, |c| c.next_seq.saturating_sub(self.confirm_sent)),
            uncommitted_messages,
            uncommitted_acks,
            confirm: self.confirms.is_some(),
            transactional: self.tx.is_some(),
            stats: self.stats,
        }
    }

    /// Takes the unacked deliveries selected by an ack/nack: all up to `tag` when `multiple`
    /// (everything when `tag` is 0), else exactly `tag`. `None` when the tag is unknown.
    pub fn take_acked(&mut self, tag: u64, multiple: bool) -> Option<Vec<Unacked>> {
        if multiple {
            if tag == 0 {
                return Some(self.unacked.drain(..).collect());
            }
            // Like RabbitMQ, a multiple ack whose tag is not outstanding acks what precedes it.
            let n = self.unacked.partition_point(|u| u.tag <= tag);
            return Some(self.unacked.drain(..n).collect());
        }
        if self.unacked.front().is_some_and(|u| u.tag == tag) {
            return self.unacked.pop_front().map(|u| vec![u]);
        }
        let i = self.unacked.binary_search_by_key(&tag, |u| u.tag).ok()?;
        self.unacked.remove(i).map(|u| vec![u])
    }
}
