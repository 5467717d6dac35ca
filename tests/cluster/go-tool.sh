# Sourced by build-helm.sh and build-crane.sh: builds one pure-Go command
# from its module's zip into tests/cluster/bin/NAME, again only when its
# recipe changes (a stamp file beside it holds the recipe's hash).
#
#   go_tool NAME MODULE@VERSION PACKAGE LDFLAGS [PATCH]
#
# PATCH (a file, `patch -p1` from the module's root) is applied to the copy
# of the module before the build; its content is part of the recipe.
go_tool() {
  local name=$1 module=$2 package=$3 ldflags=$4 patch=${5:-} here stamp work dir started
  here=$(cd "$(dirname "${BASH_SOURCE[0]}")" && pwd)
  if ! command -v go >/dev/null 2>&1; then
    echo "build-$name.sh: go not found; install Go >= 1.26 and retry" >&2
    return 1
  fi
  stamp=$( (echo "$name $module $package CGO_ENABLED=0 -trimpath -ldflags=$ldflags" && if [ -n "$patch" ]; then cat "$patch"; fi) | sha256sum | cut -d' ' -f1)
  if [ -x "$here/bin/$name" ] && [ "$(cat "$here/bin/.$name-stamp" 2>/dev/null)" = "$stamp" ]; then
    echo "$name up to date"
    return 0
  fi
  mkdir -p "$here/bin"
  work=$(mktemp -d)
  started=$SECONDS
  echo "building $name ($module, $(go version | cut -d' ' -f3))"
  dir=$(go mod download -json "$module" | sed -n 's/^\t"Dir": "\(.*\)",$/\1/p')
  if [ -z "$dir" ]; then
    echo "build-$name.sh: go mod download $module failed" >&2
    rm -rf "$work"
    return 1
  fi
  cp -r "$dir" "$work/src"
  chmod -R u+w "$work/src"
  if [ -n "$patch" ] && ! patch -s -p1 -d "$work/src" <"$patch"; then
    echo "build-$name.sh: $patch does not apply to $module" >&2
    rm -rf "$work"
    return 1
  fi
  (
    cd "$work/src"
    CGO_ENABLED=0 GOFLAGS=-mod=mod go build -buildvcs=false -trimpath -ldflags="$ldflags" \
      -o "$here/bin/$name.new" "$package"
  ) || { chmod -R u+w "$work"; rm -rf "$work"; return 1; }
  chmod -R u+w "$work"
  rm -rf "$work"
  mv "$here/bin/$name.new" "$here/bin/$name"
  echo "$stamp" >"$here/bin/.$name-stamp"
  echo "built bin/$name in $((SECONDS - started))s"
}

# The -X flags of a Kubernetes build, for the version the harness's go.mod
# pins (build.sh, build-node.sh); the upstream Makefile sets the same.
k8s_ldflags() {
  local here k8s minor ldflags="-s -w" pkg
  here=$(cd "$(dirname "${BASH_SOURCE[0]}")" && pwd)
  k8s=$(sed -n 's/.*k8s.io\/kubernetes \(v[0-9.]*\)$/\1/p' "$here/go.mod")
  minor=$(echo "$k8s" | cut -d. -f2)
  for pkg in k8s.io/component-base/version k8s.io/client-go/pkg/version; do
    ldflags="$ldflags -X $pkg.gitVersion=$k8s -X $pkg.gitMajor=1 -X $pkg.gitMinor=$minor -X $pkg.gitTreeState=clean"
  done
  echo "$ldflags"
}
