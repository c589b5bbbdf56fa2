//! Integration tests of the `warren` CLI against real brokers: the embedded
//! broker always, RabbitMQ when it answers (required when
//! `WARREN_REQUIRE_RABBITMQ=1`, as in CI).
//!
//! One test binary with shared helpers in [`util`]; one module per area.

mod sandbox;
mod util;

mod bench;
mod broker;
mod broker_crash;
mod broker_full_disk;
mod broker_restart;
mod cluster;
mod cluster_bench;
mod exit_codes;
mod failover;
mod gate;
mod tls;
mod topology_apply;
mod topology_definitions;
mod topology_errors;
mod topology_file;
mod topology_guard;
