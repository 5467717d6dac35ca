//! Any bytes as a `/validate` body: decoding either fails with an error or
//! yields a request that `decide` answers and that serialises as a review.
//! A panic anywhere here would be a failed admission in the cluster.
#![no_main]

use gitops_guard::{admission::respond, admission::review, cluster::view::ClusterView, guard, policy::Policy};
use libfuzzer_sys::fuzz_target;

fuzz_target!(|body: &[u8]| {
    let Ok(req) = review::decode(body) else {
        return;
    };
    let policy = Policy::default();
    let view = ClusterView::synced();
    let decision = guard::decide(&policy, &view, &req, jiff::Timestamp::UNIX_EPOCH);
    let answer = respond::review(&req.uid, &decision);
    assert!(serde_json::to_vec(&answer).is_ok());
});
