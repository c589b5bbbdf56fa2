//! The result file (`--out`, `--format json`): a versioned, documented
//! schema. `schemas/result.schema.json` is generated from these types
//! (`cargo test` checks it is current) and CI scripts read the `summary`
//! names, so they only ever grow.
//!
//! Counting rules, stated once:
//! - *measured* messages are those sent inside the measured window (after
//!   warmup, before producers stop); `published`, `consumed`, `expected` and
//!   every latency count only them, wherever they were consumed (drain included);
//! - `expected` is the deliveries the topology's routing promises for the
//!   measured messages (a message routed to two consumed queues counts twice);
//! - `lost` counts every message of the run (warmup included) that a consumed
//!   queue should have delivered and never did;
//! - rates are per second of the measured window;
//! - a producer *waits on the broker* while a message is due and its window
//!   of unconfirmed publishes is full, or while it has no connection;
//!   `generator.limited` blames warren only for lateness those waits do not
//!   explain (`broker_pace` holds the rest);
//! - `confirmed_lost` is the part of `lost` the broker had confirmed: it
//!   promised to keep those messages and no consumer ever got them. The rest
//!   of `lost` was never confirmed (see `unconfirmed`, `outages`).

pub mod file;
pub mod histogram;
#[cfg(test)]
pub(crate) mod sample;
pub mod tolerance;

use schemars::JsonSchema;
use serde::{Deserialize, Serialize};

use self::histogram::Percentiles;

/// The version of this schema; bumped on any change that is not an addition.
///
/// 2: `generator.limited` no longer counts a producer that fell behind while
/// waiting on the broker; `broker_pace` and each producer group's
/// `broker_wait` say how long producers waited and on what.
///
/// 3: a lost connection no longer ends the run: actors reconnect, `outages`
/// lists each loss, producers re-send what was unconfirmed (`resent`), and
/// `confirmed_lost` (gated at 0 by default) is told apart from the rest of
/// `lost`; a producer waiting for a connection is a wait on the broker
/// (`broker_wait.reconnect_s`); `broker_view`, what the broker's management
/// API said once a second.
pub const SCHEMA_VERSION: u32 = 3;

/// A bench run's result.
#[derive(Debug, Clone, Serialize, Deserialize, JsonSchema)]
#[schemars(title = "warren bench result")]
pub struct RunResult {
    /// Schema version of this document ([`SCHEMA_VERSION`]).
    pub schema_version: u32,
    /// The warren version that wrote it.
    pub warren_version: String,
    /// How the run ended.
    pub status: RunStatus,
    /// Why it failed or stopped early, when it did.
    pub error: Option<String>,
    /// Wall-clock start, RFC 3339.
    pub started_at: String,
    /// The scenario as run.
    pub scenario: ScenarioInfo,
    /// The broker.
    pub broker: BrokerInfo,
    /// The machine warren ran on.
    pub machine: MachineInfo,
    /// `git rev-parse HEAD` of the scenario's folder, if it is in a repository.
    pub git_revision: Option<String>,
    /// Whether the load generator kept its own schedule.
    pub generator: GeneratorInfo,
    /// Whether the broker set the producers' pace, and how long they waited on it.
    #[serde(default)]
    pub broker_pace: BrokerPace,
    /// The whole run's figures.
    pub summary: Summary,
    /// The drain phase (after producers stopped).
    pub drain: DrainInfo,
    /// Per producer group.
    pub producers: Vec<ProducerGroupResult>,
    /// Per consumer group.
    pub consumers: Vec<ConsumerGroupResult>,
    /// The scenario's gates and their verdicts.
    pub gates: Vec<GateResult>,
    /// Every connection an actor lost during the run, in the order they happened.
    #[serde(default)]
    pub outages: Vec<OutageResult>,
    /// One entry per second since producers started (warmup and drain included).
    pub time_series: Vec<SecondResult>,
    /// The run's merged histograms, serialised so results can be merged exactly.
    pub histograms: Histograms,
    /// Things a reader should know (e.g. routes warren could not predict).
    pub warnings: Vec<String>,
    /// With `bench --repeat N`: every run's headline figures; this result is the median run.
    #[serde(default)]
    pub repeat: Option<RepeatInfo>,
    /// With `bench --shard K/N`: which slice of the scenario this run was.
    #[serde(default)]
    pub shard: Option<ShardInfo>,
    /// On a result made by `warren report merge`: the results it adds up.
    #[serde(default)]
    pub merged: Option<MergeInfo>,
    /// What the broker's management API said during the run, once a second;
    /// absent when it did not answer (a warning says why).
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub broker_view: Option<BrokerView>,
}

