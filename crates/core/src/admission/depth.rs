//! Nesting depth of a JSON body, found by one fast scan before decoding.
//!
//! The decoder skips the parts of an object the guard never reads with
//! serde's `IgnoredAny`, which serde_json walks iteratively and quickly but
//! without its recursion limit. This scan restores the bound for the whole
//! body: brackets are counted outside strings, and strings are crossed with
//! `memchr`, which is most of a Kubernetes object's bytes.

/// Deepest nesting accepted, the same bound serde_json applies to the parts
/// it builds.
pub const MAX_DEPTH: usize = 128;

/// True when arrays and objects in `body` nest deeper than `limit`.
///
/// Malformed text (an unterminated string, unbalanced brackets) is not
/// judged here: the parser that runs next reports it.
pub fn exceeds(body: &[u8], limit: usize) -> bool {
    let mut depth = 0usize;
    let mut at = 0;
    while let Some(&byte) = body.get(at) {
        match byte {
            b'"' => match string_end(body, at + 1) {
                Some(end) => at = end,
                None => return false,
            },
            b'[' | b'{' => {
                depth += 1;
                if depth > limit {
                    return true;
                }
            }
            b']' | b'}' => depth = depth.saturating_sub(1),
            _ => {}
        }
        at += 1;
    }
    false
}

/// Index of the quote closing the string whose contents start at `from`
/// (also the one-pass decoder's, `super::skim`).
pub(super) fn string_end(body: &[u8], mut from: usize) -> Option<usize> {
    loop {
        let found = from + memchr::memchr2(b'"', b'\\', body.get(from..)?)?;
        if body[found] == b'"' {
            return Some(found);
        }
        // A backslash escapes the next byte, which may be a quote.
        from = found + 2;
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn nested(depth: usize) -> String {
        format!("{}{}", "[".repeat(depth), "]".repeat(depth))
    }

    #[test]
    fn nesting_up_to_the_limit_passes_and_one_more_does_not() {
        assert!(!exceeds(nested(3).as_bytes(), 3));
        assert!(exceeds(nested(4).as_bytes(), 3));
        assert!(!exceeds(br#"{"a":{"b":[1,{"c":2}]}}"#, 4));
        assert!(exceeds(br#"{"a":{"b":[1,{"c":2}]}}"#, 3));
    }

    #[test]
    fn brackets_inside_strings_are_not_nesting() {
        let body = format!(r#"{{"k":"{}","v":"{}"}}"#, "[{".repeat(500), "]}".repeat(9));
        assert!(!exceeds(body.as_bytes(), 1));
    }

    #[test]
    fn an_escaped_quote_does_not_end_a_string() {
        // Were \" taken as the end, the brackets after it would count.
        let body = br#"{"k":"a\"[[[[","l":"\\"}"#;
        assert!(!exceeds(body, 1));
        let body = br#"{"k":"a\\","l":[[[]]]}"#;
        assert!(
            exceeds(body, 3),
            "\\\\ ends with an escaped backslash, then the quote closes"
        );
    }

    #[test]
    fn siblings_do_not_add_up() {
        let body = format!("[{}]", vec!["[[]]"; 1000].join(","));
        assert!(!exceeds(body.as_bytes(), 3));
    }

    #[test]
    fn malformed_text_is_left_to_the_parser() {
        assert!(!exceeds(br#"{"k":"unterminated [[[[[["#, 1));
        assert!(!exceeds(b"]]]]]]", 1));
        assert!(!exceeds(br#"{"k":"ends in a backslash\"#, 1));
    }

    #[test]
    fn whatever_serde_json_builds_is_within_the_limit() {
        // serde_json refuses to build past its own limit; the scan must never
        // refuse what it accepts.
        for depth in [1, 64, 127] {
            let body = nested(depth);
            serde_json::from_str::<serde_json::Value>(&body).expect("serde_json builds it");
            assert!(!exceeds(body.as_bytes(), MAX_DEPTH), "depth {depth}");
        }
        assert!(exceeds(nested(MAX_DEPTH + 1).as_bytes(), MAX_DEPTH));
    }
}
