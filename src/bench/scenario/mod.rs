//! Load-test scenarios: the validated [`Scenario`] every other part of the
//! bench uses. [`raw`] mirrors the file, [`load`] checks it and names the
//! file, line and column of anything wrong.

pub mod load;
pub mod locate;
pub mod raw;

use std::collections::BTreeMap;
use std::path::PathBuf;
use std::time::Duration;

pub use load::{ScenarioError, load_file, load_str, looks_like_scenario};

/// A validated scenario.
#[derive(Debug, Clone)]
pub struct Scenario {
    /// Name, carried into result files.
    pub name: String,
    /// Free text.
    pub description: Option<String>,
    /// Where the topology comes from.
    pub topology: TopologySource,
    /// The broker the file names, if any.
    pub broker: Option<String>,
    /// Measured phase.
    pub duration: Duration,
    /// Phase before measuring; excluded from every figure.
    pub warmup: Duration,
    /// How long consumers may go on after producers stop.
    pub drain: Duration,
    /// Per producer instance, warmup included.
    pub message_limit: Option<u64>,
    /// Producer groups, in file order.
    pub producers: Vec<ProducerGroup>,
    /// Consumer groups, in file order.
    pub consumers: Vec<ConsumerGroup>,
    /// Thresholds.
    pub gates: Gates,
    /// How long an actor whose connection dropped tries the nodes before the run fails;
    /// `None`: a dropped connection ends the run at once.
    pub reconnect: Option<Duration>,
    /// The port of RabbitMQ's stream protocol (`protocol: stream` groups): one for every node, or
    /// one per broker URL in their order (never empty).
    pub stream_ports: Vec<u16>,
    /// The file as written, as JSON, for result files.
    pub document: serde_json::Value,
    /// The file this came from, for error messages.
    pub origin: Origin,
}

/// Where a scenario was read from, kept so later checks can name a line and column.
#[derive(Debug, Clone)]
pub struct Origin {
    /// The file name as given, or `<inline>`.
    pub path: PathBuf,
    /// The file's text.
    pub text: String,
}

/// The scenario's topology.
#[derive(Debug, Clone)]
pub enum TopologySource {
    /// A topology file (already resolved against the scenario's folder).
    File(PathBuf),
    /// An inline topology mapping, in the topology file format.
    Inline(serde_yaml::Mapping),
}

/// A group of identical producers.
#[derive(Debug, Clone)]
pub struct ProducerGroup {
    /// Group name.
    pub name: String,
    /// How many run.
    pub instances: u32,
    /// Target exchange (`""`: the default exchange).
    pub exchange: String,
    /// Routing keys used in turn: message `seq` uses `routing_keys[seq % len]`.
    pub routing_keys: Vec<String>,
    /// Messages per second per instance; `None`: as fast as possible.
    pub rate: Option<f64>,
    /// Body sizes.
    pub size: SizeSpec,
    /// Delivery mode 2.
    pub persistent: bool,
    /// Headers and other properties.
    pub properties: MessageProperties,
    /// Mandatory flag.
    pub mandatory: bool,
    /// Publisher confirms: `Some(max_in_flight)`, or `None` for none.
    pub confirms: Option<u32>,
    /// Connection layout.
    pub layout: ConnectionLayout,
    /// The protocol its producers speak.
    pub protocol: Protocol,
}

/// The protocol a group speaks.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Default)]
pub enum Protocol {
    /// AMQP 0-9-1.
    #[default]
    Amqp,
    /// RabbitMQ's stream protocol, to or from a stream queue.
    Stream,
}

impl Protocol {
    /// The name scenario files use.
    pub fn name(self) -> &'static str {
        match self {
            Protocol::Amqp => "amqp",
            Protocol::Stream => "stream",
        }
    }
}

/// Message properties other than delivery mode.
#[derive(Debug, Clone, Default)]
pub struct MessageProperties {
    /// Headers.
    pub headers: BTreeMap<String, serde_json::Value>,
    /// `content_type`.
    pub content_type: Option<String>,
    /// `priority`.
    pub priority: Option<u8>,
    /// `expiration`, in milliseconds as the property wants it.
    pub expiration_ms: Option<u64>,
    /// `type`.
    pub kind: Option<String>,
    /// `app_id`.
    pub app_id: Option<String>,
}

/// How body sizes are chosen.
#[derive(Debug, Clone, PartialEq)]
pub enum SizeSpec {
    /// One size.
    Fixed(usize),
    /// Uniform over `min..=max`.
    Range {
        /// Smallest.
        min: usize,
        /// Largest.
        max: usize,
    },
    /// Weighted choices `(size, weight)`.
    Choices(Vec<(usize, u32)>),
}

