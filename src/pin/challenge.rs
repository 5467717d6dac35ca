//! HTTP headers the registry client reads: `WWW-Authenticate` challenges
//! (RFC 7235) and `Retry-After` (RFC 9110).

use std::time::Duration;

/// One challenge: scheme lowercased, parameter names lowercased, values
/// unquoted.
#[derive(Debug, Clone, PartialEq)]
pub struct Challenge {
    pub scheme: String,
    pub params: Vec<(String, String)>,
}

impl Challenge {
    /// The first parameter called `name` (in any case).
    pub fn param(&self, name: &str) -> Option<&str> {
        self.params
            .iter()
            .find(|(n, _)| n.eq_ignore_ascii_case(name))
            .map(|(_, v)| v.as_str())
    }
}

/// Every challenge it can read from the header value, in order; never fails.
/// A token after the scheme followed by `=` starts a parameter; any other
/// token starts the next challenge.
pub fn parse_www_authenticate(value: &str) -> Vec<Challenge> {
    let mut out: Vec<Challenge> = Vec::new();
    let mut rest = value.trim();
    while !rest.is_empty() {
        rest = rest.trim_start_matches([',', ' ', '\t']);
        let (token, after) = take_token(rest);
        if token.is_empty() {
            break; // not a token: nothing more can be read
        }
        let after_ws = after.trim_start();
        if let Some(value_part) = after_ws.strip_prefix('=')
            && let Some(current) = out.last_mut()
        {
            // A parameter of the current challenge.
            let (value, remaining) = take_value(value_part.trim_start());
            current.params.push((token.to_ascii_lowercase(), value));
            rest = remaining;
        } else {
            out.push(Challenge {
                scheme: token.to_ascii_lowercase(),
                params: Vec::new(),
            });
            // A token68 (`Basic abc=`, `Negotiate abc123`) stands alone
            // before a comma or the end: it is not a parameter, so skip it.
            let (word, tail) = take_token68(after_ws);
            let tail_ws = tail.trim_start();
            let alone = tail_ws.is_empty() || tail_ws.starts_with(',');
            rest = if !word.is_empty() && alone {
                tail_ws
            } else {
                after_ws
            };
        }
    }
    out
}

fn is_tchar(c: char) -> bool {
    c.is_ascii_alphanumeric() || "!#$%&'*+-.^_`|~".contains(c)
}

fn take_token(s: &str) -> (&str, &str) {
    let end = s.find(|c: char| !is_tchar(c)).unwrap_or(s.len());
    s.split_at(end)
}

/// `token68 = 1*( ALPHA / DIGIT / "-" / "." / "_" / "~" / "+" / "/" ) *"="`
fn take_token68(s: &str) -> (&str, &str) {
    let body = s
        .find(|c: char| !(c.is_ascii_alphanumeric() || "-._~+/".contains(c)))
        .unwrap_or(s.len());
    if body == 0 {
        return ("", s);
    }
    let padded = s[body..].len() - s[body..].trim_start_matches('=').len();
    s.split_at(body + padded)
}

/// A quoted string (with backslash escapes) or a token; returns the rest.
fn take_value(s: &str) -> (String, &str) {
    let Some(quoted) = s.strip_prefix('"') else {
        let (token, rest) = take_token(s);
        return (token.to_owned(), rest);
    };
    let mut value = String::new();
    let mut chars = quoted.char_indices();
    while let Some((i, c)) = chars.next() {
        match c {
            '\\' => {
                if let Some((_, escaped)) = chars.next() {
                    value.push(escaped);
                }
            }
            '"' => return (value, &quoted[i + 1..]),
            c => value.push(c),
        }
    }
    (value, "") // unterminated: take what there is
}

