#!/usr/bin/env bash
# Start the local control plane (etcd + kube-apiserver + kube-controller-manager
# from tests/cluster), Flux's identities and CRDs, gitops-guard behind the
# webhook registration from manifests/ (overlay manifests/local), and then
# real Flux (source-controller, kustomize-controller, a Git server with the
# fleet repository: scripts/flux.sh) reconciling through the guard.
#
#   scripts/up.sh [RUN_DIR]        default RUN_DIR: .run
#   GG_FLUX=0 scripts/up.sh        no Flux controllers: tests play Flux by hand
#   GG_NODE=1 scripts/up.sh        also a node on this host (root; tests/cluster/NODE.md):
#                                  containerd, kubelet, kube-proxy, kube-scheduler
#   GG_GUARD=0 scripts/up.sh       no local gitops-guard process and no webhook
#                                  registration (the in-cluster e2e installs it)
#
# Everything started is recorded in RUN_DIR/pids; scripts/down.sh stops it.
set -euo pipefail

root=$(cd "$(dirname "$0")/.." && pwd)
run=${1:-${GG_RUN_DIR:-$root/.run}}
mkdir -p "$run"
run=$(cd "$run" && pwd)
kubectl="$root/tests/cluster/bin/kubectl"
guard_bin=${GG_GUARD_BIN:-$root/target/debug/gitops-guard}

exec 3>&2 # fail() reports here even from inside a silenced wait_for check
say() { printf '==> %s\n' "$*"; }
fail() {
  printf 'up: %s\n' "$*" >&3
  printf 'up: logs are in %s/logs; run scripts/down.sh %s (make down) to clean up\n' "$run" "$run" >&3
  exit 1
}

if [ -f "$run/pids/cluster.pid" ] && kill -0 "$(cat "$run/pids/cluster.pid")" 2>/dev/null; then
  fail "a control plane from $run is already running (pid $(cat "$run/pids/cluster.pid")); run 'make down' first"
fi
rm -rf "$run/cluster" "$run/certs" "$run/pids" "$run/logs" "$run/env"
mkdir -p "$run/pids" "$run/logs"

# shellcheck source=scripts/lib.sh
. "$root/scripts/lib.sh"

wait_for() { # wait_for SECONDS DESCRIPTION COMMAND...
  local deadline=$((SECONDS + $1)) what=$2
  shift 2
  until "$@" >/dev/null 2>&1; do
    [ $SECONDS -lt $deadline ] || return 1
    sleep 0.2
  done
  say "$what"
}

flux=${GG_FLUX:-1}
node=${GG_NODE:-0}
guard=${GG_GUARD:-1}
node_arg=()
[ "$node" = 1 ] && node_arg=(node)
"$root/scripts/prerequisites.sh" "${node_arg[@]}" || exit 1
say "building the control-plane harness (cached)"
"$root/tests/cluster/build.sh" || fail "building tests/cluster failed"
if [ "$flux" = 1 ]; then
  say "building Flux's source-controller and kustomize-controller (cached)"
  "$root/tests/cluster/build-flux.sh" || fail "building the Flux controllers failed"
fi
if [ "$node" = 1 ]; then
  say "building the node's kubelet, kube-proxy, kube-scheduler and pause (cached), and crane"
  "$root/tests/cluster/build-node.sh" || fail "building the node's programs failed"
  "$root/tests/cluster/build-crane.sh" || fail "building crane failed"
  "$root/tests/cluster/build-netpol.sh" || fail "building kube-network-policies failed"
fi
if [ -z "${GG_GUARD_BIN:-}" ]; then
  say "building gitops-guard"
  (cd "$root" && cargo build --quiet --bin gitops-guard) || fail "cargo build failed"
fi

api_port=${GG_API_PORT:-$(free_port 16443)} || fail "no free port for kube-apiserver"
say "starting etcd, kube-apiserver (127.0.0.1:$api_port) and kube-controller-manager"
node_flag=()
[ "$node" = 1 ] && node_flag=(--node)
setsid "$root/tests/cluster/bin/gg-cluster" up --dir "$run/cluster" --port "$api_port" "${node_flag[@]}" \
  >"$run/logs/gg-cluster.log" 2>&1 </dev/null &
