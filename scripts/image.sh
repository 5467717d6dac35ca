#!/usr/bin/env bash
# Builds the guard's image without a Docker daemon and pushes it to REF.
# The image is the Dockerfile's final stage, assembled from this Debian 12
# machine instead of pulled: the binary at /gitops-guard, the shared
# libraries it links (glibc and libgcc, as distroless/cc-debian12 has), the
# CA certificates, /etc/passwd and /etc/group with nonroot (65532), /tmp
# (distroless's /home/nonroot and tzdata are left out: the guard uses neither),
# user 65532:65532, entrypoint ["/gitops-guard"], cmd ["serve"], ports 8443
# and 9090. One layer, written by tar with fixed owners, order and times,
# so the same binary gives the same digest. Prints REPO@sha256:….
#
#   scripts/image.sh REF [BINARY]      (BINARY: target/release/gitops-guard)
#
# crane comes from tests/cluster/build-crane.sh. A plain-HTTP registry on
# localhost or 127.0.0.1 works as is; tests/it/image.rs checks the result
# against the Dockerfile.
set -euo pipefail
root=$(cd "$(dirname "$0")/.." && pwd)
ref=${1:?usage: scripts/image.sh REF [BINARY]}
bin=${2:-$root/target/release/gitops-guard}
crane=$root/tests/cluster/bin/crane
[ -x "$crane" ] || { echo "image.sh: $crane missing: run tests/cluster/build-crane.sh" >&2; exit 1; }
[ -x "$bin" ] || { echo "image.sh: $bin missing: run cargo build --release" >&2; exit 1; }
certs=/etc/ssl/certs/ca-certificates.crt
[ -f "$certs" ] || { echo "image.sh: $certs missing: apt-get install ca-certificates" >&2; exit 1; }

work=$(mktemp -d)
trap 'rm -rf "$work"' EXIT
fs=$work/rootfs
mkdir -p "$fs/etc/ssl/certs" "$fs/tmp"
chmod 1777 "$fs/tmp"
install -m 0755 "$bin" "$fs/gitops-guard"
# The libraries the binary links, at the paths the loader looks them up by.
ldd "$bin" | grep -o '/[^ ]*' | sort -u | while read -r lib; do
  mkdir -p "$fs$(dirname "$lib")"
  cp -L "$lib" "$fs$lib"
done
install -m 0644 "$certs" "$fs/etc/ssl/certs/ca-certificates.crt"
printf 'root:x:0:0:root:/root:/sbin/nologin\nnonroot:x:65532:65532:nonroot:/home/nonroot:/sbin/nologin\n' >"$fs/etc/passwd"
printf 'root:x:0:\nnonroot:x:65532:\n' >"$fs/etc/group"
printf 'hosts: files dns\n' >"$fs/etc/nsswitch.conf"
(cd "$fs" && find . -mindepth 1 -maxdepth 1 -printf '%P\n' | sort) >"$work/top"
tar --sort=name --numeric-owner --owner=0 --group=0 --mtime=@0 --format=gnu \
  -C "$fs" -cf "$work/layer.tar" -T "$work/top"
"$crane" append --oci-empty-base -f "$work/layer.tar" -t "$ref" >/dev/null
"$crane" mutate "$ref" -t "$ref" \
  --entrypoint=/gitops-guard --cmd=serve --user=65532:65532 \
  --exposed-ports=8443/tcp,9090/tcp --set-platform=linux/amd64 >/dev/null
digest=$("$crane" digest "$ref")
echo "${ref%:*}@$digest"
