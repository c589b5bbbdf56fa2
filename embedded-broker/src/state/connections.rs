//! The open AMQP connections, as the broker state knows them: who is logged in to which vhost,
//! from where, with which client, the outbox through which the state can reach each one, and
//! the probe through which the management API asks one for its counters.
//!
//! RabbitMQ closes a connection when its vhost or its user is deleted (`CONNECTION_FORCED`,
//! 320), and when the management API is told to; the state does the same by pushing
//! [`Outgoing::Close`] into the connection's outbox, so the close is written by the connection's
//! own task, in order after what it had already queued.
//!
//! Counters are not kept here: each connection task counts on its own, unshared
//! ([`super::stats`]), and answers a [`Probe`] with a [`ConnectionReport`]. A closing connection
//! folds its last report into [`Retired`] under the same lock that asking takes, so a reader sees
//! every message counted exactly once: either in the reports it asked for or in what it read of
//! `Retired` at the same moment.

use std::collections::HashMap;
use std::net::SocketAddr;
use std::sync::atomic::{AtomicBool, Ordering};
use std::sync::{Arc, Mutex};

use amq_protocol::types::FieldTable;
use tokio::sync::oneshot;

use super::queue::{Outbox, Outgoing};
use super::stats::{ConnectionReport, Retired, add_queue_tallies, forget_deleted_queues};
use super::{ConnectionId, State, lock};

/// One open connection (after `connection.open`): what does not change while it is open.
#[derive(Debug, Clone)]
pub struct OpenConnection {
    /// RabbitMQ's name for it: `peer -> local` (`127.0.0.1:50000 -> 127.0.0.1:5672`).
    pub name: String,
    /// The logged-in user.
    pub user: String,
    /// The vhost it opened.
    pub vhost: String,
    /// The client's address.
    pub peer: SocketAddr,
    /// The address it arrived on.
    pub local: SocketAddr,
    /// When it opened, milliseconds since the Unix epoch.
    pub connected_at: u64,
    /// What the client said of itself in `connection.start-ok` (product, version,
    /// `connection_name`, capabilities).
    pub client_properties: FieldTable,
    /// `PLAIN` or `AMQPLAIN`.
    pub auth_mechanism: String,
    /// Negotiated largest frame.
    pub frame_max: u32,
    /// Negotiated highest channel number.
    pub channel_max: u16,
    /// Negotiated heartbeat interval, seconds (0: none).
    pub heartbeat: u16,
    /// Where the state reaches it.
    pub outbox: Arc<Outbox>,
    /// Where the management API asks it for its counters.
    pub probe: Arc<Probe>,
}

/// Requests for a connection's [`ConnectionReport`], answered by its task at the end of its next
/// batch. The task reads one flag per batch; everything else happens only when asked.
#[derive(Debug, Default)]
pub struct Probe {
    asked: AtomicBool,
    waiting: Mutex<Vec<oneshot::Sender<Arc<ConnectionReport>>>>,
}

impl Probe {
    /// Asks for a report; the caller wakes the connection.
    fn ask(&self) -> oneshot::Receiver<Arc<ConnectionReport>> {
        let (tx, rx) = oneshot::channel();
        lock(&self.waiting).push(tx);
        self.asked.store(true, Ordering::Release);
        rx
    }

    /// Whether someone waits for a report.
    pub fn asked(&self) -> bool {
        self.asked.load(Ordering::Relaxed)
    }

    /// Answers everyone waiting with one report, built only if someone waits.
    pub fn answer(&self, report: impl FnOnce() -> Arc<ConnectionReport>) {
        let waiting = {
            let mut waiting = lock(&self.waiting);
            self.asked.store(false, Ordering::Relaxed);
            std::mem::take(&mut *waiting)
        };
        if waiting.is_empty() {
            return;
        }
        let report = report();
        for tx in waiting {
            let _ = tx.send(Arc::clone(&report));
        }
    }
}

/// Every open connection by id, and what the closed ones counted. Touched on open, on close, on
/// the rare deletion that closes connections and when the management API reads counters; never
/// on the message path.
#[derive(Debug, Default)]
pub(crate) struct Connections {
    inner: Mutex<Inner>,
}

#[derive(Debug, Default)]
struct Inner {
    open: HashMap<ConnectionId, OpenConnection>,
    retired: Retired,
    /// Queues in `retired` after deleted ones were last forgotten.
    queues_kept: usize,
}

/// A connection as a reader saw it: its fixed facts and, to await, its report.
#[derive(Debug)]
pub struct Asked {
    /// Its id.
    pub id: ConnectionId,
    /// What does not change while it is open.
    pub connection: OpenConnection,
    /// Its report, once its task answers (an error if it closed without answering).
    pub report: oneshot::Receiver<Arc<ConnectionReport>>,
}

