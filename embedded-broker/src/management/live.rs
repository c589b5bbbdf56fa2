//! What the management API reads of the running broker: a [`Snapshot`] of every connection's
//! counters (asked of the connections themselves, see `state/stats.rs`), and the [`Rates`] the
//! answers carry as `…_details.rate`.
//!
//! RabbitMQ samples its counters every 5 seconds and reports the change per second between
//! samples. Here nothing runs between requests: each read of a counter is a sample, and its
//! rate is the change per second since the oldest sample of the last [`WINDOW`], so a client
//! polling every few seconds (the UI, `warren bench`) sees the recent rate, and a first read
//! says 0.0.

use std::collections::{HashMap, VecDeque};
use std::sync::{Arc, Mutex};
use std::time::{Duration, Instant};

use serde_json::{Map, Value, json};

use crate::state::State;
use crate::state::connections::OpenConnection;
use crate::state::lock;
use crate::state::queue::Queue;
use crate::state::stats::{ConnectionReport, ExchangeStats, MessageStats, QueueTallies, add_queue_tallies};

/// How far back a rate looks.
const WINDOW: Duration = Duration::from_secs(10);

/// Counters nobody read for this long are forgotten.
const FORGET_AFTER: Duration = Duration::from_secs(120);

/// How long a reader waits for a connection's report; a connection stuck writing to a client
/// that does not read answers late, and is shown without counters meanwhile.
const REPORT_WAIT: Duration = Duration::from_secs(1);

/// One open connection as a snapshot saw it.
#[derive(Debug)]
pub(crate) struct Seen {
    /// Its fixed facts.
    pub(crate) connection: OpenConnection,
    /// Its counters, unless it did not answer in time.
    pub(crate) report: Option<Arc<ConnectionReport>>,
}

/// Every connection's counters and what the closed ones counted, read at one moment.
#[derive(Debug)]
pub(crate) struct Snapshot {
    /// Open connections, by name.
    pub(crate) connections: Vec<Seen>,
    /// Everything counted, open and closed connections together.
    pub(crate) totals: MessageStats,
    /// Per queue, by the queue's address.
    pub(crate) queues: QueueTallies,
    /// By (vhost, exchange name).
    pub(crate) exchanges: HashMap<(String, String), ExchangeStats>,
    /// Connections and channels opened and closed since the start.
    pub(crate) churn: Churn,
}

/// Connections and channels opened and closed since the start.
#[derive(Debug, Clone, Copy, Default)]
pub(crate) struct Churn {
    pub(crate) connections_opened: u64,
    pub(crate) connections_closed: u64,
    pub(crate) channels_opened: u64,
    pub(crate) channels_closed: u64,
}

impl Snapshot {
    /// Asks every open connection for its counters and adds what closed connections counted.
    pub(crate) async fn take(state: &State) -> Snapshot {
        let (retired, asked) = state.ask_connections();
        let mut snapshot = Snapshot {
            connections: Vec::with_capacity(asked.len()),
            totals: retired.totals,
            queues: retired.queues,
            exchanges: retired.exchanges,
            churn: Churn {
                connections_opened: retired.connections_opened,
                connections_closed: retired.connections_closed,
                channels_opened: retired.channels_opened,
                channels_closed: retired.channels_closed,
            },
        };
        let deadline = tokio::time::Instant::now() + REPORT_WAIT;
        for a in asked {
            let report = tokio::time::timeout_at(deadline, a.report).await.ok().and_then(Result::ok);
            if let Some(report) = &report {
                snapshot.totals.add(&report.totals());
                add_queue_tallies(&mut snapshot.queues, &report.tallies.queues);
                for (exchange, stats) in &report.tallies.exchanges {
                    let key = (a.connection.vhost.clone(), exchange.to_string());
                    snapshot.exchanges.entry(key).or_default().add(stats);
                }
                snapshot.churn.channels_opened += report.channels_opened;
                snapshot.churn.channels_closed += report.channels_closed;
            }
            snapshot.connections.push(Seen { connection: a.connection, report });
        }
        snapshot.connections.sort_by(|a, b| a.connection.name.cmp(&b.connection.name));
        snapshot
    }

    /// The counts of `queue` (zero when nobody touched it).
    pub(crate) fn queue(&self, queue: &Arc<Queue>) -> MessageStats {
        self.queues.get(&(Arc::as_ptr(queue) as usize)).map(|t| t.stats).unwrap_or_default()
    }

    /// The counts of an exchange.
    pub(crate) fn exchange(&self, vhost: &str, name: &str) -> ExchangeStats {
        self.exchanges.get(&(vhost.to_owned(), name.to_owned())).copied().unwrap_or_default()
    }

    /// Open channels, over every connection that answered.
    pub(crate) fn channel_count(&self) -> usize {
        self.connections.iter().filter_map(|s| s.report.as_ref()).map(|r| r.channels.len()).sum()
    }
}

/// Earlier reads of every counter, by a key naming the object and the counter.
#[derive(Debug, Default)]
pub(crate) struct Rates {
    book: Mutex<Book>,
}

#[derive(Debug, Default)]
struct Book {
    series: HashMap<String, VecDeque<(Instant, u64)>>,
    last_sweep: Option<Instant>,
}

impl Rates {
    /// Records `value` for `key` and returns its change per second over the last [`WINDOW`],
    /// rounded to one decimal as RabbitMQ shows it.
    pub(crate) fn rate(&self, key: &str, value: u64) -> f64 {
        self.rate_at(key, value, Instant::now())
    }

