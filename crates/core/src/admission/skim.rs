//! One pass over a review that bounds its nesting and sets aside, unread,
//! the parts of `object` and `oldObject` the decision never looks at.
//!
//! The whole-body path (`review::decode_whole`) reads every byte twice: the
//! depth scan (`super::depth`), then serde_json skipping spec, status and
//! managedFields with `IgnoredAny`. On the 10 KB Deployment review those two
//! passes were 30 % and 45 % of decoding (bench/RESULTS.md, decode analysis).
//! Here one scan does both jobs: it counts brackets outside strings (strings
//! crossed with `memchr2`, as the depth scan does) and, on the few maps on
//! the way to what the guard reads (the review, its request, each object,
//! its metadata and spec), notes where each member's key and value are.
//! The result is an [`Outline`]: those maps, with every kept value as a
//! slice of the body. It is a serde `Deserializer`, so the same derived and
//! hand-written views decode from it, and each kept slice is parsed, with
//! all of serde_json's checks and its own recursion limit, by serde_json.
//!
//! What is set aside is checked only for what the scan needs: strings end,
//! brackets pair and nest no deeper than [`depth::MAX_DEPTH`]. Its numbers
//! and literals are not read, so a malformed `spec.template` that serde_json
//! would refuse decodes here. The apiserver sends only JSON it encoded
//! itself, and no part the scan sets aside reaches a decision.
//!
//! Anything the scan does not expect (bad structure, a top level that is not
//! an object) is not judged here: `None` sends the caller back to the
//! whole-body path, whose errors are serde_json's own.

use std::borrow::Cow;

use serde::{
    Deserializer,
    de::{self, DeserializeSeed, MapAccess, Visitor},
};

use super::depth::{MAX_DEPTH, string_end};

/// The members an object view reads, for each of the maps the scan opens.
/// Members not named here are set aside unread.
#[derive(Debug, Clone, Copy)]
pub struct Reads {
    /// Kept members of `metadata`.
    pub metadata: &'static [&'static str],
    /// Kept members of `spec`.
    pub spec: &'static [&'static str],
}

/// A JSON value as the scan left it: a slice for serde_json to parse, or a
/// map the scan opened, holding its members in their order.
#[derive(Debug)]
pub enum Outline<'a> {
    Raw(&'a [u8]),
    Map(Vec<Member<'a>>),
}

/// A map member: its key with the quotes, and its value.
#[derive(Debug)]
pub struct Member<'a> {
    key: &'a [u8],
    value: Outline<'a>,
}

/// Outlines `body`: `Ok(None)` when the scan stepped aside (the caller
/// decodes the whole body instead), `Err(TooDeep)` when brackets nest
/// deeper than [`MAX_DEPTH`].
pub fn outline<'a>(body: &'a [u8], reads: &Reads) -> Result<Option<Outline<'a>>, TooDeep> {
    let mut scan = Scan { body, at: 0 };
    match scan.document(reads) {
        Ok(outline) => Ok(Some(outline)),
        Err(Stop::TooDeep) => Err(TooDeep),
        Err(Stop::Unexpected) => Ok(None),
    }
}

/// Nesting past [`MAX_DEPTH`].
#[derive(Debug, PartialEq, Eq)]
pub struct TooDeep;

#[derive(Debug)]
enum Stop {
    TooDeep,
    Unexpected,
}

/// Which map the scan is in, to know what to do with a member.
#[derive(Clone, Copy)]
enum Level {
    Review,
    Request,
    Object,
    Metadata,
    Spec,
}

enum Keep {
    Open(Level),
    Raw,
    Drop,
}

impl Level {
    fn keep(self, key: &str, reads: &Reads) -> Keep {
        let kept = |names: &[&str]| {
            if names.contains(&key) {
                Keep::Raw
            } else {
                Keep::Drop
            }
        };
        match (self, key) {
            (Self::Review, "request") => Keep::Open(Self::Request),
            (Self::Review, _) => Keep::Raw,
            (Self::Request, "object" | "oldObject") => Keep::Open(Self::Object),
            (Self::Request, _) => Keep::Raw,
            (Self::Object, "metadata") => Keep::Open(Self::Metadata),
            (Self::Object, "spec") => Keep::Open(Self::Spec),
            (Self::Object, _) => Keep::Drop,
            (Self::Metadata, _) => kept(reads.metadata),
            (Self::Spec, _) => kept(reads.spec),
        }
    }
}

