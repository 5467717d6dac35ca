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
    ExtendedKeyUsagePurpose, IsCa, KeyPair, KeyUsagePurpose, PKCS_ECDSA_P256_SHA256, SanType,
};
use time::{Duration, OffsetDateTime};

/// Errors of certificate generation and writing.
#[derive(Debug, thiserror::Error)]
pub enum CertError {
    #[error("invalid certificate request: {0}")]
    InvalidRequest(&'static str),
    #[error("invalid DNS name {name:?}: {source}")]
    InvalidDnsName { name: String, source: rcgen::Error },
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
    })
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

/// Writes `ca.crt`, `tls.crt` and `tls.key` (mode 0600) into `out`, creating
/// the directory. Existing files are replaced.
pub fn write(bundle: &Bundle, out: &Path) -> Result<()> {
    fs::create_dir_all(out).map_err(|source| CertError::Write {
        path: out.to_path_buf(),
        source,
    })?;
    write_file(&out.join("ca.crt"), &bundle.ca_pem, 0o644)?;
    write_file(&out.join("tls.crt"), &bundle.cert_pem, 0o644)?;
    write_file(&out.join("tls.key"), &bundle.key_pem, 0o600)
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

#[cfg(test)]
mod tests {
    use std::sync::Arc;

    use rustls::client::WebPkiServerVerifier;
    use rustls::client::danger::ServerCertVerifier;
    use rustls::pki_types::pem::PemObject;
    use rustls::pki_types::{CertificateDer, ServerName, UnixTime};
    use x509_parser::extensions::GeneralName;

    use super::*;

    fn request() -> CertRequest {
        CertRequest {
            service: "gitops-guard".into(),
            namespace: "guard-system".into(),
            dns: vec!["guard.example.test".into(), "gitops-guard".into()],
            ips: vec!["127.0.0.1".parse().unwrap(), "::1".parse().unwrap()],
            validity_days: 30,
        }
    }

    fn der(pem: &str) -> CertificateDer<'static> {
        CertificateDer::from_pem_slice(pem.as_bytes()).unwrap()
    }

    fn san_strings(cert: &x509_parser::certificate::X509Certificate<'_>) -> Vec<String> {
        let sans = cert.subject_alternative_name().unwrap().unwrap();
        let names = sans.value.general_names.iter().map(|name| match name {
            GeneralName::DNSName(dns) => (*dns).to_owned(),
            GeneralName::IPAddress(ip) => format!("ip:{ip:?}"),
            other => panic!("unexpected SAN {other:?}"),
        });
        names.collect()
    }

    #[test]
    fn the_serving_certificate_carries_every_service_name_and_extra_ip() {
        let bundle = generate(&request()).unwrap();
        let leaf = der(&bundle.cert_pem);
        let (_, cert) = x509_parser::parse_x509_certificate(&leaf).unwrap();
        let mut expected = service_dns_names(&request());
        assert_eq!(expected.len(), 5, "the duplicate extra name is dropped");
        expected.push(format!("ip:{:?}", [127u8, 0, 0, 1]));
        expected.push(format!("ip:{:?}", std::net::Ipv6Addr::LOCALHOST.octets()));
        assert_eq!(san_strings(&cert), expected);
        let validity = cert.validity();
        let seconds = validity.not_after.timestamp() - validity.not_before.timestamp();
        assert_eq!(seconds / 86_400, 30);
    }

    #[test]
    fn the_ca_is_a_ca_and_the_leaf_is_a_server_certificate() {
        let bundle = generate(&request()).unwrap();
        let (ca_der, leaf_der) = (der(&bundle.ca_pem), der(&bundle.cert_pem));
        let (_, ca) = x509_parser::parse_x509_certificate(&ca_der).unwrap();
        let (_, leaf) = x509_parser::parse_x509_certificate(&leaf_der).unwrap();
        assert!(ca.is_ca());
        assert!(ca.key_usage().unwrap().unwrap().value.key_cert_sign());
        assert!(!leaf.is_ca());
        let eku = leaf.extended_key_usage().unwrap().unwrap();
        assert!(eku.value.server_auth);
        assert_eq!(leaf.issuer(), ca.subject());
    }

    fn verify(ca_pem: &str, leaf_pem: &str, name: &str) -> Result<(), rustls::Error> {
        let mut roots = rustls::RootCertStore::empty();
        roots.add(der(ca_pem))?;
        let provider = Arc::new(rustls::crypto::ring::default_provider());
        let verifier = WebPkiServerVerifier::builder_with_provider(Arc::new(roots), provider)
            .build()
            .unwrap();
        let name = ServerName::try_from(name.to_owned()).unwrap();
        let now = UnixTime::now();
        verifier.verify_server_cert(&der(leaf_pem), &[], &name, &[], now)?;
        Ok(())
    }

    #[rstest::rstest]
    #[case("gitops-guard")]
    #[case("gitops-guard.guard-system.svc")]
    #[case("gitops-guard.guard-system.svc.cluster.local")]
    #[case("127.0.0.1")]
    fn the_serving_certificate_verifies_against_its_ca_only(#[case] name: &str) {
        let bundle = generate(&request()).unwrap();
        verify(&bundle.ca_pem, &bundle.cert_pem, name).unwrap();
        let stranger = generate(&request()).unwrap();
        assert!(verify(&stranger.ca_pem, &bundle.cert_pem, name).is_err());
    }

    #[rstest::rstest]
    #[case(CertRequest { service: String::new(), ..request() })]
    #[case(CertRequest { namespace: String::new(), ..request() })]
    #[case(CertRequest { validity_days: 0, ..request() })]
    #[case(CertRequest { dns: vec!["bad name é".into()], ..request() })]
    fn an_unusable_request_is_refused(#[case] req: CertRequest) {
        assert!(generate(&req).is_err());
    }

    #[test]
    fn write_lays_out_a_tls_secret_with_a_private_key_file() {
        let dir = tempfile::tempdir().unwrap();
        let out = dir.path().join("nested/out");
        let bundle = generate(&request()).unwrap();
        write(&bundle, &out).unwrap();
        let read = |file: &str| fs::read_to_string(out.join(file)).unwrap();
        assert_eq!(read("ca.crt"), bundle.ca_pem);
        assert_eq!(read("tls.crt"), bundle.cert_pem);
        assert_eq!(read("tls.key"), bundle.key_pem);
        #[cfg(unix)]
        {
            use std::os::unix::fs::PermissionsExt;
            let mode = |f: &str| fs::metadata(out.join(f)).unwrap().permissions().mode() & 0o777;
            assert_eq!(mode("tls.key"), 0o600);
            fs::set_permissions(out.join("tls.key"), fs::Permissions::from_mode(0o644)).unwrap();
            write(&bundle, &out).unwrap();
            assert_eq!(mode("tls.key"), 0o600, "an existing key is narrowed");
        }
    }

    #[test]
    fn the_ca_bundle_is_the_base64_of_the_ca_pem() {
        let bundle = generate(&request()).unwrap();
        let decoded = base64::engine::general_purpose::STANDARD
            .decode(ca_bundle_base64(&bundle))
            .unwrap();
        assert_eq!(decoded, bundle.ca_pem.as_bytes());
    }
}