    fn rate_at(&self, key: &str, value: u64, now: Instant) -> f64 {
        let mut guard = lock(&self.book);
        let book = &mut *guard;
        if book.last_sweep.is_none_or(|t| now.duration_since(t) > FORGET_AFTER) {
            book.series.retain(|_, s| s.back().is_some_and(|(t, _)| now.duration_since(*t) < FORGET_AFTER));
            book.last_sweep = Some(now);
        }
        let series = book.series.entry(key.to_owned()).or_default();
        while series.len() > 1 && series.front().is_some_and(|(t, _)| now.duration_since(*t) > WINDOW) {
            series.pop_front();
        }
        // Many readers within a moment (a page and its many lists) keep one sample.
        if series.back().is_none_or(|(t, _)| now.duration_since(*t) >= Duration::from_millis(200)) {
            series.push_back((now, value));
        }
        let Some(&(since, before)) = series.front() else { return 0.0 };
        let seconds = now.duration_since(since).as_secs_f64();
        if seconds < 0.1 {
            return 0.0;
        }
        let per_second = (value as f64 - before as f64) / seconds;
        (per_second * 10.0).round() / 10.0
    }

    /// `name` and `name_details: {rate}` for each counter, as RabbitMQ writes counters.
    pub(crate) fn counters(&self, prefix: &str, counters: &[(&str, u64)]) -> Map<String, Value> {
        let mut out = Map::new();
        for (name, value) in counters {
            let rate = self.rate(&format!("{prefix}/{name}"), *value);
            out.insert((*name).to_owned(), json!(value));
            out.insert(format!("{name}_details"), json!({ "rate": rate }));
        }
        out
    }

    /// A `message_stats` object: the publish group when anything was published, the delivery
    /// group when anything was delivered, fetched or acknowledged, as RabbitMQ includes them.
    pub(crate) fn message_stats(&self, prefix: &str, stats: &MessageStats, scope: Scope) -> Value {
        let mut counters: Vec<(&str, u64)> = Vec::new();
        let published = stats.publish + stats.confirm + stats.return_unroutable + stats.drop_unroutable > 0;
        if published || scope == Scope::Overview {
            counters.push(("publish", stats.publish));
            if scope != Scope::Queue {
                counters.extend([
                    ("confirm", stats.confirm),
                    ("return_unroutable", stats.return_unroutable),
                    ("drop_unroutable", stats.drop_unroutable),
                ]);
            }
        }
        let handed = stats.deliver_get() + stats.get_empty + stats.ack + stats.redeliver > 0;
        if handed || scope == Scope::Overview {
            counters.extend([
                ("ack", stats.ack),
                ("deliver", stats.deliver),
                ("deliver_get", stats.deliver_get()),
                ("deliver_no_ack", stats.deliver_no_ack),
                ("get", stats.get),
                ("get_empty", stats.get_empty),
                ("get_no_ack", stats.get_no_ack),
                ("redeliver", stats.redeliver),
            ]);
        }
        if scope == Scope::Overview {
            // Nothing is read from or written to disk by a message store here.
            counters.extend([("disk_reads", 0), ("disk_writes", 0)]);
        }
        if scope == Scope::Overview && stats.publish + stats.deliver_get() + stats.ack == 0 {
            // Before the first message RabbitMQ's overview shows an empty object.
            return json!({});
        }
        counters.sort_by_key(|(name, _)| *name);
        Value::Object(self.counters(prefix, &counters))
    }

    /// An exchange's `message_stats` (empty before its first message).
    pub(crate) fn exchange_stats(&self, prefix: &str, stats: &ExchangeStats) -> Value {
        if stats.publish_in == 0 && stats.publish_out == 0 {
            return json!({});
        }
        Value::Object(self.counters(prefix, &[("publish_in", stats.publish_in), ("publish_out", stats.publish_out)]))
    }
}

/// Which object a `message_stats` describes: they carry different counters.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub(crate) enum Scope {
    /// The whole broker.
    Overview,
    /// A channel.
    Channel,
    /// A queue (no confirms or unroutables).
    Queue,
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn a_rate_is_the_change_per_second_over_the_window() {
        let rates = Rates::default();
        let start = Instant::now();
        assert_eq!(rates.rate_at("q/publish", 100, start), 0.0, "a first read has no rate");
        assert_eq!(rates.rate_at("q/publish", 150, start + Duration::from_secs(5)), 10.0);
        assert_eq!(rates.rate_at("q/publish", 250, start + Duration::from_secs(10)), 15.0);
        // The first two samples left the window: the rate is over the last 6 seconds.
        assert_eq!(rates.rate_at("q/publish", 250, start + Duration::from_secs(16)), 0.0);
        assert_eq!(rates.rate_at("other", 7, start + Duration::from_secs(16)), 0.0, "counters are apart");
    }

    #[test]
    fn message_stats_carry_the_groups_rabbitmq_shows() {
        let rates = Rates::default();
        let stats = MessageStats { publish: 3, deliver: 2, ack: 1, ..Default::default() };
        let queue = rates.message_stats("q", &stats, Scope::Queue);
        assert_eq!(queue["publish"], 3);
        assert_eq!(queue["deliver_get"], 2);
        assert_eq!(queue["ack_details"]["rate"], 0.0);
        assert!(queue.get("confirm").is_none(), "a queue has no confirms");
        let consumer_only = rates.message_stats("c", &MessageStats { ack: 1, ..Default::default() }, Scope::Channel);
        assert!(consumer_only.get("publish").is_none() && consumer_only.get("ack").is_some());
        assert_eq!(rates.message_stats("o", &MessageStats::default(), Scope::Overview), json!({}));
        assert_eq!(rates.message_stats("o", &stats, Scope::Overview)["return_unroutable"], 0);
    }
}
