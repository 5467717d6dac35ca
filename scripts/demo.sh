#!/usr/bin/env bash
# The narrated demo: a real kube-apiserver calls gitops-guard while Flux's
# identity and a developer, alice, change a Deployment with real kubectl.
#   scripts/demo.sh [RUN_DIR]
set -euo pipefail
root=$(cd "$(dirname "$0")/.." && pwd)
run=${1:-${GG_RUN_DIR:-$root/.run}}
"$root/scripts/up.sh" "$run"
run=$(cd "$run" && pwd)
kc="$root/tests/cluster/bin/kubectl"
bold=$(tput bold 2>/dev/null || true) dim=$(tput sgr0 2>/dev/null || true)

step() { printf '\n%s### %s%s\n' "$bold" "$*" "$dim"; }
# as IDENTITY CMD...: run kubectl as a user (client certificate) or as Flux
# (a TokenRequest token), echo the command, show its output, keep going.
as() {
  local who=$1
  shift
  printf '%s[%s]$ kubectl %s%s\n' "$bold" "$who" "$*" "$dim"
  KUBECONFIG="$run/cluster/$who.kubeconfig" "$kc" "$@" 2>&1 || true
}

manifest() { # manifest NAMESPACE REPLICAS
  cat <<EOF
apiVersion: apps/v1
kind: Deployment
metadata:
  name: web
  namespace: $1
  labels:
    app: web
    kustomize.toolkit.fluxcd.io/name: apps
    kustomize.toolkit.fluxcd.io/namespace: flux-system
spec:
  replicas: $2
  selector: {matchLabels: {app: web}}
  template:
    metadata: {labels: {app: web}}
    spec:
      containers: [{name: web, image: nginx:1.27}]
EOF
}

step "Namespaces: shop enforces (the default), staging only warns"
as admin create namespace shop
as admin create namespace staging
as admin label namespace staging gitops-guard.io/mode=warn

step "Flux (kustomize-controller's service-account token) applies the Deployment from Git"
manifest shop 2 >"$run/web-shop.yaml"
manifest staging 2 >"$run/web-staging.yaml"
as kustomize-controller apply --server-side --field-manager=kustomize-controller -f "$run/web-shop.yaml"
as kustomize-controller apply --server-side --field-manager=kustomize-controller -f "$run/web-staging.yaml"

step "alice (client certificate, group developers) edits it in production: denied"
export KUBE_EDITOR="sed -i s/replicas:\ 2/replicas:\ 5/"
as alice edit deployment/web -n shop

step "alice scales it: denied"
as alice scale deployment/web -n shop --replicas=5

step "alice pretends to be Flux with --field-manager: still denied"
as alice apply --server-side --field-manager=kustomize-controller --force-conflicts -f "$run/web-shop.yaml" --dry-run=server

step "alice deletes it: denied"
as alice delete deployment/web -n shop --wait=false

step "In staging (mode warn) the same edit goes through, and kubectl prints the guard's warning"
as alice scale deployment/web -n staging --replicas=3

step "Break-glass: an admin grants alice 20 seconds in shop"
expires=$(date -u -d '+20 seconds' +%Y-%m-%dT%H:%M:%SZ)
cat >"$run/breakglass.yaml" <<EOF
apiVersion: gitops-guard.io/v1alpha1
kind: BreakGlass
metadata: {name: inc-4711, namespace: shop}
spec:
  subjects: [{kind: User, name: alice}]
  reason: "INC-4711: roll back a bad config by hand"
  expiresAt: "$expires"
EOF
as admin apply -f "$run/breakglass.yaml"
as admin get breakglass -n shop
sleep 1 # the guard's watch delivers the grant
as alice scale deployment/web -n shop --replicas=3

step "After the grant expires, alice is denied again"
while [ "$(date -u +%s)" -le "$(date -u -d "$expires" +%s)" ]; do sleep 1; done
as alice scale deployment/web -n shop --replicas=4

step "Flux itself may still change and prune what it owns"
as kustomize-controller scale deployment/web -n shop --replicas=2
as kustomize-controller delete deployment/web -n shop

printf '\n%sDone.%s The control plane and the guard are still running:\n' "$bold" "$dim"
cat "$run/env"
printf 'Metrics: curl -s http://127.0.0.1:%s/metrics | grep gitops_guard_admission\n' \
  "$(sed -n 's/ADMIN_PORT=//p' "$run/guard.env")"
printf 'Stop everything with: make down\n'
