//! The few `spec` fields of Flux objects the tenant rules read. Decoded for
//! every object (the visitor compares top-level keys and skips the rest), so
//! a Deployment's spec costs what skipping it did.
//!
//! Decoding never fails on a valid object: the decoder does not know the
//! object's kind, and other kinds use the same field names with other
//! shapes (helm-controller's HelmChart has a string `spec.chart`), so a
//! field of an unexpected shape is skipped and reads as absent. The tenant
//! rules read these fields only for the Flux kinds they know.

use std::{borrow::Cow, fmt};

use serde::{
    Deserialize, Deserializer,
    de::{IgnoredAny, MapAccess, SeqAccess, Visitor},
};

use super::object::CowStr;

/// The visitor methods for every shape but a map (or a string, where
/// `text` is given): the value is skipped and reads as the default.
macro_rules! other_shapes_read_as_default {
    () => {
        fn visit_seq<A: SeqAccess<'de>>(self, mut seq: A) -> Result<Self::Value, A::Error> {
            while seq.next_element::<IgnoredAny>()?.is_some() {}
            Ok(Default::default())
        }
        fn visit_bool<E>(self, _: bool) -> Result<Self::Value, E> {
            Ok(Default::default())
        }
        fn visit_i64<E>(self, _: i64) -> Result<Self::Value, E> {
            Ok(Default::default())
        }
        fn visit_u64<E>(self, _: u64) -> Result<Self::Value, E> {
            Ok(Default::default())
        }
        fn visit_f64<E>(self, _: f64) -> Result<Self::Value, E> {
            Ok(Default::default())
        }
        fn visit_unit<E>(self) -> Result<Self::Value, E> {
            Ok(Default::default())
        }
        fn visit_none<E>(self) -> Result<Self::Value, E> {
            Ok(Default::default())
        }
    };
    (text) => {
        other_shapes_read_as_default!();
        fn visit_str<E>(self, _: &str) -> Result<Self::Value, E> {
            Ok(Default::default())
        }
    };
}

/// A string, or absent when the value has another shape.
#[derive(Default)]
struct Text<'a>(Option<Cow<'a, str>>);

impl<'de: 'a, 'a> Deserialize<'de> for Text<'a> {
    fn deserialize<D: Deserializer<'de>>(d: D) -> Result<Self, D::Error> {
        struct V<'a>(std::marker::PhantomData<&'a ()>);
        impl<'de: 'a, 'a> Visitor<'de> for V<'a> {
            type Value = Text<'a>;
            fn expecting(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
                f.write_str("a string")
            }
            fn visit_borrowed_str<E>(self, v: &'de str) -> Result<Self::Value, E> {
                Ok(Text(Some(Cow::Borrowed(v))))
            }
            fn visit_str<E>(self, v: &str) -> Result<Self::Value, E> {
                Ok(Text(Some(Cow::Owned(v.to_owned()))))
            }
            fn visit_map<A: MapAccess<'de>>(self, mut map: A) -> Result<Self::Value, A::Error> {
                while map.next_entry::<IgnoredAny, IgnoredAny>()?.is_some() {}
                Ok(Text(None))
            }
            other_shapes_read_as_default!();
        }
        d.deserialize_any(V(std::marker::PhantomData))
    }
}

/// `spec.sourceRef`, `spec.chartRef`, `spec.chart.spec.sourceRef`.
#[derive(Debug, Clone, Default, PartialEq, Eq)]
pub struct RefView<'a> {
    pub kind: Cow<'a, str>,
    pub name: Cow<'a, str>,
    pub namespace: Option<Cow<'a, str>>,
}

/// A reference, or absent when the value is not a map.
#[derive(Default)]
struct MaybeRef<'a>(Option<RefView<'a>>);

impl<'de: 'a, 'a> Deserialize<'de> for MaybeRef<'a> {
    fn deserialize<D: Deserializer<'de>>(d: D) -> Result<Self, D::Error> {
        struct V<'a>(std::marker::PhantomData<&'a ()>);
        impl<'de: 'a, 'a> Visitor<'de> for V<'a> {
            type Value = MaybeRef<'a>;
            fn expecting(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
                f.write_str("an object reference")
            }
            fn visit_map<A: MapAccess<'de>>(self, map: A) -> Result<Self::Value, A::Error> {
                let mut r = RefView::default();
                visit_fields(map, |key, map| {
                    let value = map.next_value::<Text<'a>>()?.0;
                    match key {
                        "kind" => r.kind = value.unwrap_or_default(),
                        "name" => r.name = value.unwrap_or_default(),
                        "namespace" => r.namespace = value,
                        _ => {}
                    }
                    Ok(())
                })?;
                Ok(MaybeRef(Some(r)))
            }
            other_shapes_read_as_default!(text);
        }
        d.deserialize_any(V(std::marker::PhantomData))
    }
}