/// The broker's own view of a run: its management API, sampled once a second.
///
/// RabbitMQ refreshes these figures every few seconds
/// (`collect_statistics_interval`, 5 s by default), so consecutive samples
/// may repeat a value; the embedded broker answers with current figures.
#[derive(Debug, Clone, Default, PartialEq, Serialize, Deserialize, JsonSchema)]
pub struct BrokerView {
    /// The management API sampled (the node that answered first), without credentials.
    pub source: String,
    /// The most messages queued (ready and unacknowledged) in the run's vhost at one sample.
    pub peak_messages: u64,
    /// The queue that held the most at one sample, and how many.
    pub peak_queue: Option<QueuePeak>,
    /// The most memory the broker reported using at one sample, bytes (the sum over its nodes).
    pub peak_memory_bytes: Option<u64>,
    /// CPU seconds the in-process embedded broker used over the samples (its threads); absent
    /// for a broker in another process.
    pub cpu_seconds: Option<f64>,
    /// One entry per second, on the same clock as `time_series`.
    pub samples: Vec<BrokerSample>,
}

/// The queue with the deepest backlog at one sample.
#[derive(Debug, Clone, Default, PartialEq, Serialize, Deserialize, JsonSchema)]
pub struct QueuePeak {
    /// Its name.
    pub name: String,
    /// Messages in it then, ready and unacknowledged.
    pub messages: u64,
}

/// The broker at one moment.
#[derive(Debug, Clone, Default, PartialEq, Serialize, Deserialize, JsonSchema)]
pub struct BrokerSample {
    /// Seconds since producers started (negative: before they did).
    pub t: f64,
    /// Each queue of the run's vhost.
    pub queues: Vec<QueueSample>,
    /// Memory the broker reported using, bytes (the sum over its nodes).
    pub memory_bytes: Option<u64>,
    /// Open connections, all vhosts.
    pub connections: Option<u64>,
    /// Open channels, all vhosts.
    pub channels: Option<u64>,
    /// Messages published per second, as the broker counts them (all vhosts).
    pub publish_rate: Option<f64>,
    /// Messages delivered or fetched per second, as the broker counts them (all vhosts).
    pub deliver_rate: Option<f64>,
    /// CPU seconds the in-process embedded broker used since the previous sample.
    pub cpu_seconds: Option<f64>,
}

impl BrokerSample {
    /// Messages queued in the run's vhost, ready and unacknowledged.
    pub fn messages(&self) -> u64 {
        self.queues.iter().map(|q| q.ready + q.unacked).sum()
    }
}

/// One queue at one moment.
#[derive(Debug, Clone, Default, PartialEq, Serialize, Deserialize, JsonSchema)]
pub struct QueueSample {
    /// The queue's name.
    pub name: String,
    /// Messages ready for delivery.
    pub ready: u64,
    /// Messages delivered and not yet acknowledged.
    pub unacked: u64,
}

