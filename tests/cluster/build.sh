#!/usr/bin/env bash
# Build tests/cluster/bin/gg-cluster (etcd + kube-apiserver + kube-controller-manager
# + kubectl from the Kubernetes Go modules) only when its sources changed.
set -euo pipefail
here=$(cd "$(dirname "$0")" && pwd)
cd "$here"
if ! command -v go >/dev/null 2>&1; then
  echo "build.sh: go not found; install Go >= $(sed -n 's/^go //p' go.mod): https://go.dev/dl/ (or a distribution package), put it on PATH and retry" >&2
  exit 1
fi
stamp=$(cat build.sh go-tool.sh go.mod go.sum ./*.go | sha256sum | cut -d' ' -f1)
if [ -x bin/gg-cluster ] && [ -L bin/kubectl ] && [ "$(cat bin/.stamp 2>/dev/null)" = "$stamp" ]; then
  echo "gg-cluster up to date"
  exit 0
fi
echo "building gg-cluster ($(go version | cut -d' ' -f3), Kubernetes $(sed -n 's/.*k8s.io\/kubernetes \(v[0-9.]*\)$/\1/p' go.mod)); the first build takes several minutes"
started=$SECONDS
mkdir -p bin
k8s=$(sed -n 's/.*k8s.io\/kubernetes \(v[0-9.]*\)$/\1/p' go.mod)
# shellcheck source=go-tool.sh
. ./go-tool.sh
ldflags=$(k8s_ldflags)
# -mod=readonly: go.sum is complete; a build never edits go.mod or go.sum.
go build -mod=readonly -buildvcs=false -trimpath -ldflags="$ldflags" -o bin/gg-cluster.new .
mv bin/gg-cluster.new bin/gg-cluster
ln -sfn gg-cluster bin/kubectl
echo "$stamp" >bin/.stamp
echo "built bin/gg-cluster in $((SECONDS - started))s"
