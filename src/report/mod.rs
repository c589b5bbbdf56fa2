//! What people read about result files: the summary table a bench prints,
//! the HTML report, several runs side by side, and the merge of shards.
//!
//! ```text
//! result ──▶ table (the summary after a run)
//! result.json ──▶ html (charts: svg) ──▶ report.html, one self-contained file
//! A.json B.json … ──▶ runs ──▶ a table of the runs side by side
//! shard-1.json … shard-N.json ──▶ merge (histograms added, seconds summed) ──▶ merged.json
//! ```
//!
//! - [`table`]: the summary a bench prints; [`units`] formats its numbers.
//! - [`merge`]: exact merge of shards' results.
//! - [`runs`]: several runs side by side.
//! - [`html`]: the HTML report; [`svg`] draws its charts.

pub mod html;
pub mod merge;
pub mod runs;
pub mod svg;
pub mod table;
pub mod units;
