//! A published message, shared (one `Arc`) by every queue it is routed to.

use std::collections::HashSet;
use std::sync::Arc;

use bytes::Bytes;

/// A message as published: routing information plus the raw content-header properties and body,
/// re-emitted unchanged on delivery so properties are decoded once, at publish.
#[derive(Debug)]
pub struct Message {
    /// The exchange it was published to (shared with every message naming it, see [`Names`]).
    pub exchange: Arc<str>,
    /// The routing key it was published with (shared likewise).
    pub routing_key: Arc<str>,
    /// Encoded property flags and values, exactly as in the publisher's content header.
    pub properties: Bytes,
    /// The body.
    pub body: Bytes,
    /// Priority property (0 when absent).
    pub priority: u8,
    /// Per-message TTL from the `expiration` property, in milliseconds.
    pub expiration_ms: Option<u64>,
    /// delivery_mode 2.
    pub persistent: bool,
}

impl Message {
    /// Bytes counted against the memory limit and `x-max-length-bytes` (the body, as RabbitMQ counts).
    pub fn body_len(&self) -> usize {
        self.body.len()
    }

    /// An estimate of the memory the message holds, for the global memory limit.
    pub fn footprint(&self) -> usize {
        self.body.len() + self.properties.len() + self.exchange.len() + self.routing_key.len() + 160
    }
}

/// The exchange names and routing keys one connection publishes with, each kept once.
///
/// A queue holding a million messages would otherwise hold a million copies of the same few
/// strings, each its own allocation; a publisher rarely uses more than a handful of keys. Past
/// [`Names::LIMIT`] distinct strings (keys carrying ids, say) new ones are no longer remembered and
/// each message gets its own copy, as before.
#[derive(Debug, Default)]
pub struct Names {
    known: HashSet<Arc<str>, foldhash::fast::FixedState>,
}

impl Names {
    /// Distinct strings remembered per connection.
    pub const LIMIT: usize = 1024;

    /// `name`, shared with earlier messages that used the same string.
    pub fn intern(&mut self, name: &str) -> Arc<str> {
        if let Some(known) = self.known.get(name) {
            return Arc::clone(known);
        }
        let name: Arc<str> = Arc::from(name);
        if self.known.len() < Self::LIMIT {
            self.known.insert(Arc::clone(&name));
        }
        name
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn the_same_name_is_one_allocation_until_the_limit() {
        let mut names = Names::default();
        let a = names.intern("orders.created");
        let b = names.intern("orders.created");
        assert!(Arc::ptr_eq(&a, &b));
        assert_eq!(&*a, "orders.created");
        for i in 0..Names::LIMIT {
            names.intern(&format!("key.{i}"));
        }
        let late = names.intern("late");
        assert_eq!(&*late, "late");
        assert!(!Arc::ptr_eq(&late, &names.intern("late")), "past the limit nothing new is kept");
        assert!(Arc::ptr_eq(&a, &names.intern("orders.created")), "what was kept stays shared");
    }
}
