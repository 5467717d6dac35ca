//! Rewriting one bench's section of bench/RESULTS.md, between its markers.

/// Replaces the text between `begin` and `end` (markers included) with
/// `section`, or appends it under `heading` the first time.
pub fn write_section(begin: &str, end: &str, heading: &str, section: &str) -> Result<(), String> {
    let path = crate::repo_root().join("bench/RESULTS.md");
    let text = std::fs::read_to_string(&path).map_err(|e| e.to_string())?;
    let updated = match (text.find(begin), text.find(end)) {
        (Some(b), Some(e)) if b < e => {
            format!(
                "{}{}{}",
                &text[..b],
                section.trim_end(),
                &text[e + end.len()..]
            )
        }
        _ => format!("{}\n\n{heading}\n\n{section}", text.trim_end()),
    };
    std::fs::write(&path, updated).map_err(|e| e.to_string())
}
