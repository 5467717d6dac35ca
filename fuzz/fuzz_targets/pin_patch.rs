//! Any bytes as a `/mutate` body: when the images it names get a digest,
//! the JSON Patch built for them applies to the very object it was built
//! from (a patch the apiserver could not apply would fail the request).
#![no_main]

use gitops_guard::pin::{locate, plan, settings::{ImagePolicy, PinMode}};
use libfuzzer_sys::fuzz_target;

const DIGEST: &str = "sha256:0000000000000000000000000000000000000000000000000000000000000000";

fuzz_target!(|body: &[u8]| {
    let Ok(req) = locate::decode(body) else {
        return;
    };
    let (wanted, _) = plan::wanted(&req, &ImagePolicy::default());
    let answer = plan::finish(PinMode::Pin, &wanted, |_| Some(Ok(DIGEST)));
    let patch = answer
        .patch()
        .unwrap_or_else(|e| panic!("a replacement path is not a JSON pointer: {e}"));
    let Ok(full) = serde_json::from_slice::<serde_json::Value>(body) else {
        return;
    };
    let mut object = full["request"]["object"].clone();
    if let Err(e) = json_patch::patch(&mut object, &patch) {
        panic!("the patch does not apply to its own object: {e}");
    }
});
