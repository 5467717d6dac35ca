#!/usr/bin/env bash
# Build Kyverno's admission controller (cmd/kyverno) from its Go module into
# tests/cluster/bin/kyverno, with its CRDs in tests/cluster/bin/kyverno-crds/,
# only when this script (which names the version) changed. For the peers
# bench only (`cargo bench --bench apiserver -- --peers`): `make test` and CI
# never need it. About 6.5 minutes on 2 cores; the binary is ~260 MB.
#
# v1.19.1 builds with Go 1.26 from the module proxy; its one replace
# (k8s.io/pod-security-admission => github.com/kyverno/pod-security-admission)
# resolves too and is kept.
set -euo pipefail
here=$(cd "$(dirname "$0")" && pwd)
cd "$here"
KYVERNO=github.com/kyverno/kyverno@v1.19.1

if ! command -v go >/dev/null 2>&1; then
  echo "build-kyverno.sh: go not found; install Go >= 1.26 and retry" >&2
  exit 1
fi
stamp=$(sha256sum <build-kyverno.sh | cut -d' ' -f1)
if [ -x bin/kyverno ] && [ "$(cat bin/.kyverno-stamp 2>/dev/null)" = "$stamp" ]; then
  echo "Kyverno up to date"
  exit 0
fi
mkdir -p bin
work=$(mktemp -d)
trap 'chmod -R u+w "$work" 2>/dev/null; rm -rf "$work"' EXIT
started=$SECONDS
echo "building kyverno ($KYVERNO, $(go version | cut -d' ' -f3)); takes about 6.5 minutes"
dir=$(go mod download -json "$KYVERNO" | sed -n 's/^\t"Dir": "\(.*\)",$/\1/p')
[ -n "$dir" ] || { echo "build-kyverno.sh: go mod download $KYVERNO failed" >&2; exit 1; }
cp -r "$dir" "$work/kyverno"
chmod -R u+w "$work/kyverno"
(
  cd "$work/kyverno"
  GOFLAGS=-mod=mod go build -buildvcs=false -trimpath -ldflags="-s -w" -o "$here/bin/kyverno.new" ./cmd/kyverno
)
mv bin/kyverno.new bin/kyverno
rm -rf bin/kyverno-crds
mkdir -p bin/kyverno-crds
for group in kyverno policies.kyverno.io policyreport reports; do
  cp "$work/kyverno/config/crds/$group"/*.yaml bin/kyverno-crds/
done
echo "$stamp" >bin/.kyverno-stamp
echo "built bin/kyverno in $((SECONDS - started))s"
