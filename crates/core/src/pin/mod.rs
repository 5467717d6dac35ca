//! Digest pinning, the pure half: image references, where a review's images
//! are, and which of them to pin with what patch.

pub mod error;
pub mod locate;
pub mod plan;
pub mod reference;
pub mod settings;
