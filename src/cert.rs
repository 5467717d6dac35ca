//! Backend of `gitops-guard cert`: a throwaway CA and a serving certificate
//! for the webhook Service, written in the layout of a `kubernetes.io/tls`
//! Secret (`tls.crt`, `tls.key`) plus the `ca.crt` that goes into `caBundle`.

use std::fs::{self, OpenOptions};
use std::io::Write;
use std::net::IpAddr;
use std::path::{Path, PathBuf};

use base64::Engine;
use rcgen::{
    BasicConstraints, CertificateParams, CertifiedIssuer, DistinguishedName, DnType,
    ExtendedKeyUsagePurpose, IsCa, Issuer, KeyPair, KeyUsagePurpose, PKCS_ECDSA_P256_SHA256,
    PublicKeyData, SanType,
};
use time::{Duration, OffsetDateTime};

/// Errors of certificate generation and writing.
#[derive(Debug, thiserror::Error)]
pub enum CertError {
    #[error("invalid certificate request: {0}")]
    InvalidRequest(&'static str),
    #[error("invalid DNS name {name:?}: {source}")]
    InvalidDnsName { name: String, source: rcgen::Error },
    #[error("CA {what}: {reason}")]
    InvalidCa { what: &'static str, reason: String },
    #[error("generating certificate: {0}")]
    Generate(#[from] rcgen::Error),
    #[error("writing {}: {source}", path.display())]
    Write {
        path: PathBuf,
        source: std::io::Error,
    },
}

pub type Result<T, E = CertError> = std::result::Result<T, E>;

/// What to issue a serving certificate for.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct CertRequest {
    /// Name of the webhook Service.
    pub service: String,
    /// Namespace of the webhook Service.
    pub namespace: String,
    /// Extra DNS names besides the in-cluster Service names.
    pub dns: Vec<String>,
    /// Extra IP addresses (e.g. for a webhook reached by URL during development).
    pub ips: Vec<IpAddr>,
    /// Validity of both the CA and the serving certificate.
    pub validity_days: u32,
}

/// PEM-encoded output of [`generate`].
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Bundle {
    /// The self-signed CA; goes into the webhook configuration's `caBundle`.
    pub ca_pem: String,
    /// The serving certificate, signed by the CA.
    pub cert_pem: String,
    /// The serving certificate's PKCS#8 private key.
    pub key_pem: String,
    /// The CA's private key when the CA was made here; `None` when an
    /// existing CA signed (its key stays where it was).
    pub ca_key_pem: Option<String>,
}

/// Not-before is backdated so that a slightly slow apiserver clock accepts
/// the certificate at once.
const CLOCK_SKEW: Duration = Duration::hours(1);

/// Generates a fresh CA and a serving certificate for the request.
pub fn generate(req: &CertRequest) -> Result<Bundle> {
    validate(req)?;
    let now = OffsetDateTime::now_utc();
    let window = (
        now - CLOCK_SKEW,
        now + Duration::days(i64::from(req.validity_days)),
    );
    let ca_key = KeyPair::generate_for(&PKCS_ECDSA_P256_SHA256)?;
    let ca = CertifiedIssuer::self_signed(ca_params(req, window), ca_key)?;
    let key = KeyPair::generate_for(&PKCS_ECDSA_P256_SHA256)?;
    let cert = leaf_params(req, window)?.signed_by(&key, &*ca)?;
    Ok(Bundle {
        ca_pem: ca.pem(),
        cert_pem: cert.pem(),
        key_pem: key.serialize_pem(),
        ca_key_pem: Some(ca.key().serialize_pem()),
    })
}

/// An existing CA, PEM encoded, to sign a new serving certificate with.
#[derive(Debug, Clone, Copy)]
pub struct Ca<'a> {
    pub cert_pem: &'a str,
    pub key_pem: &'a str,
}

/// Issues a new serving certificate signed by an existing CA: a leaf
/// rotation that leaves `caBundle` alone. The bundle's `ca_pem` is that CA.
pub fn renew(req: &CertRequest, ca: Ca<'_>) -> Result<Bundle> {
    validate(req)?;
    let invalid = |what, reason: String| CertError::InvalidCa { what, reason };
    let ca_key = KeyPair::from_pem(ca.key_pem)
        .map_err(|e| invalid("key", format!("not a usable PEM private key ({e})")))?;
    let spki = ca_public_key(ca.cert_pem).map_err(|reason| invalid("certificate", reason))?;
    if spki != ca_key.subject_public_key_info() {
        return Err(invalid("key", "does not match the CA certificate".into()));
    }
    let issuer = Issuer::from_ca_cert_pem(ca.cert_pem, ca_key)
        .map_err(|e| invalid("certificate", e.to_string()))?;
    let now = OffsetDateTime::now_utc();
    let window = (
        now - CLOCK_SKEW,
        now + Duration::days(i64::from(req.validity_days)),
    );
    let key = KeyPair::generate_for(&PKCS_ECDSA_P256_SHA256)?;
    let cert = leaf_params(req, window)?.signed_by(&key, &issuer)?;
    Ok(Bundle {
        ca_pem: ca.cert_pem.to_string(),
        cert_pem: cert.pem(),
        key_pem: key.serialize_pem(),
        ca_key_pem: None,
    })
}

/// The SubjectPublicKeyInfo (DER) of the first certificate in `pem`, which
/// must be a CA.
fn ca_public_key(pem: &str) -> std::result::Result<Vec<u8>, String> {
    let (_, block) =
        x509_parser::pem::parse_x509_pem(pem.as_bytes()).map_err(|e| format!("not PEM ({e})"))?;
    let cert = block
        .parse_x509()
        .map_err(|e| format!("not an X.509 certificate ({e})"))?;
    if !cert.is_ca() {
        return Err("is not a CA (basicConstraints cA is not set)".into());
    }
    Ok(cert.public_key().raw.to_vec())
}

type Window = (OffsetDateTime, OffsetDateTime);

fn ca_params(req: &CertRequest, (not_before, not_after): Window) -> CertificateParams {
    let mut params = CertificateParams::default();
    params.distinguished_name = common_name(&format!("{} webhook CA", req.service));
    params.is_ca = IsCa::Ca(BasicConstraints::Constrained(0));
    params.key_usages = vec![
        KeyUsagePurpose::KeyCertSign,
        KeyUsagePurpose::CrlSign,
        KeyUsagePurpose::DigitalSignature,
    ];
    params.not_before = not_before;
    params.not_after = not_after;
    params
}

fn leaf_params(req: &CertRequest, (not_before, not_after): Window) -> Result<CertificateParams> {
    let mut params = CertificateParams::default();
    params.distinguished_name = common_name(&format!("{}.{}.svc", req.service, req.namespace));
    params.subject_alt_names = subject_alt_names(req)?;
    params.key_usages = vec![KeyUsagePurpose::DigitalSignature];
    params.extended_key_usages = vec![ExtendedKeyUsagePurpose::ServerAuth];
    params.use_authority_key_identifier_extension = true;
    params.not_before = not_before;
    params.not_after = not_after;
    Ok(params)
}

/// The DNS names the apiserver may use for the Service, then the extras.
pub fn service_dns_names(req: &CertRequest) -> Vec<String> {
    let (svc, ns) = (&req.service, &req.namespace);
    let mut names = vec![
        svc.clone(),
        format!("{svc}.{ns}"),
        format!("{svc}.{ns}.svc"),
        format!("{svc}.{ns}.svc.cluster.local"),
    ];
    for extra in &req.dns {
        if !names.contains(extra) {
            names.push(extra.clone());
        }
    }
    names
}

fn validate(req: &CertRequest) -> Result<()> {
    if req.service.is_empty() {
        return Err(CertError::InvalidRequest("service name is empty"));
    }
    if req.namespace.is_empty() {
        return Err(CertError::InvalidRequest("namespace is empty"));
    }
    if req.validity_days == 0 {
        return Err(CertError::InvalidRequest(
            "validity must be at least one day",
        ));
    }
    Ok(())
}

fn subject_alt_names(req: &CertRequest) -> Result<Vec<SanType>> {
    let dns = service_dns_names(req).into_iter().map(|name| {
        let ia5 = name.clone().try_into();
        ia5.map(SanType::DnsName)
            .map_err(|source| CertError::InvalidDnsName { name, source })
    });
    let ips = req.ips.iter().map(|ip| Ok(SanType::IpAddress(*ip)));
    dns.chain(ips).collect()
}

fn common_name(cn: &str) -> DistinguishedName {
    let mut dn = DistinguishedName::new();
    dn.push(DnType::CommonName, cn);
    dn
}

/// Writes `ca.crt`, `tls.crt` and `tls.key` (mode 0600), and `ca.key` (mode
/// 0600) for a CA made here, into `out`, creating the directory. Existing
/// files are replaced.
pub fn write(bundle: &Bundle, out: &Path) -> Result<()> {
    fs::create_dir_all(out).map_err(|source| CertError::Write {
        path: out.to_path_buf(),
        source,
    })?;
    write_file(&out.join("ca.crt"), &bundle.ca_pem, 0o644)?;
    write_file(&out.join("tls.crt"), &bundle.cert_pem, 0o644)?;
    write_file(&out.join("tls.key"), &bundle.key_pem, 0o600)?;
    match &bundle.ca_key_pem {
        Some(ca_key) => write_file(&out.join("ca.key"), ca_key, 0o600),
        None => Ok(()),
    }
}

fn write_file(path: &Path, contents: &str, mode: u32) -> Result<()> {
    let write = || {
        let mut file = open_with_mode(path, mode)?;
        file.write_all(contents.as_bytes())?;
        file.sync_all()
    };
    write().map_err(|source| CertError::Write {
        path: path.to_path_buf(),
        source,
    })
}

#[cfg(unix)]
fn open_with_mode(path: &Path, mode: u32) -> std::io::Result<fs::File> {
    use std::os::unix::fs::{OpenOptionsExt, PermissionsExt};
    let file = OpenOptions::new()
        .write(true)
        .create(true)
        .truncate(true)
        .mode(mode)
        .open(path)?;
    // `mode` applies only to new files: narrow an existing one as well,
    // before the secret is written into it.
    file.set_permissions(fs::Permissions::from_mode(mode))?;
    Ok(file)
}

#[cfg(not(unix))]
fn open_with_mode(path: &Path, _mode: u32) -> std::io::Result<fs::File> {
    OpenOptions::new()
        .write(true)
        .create(true)
        .truncate(true)
        .open(path)
}

/// The CA as base64, ready for the webhook configuration's `caBundle`.
pub fn ca_bundle_base64(bundle: &Bundle) -> String {
    base64::engine::general_purpose::STANDARD.encode(&bundle.ca_pem)
}
