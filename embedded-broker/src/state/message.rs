//! A published message, shared (one `Arc`) by every queue it is routed to.

use bytes::Bytes;

/// A message as published: routing information plus the raw content-header properties and body,
/// re-emitted unchanged on delivery so properties are decoded once, at publish.
#[derive(Debug)]
pub struct Message {
    /// The exchange it was published to.
    pub exchange: String,
    /// The routing key it was published with.
    pub routing_key: String,
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
