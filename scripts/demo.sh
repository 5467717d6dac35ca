#!/usr/bin/env bash
# The narrated demo: a real kube-apiserver calls gitops-guard while real Flux
# reconciles a fleet repository and a developer, alice, uses real kubectl.
#   scripts/demo.sh [RUN_DIR]
set -euo pipefail
root=$(cd "$(dirname "$0")/.." && pwd)
run=${1:-${GG_RUN_DIR:-$root/.run}}
"$root/scripts/up.sh" "$run"
run=$(cd "$run" && pwd)
kc="$root/tests/cluster/bin/kubectl"
guard_bin=${GG_GUARD_BIN:-$root/target/debug/gitops-guard}
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

flux() { # what `flux reconcile|suspend|resume` send, as WHO, shown as the flux command
  local who=$1 verb=$2 kind=$3 name=$4 ns=$5
  printf '%s[%s]$ flux %s %s %s -n %s%s\n' "$bold" "$who" "$verb" "$kind" "$name" "$ns" "$dim"
  case $verb in
  reconcile) KUBECONFIG="$run/cluster/$who.kubeconfig" "$kc" annotate --overwrite "$kind" "$name" -n "$ns" \
    "reconcile.fluxcd.io/requestedAt=$(date -u +%Y-%m-%dT%H:%M:%S.%NZ)" 2>&1 || true ;;
  suspend | resume)
    local value=true
    [ "$verb" = resume ] && value=false
    KUBECONFIG="$run/cluster/$who.kubeconfig" "$kc" patch "$kind" "$name" -n "$ns" --type=merge \
      -p "{\"spec\":{\"suspend\":$value}}" 2>&1 || true ;;
  esac
}
# wait_ready SECONDS: every GitRepository and Kustomization Ready.
wait_ready() {
  local deadline=$((SECONDS + $1))
  while [ $SECONDS -lt $deadline ]; do
    if ! "$kc" --kubeconfig "$run/cluster/admin.kubeconfig" get gitrepositories,kustomizations -A \
      -o 'jsonpath={range .items[*]}{.status.conditions[?(@.type=="Ready")].status}{"\n"}{end}' 2>/dev/null |
      grep -qv True; then
      return 0
    fi
    sleep 2
  done
  return 1
}
# replicas NAMESPACE WANT: waits up to 90 s for Deployment web's spec.replicas.
replicas() {
  for _ in $(seq 90); do
    [ "$("$kc" --kubeconfig "$run/cluster/admin.kubeconfig" get deployment web -n "$1" -o 'jsonpath={.spec.replicas}')" = "$2" ] && return 0
    sleep 1
  done
  return 1
}

step "Real Flux (source-controller, kustomize-controller) bootstrapped from a Git server, through the guard"
wait_ready 240 || echo "(not every Flux object is Ready yet)"
as admin get gitrepositories,kustomizations -A

step "alice (client certificate, group developers) edits the Deployment Flux applied in shop: denied"
export KUBE_EDITOR="sed -i s/replicas:\ 1/replicas:\ 5/"
as alice edit deployment/web -n shop

step "alice scales it: denied"
as alice scale deployment/web -n shop --replicas=5

step "alice pretends to be Flux with --field-manager: still denied"
"$kc" --kubeconfig "$run/cluster/admin.kubeconfig" get deployment web -n shop -o yaml >"$run/web-shop.yaml"
as alice apply --server-side --field-manager=kustomize-controller --force-conflicts -f "$run/web-shop.yaml" --dry-run=server

step "alice deletes it: denied"
as alice delete deployment/web -n shop --wait=false

step "But alice may ask Flux to reconcile (the annotation flux reconcile and Receivers set, and nothing else)"
flux alice reconcile kustomization apps flux-system

step "Suspending switches GitOps off: alice is denied, a platform admin (a policy operator) may"
flux alice suspend kustomization apps flux-system
flux admin suspend kustomization apps flux-system
flux admin resume kustomization apps flux-system

step "In staging (mode warn, set in Git) the same edit goes through, and kubectl prints the guard's warning"
as alice scale deployment/web -n staging --replicas=3

am_url=$(sed -n 's/^ALERTMANAGER_URL=//p' "$run/guard.env")
alerts() { # the GitOpsDrift alerts for staging, as Alertmanager lists them
  printf '%s$ amtool alert query alertname=GitOpsDrift namespace=staging%s\n' "$bold" "$dim"
  amtool --alertmanager.url="$am_url" alert query alertname=GitOpsDrift namespace=staging \
    -o extended 2>&1 | cut -c1-220 || true
}

step "The drift watcher saw it: a GitOpsDrift alert in Alertmanager, naming alice"
for _ in $(seq 20); do # the leader delivers within a second or two
  amtool --alertmanager.url="$am_url" alert query alertname=GitOpsDrift namespace=staging 2>/dev/null |
    grep -q GitOpsDrift && break
  sleep 0.5
done
alerts
as admin get events -n staging --field-selector reason=GitOpsDrift

step "Flux's next reconcile takes the field back: the alert resolves"
flux alice reconcile kustomization apps flux-system
replicas staging 1 || true
sleep 2
as admin get deployment web -n staging
alerts
as admin get events -n staging --field-selector reason=GitOpsDriftResolved

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