struct Scan<'a> {
    body: &'a [u8],
    at: usize,
}

type Step<T> = Result<T, Stop>;

impl<'a> Scan<'a> {
    fn document(&mut self, reads: &Reads) -> Step<Outline<'a>> {
        self.space();
        if self.peek() != Some(b'{') {
            return Err(Stop::Unexpected);
        }
        let outline = self.map(Level::Review, 1, reads)?;
        self.space();
        if self.at != self.body.len() {
            return Err(Stop::Unexpected);
        }
        Ok(outline)
    }

    fn peek(&self) -> Option<u8> {
        self.body.get(self.at).copied()
    }

    fn space(&mut self) {
        while matches!(self.peek(), Some(b' ' | b'\n' | b'\r' | b'\t')) {
            self.at += 1;
        }
    }

    fn expect(&mut self, byte: u8) -> Step<()> {
        self.space();
        if self.peek() != Some(byte) {
            return Err(Stop::Unexpected);
        }
        self.at += 1;
        Ok(())
    }

    /// A map the scan opens, `self.at` on its `{`, which is the `depth`th
    /// open bracket.
    fn map(&mut self, level: Level, depth: usize, reads: &Reads) -> Step<Outline<'a>> {
        if depth > MAX_DEPTH {
            return Err(Stop::TooDeep);
        }
        self.at += 1;
        let mut members = Vec::new();
        self.space();
        if self.peek() == Some(b'}') {
            self.at += 1;
            return Ok(Outline::Map(members));
        }
        loop {
            self.space();
            if self.peek() != Some(b'"') {
                return Err(Stop::Unexpected);
            }
            let key_start = self.at;
            self.at = string_end(self.body, self.at + 1).ok_or(Stop::Unexpected)? + 1;
            let key = &self.body[key_start..self.at];
            self.expect(b':')?;
            self.space();
            let keep = level.keep(&key_text(key).ok_or(Stop::Unexpected)?, reads);
            match keep {
                Keep::Open(next) if self.peek() == Some(b'{') => {
                    let value = self.map(next, depth + 1, reads)?;
                    members.push(Member { key, value });
                }
                Keep::Open(_) | Keep::Raw => {
                    let start = self.at;
                    self.value(depth)?;
                    let value = Outline::Raw(&self.body[start..self.at]);
                    members.push(Member { key, value });
                }
                Keep::Drop => self.value(depth)?,
            }
            self.space();
            match self.peek() {
                Some(b',') => self.at += 1,
                Some(b'}') => {
                    self.at += 1;
                    return Ok(Outline::Map(members));
                }
                _ => return Err(Stop::Unexpected),
            }
        }
    }

    /// Steps over one value inside `depth` open brackets, leaving `self.at`
    /// just past it. Containers are crossed by counting brackets, strings
    /// by `memchr2`; scalars run to the next delimiter and are not read.
    fn value(&mut self, depth: usize) -> Step<()> {
        match self.peek() {
            Some(b'"') => {
                self.at = string_end(self.body, self.at + 1).ok_or(Stop::Unexpected)? + 1;
                Ok(())
            }
            Some(b'{' | b'[') => self.container(depth),
            Some(_) => {
                let rest = &self.body[self.at..];
                let len = rest
                    .iter()
                    .position(|b| matches!(b, b',' | b'}' | b']' | b' ' | b'\n' | b'\r' | b'\t'))
                    .unwrap_or(rest.len());
                if len == 0 {
                    return Err(Stop::Unexpected);
                }
                self.at += len;
                Ok(())
            }
            None => Err(Stop::Unexpected),
        }
    }

    /// A container opened at `self.at` inside `outer` open brackets. Each
    /// level's kind is a bit of `kinds` (1 = object), so a `]` closing a `{`
    /// is caught; `MAX_DEPTH` levels fit in the 128 bits.
    fn container(&mut self, outer: usize) -> Step<()> {
        let body = self.body;
        let mut kinds: u128 = 0;
        let mut open = 0usize;
        // A local cursor: the loop is the scan's hot path.
        let mut at = self.at;
        while let Some(&byte) = body.get(at) {
            match byte {
                b'"' => at = string_end(body, at + 1).ok_or(Stop::Unexpected)?,
                b'{' | b'[' => {
                    if outer + open + 1 > MAX_DEPTH {
                        return Err(Stop::TooDeep);
                    }
                    kinds = (kinds << 1) | u128::from(byte == b'{');
                    open += 1;
                }
                b'}' | b']' => {
                    if ((kinds & 1) == 1) != (byte == b'}') {
                        return Err(Stop::Unexpected);
                    }
                    kinds >>= 1;
                    open -= 1;
                    if open == 0 {
                        self.at = at + 1;
                        return Ok(());
                    }
                }
                _ => {}
            }
            at += 1;
        }
        Err(Stop::Unexpected)
    }
}