echo $! >"$run/pids/cluster.pid"
cluster_up() { # ready, or fail at once if gg-cluster has exited
  [ -f "$run/cluster/ready" ] && return 0
  if ! kill -0 "$(cat "$run/pids/cluster.pid")" 2>/dev/null; then
    fail "the control plane exited: $(tail -n 3 "$run/logs/gg-cluster.log")"
  fi
  return 1
}
wait_for 120 "control plane ready" cluster_up ||
  fail "control plane not ready after 120s; see $run/logs/gg-cluster.log and $run/cluster/logs/"
export KUBECONFIG="$run/cluster/admin.kubeconfig"
wait_for 60 "API answering" "$kubectl" get --raw /readyz || fail "kube-apiserver /readyz not ok"

say "installing Flux identities, the HelmRelease CRD and users' RBAC"
"$kubectl" apply -f "$root/tests/e2e/manifests/" >"$run/logs/bootstrap.log" || fail "bootstrap apply failed"
if [ "$flux" = 1 ]; then
  "$kubectl" apply --server-side -f "$root/tests/cluster/bin/flux-crds/" >>"$run/logs/bootstrap.log" ||
    fail "applying Flux's CRDs failed"
else
  "$kubectl" apply -f "$root/tests/e2e/crds-minimal/" >>"$run/logs/bootstrap.log" || fail "applying the minimal Kustomization CRD failed"
fi
wait_for 30 "Flux CRDs established" "$kubectl" wait --for=condition=Established --timeout=1s \
  crd/kustomizations.kustomize.toolkit.fluxcd.io crd/helmreleases.helm.toolkit.fluxcd.io ||
  fail "Flux CRDs not established"
if [ "$flux" != 1 ]; then
  "$kubectl" apply -f "$root/tests/e2e/flux-apps.yaml" >>"$run/logs/bootstrap.log" || fail "applying the Flux Kustomization failed"
fi

token_kubeconfig() { # token_kubeconfig NAMESPACE SERVICEACCOUNT: a token bound to the Pod <SA>-0
  local file="$run/cluster/$2.kubeconfig" token
  token=$("$kubectl" create token "$2" -n "$1" --duration=24h \
    --bound-object-kind=Pod --bound-object-name="$2-0") || fail "TokenRequest for $1/$2 failed"
  cp "$run/cluster/admin.kubeconfig" "$file"
  KUBECONFIG=$file "$kubectl" config set-credentials "$2" --token="$token" >/dev/null
  KUBECONFIG=$file "$kubectl" config set-context --current --user="$2" >/dev/null
}
token_kubeconfig flux-system kustomize-controller
token_kubeconfig flux-system source-controller
token_kubeconfig flux-system helm-controller
token_kubeconfig argocd argocd-application-controller

say "installing the BreakGlass CRD (manifests/crds)"
"$kubectl" apply -k "$root/manifests/crds" >>"$run/logs/bootstrap.log" || fail "applying manifests/crds failed"
wait_for 30 "BreakGlass CRD established" "$kubectl" wait --for=condition=Established --timeout=1s \
  crd/breakglasses.gitops-guard.io || fail "BreakGlass CRD not established"

