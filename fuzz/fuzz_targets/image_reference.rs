//! Any string as an image reference: parsing fails cleanly or gives a
//! reference whose pinned form parses again to the same repository.
#![no_main]

use gitops_guard::pin::reference::Reference;
use libfuzzer_sys::fuzz_target;

const DIGEST: &str = "sha256:0000000000000000000000000000000000000000000000000000000000000000";

fuzz_target!(|text: &str| {
    let Ok(reference) = Reference::parse(text) else {
        return;
    };
    let pinned = reference.pinned(DIGEST);
    let again = Reference::parse(&pinned)
        .unwrap_or_else(|e| panic!("{text:?} pinned as {pinned:?} does not parse: {e}"));
    assert_eq!(again.pinned(DIGEST), pinned, "pinning is not idempotent for {text:?}");
});
