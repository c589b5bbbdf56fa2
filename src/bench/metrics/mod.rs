//! What actors measure while a run goes: the per-second series every actor
//! records into ([`series`]) and the sequence tracking that finds lost,
//! duplicated and reordered messages ([`tracker`]).

pub mod series;
pub mod tracker;
