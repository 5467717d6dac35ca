//! `--name value` options of a bench binary (after cargo bench's `--`).

/// The value after `name` in `args`, or `default` when `name` is absent. A
/// value that is missing or does not parse is an error naming the option:
/// a typo must not silently run the default.
pub fn value<T: std::str::FromStr>(args: &[String], name: &str, default: T) -> Result<T, String>
where
    T::Err: std::fmt::Display,
{
    let Some(at) = args.iter().position(|a| a == name) else {
        return Ok(default);
    };
    let text = args
        .get(at + 1)
        .ok_or_else(|| format!("{name} needs a value"))?;
    text.parse().map_err(|e| format!("{name} {text:?}: {e}"))
}

/// [`value`] for a bench's `main`: a bad value is printed with the bench's
/// name and the process exits with status 2 before measuring anything.
pub fn value_or_exit<T: std::str::FromStr>(args: &[String], name: &str, default: T) -> T
where
    T::Err: std::fmt::Display,
{
    value(args, name, default).unwrap_or_else(|e| {
        let bench = args.first().map_or("bench", String::as_str);
        eprintln!("{bench}: {e}");
        std::process::exit(2)
    })
}

#[cfg(test)]
mod tests {
    use super::value;

    fn args(list: &[&str]) -> Vec<String> {
        list.iter().map(|a| (*a).to_owned()).collect()
    }

    #[test]
    fn an_absent_option_takes_its_default() {
        assert_eq!(value(&args(&["--bench"]), "--seconds", 5_u64), Ok(5));
    }

    #[test]
    fn a_given_option_is_parsed() {
        assert_eq!(value(&args(&["--seconds", "9"]), "--seconds", 5_u64), Ok(9));
    }

    #[test]
    fn a_value_that_does_not_parse_is_an_error_naming_the_option() {
        let got = value(&args(&["--seconds", "ten"]), "--seconds", 5_u64);
        assert!(got.is_err_and(|e| e.contains("--seconds")));
    }

    #[test]
    fn an_option_without_a_value_is_an_error() {
        assert!(value(&args(&["--seconds"]), "--seconds", 5_u64).is_err());
    }
}
