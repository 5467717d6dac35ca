//! An object reduced to the metadata the guard reads.
//!
//! Everything else (spec, status, data, managedFields) is either set aside
//! unparsed by the one-pass decoder (`super::skim`, which also bounds its
//! nesting) or, on the whole-body path, skipped while parsing with serde's
//! `IgnoredAny` (serde_json's fast path: no string is unescaped, no number
//! parsed), after `super::depth` bounded nesting. Strings borrow from the
//! request body when they hold no escapes.

use std::{borrow::Cow, collections::BTreeMap, fmt};

use super::spec::SpecView;

use serde::{
    Deserialize, Deserializer,
    de::{IgnoredAny, MapAccess, Visitor},
};

pub type StrMap<'a> = BTreeMap<Cow<'a, str>, Cow<'a, str>>;

/// An object: its metadata and the few spec fields of Flux objects
/// (`super::spec`), with every other field skipped.
#[derive(Debug, Clone, Default)]
pub struct ObjectView<'a> {
    pub metadata: Metadata<'a>,
    pub spec: SpecView<'a>,
}

/// The members of `metadata` that [`Metadata`] reads; the one-pass decoder
/// (`super::skim`) sets the others (managedFields above all) aside. A field
/// added to `Metadata` must be added here, or it reads as absent: the
/// review tests that decode every field both ways catch it.
pub const METADATA_READS: &[&str] = &["name", "labels", "annotations", "ownerReferences"];

#[derive(Debug, Clone, Default, Deserialize)]
#[serde(rename_all = "camelCase")]
pub struct Metadata<'a> {
    #[serde(borrow, default)]
    pub name: Cow<'a, str>,
    #[serde(borrow, default, deserialize_with = "nullable_map")]
    pub labels: StrMap<'a>,
    #[serde(borrow, default, deserialize_with = "nullable_map")]
    pub annotations: StrMap<'a>,
    #[serde(borrow, default, deserialize_with = "nullable_refs")]
    pub owner_references: Vec<OwnerReference<'a>>,
}

#[derive(Debug, Clone, Default, Deserialize)]
#[serde(rename_all = "camelCase")]
pub struct OwnerReference<'a> {
    #[serde(borrow, default)]
    pub api_version: Cow<'a, str>,
    #[serde(borrow, default)]
    pub kind: Cow<'a, str>,
    #[serde(borrow, default)]
    pub name: Cow<'a, str>,
    #[serde(borrow, default)]
    pub uid: Cow<'a, str>,
    #[serde(default)]
    pub controller: Option<bool>,
}

impl<'a> Metadata<'a> {
    /// True when another object is this object's controller (it is derived,
    /// e.g. an EndpointSlice copying its Service's labels).
    pub fn has_controller(&self) -> bool {
        self.controller().is_some()
    }

    /// The reference to this object's controller, if it has one.
    pub fn controller(&self) -> Option<&OwnerReference<'a>> {
        self.owner_references
            .iter()
            .find(|r| r.controller == Some(true))
    }
}

impl<'de: 'a, 'a> Deserialize<'de> for ObjectView<'a> {
    fn deserialize<D: Deserializer<'de>>(d: D) -> Result<Self, D::Error> {
        struct ObjectVisitor<'a>(std::marker::PhantomData<&'a ()>);
        impl<'de: 'a, 'a> Visitor<'de> for ObjectVisitor<'a> {
            type Value = ObjectView<'a>;
            fn expecting(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
                f.write_str("a Kubernetes object")
            }
            fn visit_map<A: MapAccess<'de>>(self, mut map: A) -> Result<Self::Value, A::Error> {
                let mut view = ObjectView::default();
                while let Some(key) = map.next_key::<CowStr<'de>>()? {
                    if key.0 == "metadata" {
                        view.metadata = map
                            .next_value::<Option<Metadata<'a>>>()?
                            .unwrap_or_default();
                    } else if key.0 == "spec" {
                        view.spec = map
                            .next_value::<Option<SpecView<'a>>>()?
                            .unwrap_or_default();
                    } else {
                        map.next_value::<IgnoredAny>()?;
                    }
                }
                Ok(view)
            }
        }
        d.deserialize_map(ObjectVisitor(std::marker::PhantomData))
    }
}

/// A string that borrows from the input when it can (serde only borrows
/// `Cow<str>` fields directly, not inside maps).
#[derive(PartialEq, Eq, PartialOrd, Ord)]
pub(super) struct CowStr<'a>(pub(super) Cow<'a, str>);

impl<'de: 'a, 'a> Deserialize<'de> for CowStr<'a> {
    fn deserialize<D: Deserializer<'de>>(d: D) -> Result<Self, D::Error> {
        struct V<'a>(std::marker::PhantomData<&'a ()>);
        impl<'de: 'a, 'a> Visitor<'de> for V<'a> {
            type Value = CowStr<'a>;
            fn expecting(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
                f.write_str("a string")
            }
            fn visit_borrowed_str<E>(self, v: &'de str) -> Result<Self::Value, E> {
                Ok(CowStr(Cow::Borrowed(v)))
            }
            fn visit_str<E>(self, v: &str) -> Result<Self::Value, E> {
                Ok(CowStr(Cow::Owned(v.to_owned())))
            }
        }
        d.deserialize_str(V(std::marker::PhantomData))
    }
}

fn nullable_map<'de: 'a, 'a, D: Deserializer<'de>>(d: D) -> Result<StrMap<'a>, D::Error> {
    let pairs = Option::<BTreeMap<CowStr<'a>, CowStr<'a>>>::deserialize(d)?;
    Ok(pairs
        .into_iter()
        .flatten()
        .map(|(k, v)| (k.0, v.0))
        .collect())
}

fn nullable_refs<'de: 'a, 'a, D: Deserializer<'de>>(
    d: D,
) -> Result<Vec<OwnerReference<'a>>, D::Error> {
    Ok(Option::<Vec<OwnerReference<'a>>>::deserialize(d)?.unwrap_or_default())
}

/// `userInfo.extra`: a map of string lists, null or absent as empty.
pub type ExtraMap<'a> = BTreeMap<Cow<'a, str>, Vec<Cow<'a, str>>>;

pub(super) fn nullable_extra<'de: 'a, 'a, D: Deserializer<'de>>(
    d: D,
) -> Result<ExtraMap<'a>, D::Error> {
    let pairs = Option::<BTreeMap<CowStr<'a>, Option<Vec<CowStr<'a>>>>>::deserialize(d)?;
    Ok(pairs
        .into_iter()
        .flatten()
        .map(|(k, v)| (k.0, v.into_iter().flatten().map(|s| s.0).collect()))
        .collect())
}
