//! Load-test scenarios: a scenario file spawns producers and consumers over a
//! topology, measures end-to-end latency and throughput, and reports.
//!
//! # Layout
//!
//! ```text
//! scenario/ ──▶ setup (topology applied) ──▶ runner ──spawns──▶ actors/{producer,consumer}
//!                                                │                    │ histograms, counters,
//!                                                │                    ▼ per-second ticks
//!                                                └──▶ analytics ──▶ result ──▶ report/{table,progress}, gate
//! ```
//!
//! - [`scenario`]: the file (raw serde structs), its checks, the validated [`scenario::Scenario`].
//! - [`setup`]: the scenario's topology: loaded, applied before the run, deleted after it.
//! - [`message`]: the body layout every message carries (sequence, timestamp, producer).
//! - [`routing`]: where the topology routes each message, so loss is counted per queue.
//! - [`runner`]: connects, starts every actor on one clock, walks warmup, measure and drain.
//! - [`link`]: a connection and its runtime: actors run on their connection's I/O thread.
//! - [`actors`]: producers and consumers; each owns its histograms and counters.
//! - [`analytics`]: histograms, sequence tracking, per-second series, and the final figures.
//! - [`result`]: the result file's versioned schema.
//! - [`report`]: live progress and the summary table.
//! - [`gate`]: the scenario's thresholds (exit 3).
//! - [`machine`]: CPU time, machine facts, git revision, broker product.
//! - [`command`]: `warren bench` and `warren compare`.

pub mod actors;
pub mod analytics;
pub mod command;
pub mod gate;
pub mod link;
pub mod machine;
pub mod message;
pub mod report;
pub mod result;
pub mod routing;
pub mod runner;
pub mod scenario;
pub mod setup;
