# gitops-guard developer entry points. RUN_DIR holds the local control plane.
RUN_DIR ?= $(CURDIR)/.run

.PHONY: demo up down test test-unit test-e2e lint bench crd

## demo: start the local control plane and the guard, then a narrated scenario
demo:
	scripts/demo.sh $(RUN_DIR)

## up: start the local control plane + gitops-guard (see .run/env);
## NODE=1 adds a node on this host (root; tests/cluster/NODE.md)
NODE ?= 0
up:
	GG_NODE=$(NODE) scripts/up.sh $(RUN_DIR)

## down: stop everything `up` started and remove $(RUN_DIR)
down:
	scripts/down.sh $(RUN_DIR)

## test: every test: unit, router, CLI, TLS, the Helm chart (helm lint/template), the
## image built without Docker (crane) and
## end-to-end against a real apiserver (and against real Flux controllers, and with
## the guard installed on a real node); installs missing Debian packages as root
test:
	scripts/prerequisites.sh node
	tests/cluster/build.sh
	tests/cluster/build-flux.sh
	tests/cluster/build-helm.sh
	tests/cluster/build-crane.sh
	tests/cluster/build-node.sh
	tests/cluster/build-netpol.sh
	cargo test --workspace --all-targets

## test-unit: everything but the end-to-end suite (the chart and image tests in it
## need tests/cluster/bin/kubectl, helm and crane: built once, then up to date)
test-unit:
	tests/cluster/build.sh
	tests/cluster/build-helm.sh
	tests/cluster/build-crane.sh
	cargo test --workspace --lib --bins
	cargo test --test it

## test-e2e: only the end-to-end suite
test-e2e:
	scripts/prerequisites.sh node
	tests/cluster/build.sh
	tests/cluster/build-flux.sh
	tests/cluster/build-helm.sh
	tests/cluster/build-crane.sh
	tests/cluster/build-node.sh
	tests/cluster/build-netpol.sh
	cargo test --test e2e

lint:
	cargo fmt --all -- --check
	cargo clippy --workspace --all-targets -- -D warnings

## bench: every benchmark; each rewrites its figures in bench/RESULTS.md (load also bench/load.svg)
bench:
	cargo bench --bench review
	cargo bench --bench pin
	cargo bench --bench load
	cargo bench --bench apiserver
	cargo bench --bench flood
	cargo bench --bench drift

## crd: regenerate manifests/crds/breakglass.yaml (and the Helm chart's copy) from the Rust type
crd:
	cargo run --quiet -- crd > manifests/crds/breakglass.yaml
	cp manifests/crds/breakglass.yaml charts/gitops-guard/files/breakglass.yaml
