//! The CI gate: a run judged against a baseline, so CI fails on a real
//! regression and not on noise.
//!
//! ```text
//! bench ──▶ repeat (median of N runs, spread) ──▶ result ──▶ compare (vs baseline) ──▶ table / JSON
//!   │                                                 │                                      │
//!   └─ shard (K-th of N slices, --start-at) ──────────┘                 junit (gates + figures as tests)
//! ```
//!
//! - [`compare`]: the figures of two results side by side, each with a verdict.
//! - [`junit`]: JUnit XML, so CI systems show gates and figures as test cases.
//! - [`repeat`]: the median of several runs and how far they spread.
//! - [`shard`]: one slice of a scenario for load from several machines.
//! - [`command`]: `warren compare`, and the `--baseline`/`--repeat`/`--junit` steps of `warren bench`.

pub mod command;
pub mod compare;
pub mod junit;
pub mod repeat;
#[cfg(test)]
pub(crate) mod sample;
pub mod shard;