/// One lost connection: an actor's, from the moment it saw the loss until
/// it was connected (and subscribed, or ready to publish) again.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize, JsonSchema)]
pub struct OutageResult {
    /// The actor: `producer web#0`, `consumer sms#1`.
    pub actor: String,
    /// The node whose connection was lost (its URL, password redacted).
    pub node: String,
    /// When the loss was seen, seconds since producers started (the time series' `t`).
    pub start_s: f64,
    /// How long until the actor was connected again, seconds; `None` if it never was.
    pub length_s: Option<f64>,
    /// The node it was connected to again.
    pub reconnected_to: Option<String>,
}

/// The runs of `bench --repeat N`.
#[derive(Debug, Clone, Serialize, Deserialize, JsonSchema)]
pub struct RepeatInfo {
    /// Which run (from 1) the result holds: the median by consumed msgs/s.
    pub median_run: u32,
    /// Every run, in the order they ran.
    pub runs: Vec<RepeatRun>,
}

/// One run of a repeated bench.
#[derive(Debug, Clone, Serialize, Deserialize, JsonSchema)]
pub struct RepeatRun {
    /// Measured messages published per second.
    pub publish_rate: f64,
    /// First deliveries per second.
    pub consume_rate: f64,
    /// End-to-end latency (intended send time).
    pub e2e: Percentiles,
    /// Confirm latency.
    pub confirm: Percentiles,
    /// Messages lost.
    pub lost: u64,
    /// Messages lost after the broker confirmed them.
    #[serde(default)]
    pub confirmed_lost: u64,
}

/// A shard's place among the shards of one run.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Serialize, Deserialize, JsonSchema)]
pub struct ShardInfo {
    /// Which slice, from 1.
    pub index: u32,
    /// How many slices.
    pub count: u32,
}

/// What a merged result was made of.
#[derive(Debug, Clone, Serialize, Deserialize, JsonSchema)]
pub struct MergeInfo {
    /// The merged files, as given.
    pub files: Vec<String>,
    /// Their shards, when they were shards.
    pub shards: Vec<ShardInfo>,
}

/// How a run ended.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Serialize, Deserialize, JsonSchema)]
#[serde(rename_all = "snake_case")]
pub enum RunStatus {
    /// Ran its full duration and drain.
    Completed,
    /// Stopped by Ctrl-C; producers stopped, consumers drained.
    Interrupted,
    /// An error (e.g. a lost connection) ended it; the figures are partial.
    Failed,
}

/// The scenario as run.
#[derive(Debug, Clone, Serialize, Deserialize, JsonSchema)]
pub struct ScenarioInfo {
    /// The scenario's name.
    pub name: String,
    /// The file, as given on the command line.
    pub file: String,
    /// Measured duration, seconds (after overrides).
    pub duration_s: f64,
    /// How long the measured window lasted, seconds: `duration_s` unless the run failed or was
    /// interrupted before its end (0 when that was during the warmup). Absent in older files.
    #[serde(default)]
    pub measured_s: Option<f64>,
    /// Warmup, seconds (after overrides).
    pub warmup_s: f64,
    /// Drain limit, seconds.
    pub drain_s: f64,
    /// `--rate-scale`, when given.
    pub rate_scale: Option<f64>,
    /// The vhost the run used.
    pub vhost: String,
    /// The scenario file's content, as JSON.
    pub document: serde_json::Value,
}

impl ScenarioInfo {
    /// Seconds the measured window lasted ([`Self::measured_s`], else the planned duration).
    pub fn window_s(&self) -> f64 {
        self.measured_s.unwrap_or(self.duration_s)
    }

    /// "5.0s measured", or "1.2s measured of 5.0s" when the window ended early.
    pub fn measured_text(&self) -> String {
        let window = self.window_s();
        if (window - self.duration_s).abs() < 0.05 {
            format!("{window:.1}s measured")
        } else {
            format!("{window:.1}s measured of {:.1}s", self.duration_s)
        }
    }
}

