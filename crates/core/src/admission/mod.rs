//! Decoding and answering AdmissionReviews.

pub mod decision;
pub mod depth;
pub mod object;
pub mod respond;
pub mod review;
pub mod skim;
pub mod spec;
