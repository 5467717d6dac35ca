//! gitops-guard's integration tests, in one binary: the router and its
//! shells, the CLI, TLS, certificates, pinning against a real registry, the
//! alert sender. Each module is one area; the end-to-end suite against a
//! real kube-apiserver is `tests/e2e` (its own binary: it owns clusters).

mod alerts;
mod audit_tenants;
mod bad_input;
mod cert;
mod cert_rotation;
mod chart;
mod cli;
mod cli_mutate;
mod common;
mod drain;
mod idle_connections;
mod image;
mod not_ready;
mod pinning;
mod registry_fixture;
mod registry_protocol;
mod router;
mod shedding;
mod slow_clients;
mod tls_reload;
