//! Load-test scenarios: a scenario file spawns producers and consumers over a
//! topology, measures end-to-end latency and throughput, and reports.

pub mod command;
