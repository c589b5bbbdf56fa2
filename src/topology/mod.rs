//! The topology file and its reconciliation against a broker.
//!
//! Data flow: a file is loaded ([`model::Topology`], validated, `${ENV}`
//! resolved); the broker's definitions are read and normalised into the same
//! type; the diff yields a plan of explained changes; apply runs the plan in
//! dependency order.
//!
//! ```text
//! load/ ──▶ model::Topology ─┐
//!                            ├─▶ plan/diff ──▶ plan::Plan ──▶ plan/guard ──▶ apply (stage by stage)
//! current (broker) ──────────┘                                                │
//!   GET /api/definitions/{vhost}, /api/users, …   deletes: one request each, 16 at a time
//!                                                 creates: one POST /api/definitions per stage
//! ```
//!
//! - [`load`]: a file to a validated [`model::Topology`] (YAML, or a definitions export).
//! - [`current`]: the broker's state, read and normalised into the same model.
//! - [`definitions`]: the model to and from RabbitMQ's definitions document.
//! - [`plan`]: the diff, the explained changes, and the data-loss guard.
//! - [`apply`]: the plan run against the broker through the management client.
//! - [`write`](mod@write): the model as a topology file (`export`); [`schema`]: its JSON Schema.
//!
//! # From other commands
//!
//! [`apply::converge`] plans, guards and applies a topology without any
//! output (`bench` applies a scenario's topology with it), and
//! [`apply::remove`] deletes the exchanges and queues a topology declares
//! (what a bench run created). Both read only the vhosts the topology names;
//! a refusal comes back as [`apply::ConvergeError::Refused`].

pub mod apply;
pub mod current;
pub mod definitions;
pub mod definitions_fields;
pub mod load;
pub mod model;
pub mod normalise;
pub mod plan;
pub mod schema;
pub mod write;

pub use model::Topology;
