//! The few `spec` fields of Flux objects the tenant rules read. Decoded for
//! every object (the visitor compares top-level keys and skips the rest), so
//! a Deployment's spec costs what skipping it did.

use std::{borrow::Cow, fmt};

use serde::{
    Deserialize, Deserializer,
    de::{IgnoredAny, MapAccess, SeqAccess, Visitor},
};

use super::object::CowStr;

/// `spec.sourceRef`, `spec.chartRef`, `spec.chart.spec.sourceRef`.
#[derive(Debug, Clone, Default, PartialEq, Eq, Deserialize)]
pub struct RefView<'a> {
    #[serde(borrow, default)]
    pub kind: Cow<'a, str>,
    #[serde(borrow, default)]
    pub name: Cow<'a, str>,
    #[serde(borrow, default)]
    pub namespace: Option<Cow<'a, str>>,
}

#[derive(Debug, Clone, Default, PartialEq, Eq)]
pub struct SpecView<'a> {
    pub service_account_name: Option<Cow<'a, str>>,
    pub source_ref: Option<RefView<'a>>,
    pub chart_ref: Option<RefView<'a>>,
    /// HelmRelease `spec.chart.spec.sourceRef`.
    pub chart_source_ref: Option<RefView<'a>>,
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
    Ok(map.next_value::<Option<CowStr<'de>>>()?.map(|s| s.0))
}

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
                        "sourceRef" => spec.source_ref = map.next_value()?,
                        "chartRef" => spec.chart_ref = map.next_value()?,
                        "chart" => {
                            let chart: Option<ChartView<'a>> = map.next_value()?;
                            spec.chart_source_ref = chart.and_then(|c| c.0);
                        }
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
            fn visit_seq<A: SeqAccess<'de>>(self, mut seq: A) -> Result<Self::Value, A::Error> {
                while seq.next_element::<IgnoredAny>()?.is_some() {}
                Ok(SpecView::default())
            }
            fn visit_str<E>(self, _: &str) -> Result<Self::Value, E> {
                Ok(SpecView::default())
            }
            fn visit_bool<E>(self, _: bool) -> Result<Self::Value, E> {
                Ok(SpecView::default())
            }
            fn visit_i64<E>(self, _: i64) -> Result<Self::Value, E> {
                Ok(SpecView::default())
            }
            fn visit_u64<E>(self, _: u64) -> Result<Self::Value, E> {
                Ok(SpecView::default())
            }
            fn visit_f64<E>(self, _: f64) -> Result<Self::Value, E> {
                Ok(SpecView::default())
            }
            fn visit_unit<E>(self) -> Result<Self::Value, E> {
                Ok(SpecView::default())
            }
        }
        d.deserialize_any(V(std::marker::PhantomData))
    }
}

/// `spec.chart` of a HelmRelease, reduced to `spec.sourceRef`.
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
                        found = map.next_value::<Option<ChartSpec<'a>>>()?.and_then(|s| s.0);
                    } else {
                        map.next_value::<IgnoredAny>()?;
                    }
                    Ok(())
                })?;
                Ok(ChartView(found))
            }
        }
        d.deserialize_map(Outer(std::marker::PhantomData))
    }
}

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
                        found = map.next_value()?;
                    } else {
                        map.next_value::<IgnoredAny>()?;
                    }
                    Ok(())
                })?;
                Ok(ChartSpec(found))
            }
        }
        d.deserialize_map(Inner(std::marker::PhantomData))
    }
}
