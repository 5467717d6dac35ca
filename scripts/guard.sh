#!/usr/bin/env bash
# Start or stop the gitops-guard process of a run directory made by up.sh.
#   scripts/guard.sh start|stop RUN_DIR
# Ports come from RUN_DIR/guard.env; the binary from GG_GUARD_BIN or target/debug.
set -euo pipefail
root=$(cd "$(dirname "$0")/.." && pwd)
action=${1:?usage: guard.sh start|stop RUN_DIR}
run=${2:?usage: guard.sh start|stop RUN_DIR}
guard_bin=${GG_GUARD_BIN:-$root/target/debug/gitops-guard}
# shellcheck source=/dev/null
. "$run/guard.env"
pidfile="$run/pids/guard.pid"
policy=${GG_POLICY:-}
[ -z "$policy" ] && [ -f "$run/policy.yaml" ] && policy=$run/policy.yaml

case $action in
start)
  setsid "$guard_bin" serve --listen "127.0.0.1:$GUARD_PORT" --admin-listen "127.0.0.1:$ADMIN_PORT" \
    --tls-cert "$run/certs/tls.crt" --tls-key "$run/certs/tls.key" \
    --kubeconfig "$run/cluster/admin.kubeconfig" ${policy:+--policy "$policy"} \
    ${ALERTMANAGER_URL:+--alertmanager-url "$ALERTMANAGER_URL"} --cluster-name local --lease-namespace default \
    >>"$run/logs/guard.log" 2>&1 </dev/null &
  echo $! >"$pidfile"
  for _ in $(seq 300); do
    curl -fsS "http://127.0.0.1:$ADMIN_PORT/readyz" >/dev/null 2>&1 && exit 0
    kill -0 "$(cat "$pidfile")" 2>/dev/null || { echo "guard.sh: gitops-guard exited; see $run/logs/guard.log" >&2; exit 1; }
    sleep 0.2
  done
  echo "guard.sh: gitops-guard not ready after 60s; see $run/logs/guard.log" >&2
  exit 1
  ;;
stop)
  [ -f "$pidfile" ] || exit 0
  pid=$(cat "$pidfile")
  kill -TERM "$pid" 2>/dev/null || true
  for _ in $(seq 100); do kill -0 "$pid" 2>/dev/null || break; sleep 0.1; done
  kill -KILL "$pid" 2>/dev/null || true
  rm -f "$pidfile"
  ;;
*) echo "usage: guard.sh start|stop RUN_DIR" >&2; exit 2 ;;
esac
