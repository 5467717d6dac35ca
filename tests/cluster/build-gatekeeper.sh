#!/usr/bin/env bash
# Build OPA Gatekeeper's manager (the module's root package) from its Go
# module into tests/cluster/bin/gatekeeper, with its CRDs in
# tests/cluster/bin/gatekeeper-crds/, only when this script (which names the
# version) changed. For the peers bench only (`cargo bench --bench apiserver
# -- --peers`): `make test` and CI never need it.
#
# v3.23.1 resolves from the module proxy and has no replace directives.
set -euo pipefail
here=$(cd "$(dirname "$0")" && pwd)
cd "$here"
GATEKEEPER=github.com/open-policy-agent/gatekeeper/v3@v3.23.1

if ! command -v go >/dev/null 2>&1; then
  echo "build-gatekeeper.sh: go not found; install Go >= 1.26 and retry" >&2
  exit 1
fi
stamp=$(sha256sum <build-gatekeeper.sh | cut -d' ' -f1)
if [ -x bin/gatekeeper ] && [ "$(cat bin/.gatekeeper-stamp 2>/dev/null)" = "$stamp" ]; then
  echo "Gatekeeper up to date"
  exit 0
fi
mkdir -p bin
work=$(mktemp -d)
trap 'chmod -R u+w "$work" 2>/dev/null; rm -rf "$work"' EXIT
started=$SECONDS
echo "building gatekeeper ($GATEKEEPER, $(go version | cut -d' ' -f3)); takes several minutes"
dir=$(go mod download -json "$GATEKEEPER" | sed -n 's/^\t"Dir": "\(.*\)",$/\1/p')
[ -n "$dir" ] || { echo "build-gatekeeper.sh: go mod download $GATEKEEPER failed" >&2; exit 1; }
cp -r "$dir" "$work/gatekeeper"
chmod -R u+w "$work/gatekeeper"
(
  cd "$work/gatekeeper"
  CGO_ENABLED=0 GOFLAGS=-mod=mod go build -buildvcs=false -trimpath -ldflags="-s -w" -o "$here/bin/gatekeeper.new" .
)
mv bin/gatekeeper.new bin/gatekeeper
rm -rf bin/gatekeeper-crds
mkdir -p bin/gatekeeper-crds
cp "$work/gatekeeper"/charts/gatekeeper/crds/*.yaml bin/gatekeeper-crds/
echo "$stamp" >bin/.gatekeeper-stamp
echo "built bin/gatekeeper in $((SECONDS - started))s"
