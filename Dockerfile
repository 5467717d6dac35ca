# syntax=docker/dockerfile:1
# Multi-stage build of the gitops-guard binary; the final image holds only the
# binary on distroless (glibc, CA certificates, no shell), running as non-root.
#
#   docker build -t ghcr.io/gitops-guard/gitops-guard:0.1.0 .
#
# Without Docker: scripts/image.sh REF builds the same final stage from the
# release binary with crane and pushes it (tests/it/image.rs checks that its
# user, entrypoint, command, ports and binary path are the ones below).

FROM rust:1.95-bookworm AS build
WORKDIR /src
# The release profile keeps line tables (for local profiling); the image drops
# them but keeps symbols, so a panic's backtrace still names functions
# (~20 MB instead of ~110 MB).
ENV CARGO_PROFILE_RELEASE_STRIP=debuginfo
# Dependencies first, in their own layer: only Cargo.toml/Cargo.lock changes
# rebuild them. Every target Cargo.toml declares gets a stub file: the lib and
# bin (replaced below), the `[[bench]]` in bench/ and the `[[test]]` e2e (kept
# as stubs: the release binary needs neither, and tests/ is not copied).
# The workspace's members: the pure core (built, its real sources below) and
# the test kit (a dev-dependency, loaded with the workspace, never built).
COPY Cargo.toml Cargo.lock ./
COPY crates/core/Cargo.toml ./crates/core/
COPY crates/testkit/Cargo.toml ./crates/testkit/
RUN mkdir -p src bench tests/e2e crates/core/src crates/testkit/src \
 && echo 'fn main() {}' > src/main.rs \
 && touch src/lib.rs crates/core/src/lib.rs crates/testkit/src/lib.rs \
 && echo 'fn main() {}' > bench/review.rs && echo 'fn main() {}' > tests/e2e/main.rs \
 && cargo build --release --locked --bin gitops-guard \
 && rm -rf src crates/core/src
# The real sources; policy/default.yaml is embedded (include_str!) by the core.
COPY src ./src
COPY crates/core/src ./crates/core/src
COPY policy ./policy
# COPY keeps the files' mtimes, which may be older than the stub build: touch
# the crate roots so cargo rebuilds the libs and bin rather than reuse the stubs.
RUN touch src/main.rs src/lib.rs crates/core/src/lib.rs \
 && cargo build --release --locked --bin gitops-guard

FROM gcr.io/distroless/cc-debian12:nonroot
COPY --from=build /src/target/release/gitops-guard /gitops-guard
# distroless "nonroot", numeric so runAsNonRoot can verify it.
USER 65532:65532
# 8443: the admission webhook (HTTPS, POST /validate), called by kube-apiserver.
EXPOSE 8443
# 9090: admin (plain HTTP): /healthz, /readyz, /metrics.
EXPOSE 9090
ENTRYPOINT ["/gitops-guard"]
CMD ["serve"]
