#!/usr/bin/env bash
# Build crane from its Go module into tests/cluster/bin/crane: it assembles
# and pushes the guard's image without a Docker daemon (scripts/image.sh).
# Rebuilt only when the recipe (the `recipe` line below) changes; `make
# test` runs this.
#
#   tests/cluster/build-crane.sh
#
# github.com/google/go-containerregistry v0.22.1 builds with Go 1.26 from the
# module proxy here; crane is pure Go (CGO_ENABLED=0, static).
set -euo pipefail
here=$(cd "$(dirname "$0")" && pwd)
cd "$here"
MODULE=github.com/google/go-containerregistry@v0.22.1
PACKAGE=./cmd/crane

if ! command -v go >/dev/null 2>&1; then
  echo "build-crane.sh: go not found; install Go >= 1.26 and retry" >&2
  exit 1
fi
recipe="crane $MODULE $PACKAGE CGO_ENABLED=0 -trimpath -ldflags=-s -w"
stamp=$(echo "$recipe" | sha256sum | cut -d' ' -f1)
if [ -x bin/crane ] && [ "$(cat bin/.crane-stamp 2>/dev/null)" = "$stamp" ]; then
  echo "crane up to date"
  exit 0
fi
mkdir -p bin
work=$(mktemp -d)
trap 'chmod -R u+w "$work" 2>/dev/null; rm -rf "$work"' EXIT

started=$SECONDS
echo "building crane ($MODULE, $(go version | cut -d' ' -f3))"
dir=$(go mod download -json "$MODULE" | sed -n 's/^\t"Dir": "\(.*\)",$/\1/p')
[ -n "$dir" ] || { echo "build-crane.sh: go mod download $MODULE failed" >&2; exit 1; }
cp -r "$dir" "$work/crane"
chmod -R u+w "$work/crane"
(
  cd "$work/crane"
  CGO_ENABLED=0 GOFLAGS=-mod=mod go build -buildvcs=false -trimpath -ldflags="-s -w" \
    -o "$here/bin/crane.new" "$PACKAGE"
)
mv bin/crane.new bin/crane
echo "$stamp" >bin/.crane-stamp
echo "built bin/crane in $((SECONDS - started))s ($(bin/crane version))"
