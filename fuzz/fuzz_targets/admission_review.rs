//! Any bytes as a `/validate` body: decoding either fails with an error or
//! yields a request that `decide` answers and that serialises as a review.
//! A panic anywhere here would be a failed admission in the cluster.
//! And the depth scan that runs before decoding never refuses JSON that
//! serde_json itself builds (it would turn a valid review into a denial).
//! And the one-pass decoder reads every review the whole-body decoder
//! reads, and reads it the same.
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
    let one_pass = review::decode(body);
    if let Ok(whole) = review::decode_whole(body) {
        let Ok(one_pass) = &one_pass else {
            panic!("the one pass refused a review the whole body decodes: {one_pass:?}");
        };
        assert_eq!(format!("{one_pass:?}"), format!("{whole:?}"), "the two decoders read differently");
    }
    let Ok(req) = one_pass else {
        return;
    };
    let policy = Policy::default();
    let view = ClusterView::synced();
    let decision = guard::decide(&policy, &view, &req, jiff::Timestamp::UNIX_EPOCH);
    let answer = respond::review(&req.uid, &decision);
    assert!(serde_json::to_vec(&answer).is_ok());
});
