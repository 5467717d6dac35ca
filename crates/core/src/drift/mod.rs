//! Drift, the pure half: an object trimmed to its record, and whether a
//! change to it is drift.

pub mod detect;
pub mod record;
pub mod settings;
