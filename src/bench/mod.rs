//! Load-test scenarios: a scenario file spawns producers and consumers over a
//! topology, measures end-to-end latency and throughput, and yields a result.
//!
//! # Layout
//!
//! ```text
//! scenario/ ──▶ session ──▶ setup (topology applied) ──▶ runner ──spawns──▶ actors/{producer,consumer}
//!                  │                                       │   on link's      │ record into
//!                  │                                       │   I/O threads    ▼ metrics/{series,tracker}
//!                  │                                       └──▶ analytics ──▶ crate::result ──▶ thresholds
//!                  └─ repeat (median of N), shard (one slice of each group)
//! ```
//!
//! - [`scenario`]: the file (raw serde structs), its checks, the validated [`scenario::Scenario`].
//! - [`session`]: one bench from validated options to a result: apply, run, clean up, assemble.
//! - [`setup`]: the scenario's topology: loaded, applied before the run, deleted after it.
//! - [`message`]: the body layout every message carries (sequence, timestamp, producer).
//! - [`routing`]: where the topology routes each message, so loss is counted per queue.
//! - [`runner`]: connects, starts every actor on one clock, walks warmup, measure and drain.
//! - [`link`]: a connection and its runtime: actors run on their connection's I/O thread.
//! - [`stream_link`]: the same for `protocol: stream` groups, over RabbitMQ's stream protocol.
//! - [`actors`]: producers and consumers; each owns its histograms and counters.
//! - [`metrics`]: what actors record while the run goes (per-second series, sequences).
//! - [`analytics`]: the run's figures once it ended, and who set its pace.
//! - [`broker_view`]: the broker's management API read once a second during the run.
//! - [`thresholds`]: the scenario's absolute gates (exit 3).
//! - [`progress`]: live progress on a terminal.
//! - [`repeat`], [`shard`]: several runs of one scenario; one slice of it per machine.
//! - [`host`]: the machine, the client's CPU time, process limits.
//!
//! The result file these produce is [`crate::result`]; comparing it with a
//! baseline is [`crate::compare`]; reports on it are [`crate::report`].

pub mod actors;
pub mod analytics;
pub mod broker_view;
pub mod host;
pub mod link;
pub mod message;
pub mod metrics;
pub mod progress;
pub mod repeat;
pub mod routing;
pub mod runner;
pub mod scenario;
pub mod session;
pub mod setup;
pub mod shard;
pub mod stream_link;
pub mod thresholds;
