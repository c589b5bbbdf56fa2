//! Definitions in and out of the state: RabbitMQ's definitions document
//! ([`warren_definitions::Definitions`]) built from the state ([`export`]) and
//! loaded into it ([`import`]), and a policy read from its JSON shape
//! ([`policy`]).
//!
//! The management API (`GET`/`POST /api/definitions`, `PUT /api/policies`) and
//! the data directory ([`crate::persist`]) both go through here, so an export
//! from RabbitMQ, a file on disk and an API import travel one code path, and
//! neither depends on the other.

pub mod export;
pub mod import;
pub mod policy;
#[cfg(test)]
mod roundtrip_tests;