impl Connections {
    pub(crate) fn opened(&self, id: ConnectionId, connection: OpenConnection) {
        let mut inner = lock(&self.inner);
        inner.open.insert(id, connection);
        inner.retired.connections_opened += 1;
    }

    pub(crate) fn closed(&self, id: ConnectionId) {
        lock(&self.inner).open.remove(&id);
    }

    /// Removes a closing connection and keeps what it counted.
    fn retire(&self, id: ConnectionId, report: &ConnectionReport) {
        let mut inner = lock(&self.inner);
        let Some(connection) = inner.open.remove(&id) else { return };
        let retired = &mut inner.retired;
        retired.totals.add(&report.totals());
        add_queue_tallies(&mut retired.queues, &report.tallies.queues);
        for (exchange, stats) in &report.tallies.exchanges {
            retired.exchanges.entry((connection.vhost.clone(), exchange.to_string())).or_default().add(stats);
        }
        retired.connections_closed += 1;
        retired.channels_opened += report.channels_opened;
        // Its channels all closed with it.
        retired.channels_closed += report.channels_opened;
        // Connections that each used their own queues (replies, exclusive queues) would grow this
        // forever when nobody reads it: deleted queues are forgotten whenever it doubled.
        if inner.retired.queues.len() > 2 * inner.queues_kept.max(64) {
            forget_deleted_queues(&mut inner.retired.queues);
            inner.queues_kept = inner.retired.queues.len();
        }
    }

    /// Tells every connection `doomed` picks to close with 320 and `text`; returns how many.
    pub(crate) fn force_close(&self, doomed: impl Fn(&OpenConnection) -> bool, text: &str) -> usize {
        let outboxes: Vec<Arc<Outbox>> =
            lock(&self.inner).open.values().filter(|c| doomed(c)).map(|c| Arc::clone(&c.outbox)).collect();
        for outbox in &outboxes {
            let text = format!("CONNECTION_FORCED - {text}");
            if outbox.push(Outgoing::Close { code: 320, text }) {
                outbox.notify.notify_one();
            }
        }
        outboxes.len()
    }
}

impl State {
    /// Records a connection that opened its vhost, so deleting the vhost or the user closes it
    /// and the management API lists it.
    pub fn connection_opened(&self, id: ConnectionId, connection: OpenConnection) {
        self.shared.connections.opened(id, connection);
    }

    /// Removes a closing connection from the list, keeping what it counted (its last report), and
    /// answers whoever asked it for a report meanwhile.
    pub fn connection_retired(&self, id: ConnectionId, probe: &Probe, report: ConnectionReport) {
        self.shared.connections.retire(id, &report);
        let report = Arc::new(report);
        probe.answer(|| report);
    }

    /// The open connections' fixed facts, without asking them anything.
    pub fn open_connections(&self) -> Vec<(ConnectionId, OpenConnection)> {
        let inner = lock(&self.shared.connections.inner);
        inner.open.iter().map(|(id, c)| (*id, c.clone())).collect()
    }

    /// Asks every open connection for its report, and reads what closed connections counted, at
    /// one moment: each message is in exactly one of the two.
    pub fn ask_connections(&self) -> (Retired, Vec<Asked>) {
        let existing: std::collections::HashSet<(String, String)> =
            self.exchanges(None).into_iter().map(|(vhost, exchange)| (vhost, exchange.name.clone())).collect();
        let mut inner = lock(&self.shared.connections.inner);
        // Exchanges deleted since take their counts with them.
        inner.retired.exchanges.retain(|key, _| existing.contains(key));
        forget_deleted_queues(&mut inner.retired.queues);
        inner.queues_kept = inner.retired.queues.len();
        let asked: Vec<Asked> = inner
            .open
            .iter()
            .map(|(id, connection)| Asked { id: *id, connection: connection.clone(), report: connection.probe.ask() })
            .collect();
        let retired = inner.retired.clone();
        drop(inner);
        for a in &asked {
            a.connection.outbox.notify.notify_one();
        }
        (retired, asked)
    }

    /// Counts what the management API itself published or fetched (it has no connection).
    pub fn count_api(&self, count: impl FnOnce(&mut Retired)) {
        count(&mut lock(&self.shared.connections.inner).retired);
    }

    /// Closes the connection named `name` as an operator asked, with 320 and `reason`; false when
    /// no open connection has that name.
    pub fn close_connection(&self, name: &str, reason: &str) -> bool {
        self.shared.connections.force_close(|c| c.name == name, reason) > 0
    }
}
