//! `warren report`: what to do with result files after the run.
//!
//! ```text
//! result.json ──▶ html (charts: svg) ──▶ report.html, one self-contained file
//! A.json B.json … ──▶ runs ──▶ a table of the runs side by side
//! shard-1.json … shard-N.json ──▶ merge (histograms added, seconds summed) ──▶ merged.json
//! ```
//!
//! - [`merge`]: exact merge of shards' results.
//! - [`runs`]: several runs side by side.
//! - [`html`]: the HTML report; [`svg`] draws its charts.
//! - [`command`]: the `report` command.

pub mod command;
pub mod html;
pub mod merge;
pub mod runs;
pub mod svg;
