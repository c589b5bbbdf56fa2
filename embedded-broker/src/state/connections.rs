//! The open AMQP connections, as the broker state knows them: who is logged in
//! to which vhost, and the outbox through which the state can reach each one.
//!
//! RabbitMQ closes a connection when its vhost or its user is deleted
//! (`CONNECTION_FORCED`, 320); the state does the same by pushing
//! [`Outgoing::Close`] into the connection's outbox, so the close is written
//! by the connection's own task, in order after what it had already queued.

use std::collections::HashMap;
use std::sync::{Arc, Mutex};

use super::queue::{Outbox, Outgoing};
use super::{ConnectionId, lock};

/// One open connection (after `connection.open`).
#[derive(Debug, Clone)]
pub struct OpenConnection {
    /// The logged-in user.
    pub user: String,
    /// The vhost it opened.
    pub vhost: String,
    /// Where the state reaches it.
    pub outbox: Arc<Outbox>,
}

/// Every open connection by id. Touched on open, on close and on the rare
/// deletion that closes connections; never on the message path.
#[derive(Debug, Default)]
pub(crate) struct Connections {
    open: Mutex<HashMap<ConnectionId, OpenConnection>>,
}

impl Connections {
    pub(crate) fn opened(&self, id: ConnectionId, connection: OpenConnection) {
        lock(&self.open).insert(id, connection);
    }

    pub(crate) fn closed(&self, id: ConnectionId) {
        lock(&self.open).remove(&id);
    }

    /// Tells every connection `doomed` picks to close with 320 and `text`.
    pub(crate) fn force_close(&self, doomed: impl Fn(&OpenConnection) -> bool, text: &str) {
        let outboxes: Vec<Arc<Outbox>> =
            lock(&self.open).values().filter(|c| doomed(c)).map(|c| Arc::clone(&c.outbox)).collect();
        for outbox in outboxes {
            let text = format!("CONNECTION_FORCED - {text}");
            if outbox.push(Outgoing::Close { code: 320, text }) {
                outbox.notify.notify_one();
            }
        }
    }
}
