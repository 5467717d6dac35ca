#!/usr/bin/env bash
# Real Flux in the local control plane: the Git server with the fleet
# repository (tests/e2e/fleet), source-controller and kustomize-controller
# (built by tests/cluster/build-flux.sh) as processes, each with a token bound
# to a Pod of flux-system that runs as its service account, and the bootstrap
# (the fleet's clusters/local/flux-system, as `flux bootstrap` applies it).
#
#   scripts/flux.sh start RUN_DIR     after up.sh has the cluster and the guard
#   scripts/flux.sh commit RUN_DIR MESSAGE   commit RUN_DIR/git/work and push
#   scripts/flux.sh stop RUN_DIR
set -euo pipefail
root=$(cd "$(dirname "$0")/.." && pwd)
action=${1:?usage: flux.sh start|commit|stop RUN_DIR}
run=${2:?usage: flux.sh start|commit|stop RUN_DIR}
run=$(cd "$run" && pwd)
bin="$root/tests/cluster/bin"
kubectl="$bin/kubectl"
export KUBECONFIG="$run/cluster/admin.kubeconfig"
say() { printf '==> %s\n' "$*"; }
fail() { printf 'flux: %s\n' "$*" >&2; exit 1; }

# shellcheck source=scripts/lib.sh
. "$root/scripts/lib.sh"

wait_for() { # wait_for SECONDS COMMAND...
  local deadline=$((SECONDS + $1))
  shift
  until "$@" >/dev/null 2>&1; do
    [ $SECONDS -lt $deadline ] || return 1
    sleep 0.5
  done
}

git_in() { git -C "$run/git/work" -c user.name=fleet -c user.email=fleet@gitops-guard.local "$@"; }

commit() { # commit MESSAGE: everything in the work tree, pushed to the served repository
  git_in add -A
  git_in commit -q -m "$1"
  git_in push -q origin main
  git_in rev-parse HEAD
}


start_controller() { # start_controller NAME FLAGS...
  local name=$1 metrics health
  shift
  metrics=$(free_port 18080) || fail "no free port"
  health=$(free_port $((metrics + 1))) || fail "no free port"
  # scripts/up.sh wrote it: a token bound to the Pod <name>-0 of flux-system.
  [ -f "$run/cluster/$name.kubeconfig" ] || fail "$run/cluster/$name.kubeconfig missing: start with scripts/up.sh"
  RUNTIME_NAMESPACE=flux-system KUBECONFIG="$run/cluster/$name.kubeconfig" setsid "$bin/$name" \
    --watch-all-namespaces=true --enable-leader-election=false --events-addr= \
    --metrics-addr="127.0.0.1:$metrics" --health-addr="127.0.0.1:$health" "$@" \
    >"$run/logs/$name.log" 2>&1 </dev/null &
  echo $! >"$run/pids/$name.pid"
  wait_for 60 curl -fsS "http://127.0.0.1:$health/readyz" ||
    fail "$name not ready after 60s; see $run/logs/$name.log"
  say "$name ready (health 127.0.0.1:$health, metrics 127.0.0.1:$metrics)"
}

stop_pid() {
  local file="$run/pids/$1.pid" pid
  [ -f "$file" ] || return 0
  pid=$(cat "$file")
  kill -TERM -- "-$pid" 2>/dev/null || kill -TERM "$pid" 2>/dev/null || true
  for _ in $(seq 100); do kill -0 "$pid" 2>/dev/null || break; sleep 0.1; done
  kill -KILL -- "-$pid" 2>/dev/null || true
  rm -f "$file"
}

case $action in
start)
  command -v git >/dev/null || fail "git not found: apt-get install git"
  "$root/tests/cluster/build-flux.sh" || fail "building the Flux controllers failed"
  say "installing Flux's CRDs from the controllers' modules"
  "$kubectl" apply --server-side --force-conflicts -f "$bin/flux-crds/" >>"$run/logs/bootstrap.log" ||
    fail "applying Flux's CRDs failed"
  for crd in gitrepositories.source.toolkit.fluxcd.io kustomizations.kustomize.toolkit.fluxcd.io; do
    wait_for 30 "$kubectl" wait --for=condition=Established --timeout=1s "crd/$crd" || fail "CRD $crd not established"
  done

  say "serving the fleet repository over Git's smart HTTP (gg-cluster git-serve)"
  rm -rf "$run/git"
  mkdir -p "$run/git/repos"
  git init -q --bare -b main "$run/git/repos/fleet.git"
  git -C "$run/git/repos/fleet.git" config http.receivepack true
  setsid "$bin/gg-cluster" git-serve --root "$run/git/repos" --port-file "$run/git/port" \
    >"$run/logs/git-serve.log" 2>&1 </dev/null &
  echo $! >"$run/pids/git-serve.pid"
  wait_for 15 test -s "$run/git/port" || fail "git-serve did not start; see $run/logs/git-serve.log"
  git_url="http://127.0.0.1:$(cat "$run/git/port")"
  echo "$git_url" >"$run/git/url"
  git clone -q "$run/git/repos/fleet.git" "$run/git/work" 2>/dev/null
  cp -r "$root/tests/e2e/fleet/." "$run/git/work/"
  grep -rl GIT_URL "$run/git/work" --include='*.yaml' | xargs sed -i "s#GIT_URL#$git_url#g"
  git_in checkout -q -b main 2>/dev/null || true
  commit "fleet: initial layout" >/dev/null
  git ls-remote "$git_url/fleet.git" main >/dev/null || fail "the fleet repository is not served at $git_url"

  mkdir -p "$run/flux/storage"
  storage=$(free_port 19500) || fail "no free port"
  start_controller source-controller --storage-path="$run/flux/storage" \
    --storage-addr="127.0.0.1:$storage" --storage-adv-addr="127.0.0.1:$storage"
  start_controller kustomize-controller --no-cross-namespace-refs=true

  say "bootstrapping: applying clusters/local/flux-system as flux bootstrap does"
  "$kubectl" apply -k "$run/git/work/clusters/local/flux-system" >>"$run/logs/bootstrap.log" ||
    fail "the bootstrap apply failed"
  printf 'FLUX_GIT_URL=%s\n' "$git_url" >"$run/flux.env"
  ;;
commit)
  commit "${3:?usage: flux.sh commit RUN_DIR MESSAGE}"
  ;;
stop)
  stop_pid kustomize-controller
  stop_pid source-controller
  stop_pid git-serve
  ;;
*) echo "usage: flux.sh start|commit|stop RUN_DIR" >&2; exit 2 ;;
esac
