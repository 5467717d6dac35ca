//! Where a review's images are: the pod spec of a Pod, of every workload
//! template and of a CronJob's job template, decoded as a typed partial
//! view (everything but containers, pull secrets and service account is
//! skipped by the parser).

use std::borrow::Cow;

use serde::{Deserialize, Deserializer};

use crate::admission::review::{GroupVersionKind, Operation};

/// The part of a review the pinning reads. Its header fields repeat
/// `admission::review::Request`'s on purpose: a shared struct under
/// `#[serde(flatten)]` would make serde buffer the request into owned
/// values, and both decoders borrow from the body (the review bench's
/// decode stage is most of a review's cost).
#[derive(Debug, Deserialize)]
#[serde(rename_all = "camelCase")]
pub struct PinRequest<'a> {
    #[serde(borrow, default)]
    pub uid: Cow<'a, str>,
    #[serde(borrow, default)]
    pub kind: GroupVersionKind<'a>,
    #[serde(borrow, default)]
    pub sub_resource: Option<Cow<'a, str>>,
    #[serde(borrow, default)]
    pub name: Cow<'a, str>,
    #[serde(borrow, default)]
    pub namespace: Option<Cow<'a, str>>,
    pub operation: Operation,
    #[serde(default)]
    pub dry_run: bool,
    #[serde(borrow, default)]
    pub object: Option<Workload<'a>>,
    #[serde(borrow, default)]
    pub old_object: Option<Workload<'a>>,
}

impl<'a> crate::admission::review::ReviewRequest<'a> for PinRequest<'a> {
    fn uid(&self) -> &str {
        &self.uid
    }
}

impl PinRequest<'_> {
    pub fn namespace(&self) -> &str {
        self.namespace.as_deref().unwrap_or("")
    }

    pub fn sub_resource(&self) -> &str {
        self.sub_resource.as_deref().unwrap_or("")
    }
}

/// An object reduced to the places a pod spec can be.
#[derive(Debug, Default, Deserialize)]
pub struct Workload<'a> {
    #[serde(borrow, default)]
    spec: Option<SpecView<'a>>,
    #[serde(borrow, default)]
    template: Option<Template<'a>>,
}

/// A Pod's spec or a workload's spec: the union of the fields read from both.
#[derive(Debug, Default, Deserialize)]
#[serde(rename_all = "camelCase")]
pub struct SpecView<'a> {
    #[serde(borrow, default, deserialize_with = "nullable")]
    pub containers: Vec<Container<'a>>,
    #[serde(borrow, default, deserialize_with = "nullable")]
    pub init_containers: Vec<Container<'a>>,
    #[serde(borrow, default, deserialize_with = "nullable")]
    pub ephemeral_containers: Vec<Container<'a>>,
    #[serde(borrow, default, deserialize_with = "nullable")]
    pub image_pull_secrets: Vec<LocalRef<'a>>,
    #[serde(borrow, default)]
    pub service_account_name: Option<Cow<'a, str>>,
    #[serde(borrow, default)]
    template: Option<Template<'a>>,
    #[serde(borrow, default)]
    job_template: Option<JobTemplate<'a>>,
}

#[derive(Debug, Default, Deserialize)]
struct Template<'a> {
    #[serde(borrow, default)]
    spec: Option<Box<SpecView<'a>>>,
}

#[derive(Debug, Default, Deserialize)]
struct JobTemplate<'a> {
    #[serde(borrow, default)]
    spec: Option<JobSpec<'a>>,
}

#[derive(Debug, Default, Deserialize)]
struct JobSpec<'a> {
    #[serde(borrow, default)]
    template: Option<Template<'a>>,
}

#[derive(Debug, Default, Deserialize)]
pub struct Container<'a> {
    #[serde(borrow, default)]
    pub name: Cow<'a, str>,
    #[serde(borrow, default)]
    pub image: Option<Cow<'a, str>>,
}

#[derive(Debug, Default, Deserialize)]
pub struct LocalRef<'a> {
    #[serde(borrow, default)]
    pub name: Cow<'a, str>,
}

fn nullable<'de, D, T>(d: D) -> Result<Vec<T>, D::Error>
where
    D: Deserializer<'de>,
    T: Deserialize<'de>,
{
    Ok(Option::<Vec<T>>::deserialize(d)?.unwrap_or_default())
}

/// What kind of object carries the pod spec: Pods are running things, whose
/// unchanged images must not be touched; templates are blueprints.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Carrier {
    Pod,
    Template,
}

/// The pod spec of a `kind` and its JSON pointer, or None for kinds without one.
pub fn pod_spec<'w, 'a>(
    kind: &GroupVersionKind<'_>,
    object: &'w Workload<'a>,
) -> Option<(&'static str, Carrier, &'w SpecView<'a>)> {
    let spec = object.spec.as_ref();
    let template = |t: Option<&'w Template<'a>>| t.and_then(|t| t.spec.as_deref());
    match (kind.group.as_ref(), kind.kind.as_ref()) {
        ("", "Pod") => Some(("/spec", Carrier::Pod, spec?)),
        ("", "PodTemplate") => Some((
            "/template/spec",
            Carrier::Template,
            template(object.template.as_ref())?,
        )),
        ("apps", "Deployment" | "StatefulSet" | "DaemonSet" | "ReplicaSet")
        | ("", "ReplicationController")
        | ("batch", "Job") => Some((
            "/spec/template/spec",
            Carrier::Template,
            template(spec?.template.as_ref())?,
        )),
        ("batch", "CronJob") => {
            let job = spec?.job_template.as_ref()?.spec.as_ref()?;
            Some((
                "/spec/jobTemplate/spec/template/spec",
                Carrier::Template,
                template(job.template.as_ref())?,
            ))
        }
        _ => None,
    }
}

/// The three container lists of a pod spec, with their field names.
pub fn container_lists<'s, 'a>(spec: &'s SpecView<'a>) -> [(&'static str, &'s [Container<'a>]); 3] {
    [
        ("containers", &spec.containers),
        ("initContainers", &spec.init_containers),
        ("ephemeralContainers", &spec.ephemeral_containers),
    ]
}

/// The review body decoded for pinning, sharing the envelope checks with
/// the validating path.
pub fn decode(body: &[u8]) -> Result<PinRequest<'_>, crate::admission::review::DecodeError> {
    crate::admission::review::decode_as(body)
}

/// Whether this request is an UPDATE the pinning should treat as such.
pub fn is_update(req: &PinRequest<'_>) -> bool {
    req.operation == Operation::Update && req.old_object.is_some()
}