/// The broker a run measured.
#[derive(Debug, Clone, Serialize, Deserialize, JsonSchema)]
pub struct BrokerInfo {
    /// AMQP URL, password redacted; `embedded` for the in-process broker.
    pub url: String,
    /// True for the embedded broker.
    pub embedded: bool,
    /// Product name from the management API (`RabbitMQ`), when it answered.
    pub product: Option<String>,
    /// Product version, when known.
    pub version: Option<String>,
}

/// The machine warren ran on.
#[derive(Debug, Clone, Serialize, Deserialize, JsonSchema)]
pub struct MachineInfo {
    /// Operating system.
    pub os: String,
    /// CPU architecture.
    pub arch: String,
    /// Logical cores available to warren.
    pub cores: u32,
    /// Physical memory, bytes, when known.
    pub memory_bytes: Option<u64>,
    /// Host name, when known.
    pub hostname: Option<String>,
}

/// Whether the generator kept its schedule, and what it cost.
#[derive(Debug, Clone, Serialize, Deserialize, JsonSchema)]
pub struct GeneratorInfo {
    /// True when warren itself could not keep the schedule: a fixed-rate
    /// group fell behind or sent late for longer than its waits on the broker
    /// explain, or one of warren's threads had no idle moment. The figures
    /// then describe warren as much as the broker. (Falling behind while
    /// waiting on the broker is [`BrokerPace`], not this.)
    pub limited: bool,
    /// Why it is flagged.
    pub reasons: Vec<String>,
    /// CPU time warren's process used (user + system) over the whole run,
    /// seconds; with the embedded broker, the broker's CPU is in it.
    pub cpu_seconds: Option<f64>,
    /// `cpu_seconds` per million messages consumed over the whole run (warmup and drain included).
    pub cpu_seconds_per_million: Option<f64>,
    /// CPU time of warren's client alone (lapin's I/O thread of every
    /// connection, which also runs that connection's producers and
    /// consumers, and the run's own thread) in the measured window, seconds;
    /// never includes an embedded broker.
    #[serde(default)]
    pub window_cpu_seconds: Option<f64>,
    /// Messages the measured window moved: published in it or first
    /// deliveries received in it, whichever are more (a fanout delivers more
    /// than it publishes; a producer ahead of its consumers publishes more).
    #[serde(default)]
    pub window_messages: Option<u64>,
    /// `window_cpu_seconds` per million `window_messages`.
    #[serde(default)]
    pub window_cpu_seconds_per_million: Option<f64>,
    /// The largest share of the measured window one client thread spent
    /// running or waiting for a CPU; above 0.9 the run is flagged.
    #[serde(default)]
    pub busiest_thread_share: Option<f64>,
}

impl GeneratorInfo {
    /// The client's CPU seconds per million messages: the measured window's
    /// figure, or the whole process's for a result that lacks it.
    pub fn client_cpu_per_million(&self) -> Option<f64> {
        self.window_cpu_seconds_per_million.or(self.cpu_seconds_per_million)
    }
}

/// Whether the broker held producers back: the rates are then the broker's.
#[derive(Debug, Clone, Default, Serialize, Deserialize, JsonSchema)]
pub struct BrokerPace {
    /// True when a fixed-rate producer group fell behind its schedule, or
    /// sent late, because it waited on the broker.
    pub paced: bool,
    /// Which groups, how far behind, and how long they waited on what.
    pub reasons: Vec<String>,
    /// Every producer's waits in the measured window, summed over instances.
    pub waited: BrokerWait,
}

/// Time producers waited on the broker in the measured window: a message
/// was due and the window of unconfirmed publishes was full. Seconds, summed
/// over a group's instances.
#[derive(Debug, Clone, Copy, Default, PartialEq, Serialize, Deserialize, JsonSchema)]
pub struct BrokerWait {
    /// Every publish written, the window full of ones the broker had not confirmed.
    pub confirm_window_s: f64,
    /// The connection blocked by the broker (`connection.blocked`: a memory or disk alarm).
    pub blocked_s: f64,
    /// Publishes not yet written because the broker was not reading the socket.
    pub write_s: f64,
    /// No connection: from its loss until the producer was connected to a node again.
    #[serde(default)]
    pub reconnect_s: f64,
}

