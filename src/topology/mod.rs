//! The topology file and its reconciliation against a broker.
//!
//! Data flow: a file is loaded ([`model::Topology`], validated, `${ENV}`
//! resolved); the broker's definitions are read and normalised into the same
//! type; the diff yields a plan of explained changes; apply runs the plan in
//! dependency order.

pub mod command;
pub mod definitions;
pub mod diff;
pub mod model;
pub mod normalise;
pub mod password;
pub mod plan;

pub use model::Topology;
