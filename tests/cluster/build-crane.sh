#!/usr/bin/env bash
# Build crane from its Go module into tests/cluster/bin/crane: it assembles
# and pushes the guard's image without a Docker daemon (scripts/image.sh).
# Rebuilt only when the recipe changes; `make test` runs this.
#
#   tests/cluster/build-crane.sh
#
# github.com/google/go-containerregistry v0.22.1 builds with Go 1.26 from the
# module proxy here; crane is pure Go (CGO_ENABLED=0, static).
set -euo pipefail
# shellcheck source=go-tool.sh
. "$(dirname "$0")/go-tool.sh"
go_tool crane github.com/google/go-containerregistry@v0.22.1 ./cmd/crane "-s -w"
