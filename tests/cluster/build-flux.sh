#!/usr/bin/env bash
# Build Flux's source-controller and kustomize-controller from their Go modules
# into tests/cluster/bin/, with their CRDs in tests/cluster/bin/flux-crds/,
# only when this script (which names the versions) changed.
#
# Versions: the newest that build with Go 1.26 from the module proxy here.
# - kustomize-controller v1.10.x needs go 1.27; v1.9.6 is the newest 1.9.
# - source-controller v1.9.5/v1.9.6 need github.com/fluxcd/pkg/artifact
#   v0.18.3, which the proxy refuses (403); v1.9.0 uses artifact v0.18.0.
# The module zips omit the nested api/ modules, so the `replace …/api => ./api`
# line is dropped and the published api module (its require line) is used.
# helm-controller and notification-controller are not served by the proxy:
# their writes are modelled from their source (README, "Flux compatibility").
set -euo pipefail
here=$(cd "$(dirname "$0")" && pwd)
cd "$here"
KUSTOMIZE_CONTROLLER=github.com/fluxcd/kustomize-controller@v1.9.6
SOURCE_CONTROLLER=github.com/fluxcd/source-controller@v1.9.0

if ! command -v go >/dev/null 2>&1; then
  echo "build-flux.sh: go not found; install Go >= 1.26 and retry" >&2
  exit 1
fi
stamp=$(cat build-flux.sh | sha256sum | cut -d' ' -f1)
if [ -x bin/kustomize-controller ] && [ -x bin/source-controller ] &&
  [ "$(cat bin/.flux-stamp 2>/dev/null)" = "$stamp" ]; then
  echo "Flux controllers up to date"
  exit 0
fi
mkdir -p bin
work=$(mktemp -d)
trap 'chmod -R u+w "$work" 2>/dev/null; rm -rf "$work"' EXIT

# build MODULE@VERSION BINARY: in a writable copy of the module's zip.
build() {
  local module=${1%@*} started=$SECONDS dir
  echo "building $2 ($1, $(go version | cut -d' ' -f3)); takes a few minutes"
  dir=$(go mod download -json "$1" | sed -n 's/^\t"Dir": "\(.*\)",$/\1/p')
  [ -n "$dir" ] || { echo "build-flux.sh: go mod download $1 failed" >&2; exit 1; }
  cp -r "$dir" "$work/$2"
  chmod -R u+w "$work/$2"
  (
    cd "$work/$2"
    go mod edit -dropreplace "$module/api"
    GOFLAGS=-mod=mod go build -buildvcs=false -trimpath -ldflags="-s -w" -o "$here/bin/$2.new" .
  )
  mv "bin/$2.new" "bin/$2"
  mkdir -p bin/flux-crds
  cp "$work/$2"/config/crd/bases/*.yaml bin/flux-crds/
  echo "built bin/$2 in $((SECONDS - started))s"
}
build "$SOURCE_CONTROLLER" source-controller
build "$KUSTOMIZE_CONTROLLER" kustomize-controller
echo "$stamp" >bin/.flux-stamp
