//! HTTP headers the registry client reads: `WWW-Authenticate` challenges
//! (RFC 7235) and `Retry-After` (RFC 9110).

use std::time::Duration;

/// One challenge: scheme lowercased, parameter names lowercased.
#[derive(Debug, Clone, PartialEq)]
pub struct Challenge {
    pub scheme: String,
    pub params: Vec<(String, String)>,
}

impl Challenge {
    pub fn param(&self, name: &str) -> Option<&str> {
        self.params
            .iter()
            .find(|(n, _)| n == name)
            .map(|(_, v)| v.as_str())
    }
}

/// Every challenge it can read from the header value; never fails.
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
            rest = after_ws;
            // A token68 credential (`Basic abc=`) is not a parameter: skip it.
            let (word, tail) = take_token68(rest);
            if word.ends_with('=') && !tail.trim_start().starts_with('"') {
                rest = tail;
            }
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

fn take_token68(s: &str) -> (&str, &str) {
    let end = s
        .find(|c: char| !(c.is_ascii_alphanumeric() || "-._~+/=".contains(c)))
        .unwrap_or(s.len());
    s.split_at(end)
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

/// `Retry-After` as delta-seconds or an HTTP-date, from `now`.
pub fn parse_retry_after(value: &str, now: jiff::Timestamp) -> Option<Duration> {
    let value = value.trim();
    if value.is_empty() {
        return None;
    }
    if let Ok(seconds) = value.parse::<u64>() {
        return Some(Duration::from_secs(seconds));
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
    fn retry_after_reads_seconds_and_http_dates() {
        let now: jiff::Timestamp = "2015-10-21T07:27:00Z".parse().expect("timestamp");
        assert_eq!(parse_retry_after("5", now), Some(Duration::from_secs(5)));
        assert_eq!(
            parse_retry_after("Wed, 21 Oct 2015 07:28:00 GMT", now),
            Some(Duration::from_secs(60))
        );
        assert_eq!(
            parse_retry_after("Wed, 21 Oct 2015 07:00:00 GMT", now),
            Some(Duration::ZERO)
        );
        assert_eq!(parse_retry_after("soon", now), None);
    }
}