impl BrokerWait {
    /// All of it.
    pub fn total_s(&self) -> f64 {
        self.confirm_window_s + self.blocked_s + self.write_s + self.reconnect_s
    }

    /// Adds `other` in.
    pub fn add(&mut self, other: &BrokerWait) {
        self.confirm_window_s += other.confirm_window_s;
        self.blocked_s += other.blocked_s;
        self.write_s += other.write_s;
        self.reconnect_s += other.reconnect_s;
    }

    /// The waits of one instance, on average, of a group of `instances`.
    pub fn each(&self, instances: u32) -> BrokerWait {
        let n = f64::from(instances.max(1));
        BrokerWait {
            confirm_window_s: self.confirm_window_s / n,
            blocked_s: self.blocked_s / n,
            write_s: self.write_s / n,
            reconnect_s: self.reconnect_s / n,
        }
    }

    /// `connection blocked 1.50s, confirm window full 0.02s`: the parts that are not zero
    /// (to the hundredth), largest first; `None` when there is none.
    pub fn parts(&self) -> Option<String> {
        let mut parts = [
            ("connection blocked", self.blocked_s),
            ("confirm window full", self.confirm_window_s),
            ("writes waiting", self.write_s),
            ("reconnecting", self.reconnect_s),
        ];
        parts.sort_by(|a, b| b.1.total_cmp(&a.1));
        let shown: Vec<String> =
            parts.iter().filter(|(_, s)| *s >= 0.005).map(|(what, s)| format!("{what} {s:.2}s")).collect();
        (!shown.is_empty()).then(|| shown.join(", "))
    }
}

impl From<crate::bench::actors::wait::Waited> for BrokerWait {
    fn from(waited: crate::bench::actors::wait::Waited) -> Self {
        let s = |ns: u64| ns as f64 / 1e9;
        BrokerWait {
            confirm_window_s: s(waited.confirms_ns),
            blocked_s: s(waited.blocked_ns),
            write_s: s(waited.writes_ns),
            reconnect_s: s(waited.reconnecting_ns),
        }
    }
}

/// Seconds per million messages, when there were any.
pub fn per_million(seconds: Option<f64>, messages: u64) -> Option<f64> {
    seconds.filter(|_| messages > 0).map(|seconds| seconds / messages as f64 * 1e6)
}

/// The whole run's figures. CI scripts read these names: they are stable.
#[derive(Debug, Clone, Default, Serialize, Deserialize, JsonSchema)]
pub struct Summary {
    /// Measured messages published.
    pub published: u64,
    /// First deliveries of measured messages.
    pub consumed: u64,
    /// Deliveries the routing promises for measured messages.
    pub expected: u64,
    /// Messages of the whole run never delivered to a consumed queue that should have had them.
    pub lost: u64,
    /// Of `lost`, the messages the broker had confirmed.
    #[serde(default)]
    pub confirmed_lost: u64,
    /// Messages producers sent again after a lost connection (unconfirmed when it was lost).
    #[serde(default)]
    pub resent: u64,
    /// Deliveries of a message already delivered, without the redelivered flag.
    pub duplicated: u64,
    /// Deliveries that arrived after a later message of the same producer (per consumer).
    pub reordered: u64,
    /// Deliveries flagged redelivered.
    pub redelivered: u64,
    /// Deliveries rejected on purpose by the scenario.
    pub rejected: u64,
    /// Publisher confirms (acks) for measured messages.
    pub confirmed: u64,
    /// Negative publisher confirms.
    pub nacked: u64,
    /// Unroutable messages returned (mandatory).
    pub returned: u64,
    /// Messages still unconfirmed when producers stopped waiting.
    pub unconfirmed: u64,
    /// Errors: nacks, failed publishes and acks, bodies that were not warren's.
    pub errors: u64,
    /// Measured messages published per second.
    pub publish_rate: f64,
    /// First deliveries received per second during the measured window.
    pub consume_rate: f64,
    /// Measured bytes published per second.
    pub publish_bytes_rate: f64,
    /// Measured bytes consumed per second.
    pub consume_bytes_rate: f64,
    /// Latency percentiles, microseconds.
    pub latency: LatencySummary,
}

