#!/usr/bin/env bash
# Build the admission engines users would install instead of gitops-guard,
# from their Go modules, into tests/cluster/bin/NAME with their CRDs in
# tests/cluster/bin/NAME-crds/. For the peers bench only
# (`cargo bench --bench apiserver -- --peers`, `-- --catches --peers`):
# `make test` and CI never need them. Each is rebuilt only when its recipe
# (the `build` line below) changes; about 6.5 to 7 minutes each on 2 cores.
#
#   tests/cluster/build-peers.sh [kyverno] [gatekeeper]     (default: both)
#
# Kyverno v1.19.1 and Gatekeeper v3.23.1 build with Go 1.26 from the module
# proxy here. Kyverno's one replace (k8s.io/pod-security-admission =>
# github.com/kyverno/pod-security-admission) resolves and is kept; Gatekeeper
# has none.
set -euo pipefail
here=$(cd "$(dirname "$0")" && pwd)
cd "$here"

if ! command -v go >/dev/null 2>&1; then
  echo "build-peers.sh: go not found; install Go >= 1.26 and retry" >&2
  exit 1
fi
mkdir -p bin
work=$(mktemp -d)
trap 'chmod -R u+w "$work" 2>/dev/null; rm -rf "$work"' EXIT

# build NAME MODULE@VERSION PACKAGE CGO CRD_DIR...: in a writable copy of the
# module's zip.
build() {
  local name=$1 module=$2 package=$3 cgo=$4 started=$SECONDS dir stamp
  shift 4
  stamp=$(echo "$name $module $package $cgo $*" | sha256sum | cut -d' ' -f1)
  if [ -x "bin/$name" ] && [ "$(cat "bin/.$name-stamp" 2>/dev/null)" = "$stamp" ]; then
    echo "$name up to date"
    return
  fi
  echo "building $name ($module, $(go version | cut -d' ' -f3)); takes about 7 minutes"
  dir=$(go mod download -json "$module" | sed -n 's/^\t"Dir": "\(.*\)",$/\1/p')
  [ -n "$dir" ] || { echo "build-peers.sh: go mod download $module failed" >&2; exit 1; }
  cp -r "$dir" "$work/$name"
  chmod -R u+w "$work/$name"
  (
    cd "$work/$name"
    CGO_ENABLED=$cgo GOFLAGS=-mod=mod go build -buildvcs=false -trimpath -ldflags="-s -w" \
      -o "$here/bin/$name.new" "$package"
  )
  mv "bin/$name.new" "bin/$name"
  rm -rf "bin/$name-crds"
  mkdir -p "bin/$name-crds"
  for crds in "$@"; do
    cp "$work/$name/$crds"/*.yaml "bin/$name-crds/"
  done
  echo "$stamp" >"bin/.$name-stamp"
  echo "built bin/$name in $((SECONDS - started))s"
}

for peer in "${@:-kyverno gatekeeper}"; do
  for p in $peer; do
    case $p in
    kyverno)
      build kyverno github.com/kyverno/kyverno@v1.19.1 ./cmd/kyverno 1 \
        config/crds/kyverno config/crds/policies.kyverno.io config/crds/policyreport config/crds/reports
      ;;
    gatekeeper)
      build gatekeeper github.com/open-policy-agent/gatekeeper/v3@v3.23.1 . 0 charts/gatekeeper/crds
      ;;
    *)
      echo "build-peers.sh: unknown engine $p (kyverno, gatekeeper)" >&2
      exit 2
      ;;
    esac
  done
done
