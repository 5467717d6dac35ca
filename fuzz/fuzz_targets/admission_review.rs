//! Any bytes as a `/validate` body: decoding either fails with an error or
//! yields a request that `decide` answers and that serialises as a review.
//! A panic anywhere here would be a failed admission in the cluster.
//! And the depth scan that runs before decoding never refuses JSON that
//! serde_json itself builds (it would turn a valid review into a denial).
#![no_main]

use gitops_guard::{
    admission::{depth, respond, review},
    cluster::view::ClusterView,
    guard,
    policy::Policy,
};
use libfuzzer_sys::fuzz_target;

fuzz_target!(|body: &[u8]| {
    if serde_json::from_slice::<serde_json::Value>(body).is_ok() {
        assert!(!depth::exceeds(body, depth::MAX_DEPTH), "the scan refused JSON serde_json accepts");
    }
    let Ok(req) = review::decode(body) else {
        return;
    };
    let policy = Policy::default();
    let view = ClusterView::synced();
    let decision = guard::decide(&policy, &view, &req, jiff::Timestamp::UNIX_EPOCH);
    let answer = respond::review(&req.uid, &decision);
    assert!(serde_json::to_vec(&answer).is_ok());
});