/// The four latency histograms' percentiles.
#[derive(Debug, Clone, Copy, Default, Serialize, Deserialize, JsonSchema)]
pub struct LatencySummary {
    /// End to end from the intended send time (coordinated omission corrected).
    pub e2e: Percentiles,
    /// End to end from the actual send time.
    pub e2e_actual: Percentiles,
    /// Actual minus intended send time (fixed-rate producers only).
    pub send_delay: Percentiles,
    /// Publish to broker confirm.
    pub confirm: Percentiles,
}

/// The drain phase.
#[derive(Debug, Clone, Default, Serialize, Deserialize, JsonSchema)]
pub struct DrainInfo {
    /// How long it took, seconds.
    pub seconds: f64,
    /// First deliveries received during it.
    pub delivered: u64,
    /// True when every expected message arrived before the drain limit.
    pub complete: bool,
}

/// One producer group.
#[derive(Debug, Clone, Serialize, Deserialize, JsonSchema)]
pub struct ProducerGroupResult {
    /// Group name.
    pub name: String,
    /// Instances.
    pub instances: u32,
    /// Measured messages published.
    pub published: u64,
    /// Confirms for measured messages.
    pub confirmed: u64,
    /// Negative confirms.
    pub nacked: u64,
    /// Returned messages.
    pub returned: u64,
    /// Messages sent again after a lost connection.
    #[serde(default)]
    pub resent: u64,
    /// Measured messages per second.
    pub publish_rate: f64,
    /// Measured bytes per second.
    pub publish_bytes_rate: f64,
    /// Intended messages per second over all instances, for fixed-rate groups.
    pub target_rate: Option<f64>,
    /// Send delay percentiles.
    pub send_delay: Percentiles,
    /// Confirm latency percentiles.
    pub confirm: Percentiles,
    /// Serialised send-delay histogram.
    pub send_delay_histogram: String,
    /// Serialised confirm histogram.
    pub confirm_histogram: String,
    /// Time the group's producers waited on the broker in the measured window, summed over its instances.
    #[serde(default)]
    pub broker_wait: BrokerWait,
    /// Send delay counted from the intended send time or the end of the
    /// producer's last wait on the broker, whichever is later: the part of
    /// the delay that was warren's own (fixed-rate groups).
    #[serde(default)]
    pub own_send_delay: Percentiles,
    /// Serialised own-send-delay histogram (empty in results from before it existed).
    #[serde(default)]
    pub own_send_delay_histogram: String,
}

/// One consumer group.
#[derive(Debug, Clone, Serialize, Deserialize, JsonSchema)]
pub struct ConsumerGroupResult {
    /// Group name.
    pub name: String,
    /// Its queue.
    pub queue: String,
    /// Instances.
    pub instances: u32,
    /// First deliveries of measured messages.
    pub consumed: u64,
    /// Deliveries expected by this group's queue (counted once per queue, on its first group).
    pub expected: u64,
    /// Messages the queue never delivered (counted once per queue, on its first group).
    pub lost: u64,
    /// Of `lost`, the messages the broker had confirmed.
    #[serde(default)]
    pub confirmed_lost: u64,
    /// Duplicates.
    pub duplicated: u64,
    /// Reordered deliveries.
    pub reordered: u64,
    /// Redeliveries.
    pub redelivered: u64,
    /// Rejected on purpose.
    pub rejected: u64,
    /// First deliveries per second during the measured window.
    pub consume_rate: f64,
    /// Bytes of measured messages per second.
    pub consume_bytes_rate: f64,
    /// End-to-end percentiles (intended send time).
    pub e2e: Percentiles,
    /// End-to-end percentiles (actual send time).
    pub e2e_actual: Percentiles,
    /// Serialised end-to-end histogram.
    pub e2e_histogram: String,
    /// Serialised actual-send end-to-end histogram.
    pub e2e_actual_histogram: String,
}

