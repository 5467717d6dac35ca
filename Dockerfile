# syntax=docker/dockerfile:1
# Multi-stage build of the gitops-guard binary; the final image holds only the
# binary on distroless (glibc, CA certificates, no shell), running as non-root.

FROM rust:1.95-bookworm AS build
WORKDIR /src
# Dependencies first, in their own layer: only Cargo.toml/Cargo.lock changes rebuild them.
COPY Cargo.toml Cargo.lock ./
RUN mkdir -p src bench tests/e2e \
 && echo 'fn main() {}' > src/main.rs && touch src/lib.rs \
 && echo 'fn main() {}' > bench/review.rs && echo 'fn main() {}' > tests/e2e/main.rs \
 && cargo build --release --locked --bin gitops-guard \
 && rm -rf src
COPY src ./src
COPY policy ./policy
RUN touch src/main.rs src/lib.rs && cargo build --release --locked --bin gitops-guard

FROM gcr.io/distroless/cc-debian12:nonroot
COPY --from=build /src/target/release/gitops-guard /gitops-guard
USER 65532:65532
# 8443: the admission webhook (HTTPS), called by kube-apiserver.
EXPOSE 8443
# 9090: admin (plain HTTP): /healthz, /readyz, /metrics.
EXPOSE 9090
ENTRYPOINT ["/gitops-guard"]
CMD ["serve"]