/// A key's text: borrowed when it has no escapes, else unescaped by
/// serde_json (so `"meta\u0064ata"` is `metadata`, as serde sees it).
fn key_text(quoted: &[u8]) -> Option<Cow<'_, str>> {
    let inner = &quoted[1..quoted.len() - 1];
    if !inner.contains(&b'\\') {
        return std::str::from_utf8(inner).ok().map(Cow::Borrowed);
    }
    serde_json::from_slice::<String>(quoted)
        .ok()
        .map(Cow::Owned)
}

/// Parses one kept slice with serde_json, as the whole-body decoder would
/// have parsed it in place, trailing text included.
fn raw<'a, T>(
    slice: &'a [u8],
    f: impl FnOnce(
        &mut serde_json::Deserializer<serde_json::de::SliceRead<'a>>,
    ) -> serde_json::Result<T>,
) -> serde_json::Result<T> {
    let mut de = serde_json::Deserializer::from_slice(slice);
    let value = f(&mut de)?;
    de.end()?;
    Ok(value)
}

struct Members<'a> {
    members: std::vec::IntoIter<Member<'a>>,
    value: Option<Outline<'a>>,
}

impl<'a> MapAccess<'a> for Members<'a> {
    type Error = serde_json::Error;

    fn next_key_seed<K: DeserializeSeed<'a>>(
        &mut self,
        seed: K,
    ) -> serde_json::Result<Option<K::Value>> {
        let Some(member) = self.members.next() else {
            return Ok(None);
        };
        self.value = Some(member.value);
        // A key without escapes is handed over as the text the scan already
        // delimited, not parsed a second time.
        let inner = &member.key[1..member.key.len() - 1];
        match std::str::from_utf8(inner) {
            Ok(text) if !inner.contains(&b'\\') => seed
                .deserialize(de::value::BorrowedStrDeserializer::new(text))
                .map(Some),
            _ => seed.deserialize(Outline::Raw(member.key)).map(Some),
        }
    }

    fn next_value_seed<V: DeserializeSeed<'a>>(&mut self, seed: V) -> serde_json::Result<V::Value> {
        match self.value.take() {
            Some(value) => seed.deserialize(value),
            None => Err(de::Error::custom("a map value was read before its key")),
        }
    }

    fn size_hint(&self) -> Option<usize> {
        Some(self.members.len())
    }
}

impl<'a> Outline<'a> {
    fn visit_map<V: Visitor<'a>>(
        members: Vec<Member<'a>>,
        visitor: V,
    ) -> serde_json::Result<V::Value> {
        visitor.visit_map(Members {
            members: members.into_iter(),
            value: None,
        })
    }
}

/// Each method parses a kept slice with serde_json's method of the same
/// name; an opened map is a map to every method but `Option`'s.
macro_rules! forward {
    ($($method:ident($($arg:ident: $ty:ty),*)),* $(,)?) => {
        $(
            fn $method<V: Visitor<'a>>(self, $($arg: $ty,)* visitor: V) -> serde_json::Result<V::Value> {
                match self {
                    Outline::Raw(slice) => raw(slice, |de| de.$method($($arg,)* visitor)),
                    Outline::Map(members) => Outline::visit_map(members, visitor),
                }
            }
        )*
    };
}

