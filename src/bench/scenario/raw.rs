//! The scenario file as written: serde structs that mirror the YAML, with the
//! JSON Schema `warren schema scenario` prints. Nothing here is validated
//! beyond its shape: the loader checks the rest and turns it into a
//! [`super::Scenario`].

use std::collections::BTreeMap;

use schemars::JsonSchema;
use serde::Deserialize;

/// A load-test scenario file.
#[derive(Debug, Clone, Deserialize, JsonSchema)]
#[serde(deny_unknown_fields)]
#[schemars(title = "warren scenario")]
pub struct RawScenario {
    /// The scenario's name, carried into result files so runs of different scenarios are never compared.
    pub name: String,
    /// Free text shown in reports.
    #[serde(default)]
    pub description: Option<String>,
    /// The topology the run needs: a path relative to this file, or an inline topology mapping.
    pub topology: RawTopologyRef,
    /// The broker URL, or `embedded`; `--broker` and `WARREN_BROKER` win over it.
    #[serde(default)]
    pub broker: Option<String>,
    /// How long the measured phase lasts, e.g. `30s`.
    pub duration: String,
    /// How long producers and consumers run before measuring starts; excluded from every figure.
    #[serde(default)]
    pub warmup: Option<String>,
    /// How long consumers may go on after producers stop; messages still missing then are lost.
    #[serde(default)]
    pub drain: Option<String>,
    /// Stop each producer instance after this many messages (warmup included).
    #[serde(default)]
    pub messages: Option<u64>,
    /// Producer groups.
    #[serde(default)]
    pub producers: Vec<RawProducer>,
    /// Consumer groups.
    #[serde(default)]
    pub consumers: Vec<RawConsumer>,
    /// Thresholds that make `warren bench` exit 3 when missed.
    #[serde(default)]
    pub gates: Option<RawGates>,
    /// What an actor does when its connection drops: reconnect to the next node that answers
    /// (the default, giving up after 30s without one), or `false` to end the run at once.
    #[serde(default)]
    pub reconnect: Option<RawReconnect>,
    /// The port of RabbitMQ's stream protocol (the `rabbitmq_stream` plugin) on the broker's hosts,
    /// for groups with `protocol: stream`: one for every node, or a list with one per broker URL in
    /// their order; 5552 by default; `--stream-port` wins over it.
    #[serde(default)]
    pub stream_port: Option<RawStreamPort>,
}

/// One stream port for every node, or one per broker URL.
#[derive(Debug, Clone, Deserialize, JsonSchema)]
#[serde(untagged)]
pub enum RawStreamPort {
    /// The same port on every node.
    One(u16),
    /// One port per broker URL, in their order.
    Each(Vec<u16>),
}

/// The protocol a group's producers or consumers speak.
#[derive(Debug, Clone, Copy, Deserialize, JsonSchema)]
#[serde(rename_all = "snake_case")]
pub enum RawProtocol {
    /// AMQP 0-9-1 (the default).
    Amqp,
    /// RabbitMQ's stream protocol, to or from a stream queue only.
    Stream,
}

/// Reconnection after a lost connection.
#[derive(Debug, Clone, Deserialize, JsonSchema)]
#[serde(untagged)]
pub enum RawReconnect {
    /// `true` for the defaults, `false` to end the run when a connection drops.
    Enabled(bool),
    /// Reconnection with settings.
    Settings {
        /// How long an actor goes on trying the nodes before the run fails, e.g. `30s` (the default).
        give_up_after: Option<String>,
    },
}