/// `Retry-After` as delta-seconds or an HTTP-date (IMF-fixdate, read by the
/// RFC 2822 parser), from `now`; a date already past is zero, and anything
/// else is `None`.
pub fn parse_retry_after(value: &str, now: jiff::Timestamp) -> Option<Duration> {
    let value = value.trim();
    if value.is_empty() {
        return None;
    }
    if value.bytes().all(|b| b.is_ascii_digit()) {
        return value.parse::<u64>().ok().map(Duration::from_secs);
    }
    let at = jiff::fmt::rfc2822::parse(value).ok()?.timestamp();
    let ahead = at.duration_since(now);
    Some(Duration::try_from(ahead).unwrap_or(Duration::ZERO))
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn a_docker_hub_bearer_challenge_gives_realm_service_and_scope() {
        let c = parse_www_authenticate(
            r#"Bearer realm="https://auth.docker.io/token",service="registry.docker.io",scope="repository:library/nginx:pull""#,
        );
        assert_eq!(c.len(), 1);
        assert_eq!(c[0].scheme, "bearer");
        assert_eq!(c[0].param("realm"), Some("https://auth.docker.io/token"));
        assert_eq!(c[0].param("service"), Some("registry.docker.io"));
        assert_eq!(c[0].param("scope"), Some("repository:library/nginx:pull"));
    }

    #[test]
    fn several_challenges_with_commas_inside_quotes_are_kept_apart() {
        let c = parse_www_authenticate(r#"Basic realm="x", Bearer realm="y",scope="a,b""#);
        assert_eq!(c.len(), 2);
        assert_eq!(
            (c[0].scheme.as_str(), c[0].param("realm")),
            ("basic", Some("x"))
        );
        assert_eq!(c[1].param("scope"), Some("a,b"));
    }

    #[test]
    fn escapes_in_quoted_values_are_read() {
        let c = parse_www_authenticate(r#"Basic realm="say \"hi\"""#);
        assert_eq!(c[0].param("realm"), Some(r#"say "hi""#));
    }

    #[test]
    fn a_token68_value_does_not_break_the_parser() {
        let c = parse_www_authenticate("Basic abc=, Bearer realm=\"r\"");
        let schemes: Vec<&str> = c.iter().map(|c| c.scheme.as_str()).collect();
        assert_eq!(schemes, ["basic", "bearer"]);
        assert_eq!(c[1].param("realm"), Some("r"));
    }

    #[test]
    fn garbage_gives_what_could_be_read_and_never_panics() {
        assert!(parse_www_authenticate("").is_empty());
        assert!(parse_www_authenticate("\"\"\"").is_empty());
        let c = parse_www_authenticate(r#"Bearer realm="unterminated"#);
        assert_eq!(c[0].param("realm"), Some("unterminated"));
    }

    #[test]
    fn a_token68_without_padding_is_not_a_second_challenge() {
        let c = parse_www_authenticate("Negotiate abc123, Basic realm=\"r\"");
        let schemes: Vec<&str> = c.iter().map(|c| c.scheme.as_str()).collect();
        assert_eq!(schemes, ["negotiate", "basic"]);
        assert!(c[0].params.is_empty());
        assert_eq!(c[1].param("realm"), Some("r"));
    }

    #[test]
    fn a_lone_scheme_is_a_challenge_without_parameters() {
        let c = parse_www_authenticate("Basic");
        assert_eq!(c.len(), 1);
        assert_eq!((c[0].scheme.as_str(), c[0].params.len()), ("basic", 0));
    }

    #[test]
    fn unquoted_values_and_spaces_around_equals_are_read() {
        let c = parse_www_authenticate("Bearer realm = x , scope=y,Basic realm=z");
        assert_eq!(c.len(), 2);
        assert_eq!(
            (c[0].param("realm"), c[0].param("scope")),
            (Some("x"), Some("y"))
        );
        assert_eq!(
            (c[1].scheme.as_str(), c[1].param("realm")),
            ("basic", Some("z"))
        );
    }

    #[test]
    fn schemes_and_parameter_names_are_read_without_case() {
        let c = parse_www_authenticate(r#"BEARER Realm="R",SCOPE="S""#);
        assert_eq!(c[0].scheme, "bearer");
        assert_eq!(c[0].params[0], ("realm".to_owned(), "R".to_owned()));
        assert_eq!(
            (c[0].param("Realm"), c[0].param("scope")),
            (Some("R"), Some("S"))
        );
    }

    #[test]
    fn text_that_cannot_start_a_challenge_stops_the_reading() {
        let c = parse_www_authenticate(r#"Bearer realm="r", ;nonsense Basic realm="x""#);
        assert_eq!(c.len(), 1);
        assert_eq!(c[0].param("realm"), Some("r"));
        for junk in [
            "=",
            ",,,",
            "\u{e9}t\u{e9}=\"\u{e9}\"",
            "a=\"\\",
            "Basic ====, =x",
        ] {
            let _ = parse_www_authenticate(junk);
        }
    }

    fn now() -> jiff::Timestamp {
        "2015-10-21T07:27:00Z".parse().expect("timestamp")
    }

    #[rstest::rstest]
    #[case::delta_seconds("5", Some(Duration::from_secs(5)))]
    #[case::delta_seconds_with_spaces_around(" 120 ", Some(Duration::from_secs(120)))]
    #[case::zero_seconds("0", Some(Duration::ZERO))]
    #[case::an_http_date_ahead("Wed, 21 Oct 2015 07:28:00 GMT", Some(Duration::from_secs(60)))]
    #[case::an_http_date_in_the_past_is_zero("Wed, 21 Oct 2015 07:00:00 GMT", Some(Duration::ZERO))]
    #[case::a_word_is_unparseable("soon", None)]
    #[case::an_empty_value_is_unparseable("", None)]
    #[case::a_signed_number_is_unparseable("+5", None)]
    #[case::a_negative_number_is_unparseable("-5", None)]
    #[case::a_fraction_is_unparseable("1.5", None)]
    #[case::a_number_too_big_is_unparseable("99999999999999999999999", None)]
    #[case::a_date_with_a_bad_day_is_unparseable("Wed, 32 Oct 2015 07:28:00 GMT", None)]
    fn retry_after_reads_seconds_and_http_dates(
        #[case] value: &str,
        #[case] expected: Option<Duration>,
    ) {
        assert_eq!(parse_retry_after(value, now()), expected);
    }
}
