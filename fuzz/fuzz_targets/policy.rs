//! Any text as a policy file: loading fails with an error naming the
//! problem, or yields a policy; never a panic at startup.
#![no_main]

use gitops_guard::policy::Policy;
use libfuzzer_sys::fuzz_target;

fuzz_target!(|text: &str| {
    if let Err(e) = Policy::from_yaml(text, "fuzz.yaml") {
        assert!(!e.to_string().is_empty());
    }
});