#[derive(Debug, Clone, Default, PartialEq, Eq)]
pub struct SpecView<'a> {
    pub service_account_name: Option<Cow<'a, str>>,
    pub source_ref: Option<RefView<'a>>,
    pub chart_ref: Option<RefView<'a>>,
    /// HelmRelease `spec.chart.spec.sourceRef`.
    pub chart_source_ref: Option<RefView<'a>>,
    /// ImagePolicy `spec.imageRepositoryRef`.
    pub image_repository_ref: Option<RefView<'a>>,
    pub target_namespace: Option<Cow<'a, str>>,
    pub storage_namespace: Option<Cow<'a, str>>,
    /// `spec.kubeConfig` is present and not null.
    pub kube_config: bool,
}

impl<'a> SpecView<'a> {
    /// Every cross-object reference, with the field path it came from.
    pub fn references(&self) -> impl Iterator<Item = (&'static str, &RefView<'a>)> {
        [
            ("spec.sourceRef", self.source_ref.as_ref()),
            ("spec.chartRef", self.chart_ref.as_ref()),
            ("spec.chart.spec.sourceRef", self.chart_source_ref.as_ref()),
            (
                "spec.imageRepositoryRef",
                self.image_repository_ref.as_ref(),
            ),
        ]
        .into_iter()
        .filter_map(|(path, r)| Some((path, r?)))
    }
}

/// Reads one map, handing each key to `field`, which consumes its value.
fn visit_fields<'de, A, F>(mut map: A, mut field: F) -> Result<(), A::Error>
where
    A: MapAccess<'de>,
    F: FnMut(&str, &mut A) -> Result<(), A::Error>,
{
    while let Some(key) = map.next_key::<CowStr<'de>>()? {
        field(&key.0, &mut map)?;
    }
    Ok(())
}

fn text<'de: 'a, 'a, A: MapAccess<'de>>(map: &mut A) -> Result<Option<Cow<'a, str>>, A::Error> {
    Ok(map.next_value::<Text<'a>>()?.0)
}

/// The members of `spec` that [`SpecView`] reads (its visitor's arms); the
/// one-pass decoder (`super::skim`) sets the others aside. An arm added to
/// the visitor must be added here, or it reads as absent: the review tests
/// that decode every field both ways catch it.
pub const READS: &[&str] = &[
    "serviceAccountName",
    "sourceRef",
    "chartRef",
    "imageRepositoryRef",
    "chart",
    "targetNamespace",
    "storageNamespace",
    "kubeConfig",
];

impl<'de: 'a, 'a> Deserialize<'de> for SpecView<'a> {
    fn deserialize<D: Deserializer<'de>>(d: D) -> Result<Self, D::Error> {
        struct V<'a>(std::marker::PhantomData<&'a ()>);
        impl<'de: 'a, 'a> Visitor<'de> for V<'a> {
            type Value = SpecView<'a>;
            fn expecting(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
                f.write_str("an object spec")
            }
            fn visit_map<A: MapAccess<'de>>(self, map: A) -> Result<Self::Value, A::Error> {
                let mut spec = SpecView::default();
                visit_fields(map, |key, map| {
                    match key {
                        "serviceAccountName" => spec.service_account_name = text(map)?,
                        "sourceRef" => spec.source_ref = map.next_value::<MaybeRef<'a>>()?.0,
                        "chartRef" => spec.chart_ref = map.next_value::<MaybeRef<'a>>()?.0,
                        "imageRepositoryRef" => {
                            spec.image_repository_ref = map.next_value::<MaybeRef<'a>>()?.0
                        }
                        "chart" => spec.chart_source_ref = map.next_value::<ChartView<'a>>()?.0,
                        "targetNamespace" => spec.target_namespace = text(map)?,
                        "storageNamespace" => spec.storage_namespace = text(map)?,
                        "kubeConfig" => {
                            let value: Option<IgnoredAny> = map.next_value()?;
                            spec.kube_config = value.is_some();
                        }
                        _ => {
                            map.next_value::<IgnoredAny>()?;
                        }
                    }
                    Ok(())
                })?;
                Ok(spec)
            }
            // A spec that is not a map (a schemaless custom resource) has
            // nothing for the tenant rules; skip it like any other field.
            other_shapes_read_as_default!(text);
        }
        d.deserialize_any(V(std::marker::PhantomData))
    }
}

/// `spec.chart` of a HelmRelease, reduced to `spec.sourceRef`.
#[derive(Default)]
struct ChartView<'a>(Option<RefView<'a>>);

