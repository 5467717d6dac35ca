//! `gitops-guard cert`'s backend: what it generates and writes.

use std::sync::Arc;

use rustls::client::WebPkiServerVerifier;
use rustls::client::danger::ServerCertVerifier;
use rustls::pki_types::pem::PemObject;
use rustls::pki_types::{CertificateDer, ServerName, UnixTime};
use x509_parser::extensions::GeneralName;

use base64::Engine;
use gitops_guard::cert::*;
use std::fs;

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
    assert_eq!(Some(read("ca.key")), bundle.ca_key_pem);
    #[cfg(unix)]
    {
        use std::os::unix::fs::PermissionsExt;
        let mode = |f: &str| fs::metadata(out.join(f)).unwrap().permissions().mode() & 0o777;
        assert_eq!(mode("tls.key"), 0o600);
        assert_eq!(mode("ca.key"), 0o600);
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

fn ca_of(bundle: &Bundle) -> Ca<'_> {
    Ca {
        cert_pem: &bundle.ca_pem,
        key_pem: bundle.ca_key_pem.as_deref().unwrap(),
    }
}

#[test]
fn a_renewed_leaf_is_new_and_signed_by_the_same_ca() {
    let first = generate(&request()).unwrap();
    let renewed = renew(&request(), ca_of(&first)).unwrap();
    assert_eq!(renewed.ca_pem, first.ca_pem);
    assert_eq!(renewed.ca_key_pem, None, "the CA key is not copied out");
    assert_ne!(renewed.cert_pem, first.cert_pem);
    assert_ne!(renewed.key_pem, first.key_pem);
    verify(
        &first.ca_pem,
        &renewed.cert_pem,
        "gitops-guard.guard-system.svc",
    )
    .unwrap();
}

#[test]
fn renewing_with_a_key_that_is_not_the_cas_is_refused() {
    let (first, other) = (generate(&request()).unwrap(), generate(&request()).unwrap());
    let ca = Ca {
        cert_pem: &first.ca_pem,
        key_pem: other.ca_key_pem.as_deref().unwrap(),
    };
    let error = renew(&request(), ca).unwrap_err().to_string();
    assert_eq!(error, "CA key: does not match the CA certificate");
}

#[test]
fn renewing_with_a_leaf_or_garbage_as_the_ca_is_refused() {
    let first = generate(&request()).unwrap();
    let leaf_as_ca = Ca {
        cert_pem: &first.cert_pem,
        key_pem: &first.key_pem,
    };
    let error = renew(&request(), leaf_as_ca).unwrap_err().to_string();
    assert!(error.contains("is not a CA"), "{error}");
    let garbage = Ca {
        cert_pem: "garbage",
        key_pem: first.ca_key_pem.as_deref().unwrap(),
    };
    let error = renew(&request(), garbage).unwrap_err().to_string();
    assert!(error.starts_with("CA certificate: not PEM"), "{error}");
    let bad_key = Ca {
        cert_pem: &first.ca_pem,
        key_pem: "garbage",
    };
    let error = renew(&request(), bad_key).unwrap_err().to_string();
    assert!(
        error.starts_with("CA key: not a usable PEM private key"),
        "{error}"
    );
}