impl SizeSpec {
    /// The largest size this can produce.
    pub fn max(&self) -> usize {
        match self {
            SizeSpec::Fixed(size) => *size,
            SizeSpec::Range { max, .. } => *max,
            SizeSpec::Choices(choices) => choices.iter().map(|(size, _)| *size).max().unwrap_or(0),
        }
    }
}

/// How producers share connections.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum ConnectionLayout {
    /// One connection per instance.
    PerInstance,
    /// One connection per group, one channel per instance.
    Shared,
    /// One connection per instance, each to the next node of the list in turn.
    Spread,
}

/// A group of identical consumers.
#[derive(Debug, Clone)]
pub struct ConsumerGroup {
    /// Group name.
    pub name: String,
    /// How many run.
    pub instances: u32,
    /// Source queue.
    pub queue: String,
    /// Per-consumer prefetch; 0 is unlimited.
    pub prefetch: u16,
    /// Per-channel prefetch, if any.
    pub global_prefetch: Option<u16>,
    /// Acknowledgement mode.
    pub ack: AckMode,
    /// Rejections.
    pub reject: Option<Reject>,
    /// Simulated work per message.
    pub work: Duration,
    /// Exclusive consumer.
    pub exclusive: bool,
    /// Connection layout: [`ConnectionLayout::PerInstance`] or [`ConnectionLayout::Spread`].
    pub layout: ConnectionLayout,
    /// Where it starts reading when its queue is a stream.
    pub offset: Option<StreamOffset>,
    /// True when its queue is a stream (known once the topology is loaded): every
    /// consumer then reads every message, and none is taken from the others.
    pub stream: bool,
    /// The protocol its consumers speak.
    pub protocol: Protocol,
}

/// Where a stream consumer starts reading.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum StreamOffset {
    /// The first message the stream holds.
    First,
    /// The last chunk.
    Last,
    /// Messages published from now on.
    Next,
    /// This offset.
    At(u64),
}

/// Acknowledgement mode.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum AckMode {
    /// `no_ack`.
    Auto,
    /// One ack per message.
    Manual,
    /// One `multiple` ack every N messages.
    MultipleEvery(u32),
}

/// Rejecting a fraction of deliveries.
#[derive(Debug, Clone, Copy, PartialEq)]
pub struct Reject {
    /// Fraction, 0 to 1.
    pub fraction: f64,
    /// Requeue rejected messages.
    pub requeue: bool,
}

/// Thresholds checked after the run; by default only loss is gated (at 0).
#[derive(Debug, Clone, Default, PartialEq)]
pub struct Gates {
    /// Minimum consume rate, msgs/s.
    pub throughput_min: Option<f64>,
    /// Maximum end-to-end p50.
    pub latency_p50_max: Option<Duration>,
    /// Maximum end-to-end p99.
    pub latency_p99_max: Option<Duration>,
    /// Maximum end-to-end p99.9.
    pub latency_p999_max: Option<Duration>,
    /// Maximum lost messages (0 unless the file says otherwise).
    pub max_lost: u64,
    /// Maximum messages lost after the broker confirmed them (0 unless the file says otherwise).
    pub max_confirmed_lost: u64,
    /// Maximum duplicates.
    pub max_duplicated: Option<u64>,
    /// Maximum returns.
    pub max_returned: Option<u64>,
    /// Maximum errors.
    pub max_errors: Option<u64>,
}

impl Scenario {
    /// Applies `--stream-port`.
    pub fn override_stream_ports(&mut self, ports: Option<Vec<u16>>) {
        if let Some(ports) = ports.filter(|p| !p.is_empty()) {
            self.stream_ports = ports;
        }
    }

    /// Applies `--drain`.
    pub fn override_drain(&mut self, drain: Option<Duration>) {
        if let Some(drain) = drain {
            self.drain = drain;
        }
    }

    /// Applies command-line overrides: `--duration`, `--warmup`, `--rate-scale`.
    pub fn override_with(&mut self, duration: Option<Duration>, warmup: Option<Duration>, rate_scale: Option<f64>) {
        if let Some(duration) = duration {
            self.duration = duration;
        }
        if let Some(warmup) = warmup {
            self.warmup = warmup;
        }
        if let Some(scale) = rate_scale {
            for group in &mut self.producers {
                group.rate = group.rate.map(|rate| rate * scale);
            }
        }
    }

    /// Total producer instances.
    pub fn producer_instances(&self) -> u32 {
        self.producers.iter().map(|g| g.instances).sum()
    }
}