impl<'a> Deserializer<'a> for Outline<'a> {
    type Error = serde_json::Error;

    forward!(
        deserialize_any(),
        deserialize_bool(),
        deserialize_i8(),
        deserialize_i16(),
        deserialize_i32(),
        deserialize_i64(),
        deserialize_u8(),
        deserialize_u16(),
        deserialize_u32(),
        deserialize_u64(),
        deserialize_f32(),
        deserialize_f64(),
        deserialize_char(),
        deserialize_str(),
        deserialize_string(),
        deserialize_bytes(),
        deserialize_byte_buf(),
        deserialize_unit(),
        deserialize_unit_struct(name: &'static str),
        deserialize_newtype_struct(name: &'static str),
        deserialize_seq(),
        deserialize_tuple(len: usize),
        deserialize_tuple_struct(name: &'static str, len: usize),
        deserialize_map(),
        deserialize_struct(name: &'static str, fields: &'static [&'static str]),
        deserialize_enum(name: &'static str, variants: &'static [&'static str]),
        deserialize_identifier(),
        deserialize_ignored_any(),
    );

    fn deserialize_option<V: Visitor<'a>>(self, visitor: V) -> serde_json::Result<V::Value> {
        match self {
            Outline::Raw(slice) => raw(slice, |de| de.deserialize_option(visitor)),
            map @ Outline::Map(_) => visitor.visit_some(map),
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    const READS: Reads = Reads {
        metadata: &["name", "labels"],
        spec: &["sourceRef"],
    };

    fn kept(outline: &Outline<'_>) -> String {
        match outline {
            Outline::Raw(slice) => String::from_utf8_lossy(slice).into_owned(),
            Outline::Map(members) => {
                let inner: Vec<String> = members
                    .iter()
                    .map(|m| format!("{}:{}", String::from_utf8_lossy(m.key), kept(&m.value)))
                    .collect();
                format!("{{{}}}", inner.join(","))
            }
        }
    }

    fn outlined(body: &str) -> String {
        let outline = outline(body.as_bytes(), &READS)
            .expect("not too deep")
            .expect("outlined");
        kept(&outline)
    }

    #[test]
    fn the_scan_keeps_only_what_the_views_read() {
        let body = r#"{"apiVersion":"v","request":{"uid":"u","object":{"kind":"K","metadata":{"name":"n",
            "managedFields":[{"f:spec":{}}],"labels":{"a":"b"}},"spec":{"template":{"x":[1,2,{"y":"}"}]},
            "sourceRef":{"kind":"GitRepository"}},"status":{"s":1}},"oldObject":null,"options":{"k":true}}}"#;
        assert_eq!(
            outlined(body),
            r#"{"apiVersion":"v","request":{"uid":"u","object":{"metadata":{"name":"n","labels":{"a":"b"}},"spec":{"sourceRef":{"kind":"GitRepository"}}},"oldObject":null,"options":{"k":true}}}"#
        );
    }

    #[test]
    fn an_escaped_key_is_read_as_serde_reads_it() {
        let body = r#"{"request":{"object":{"meta\u0064ata":{"name":"n","x":1}}}}"#;
        assert_eq!(
            outlined(body),
            r#"{"request":{"object":{"meta\u0064ata":{"name":"n"}}}}"#
        );
    }

    #[test]
    fn nesting_past_the_limit_is_too_deep_even_where_nothing_is_read() {
        let nested = |n: usize| format!("{}{}", "[".repeat(n), "]".repeat(n));
        // The review, request, object and spec maps are four levels.
        let at = |n: usize| {
            format!(
                r#"{{"request":{{"object":{{"spec":{{"template":{}}}}}}}}}"#,
                nested(n)
            )
        };
        assert!(outline(at(MAX_DEPTH - 4).as_bytes(), &READS).is_ok());
        assert_eq!(
            outline(at(MAX_DEPTH - 3).as_bytes(), &READS).err(),
            Some(TooDeep)
        );
        let flat = format!(r#"{{"kind":{}}}"#, nested(MAX_DEPTH));
        assert_eq!(outline(flat.as_bytes(), &READS).err(), Some(TooDeep));
    }

    #[test]
    fn what_the_scan_does_not_expect_is_left_to_the_whole_body_decoder() {
        for body in [
            "",
            "[]",
            r#"{"a":1"#,
            r#"{"a":[1}"#,
            r#"{"a":{"b":"unterminated}}"#,
            r#"{"a" 1}"#,
            r#"{"a":1} trailing"#,
            r#"{"a":}"#,
        ] {
            assert!(
                matches!(outline(body.as_bytes(), &READS), Ok(None)),
                "{body}"
            );
        }
    }
}
