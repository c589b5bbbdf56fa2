//! The one place that talks to a management HTTP API (RabbitMQ's, or the
//! embedded broker's subset of it).

pub mod client;

pub use client::{Management, ManagementError, QueueStats, QueueStatsMap};
