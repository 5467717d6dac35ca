//! The pure decision core: no I/O, no async, nothing of axum.

pub mod actors;
pub mod compat;
pub mod decide;
pub mod identity;
pub mod message;
pub mod ownership;
pub mod tenancy;
pub mod tenancy_spec;

pub use decide::{decide, mode_of};

#[cfg(test)]
mod decide_tests;
#[cfg(test)]
mod tenancy_tests;
#[cfg(test)]
pub(crate) mod test_support;
