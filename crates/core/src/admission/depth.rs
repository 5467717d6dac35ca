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
        let found = from + quote_or_backslash(body.get(from..)?)?;
        if body[found] == b'"' {
            return Some(found);
        }
        // A backslash escapes the next byte, which may be a quote.
        from = found + 2;
    }
}

/// The first `"` or `\` in `text`. Most strings in an object are short
/// (keys, names, env values), where memchr2's setup costs more than the
/// search: the first 64 bytes are searched 8 at a time in a word, then
/// memchr2 takes over. (`cargo bench --bench review`: the one-pass scan of
/// the 10 KB review went from 5.06-5.20 to 4.43-4.48 µs with it,
/// and the depth scan from 3.81-4.28 to 3.37-3.44 µs.)
fn quote_or_backslash(text: &[u8]) -> Option<usize> {
    const ONES: u64 = u64::from_ne_bytes([0x01; 8]);
    const HIGHS: u64 = u64::from_ne_bytes([0x80; 8]);
    const QUOTES: u64 = u64::from_ne_bytes([b'"'; 8]);
    const BACKSLASHES: u64 = u64::from_ne_bytes([b'\\'; 8]);
    // Bytes equal to zero get their high bit set; below the first such byte
    // nothing is set, which is all the lowest set bit needs.
    let zeros = |word: u64| word.wrapping_sub(ONES) & !word & HIGHS;
    let mut at = 0;
    while at < 64 {
        let Some(chunk) = text.get(at..at + 8) else {
            break;
        };
        let mut bytes = [0u8; 8];
        bytes.copy_from_slice(chunk);
        let word = u64::from_le_bytes(bytes);
        let hits = zeros(word ^ QUOTES) | zeros(word ^ BACKSLASHES);
        if hits != 0 {
            return Some(at + (hits.trailing_zeros() / 8) as usize);
        }
        at += 8;
    }
    memchr::memchr2(b'"', b'\\', text.get(at..)?).map(|i| at + i)
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn the_word_search_finds_what_memchr2_finds() {
        // Every place of a quote and a backslash in texts of 0 to 100 bytes,
        // among bytes that sit next to them in value (0x21, 0x23, 0x5b, 0x5d,
        // 0x80, 0xff) and could fool a word-at-a-time search.
        let fillers = [b'a', 0x21, 0x23, 0x5b, 0x5d, 0x80, 0xff, 0x00];
        for len in 0..100 {
            for filler in fillers {
                let plain = vec![filler; len];
                assert_eq!(
                    quote_or_backslash(&plain),
                    memchr::memchr2(b'"', b'\\', &plain)
                );
                for at in 0..len {
                    for special in [b'"', b'\\'] {
                        let mut text = plain.clone();
                        text[at] = special;
                        if at + 3 < len {
                            text[at + 3] = b'"';
                        }
                        assert_eq!(
                            quote_or_backslash(&text),
                            memchr::memchr2(b'"', b'\\', &text),
                            "len {len}, filler {filler:#x}, at {at}"
                        );
                    }
                }
            }
        }
    }

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
