//! The topology file and its reconciliation against a broker.
//!
//! Data flow: a file is loaded ([`model::Topology`], validated, `${ENV}`
//! resolved); the broker's definitions are read and normalised into the same
//! type; the diff yields a plan of explained changes; apply runs the plan in
//! dependency order.

pub mod apply;
pub mod arguments;
pub mod command;
pub mod convert;
pub mod current;
pub mod definitions;
pub mod diff;
pub mod diagnostic;
pub mod env;
pub mod guard;
pub mod load;
pub mod model;
pub mod normalise;
pub mod password;
pub mod plan;
pub mod raw;
pub mod schema;
pub mod source;
pub mod validate;
pub mod write;
pub mod yaml;

pub use model::Topology;
