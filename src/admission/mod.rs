//! Decoding and answering AdmissionReviews.

pub mod decision;
pub mod respond;
pub mod review;
pub mod object;