/// Where the scenario's topology comes from.
#[derive(Debug, Clone, Deserialize, JsonSchema)]
#[serde(untagged)]
pub enum RawTopologyRef {
    /// A topology file, relative to the scenario file.
    Path(String),
    /// A topology written inline, in the topology file format (`warren schema topology`).
    Inline(#[schemars(with = "serde_json::Map<String, serde_json::Value>")] serde_yaml::Mapping),
}

/// A group of identical producers.
#[derive(Debug, Clone, Deserialize, JsonSchema)]
#[serde(deny_unknown_fields)]
pub struct RawProducer {
    /// Group name, used in reports.
    pub name: String,
    /// How many producers of this group run; 1 by default.
    #[serde(default)]
    pub instances: Option<u32>,
    /// The exchange to publish to; `""` is the default exchange.
    pub exchange: String,
    /// A routing key, a list of keys, or a pattern such as `order.{created,paid}`; keys are used in turn.
    #[serde(default)]
    pub routing_key: Option<RawRoutingKey>,
    /// Messages per second per instance on a fixed schedule; absent means as fast as possible.
    #[serde(default)]
    pub rate: Option<f64>,
    /// The messages.
    #[serde(default)]
    pub message: Option<RawMessage>,
    /// Publish with the mandatory flag: unroutable messages come back and are counted as returns.
    #[serde(default)]
    pub mandatory: bool,
    /// Publisher confirms: `false` for none, or settings; on with 256 in flight by default.
    #[serde(default)]
    pub confirms: Option<RawConfirms>,
    /// `per_instance` (default): one connection per producer, to the first node that answers;
    /// `shared`: one for the group, a channel each; `spread`: one per producer, over the listed nodes in turn.
    #[serde(default)]
    pub connection: Option<RawConnectionLayout>,
    /// `amqp` (default), or `stream`: publish to the stream queue named by `routing_key` (with
    /// `exchange: ""`) over RabbitMQ's stream protocol.
    #[serde(default)]
    pub protocol: Option<RawProtocol>,
}

/// One routing key or several.
#[derive(Debug, Clone, Deserialize, JsonSchema)]
#[serde(untagged)]
pub enum RawRoutingKey {
    /// One key, or a pattern with `{a,b,c}` alternatives.
    One(String),
    /// Keys used in turn.
    Many(Vec<String>),
}

/// What the messages look like.
#[derive(Debug, Clone, Default, Deserialize, JsonSchema)]
#[serde(deny_unknown_fields)]
pub struct RawMessage {
    /// Body size in bytes (at least 16): a number, `{min, max}`, or a list of `{size, weight}`.
    #[serde(default)]
    pub size: Option<RawSize>,
    /// Delivery mode 2: the broker writes the message to disk.
    #[serde(default)]
    pub persistent: bool,
    /// Message headers.
    #[serde(default)]
    pub headers: BTreeMap<String, serde_json::Value>,
    /// `content_type` property.
    #[serde(default)]
    pub content_type: Option<String>,
    /// `priority` property, 0 to 255.
    #[serde(default)]
    pub priority: Option<u8>,
    /// Per-message TTL (`expiration` property), e.g. `60s`.
    #[serde(default)]
    pub expiration: Option<String>,
    /// `type` property.
    #[serde(default, rename = "type")]
    pub kind: Option<String>,
    /// `app_id` property.
    #[serde(default)]
    pub app_id: Option<String>,
}

/// A body size.
#[derive(Debug, Clone, Deserialize, JsonSchema)]
#[serde(untagged)]
pub enum RawSize {
    /// Every message has this size.
    Fixed(u64),
    /// Uniformly spread between `min` and `max`, both included.
    Range {
        /// Smallest size.
        min: u64,
        /// Largest size.
        max: u64,
    },
    /// Sizes picked with these relative weights.
    Choices(Vec<RawSizeChoice>),
}

/// One size among weighted choices.
#[derive(Debug, Clone, Deserialize, JsonSchema)]
#[serde(deny_unknown_fields)]
pub struct RawSizeChoice {
    /// Body size in bytes.
    pub size: u64,
    /// Relative weight; 1 by default.
    #[serde(default)]
    pub weight: Option<u32>,
}

/// Publisher confirms.
#[derive(Debug, Clone, Deserialize, JsonSchema)]
#[serde(untagged)]
pub enum RawConfirms {
    /// `true` for the defaults, `false` for no confirms.
    Enabled(bool),
    /// Confirms with settings.
    Settings {
        /// How many published messages may wait for their confirm; 256 by default.
        max_in_flight: Option<u32>,
    },
}

/// How producers of a group share connections.
#[derive(Debug, Clone, Copy, Deserialize, JsonSchema)]
#[serde(rename_all = "snake_case")]
pub enum RawConnectionLayout {
    /// One connection per instance.
    PerInstance,
    /// One connection for the whole group, one channel per instance.
    Shared,
    /// One connection per instance, round-robin over the nodes of `--broker`.
    Spread,
}

/// A group of identical consumers.
#[derive(Debug, Clone, Deserialize, JsonSchema)]
#[serde(deny_unknown_fields)]
pub struct RawConsumer {
    /// Group name, used in reports.
    pub name: String,
    /// How many consumers of this group run; 1 by default.
    #[serde(default)]
    pub instances: Option<u32>,
    /// The queue to consume from.
    pub queue: String,
    /// Unacknowledged messages per consumer (`basic.qos`); 0 means unlimited.
    #[serde(default)]
    pub prefetch: Option<u16>,
    /// Unacknowledged messages per channel (`basic.qos` with global), on top of `prefetch`.
    #[serde(default)]
    pub global_prefetch: Option<u16>,
    /// `auto`, `manual` (default), or `{ multiple_every: N }`.
    #[serde(default)]
    pub ack: Option<RawAck>,
    /// Reject a fraction of messages instead of acknowledging them.
    #[serde(default)]
    pub reject: Option<RawReject>,
    /// Simulated processing time per message, e.g. `3ms` (slept at 1 ms and above, spun below).
    #[serde(default)]
    pub work: Option<String>,
    /// Exclusive consumer.
    #[serde(default)]
    pub exclusive: bool,
    /// `per_instance` (default): one connection per consumer, to the first node that answers;
    /// `spread`: over the listed nodes in turn.
    #[serde(default)]
    pub connection: Option<RawConnectionLayout>,
    /// Where a consumer of a stream starts: `first`, `last`, `next` (the default) or an offset.
    #[serde(default)]
    pub offset: Option<RawOffset>,
    /// `amqp` (default), or `stream`: read the stream queue over RabbitMQ's stream protocol.
    #[serde(default)]
    pub protocol: Option<RawProtocol>,
}

/// Where a stream consumer starts reading.
#[derive(Debug, Clone, Deserialize, JsonSchema)]
#[serde(untagged)]
pub enum RawOffset {
    /// `first`, `last` or `next`.
    Named(RawNamedOffset),
    /// An offset in the stream.
    At(u64),
}

/// A named place in a stream.
#[derive(Debug, Clone, Copy, Deserialize, JsonSchema)]
#[serde(rename_all = "snake_case")]
pub enum RawNamedOffset {
    /// The first message the stream holds.
    First,
    /// The last chunk of messages.
    Last,
    /// Only messages published after the consumer subscribed.
    Next,
}

/// Acknowledgement mode.
#[derive(Debug, Clone, Deserialize, JsonSchema)]
#[serde(untagged)]
pub enum RawAck {
    /// `auto` or `manual`.
    Mode(RawAckMode),
    /// Acknowledge every N messages with one `multiple` ack.
    Multiple {
        /// N.
        multiple_every: u32,
    },
}

/// `auto` or `manual`.
#[derive(Debug, Clone, Copy, Deserialize, JsonSchema)]
#[serde(rename_all = "snake_case")]
pub enum RawAckMode {
    /// The broker considers a message acknowledged once delivered (`no_ack`).
    Auto,
    /// One `basic.ack` per message.
    Manual,
}

/// Reject some messages.
#[derive(Debug, Clone, Deserialize, JsonSchema)]
#[serde(deny_unknown_fields)]
pub struct RawReject {
    /// Fraction of deliveries to reject, 0 to 1.
    pub fraction: f64,
    /// Put rejected messages back on the queue (they come back redelivered).
    #[serde(default)]
    pub requeue: bool,
}

/// Thresholds; a missed one makes `warren bench` exit 3.
#[derive(Debug, Clone, Default, Deserialize, JsonSchema)]
#[serde(deny_unknown_fields)]
pub struct RawGates {
    /// Minimum consumed messages per second over the measured window.
    #[serde(default)]
    pub throughput_min: Option<f64>,
    /// Maximum end-to-end p50 latency, e.g. `5ms`.
    #[serde(default)]
    pub latency_p50_max: Option<String>,
    /// Maximum end-to-end p99 latency.
    #[serde(default)]
    pub latency_p99_max: Option<String>,
    /// Maximum end-to-end p99.9 latency.
    #[serde(default)]
    pub latency_p999_max: Option<String>,
    /// Maximum lost messages; 0 by default.
    #[serde(default)]
    pub max_lost: Option<u64>,
    /// Maximum messages the broker confirmed that no consumer ever got; 0 by default.
    #[serde(default)]
    pub max_confirmed_lost: Option<u64>,
    /// Maximum duplicated messages.
    #[serde(default)]
    pub max_duplicated: Option<u64>,
    /// Maximum returned (unroutable) messages.
    #[serde(default)]
    pub max_returned: Option<u64>,
    /// Maximum errors: negative confirms and publishes that failed.
    #[serde(default)]
    pub max_errors: Option<u64>,
}
