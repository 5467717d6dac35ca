#!/usr/bin/env bash
# Build helm from its Go module into tests/cluster/bin/helm, for the chart
# tests (tests/it/chart.rs: `helm lint`, `helm template`). Rebuilt only when
# the recipe (the `recipe` line below) changes; `make test` runs this.
#
#   tests/cluster/build-helm.sh
#
# helm.sh/helm/v3 v3.22.0 builds with Go 1.26 from the module proxy here,
# with no replace to drop. helm is pure Go: CGO_ENABLED=0 gives a static
# binary. The -X flags are those of helm's Makefile: its version, and the
# Kubernetes version `helm template` and `helm lint` assume (1.37, from the
# k8s.io/client-go v0.37 it requires; without them helm assumes 1.20).
set -euo pipefail
here=$(cd "$(dirname "$0")" && pwd)
cd "$here"
HELM=helm.sh/helm/v3@v3.22.0
PACKAGE=./cmd/helm
LDFLAGS="-s -w -X helm.sh/helm/v3/internal/version.version=v3.22.0 -X helm.sh/helm/v3/internal/version.metadata="
for pkg in pkg/chartutil pkg/lint/rules; do
  LDFLAGS+=" -X helm.sh/helm/v3/$pkg.k8sVersionMajor=1 -X helm.sh/helm/v3/$pkg.k8sVersionMinor=37"
done

if ! command -v go >/dev/null 2>&1; then
  echo "build-helm.sh: go not found; install Go >= 1.26 and retry" >&2
  exit 1
fi
recipe="helm $HELM $PACKAGE CGO_ENABLED=0 -trimpath -ldflags=$LDFLAGS"
stamp=$(echo "$recipe" | sha256sum | cut -d' ' -f1)
if [ -x bin/helm ] && [ "$(cat bin/.helm-stamp 2>/dev/null)" = "$stamp" ]; then
  echo "helm up to date"
  exit 0
fi
mkdir -p bin
work=$(mktemp -d)
trap 'chmod -R u+w "$work" 2>/dev/null; rm -rf "$work"' EXIT

started=$SECONDS
echo "building helm ($HELM, $(go version | cut -d' ' -f3)); takes a few minutes"
dir=$(go mod download -json "$HELM" | sed -n 's/^\t"Dir": "\(.*\)",$/\1/p')
[ -n "$dir" ] || { echo "build-helm.sh: go mod download $HELM failed" >&2; exit 1; }
cp -r "$dir" "$work/helm"
chmod -R u+w "$work/helm"
(
  cd "$work/helm"
  CGO_ENABLED=0 GOFLAGS=-mod=mod go build -buildvcs=false -trimpath -ldflags="$LDFLAGS" \
    -o "$here/bin/helm.new" "$PACKAGE"
)
mv bin/helm.new bin/helm
echo "$stamp" >bin/.helm-stamp
echo "built bin/helm in $((SECONDS - started))s ($(bin/helm version --short))"
