//! Per-second time series. Each actor counts into its current second and
//! hands the finished second to the aggregator once per second (never once
//! per message); the aggregator adds seconds from every actor up and feeds
//! the live progress line.

use std::collections::BTreeMap;
use std::sync::{Arc, Mutex};

use crate::result::histogram::{self, Latency};

const NS_PER_SECOND: u64 = 1_000_000_000;

/// Counters of one second of one actor (or, once merged, of the whole run).
#[derive(Debug, Clone, Copy, Default, PartialEq, Eq)]
pub struct Counters {
    /// Messages published.
    pub published: u64,
    /// Publisher confirms received (acks).
    pub confirmed: u64,
    /// Negative publisher confirms.
    pub nacked: u64,
    /// Messages returned as unroutable.
    pub returned: u64,
    /// Messages delivered to consumers.
    pub delivered: u64,
    /// Deliveries acknowledged.
    pub acked: u64,
    /// Deliveries flagged as redelivered.
    pub redelivered: u64,
    /// Errors (failed publishes, failed acks).
    pub errors: u64,
}

impl Counters {
    fn add(&mut self, other: &Counters) {
        self.published += other.published;
        self.confirmed += other.confirmed;
        self.nacked += other.nacked;
        self.returned += other.returned;
        self.delivered += other.delivered;
        self.acked += other.acked;
        self.redelivered += other.redelivered;
        self.errors += other.errors;
    }
}

/// One finished second of one actor.
#[derive(Debug)]
struct Tick {
    second: u64,
    counters: Counters,
    e2e: Option<Latency>,
}

/// The seconds of every actor, added up. Shared between the actors'
/// recorders and the progress reporter.
#[derive(Debug, Default)]
pub struct Aggregate {
    seconds: BTreeMap<u64, (Counters, Latency)>,
}

impl Aggregate {
    fn add(&mut self, tick: Tick) {
        let slot = self.seconds.entry(tick.second).or_insert_with(|| (Counters::default(), histogram::new_latency()));
        slot.0.add(&tick.counters);
        if let Some(e2e) = &tick.e2e {
            histogram::merge(&mut slot.1, e2e);
        }
    }

    /// The second `second` (since the run start), if any actor reported it.
    pub fn second(&self, second: u64) -> Option<(&Counters, &Latency)> {
        self.seconds.get(&second).map(|(c, h)| (c, h))
    }

    /// Every reported second in order.
    pub fn seconds(&self) -> impl Iterator<Item = (u64, &Counters, &Latency)> {
        self.seconds.iter().map(|(s, (c, h))| (*s, c, h))
    }

    /// Totals over all seconds.
    pub fn totals(&self) -> Counters {
        let mut total = Counters::default();
        for (counters, _) in self.seconds.values() {
            total.add(counters);
        }
        total
    }
}

/// A shared handle on the aggregate.
pub type SharedAggregate = Arc<Mutex<Aggregate>>;

/// An actor's recorder of its current second.
#[derive(Debug)]
pub struct SeriesRecorder {
    aggregate: SharedAggregate,
    /// Run start in epoch nanoseconds; seconds count from here.
    start_ns: u64,
    second: u64,
    counters: Counters,
    e2e: Option<Latency>,
}

impl SeriesRecorder {
    /// A recorder adding into `aggregate`; seconds count from `start_ns`.
    pub fn new(aggregate: SharedAggregate, start_ns: u64) -> SeriesRecorder {
        SeriesRecorder { aggregate, start_ns, second: 0, counters: Counters::default(), e2e: None }
    }

    /// The counters of the second holding `now_ns`, closing the previous second first if needed.
    #[inline]
    pub fn at(&mut self, now_ns: u64) -> &mut Counters {
        let second = now_ns.saturating_sub(self.start_ns) / NS_PER_SECOND;
        if second != self.second {
            self.flush();
            self.second = second;
        }
        &mut self.counters
    }

    /// Records an end-to-end latency in the second holding `now_ns`.
    #[inline]
    pub fn e2e(&mut self, now_ns: u64, latency_ns: u64) {
        self.at(now_ns);
        histogram::record(self.e2e.get_or_insert_with(histogram::new_latency), latency_ns);
    }

    /// Hands the current second to the aggregate.
    pub fn flush(&mut self) {
        let counters = std::mem::take(&mut self.counters);
        let e2e = self.e2e.take();
        if counters == Counters::default() && e2e.is_none() {
            return;
        }
        let tick = Tick { second: self.second, counters, e2e };
        // A poisoned lock means another actor panicked; the run is failing anyway, and
        // the aggregate only feeds the report.
        if let Ok(mut aggregate) = self.aggregate.lock() {
            aggregate.add(tick);
        }
    }
}

impl Drop for SeriesRecorder {
    fn drop(&mut self) {
        self.flush();
    }
}
