//! Decoding and answering AdmissionReviews.