say "starting two local registries (docker-registry): plain, and htpasswd user 'puller'"
mkdir -p "$run/registry"
registry_password=${GG_REGISTRY_PASSWORD:-pull-secret-pw}
htpasswd -Bbn puller "$registry_password" >"$run/registry/htpasswd" 2>/dev/null || fail "htpasswd failed"
start_registry() { # start_registry NAME PORT [auth]
  {
    echo "version: 0.1"
    echo "log: {level: info, formatter: text}"
    echo "storage: {filesystem: {rootdirectory: $run/registry/$1-data}, delete: {enabled: true}}"
    echo "http: {addr: 127.0.0.1:$2}"
    if [ "${3:-}" = auth ]; then
      echo "auth: {htpasswd: {realm: gitops-guard-local, path: $run/registry/htpasswd}}"
    fi
  } >"$run/registry/$1.yml"
  setsid docker-registry serve "$run/registry/$1.yml" >"$run/logs/registry-$1.log" 2>&1 </dev/null &
  echo $! >"$run/pids/registry-$1.pid"
}
plain_port=$(free_port 15000) || fail "no free port for the registry"
start_registry plain "$plain_port"
auth_port=$(free_port $((plain_port + 1))) || fail "no free port for the registry"
start_registry auth "$auth_port" auth
registries_up() {
  curl -sf -o /dev/null "http://127.0.0.1:$plain_port/v2/" &&
    [ "$(curl -s -o /dev/null -w '%{http_code}' "http://127.0.0.1:$auth_port/v2/")" = 401 ]
}
wait_for 15 "registries on 127.0.0.1:$plain_port and 127.0.0.1:$auth_port (htpasswd)" registries_up ||
  fail "the local registries did not start; see $run/logs/registry-*.log"
if [ "$node" = 1 ]; then
  # The sandbox image, like every image the node runs, comes from the local
  # registry: one layer holding the static pause binary (build-node.sh).
  say "pushing the pause image and starting the node (containerd, kubelet, kube-proxy, kube-scheduler)"
  pause_ref="127.0.0.1:$plain_port/pause:gg"
  mkdir -p "$run/pause"
  tar --numeric-owner --owner=0 --group=0 --mtime=@0 -C "$root/tests/cluster/bin" -cf "$run/pause/layer.tar" pause
  "$root/tests/cluster/bin/crane" append --oci-empty-base -f "$run/pause/layer.tar" -t "$pause_ref" >/dev/null 2>>"$run/logs/bootstrap.log" &&
    "$root/tests/cluster/bin/crane" mutate "$pause_ref" -t "$pause_ref" --entrypoint=/pause \
      --set-platform=linux/amd64 >/dev/null 2>>"$run/logs/bootstrap.log" || fail "pushing the pause image failed"
  # busybox-static as one layer (its applets by `busybox NAME`), for tests
  # that need a shell or nc in a Pod or an ephemeral container.
  busybox_ref="127.0.0.1:$plain_port/busybox:gg"
  mkdir -p "$run/busybox/bin"
  cp /bin/busybox "$run/busybox/bin/busybox"
  tar --numeric-owner --owner=0 --group=0 --mtime=@0 -C "$run/busybox" -cf "$run/busybox/layer.tar" bin
  "$root/tests/cluster/bin/crane" append --oci-empty-base -f "$run/busybox/layer.tar" -t "$busybox_ref" >/dev/null 2>>"$run/logs/bootstrap.log" &&
    "$root/tests/cluster/bin/crane" mutate "$busybox_ref" -t "$busybox_ref" --entrypoint=/bin/busybox \
      --set-platform=linux/amd64 >/dev/null 2>>"$run/logs/bootstrap.log" || fail "pushing the busybox image failed"
  # NetworkPolicy: kube-network-policies, as the identity this grants.
  "$kubectl" apply -f "$root/tests/cluster/network-policies.yaml" >>"$run/logs/bootstrap.log" ||
    fail "applying tests/cluster/network-policies.yaml failed"
  setsid "$root/tests/cluster/bin/gg-cluster" node --dir "$run/node" --cluster "$run/cluster" \
    --pause-image "$pause_ref" --network-policies >"$run/logs/node.log" 2>&1 </dev/null &
  echo $! >"$run/pids/node.pid"
  node_up() {
    [ -f "$run/node/ready" ] && return 0
    kill -0 "$(cat "$run/pids/node.pid")" 2>/dev/null || fail "the node exited: $(tail -n 5 "$run/logs/node.log")"
    return 1
  }
  wait_for 120 "node $(hostname) Ready" node_up || fail "the node was not Ready after 120s; see $run/logs/node.log and $run/node/logs/"
fi
printf 'PLAIN_REGISTRY=127.0.0.1:%s\nAUTH_REGISTRY=127.0.0.1:%s\nAUTH_REGISTRY_USER=puller\nAUTH_REGISTRY_PASSWORD=%s\n' \
  "$plain_port" "$auth_port" "$registry_password" >"$run/registries.env"
# The guard's policy here: the embedded defaults, plus plain HTTP to the two
# local registries and a short cache TTL, so a moved tag is seen in seconds.
printf 'images:\n  registries:\n    "127.0.0.1:%s": {plainHttp: true}\n    "127.0.0.1:%s": {plainHttp: true}\n  cache: {ttl: 3s, negativeTtl: 1s}\n' \
  "$plain_port" "$auth_port" >"$run/policy.yaml"

say "starting Alertmanager (prometheus-alertmanager) for drift alerts"
mkdir -p "$run/alertmanager"
printf 'route: {receiver: "null", group_wait: 1s, group_interval: 1s, repeat_interval: 1h}\nreceivers: [{name: "null"}]\n' \
  >"$run/alertmanager/config.yml"
# With a node, Alertmanager's default port: the shipped NetworkPolicy lets
# the guard reach Alertmanager on 9093 only.
am_from=19093
[ "$node" = 1 ] && am_from=9093
am_port=$(free_port "$am_from") || fail "no free port for Alertmanager"
echo "$am_port" >"$run/alertmanager/port"
# With a node, Pods (the guard installed in-cluster) send to it on the host's address.
[ "$node" = 1 ] && echo 0.0.0.0 >"$run/alertmanager/listen"
"$root/scripts/alertmanager.sh" start "$run" || fail "Alertmanager did not start; see $run/logs/alertmanager.log"
say "Alertmanager on 127.0.0.1:$am_port"
printf 'drift:\n  resendInterval: 5s\n' >>"$run/policy.yaml"
# Platform admins (system:masters) may flux suspend / resume; anyone else
# needs a BreakGlass grant in enforce namespaces.
printf 'compatibility:\n  suspend:\n    operatorGroups: ["system:masters"]\n' >>"$run/policy.yaml"

if [ "$guard" = 1 ]; then
# (not indented: the heredocs below end at column 0)
say "generating the webhook certificate with gitops-guard cert"
ca_bundle=$("$guard_bin" cert --out "$run/certs" --ip 127.0.0.1 --dns localhost) || fail "gitops-guard cert failed"

guard_port=${GG_GUARD_PORT:-$(free_port 18443)} || fail "no free port for the webhook"
admin_port=${GG_ADMIN_PORT:-$(free_port 19090)} || fail "no free port for the admin listener"
say "starting gitops-guard serve on 127.0.0.1:$guard_port (admin 127.0.0.1:$admin_port)"
cat >"$run/guard.env" <<EOF
GUARD_PORT=$guard_port
ADMIN_PORT=$admin_port
ALERTMANAGER_URL=http://127.0.0.1:$am_port/
EOF
"$root/scripts/guard.sh" start "$run" &
guard_starting=$!

say "registering the webhook from manifests/local"
"$kubectl" kustomize "$root/manifests/local" | sed -e "s/GUARD_PORT/$guard_port/g" -e "s/CA_BUNDLE/$ca_bundle/g" \
  >"$run/webhook.yaml" || fail "kubectl kustomize manifests/local failed"
"$kubectl" apply -f "$run/webhook.yaml" >>"$run/logs/bootstrap.log" || fail "registering the webhook failed"
wait "$guard_starting" || fail "gitops-guard did not become ready; see $run/logs/guard.log"
say "gitops-guard ready"

# The apiserver picks up new webhook configurations asynchronously: wait until
# a spoofed create is really denied.
spoof() {
  local out
  out=$(KUBECONFIG="$run/cluster/alice.kubeconfig" "$kubectl" apply --dry-run=server -f - 2>&1 <<'EOF'
apiVersion: v1
kind: ConfigMap
metadata:
  name: gg-probe
  namespace: default
  labels: {kustomize.toolkit.fluxcd.io/name: probe, kustomize.toolkit.fluxcd.io/namespace: flux-system}
EOF
  )
  [[ $out == *'gitops-guard.io" denied'* ]]
}
wait_for 60 "webhook in force" spoof || fail "the apiserver never called the webhook; see $run/logs/guard.log"
fi

if [ "$flux" = 1 ]; then
  say "starting Flux: Git server, source-controller, kustomize-controller, bootstrap"
  "$root/scripts/flux.sh" start "$run" || fail "starting Flux failed; see $run/logs/"
fi

cat >"$run/env" <<EOF
export KUBECONFIG=$run/cluster/admin.kubeconfig
export PATH=$root/tests/cluster/bin:\$PATH
# as alice (group developers):  KUBECONFIG=$run/cluster/alice.kubeconfig kubectl ...
# as Flux:                       KUBECONFIG=$run/cluster/kustomize-controller.kubeconfig kubectl ...
# registries (plain HTTP):       127.0.0.1:$plain_port, 127.0.0.1:$auth_port (htpasswd user puller)
# Alertmanager (drift alerts):   http://127.0.0.1:$am_port/#/alerts
EOF
say "up. To use it:"
cat "$run/env"
