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

# shellcheck source=go-tool.sh
. "$here/go-tool.sh"
go_tool helm "$HELM" "$PACKAGE" "$LDFLAGS"
"$here/bin/helm" version --short
