#!/usr/bin/env bash
# Stop everything scripts/up.sh started, by PID, and remove its run directory.
#   scripts/down.sh [RUN_DIR]      default RUN_DIR: .run
set -uo pipefail
root=$(cd "$(dirname "$0")/.." && pwd)
run=${1:-${GG_RUN_DIR:-$root/.run}}
[ -d "$run/pids" ] || { echo "down: nothing running from $run"; rm -rf "$run"; exit 0; }

stop() { # stop NAME [SECONDS]: SIGTERM the process group, SIGKILL after SECONDS (15)
  local file="$run/pids/$1.pid" pid limit=$((${2:-15} * 10))
  [ -f "$file" ] || return 0
  pid=$(cat "$file")
  if kill -0 "$pid" 2>/dev/null; then
    kill -TERM -- "-$pid" 2>/dev/null || kill -TERM "$pid" 2>/dev/null
    for _ in $(seq "$limit"); do kill -0 "$pid" 2>/dev/null || break; sleep 0.1; done
    if kill -0 "$pid" 2>/dev/null; then
      echo "down: $1 (pid $pid) ignored SIGTERM; killing it"
      kill -KILL -- "-$pid" 2>/dev/null || kill -KILL "$pid" 2>/dev/null
    fi
  fi
  echo "down: stopped $1"
  rm -f "$file"
}
# The node first, while the apiserver still answers: it deletes its Pods,
# then stops its components and restores the host (tests/cluster/node.go).
stop node 120
stop kustomize-controller
stop source-controller
stop git-serve
stop guard
stop registry-plain
stop registry-auth
stop alertmanager
stop cluster
if [ "${GG_KEEP_RUN_DIR:-}" = 1 ]; then
  echo "down: logs kept in $run"
else
  rm -rf "$run"
fi