impl<'de: 'a, 'a> Deserialize<'de> for ChartView<'a> {
    fn deserialize<D: Deserializer<'de>>(d: D) -> Result<Self, D::Error> {
        struct Outer<'a>(std::marker::PhantomData<&'a ()>);
        impl<'de: 'a, 'a> Visitor<'de> for Outer<'a> {
            type Value = ChartView<'a>;
            fn expecting(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
                f.write_str("a HelmRelease chart")
            }
            fn visit_map<A: MapAccess<'de>>(self, map: A) -> Result<Self::Value, A::Error> {
                let mut found = None;
                visit_fields(map, |key, map| {
                    if key == "spec" {
                        found = map.next_value::<ChartSpec<'a>>()?.0;
                    } else {
                        map.next_value::<IgnoredAny>()?;
                    }
                    Ok(())
                })?;
                Ok(ChartView(found))
            }
            other_shapes_read_as_default!(text);
        }
        d.deserialize_any(Outer(std::marker::PhantomData))
    }
}

#[derive(Default)]
struct ChartSpec<'a>(Option<RefView<'a>>);

impl<'de: 'a, 'a> Deserialize<'de> for ChartSpec<'a> {
    fn deserialize<D: Deserializer<'de>>(d: D) -> Result<Self, D::Error> {
        struct Inner<'a>(std::marker::PhantomData<&'a ()>);
        impl<'de: 'a, 'a> Visitor<'de> for Inner<'a> {
            type Value = ChartSpec<'a>;
            fn expecting(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
                f.write_str("a HelmRelease chart spec")
            }
            fn visit_map<A: MapAccess<'de>>(self, map: A) -> Result<Self::Value, A::Error> {
                let mut found = None;
                visit_fields(map, |key, map| {
                    if key == "sourceRef" {
                        found = map.next_value::<MaybeRef<'a>>()?.0;
                    } else {
                        map.next_value::<IgnoredAny>()?;
                    }
                    Ok(())
                })?;
                Ok(ChartSpec(found))
            }
            other_shapes_read_as_default!(text);
        }
        d.deserialize_any(Inner(std::marker::PhantomData))
    }
}

#[cfg(test)]
mod tests {
    use serde_json::{Value, json};

    use crate::admission::review::decode;

    /// A small deterministic generator: JSON values of every shape.
    struct Gen(u64);

    impl Gen {
        fn next(&mut self) -> u64 {
            self.0 ^= self.0 << 13;
            self.0 ^= self.0 >> 7;
            self.0 ^= self.0 << 17;
            self.0
        }

        fn value(&mut self, depth: u32) -> Value {
            const KEYS: [&str; 10] = [
                "chart",
                "spec",
                "sourceRef",
                "chartRef",
                "kind",
                "name",
                "namespace",
                "serviceAccountName",
                "targetNamespace",
                "kubeConfig",
            ];
            match self.next() % if depth == 0 { 5 } else { 7 } {
                0 => Value::Null,
                1 => json!(self.next().is_multiple_of(2)),
                2 => json!(self.next() % 1000),
                3 => json!(-1.5),
                4 => json!(KEYS[(self.next() % 10) as usize]),
                5 => (0..self.next() % 4)
                    .map(|_| self.value(depth - 1))
                    .collect(),
                _ => (0..self.next() % 5)
                    .map(|_| {
                        let key = KEYS[(self.next() % 10) as usize].to_owned();
                        (key, self.value(depth - 1))
                    })
                    .collect::<serde_json::Map<_, _>>()
                    .into(),
            }
        }
    }

    fn review(spec: &Value) -> Vec<u8> {
        let object = json!({"metadata": {"name": "x", "labels": {
            "helm.toolkit.fluxcd.io/name": "podinfo", "helm.toolkit.fluxcd.io/namespace": "apps"}},
            "spec": spec});
        let review = json!({"apiVersion": "admission.k8s.io/v1", "request": {
            "uid": "u", "operation": "UPDATE", "object": object, "oldObject": object}});
        serde_json::to_vec(&review).unwrap_or_default()
    }

    #[test]
    fn helm_controllers_helm_chart_with_a_string_chart_decodes() {
        let spec = json!({"chart": "podinfo", "version": "6.x", "interval": "5m",
            "sourceRef": {"kind": "HelmRepository", "name": "podinfo"}});
        let body = review(&spec);
        let req = decode(&body).expect("a HelmChart decodes");
        let view = &req.object.expect("object").spec;
        assert_eq!(view.chart_source_ref, None);
        assert_eq!(
            view.source_ref.as_ref().map(|r| r.name.as_ref()),
            Some("podinfo")
        );
    }

    #[test]
    fn owned_objects_with_any_spec_shape_decode() {
        let mut generator = Gen(0x9e37_79b9_7f4a_7c15);
        for _ in 0..5_000 {
            let spec = generator.value(5);
            let body = review(&spec);
            if let Err(e) = decode(&body) {
                panic!("spec {spec} did not decode: {e}");
            }
        }
    }
}
