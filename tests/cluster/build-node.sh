#!/usr/bin/env bash
# Build the local node's programs into tests/cluster/bin, from the same
# Kubernetes module as gg-cluster (go.mod pins k8s.io/kubernetes): kubelet,
# kube-proxy and kube-scheduler, unmodified upstream mains, plus pause
# (./pause), the sandbox image's one binary. Only when their recipe changed.
# The node itself is `gg-cluster node` (node.go; recipe in NODE.md).
set -euo pipefail
here=$(cd "$(dirname "$0")" && pwd)
cd "$here"
if ! command -v go >/dev/null 2>&1; then
  echo "build-node.sh: go not found; install Go >= $(sed -n 's/^go //p' go.mod) and retry" >&2
  exit 1
fi
stamp=$(cat build-node.sh go-tool.sh go.mod go.sum pause/*.go | sha256sum | cut -d' ' -f1)
programs="kubelet kube-proxy kube-scheduler pause"
up_to_date() {
  for p in $programs; do [ -x "bin/$p" ] || return 1; done
  [ "$(cat bin/.node-stamp 2>/dev/null)" = "$stamp" ]
}
if up_to_date; then
  echo "node programs up to date"
  exit 0
fi
k8s=$(sed -n 's/.*k8s.io\/kubernetes \(v[0-9.]*\)$/\1/p' go.mod)
# shellcheck source=go-tool.sh
. ./go-tool.sh
ldflags=$(k8s_ldflags)
mkdir -p bin
for p in $programs; do
  started=$SECONDS
  case $p in
    pause) pkg=./pause ;;
    *) pkg=k8s.io/kubernetes/cmd/$p ;;
  esac
  echo "building $p ($pkg, Kubernetes $k8s)"
  # Static (no cgo) like the harness; -mod=readonly: go.sum already holds
  # every module these mains need, and a build never edits it.
  CGO_ENABLED=0 go build -mod=readonly -buildvcs=false -trimpath -ldflags="$ldflags" -o "bin/$p.new" "$pkg"
  mv "bin/$p.new" "bin/$p"
  echo "built bin/$p in $((SECONDS - started))s"
done
echo "$stamp" >bin/.node-stamp
