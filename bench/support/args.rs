//! `--name value` options of a bench binary (after cargo bench's `--`).

/// The value after `name` in `args`, or `default` when it is absent or
/// does not parse.
pub fn value<T: std::str::FromStr>(args: &[String], name: &str, default: T) -> T {
    let at = args.iter().position(|a| a == name);
    at.and_then(|i| args.get(i + 1))
        .and_then(|v| v.parse().ok())
        .unwrap_or(default)
}