/// A gate and its verdict.
#[derive(Debug, Clone, Serialize, Deserialize, JsonSchema)]
pub struct GateResult {
    /// Gate name, as in the scenario file (`latency_p99_max`, …).
    pub name: String,
    /// The threshold (microseconds for latencies, msgs/s for throughput, counts otherwise).
    pub threshold: f64,
    /// The run's figure, same unit.
    pub actual: f64,
    /// True when the run met it.
    pub passed: bool,
}

/// One second of the run, all actors added up.
#[derive(Debug, Clone, Serialize, Deserialize, JsonSchema)]
pub struct SecondResult {
    /// Seconds since producers started.
    pub t: u64,
    /// `warmup`, `measure` or `drain`.
    pub phase: String,
    /// Messages published.
    pub published: u64,
    /// Confirms.
    pub confirmed: u64,
    /// Negative confirms.
    pub nacked: u64,
    /// Returns.
    pub returned: u64,
    /// Deliveries.
    pub delivered: u64,
    /// Acknowledged deliveries.
    pub acked: u64,
    /// Redeliveries.
    pub redelivered: u64,
    /// Errors.
    pub errors: u64,
    /// End-to-end p50 of messages received in this second, microseconds.
    pub p50_us: Option<f64>,
    /// End-to-end p99 of messages received in this second, microseconds.
    pub p99_us: Option<f64>,
    /// This second's end-to-end histogram, serialised like [`Histograms`], so
    /// merged results get exact per-second percentiles.
    #[serde(default)]
    pub e2e_histogram: Option<String>,
}

/// Serialised histograms of the whole run.
#[derive(Debug, Clone, Serialize, Deserialize, JsonSchema)]
pub struct Histograms {
    /// Always `ns`.
    pub unit: String,
    /// Always `hdrhistogram-v2-deflate-base64`.
    pub encoding: String,
    /// End to end, intended send time.
    pub e2e: String,
    /// End to end, actual send time.
    pub e2e_actual: String,
    /// Send delay.
    pub send_delay: String,
    /// Confirm latency.
    pub confirm: String,
}

/// The JSON Schema of result files, as committed in `schemas/result.schema.json`.
pub fn json_schema() -> serde_json::Value {
    serde_json::to_value(schemars::schema_for!(RunResult)).unwrap_or(serde_json::Value::Null)
}

/// Checks that the committed JSON Schema at `relative` (from the crate root)
/// is `schema`; with `WARREN_UPDATE_SCHEMAS` set, writes it first. `module`
/// names the tests that regenerate it.
#[cfg(test)]
pub(crate) fn assert_schema_is_current(relative: &str, schema: &serde_json::Value, module: &str) {
    let path = std::path::Path::new(env!("CARGO_MANIFEST_DIR")).join(relative);
    let generated = serde_json::to_string_pretty(schema).expect("the schema encodes") + "\n";
    if std::env::var_os("WARREN_UPDATE_SCHEMAS").is_some() {
        std::fs::write(&path, &generated).expect("writing the schema");
    }
    let committed = std::fs::read_to_string(&path).unwrap_or_default();
    assert!(
        committed == generated,
        "{relative} is out of date: run `WARREN_UPDATE_SCHEMAS=1 cargo test --lib {module}`"
    );
}

#[cfg(test)]
mod tests {
    use super::*;

    /// `schemas/result.schema.json` is what CI scripts and the integration
    /// tests validate against; it must match the types.
    #[test]
    fn committed_result_schema_is_current() {
        assert_schema_is_current("schemas/result.schema.json", &json_schema(), "result");
    }
}
