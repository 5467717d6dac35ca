#!/usr/bin/env bash
# What `make demo` and `make test` need that a fresh machine may lack. As root
# the missing Debian packages are installed here; otherwise the one command
# that installs them is printed and this fails at once, before any build.
set -euo pipefail
# With `node` (make test, make up NODE=1): the local node needs root too
# (containerd, runc, iptables, the pod bridge); say so before any build.
if [ "${1:-}" = node ] && [ "$(id -u)" != 0 ]; then
  echo "the in-cluster tests run a node on this host (containerd, runc, iptables): run as root, e.g. sudo make test" >&2
  exit 1
fi
missing=()
need() { # need COMMAND PACKAGE
  command -v "$1" >/dev/null 2>&1 || missing+=("$2")
}
need git git
need curl curl
need docker-registry docker-registry
need htpasswd apache2-utils
need prometheus-alertmanager prometheus-alertmanager
need amtool prometheus-alertmanager
need ps procps
# The node (tests/cluster/node.go, NODE.md): containerd (with ctr and the
# runc shim), runc, the CNI plugins, iptables and ip.
need containerd containerd
need ctr containerd
need runc runc
need iptables iptables
need ip iproute2
[ -x /usr/lib/cni/bridge ] || missing+=(containernetworking-plugins)
# The NetworkPolicy agent's build (a patch) and its clean-up (nft); the
# static busybox the node's tests run in Pods.
need patch patch
need nft nftables
[ -x /bin/busybox ] && ! ldd /bin/busybox >/dev/null 2>&1 || missing+=(busybox-static)
# The image test (tests/it/image.rs, scripts/image.sh): the CA bundle the
# image carries; ldd and chroot come with every Debian system.
[ -f /etc/ssl/certs/ca-certificates.crt ] || missing+=(ca-certificates)
if [ ${#missing[@]} -gt 0 ]; then
  mapfile -t missing < <(printf '%s\n' "${missing[@]}" | sort -u)
  if [ "$(id -u)" = 0 ] && command -v apt-get >/dev/null; then
    echo "==> installing missing Debian packages: ${missing[*]}"
    export DEBIAN_FRONTEND=noninteractive
    apt-get update -qq
    apt-get install -y -qq --no-install-recommends "${missing[@]}" >/dev/null
  else
    echo "missing: ${missing[*]}. Run: sudo apt-get install -y ${missing[*]}" >&2
    exit 1
  fi
fi
command -v go >/dev/null 2>&1 || {
  echo "go not found: install Go >= 1.26 (https://go.dev/dl/) and put it on PATH" >&2
  exit 1
}
command -v cargo >/dev/null 2>&1 || {
  echo "cargo not found: install Rust >= 1.88 (https://rustup.rs) and put it on PATH" >&2
  exit 1
}