step "The way to change it: a commit. Flux applies it (and takes back alice's break-glass change)"
sed -i 's/replicas: 1/replicas: 2/' "$run/git/work/apps/shop.yaml"
printf '%s$ git commit -am "shop: 2 replicas" && git push%s\n' "$bold" "$dim"
"$root/scripts/flux.sh" commit "$run" "shop: 2 replicas"
flux alice reconcile gitrepository flux-system flux-system
replicas shop 2 || true
as admin get deployment web -n shop
as admin get kustomization apps -n flux-system

# push_image REGISTRY REPO TAG SEED: a one-layer OCI image through the
# registry's own API; prints the digest the registry serves.
push_image() {
  local reg=$1 repo=$2 tag=$3 dir
  dir=$(mktemp -d)
  head -c 1024 /dev/zero >"$dir/layer"
  printf '{"architecture":"amd64","os":"linux","config":{"Labels":{"seed":"%s"}},"rootfs":{"type":"layers","diff_ids":["sha256:%s"]}}' \
    "$4" "$(sha256sum <"$dir/layer" | cut -d' ' -f1)" >"$dir/config"
  for blob in layer config; do
    local digest location
    digest=sha256:$(sha256sum <"$dir/$blob" | cut -d' ' -f1)
    location=$(curl -si -X POST "http://$reg/v2/$repo/blobs/uploads/" | tr -d '\r' | sed -n 's/^[Ll]ocation: //p')
    case $location in /*) location=http://$reg$location ;; esac
    # Not form-encoded: the registry would parse the body as a form.
    curl -sf -X PUT -H "Content-Type: application/octet-stream" --data-binary "@$dir/$blob" \
      "$location&digest=$digest" >/dev/null
    echo "$digest" >"$dir/$blob.digest"
  done
  printf '{"schemaVersion":2,"mediaType":"application/vnd.oci.image.manifest.v1+json","config":{"mediaType":"application/vnd.oci.image.config.v1+json","digest":"%s","size":%s},"layers":[{"mediaType":"application/vnd.oci.image.layer.v1.tar","digest":"%s","size":1024}]}' \
    "$(cat "$dir/config.digest")" "$(wc -c <"$dir/config")" "$(cat "$dir/layer.digest")" >"$dir/manifest"
  curl -sf -X PUT -H 'Content-Type: application/vnd.oci.image.manifest.v1+json' \
    --data-binary "@$dir/manifest" "http://$reg/v2/$repo/manifests/$tag" -D - -o /dev/null |
    tr -d '\r' | sed -n 's/^[Dd]ocker-[Cc]ontent-[Dd]igest: //p'
  rm -rf "$dir"
}

step "Digest pinning: in a namespace labelled gitops-guard.io/pin-images=pin, tags become digests"
registry=$(sed -n 's/^PLAIN_REGISTRY=//p' "$run/registries.env")
as admin create namespace pinned
as admin label namespace pinned gitops-guard.io/pin-images=pin
printf 'pushed %s/demo/web:1.0 -> %s\n' "$registry" "$(push_image "$registry" demo/web 1.0 one)"
as admin create deployment web -n pinned --image="$registry/demo/web:1.0"
as admin get deployment web -n pinned -o 'jsonpath={.spec.template.spec.containers[0].image}{"\n"}'

step "A registry that cannot be reached: pin mode lets the Deployment through, unpinned, with a warning"
as admin create deployment offline -n pinned --image=127.0.0.1:1/demo/web:1.0

step "Tenants: team-a and team-b come from Git as 'flux create tenant' lays them out, each reconciled as its own account"
as admin get kustomizations -n team-a
as admin get configmaps -n team-a -l kustomize.toolkit.fluxcd.io/name=team-a

step "An over-broad binding lets team-a's reconciler into team-b: RBAC says yes, the guard says no"
as admin create rolebinding team-a-overreach -n team-b --clusterrole=edit --serviceaccount=team-a:team-a
as admin auth can-i create configmaps -n team-b --as=system:serviceaccount:team-a:team-a
as kustomize-controller create configmap overreach -n team-b --as=system:serviceaccount:team-a:team-a

step "alice poses as kustomize-controller (impersonation: no Pod-bound token): denied and alerted"
as alice create configmap posing -n shop --as=system:serviceaccount:flux-system:kustomize-controller

step "The audit reports the over-broad binding and who can impersonate team-a's reconciler"
# (The local cluster's developer role is deliberately broad, core '*' included,
# so it also lists every reconciler as impersonable by the developer groups.)
printf '%s$ gitops-guard audit tenants | grep team-a%s\n' "$bold" "$dim"
KUBECONFIG="$run/cluster/admin.kubeconfig" "$guard_bin" audit tenants 2>&1 | grep -E 'FINDING|TENANT|team-a' || true

printf '\n%sDone.%s The control plane and the guard are still running:\n' "$bold" "$dim"
cat "$run/env"
printf 'Metrics: curl -s http://127.0.0.1:%s/metrics | grep gitops_guard_admission\n' \
  "$(sed -n 's/ADMIN_PORT=//p' "$run/guard.env")"
printf 'Stop everything with: make down\n'
