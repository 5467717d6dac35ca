#!/usr/bin/env bash
# Start or stop the Alertmanager of a run directory made by up.sh.
#   scripts/alertmanager.sh start|stop RUN_DIR
# Config and data in RUN_DIR/alertmanager; the port in RUN_DIR/alertmanager/port.
set -euo pipefail
action=${1:?usage: alertmanager.sh start|stop RUN_DIR}
run=${2:?usage: alertmanager.sh start|stop RUN_DIR}
pidfile="$run/pids/alertmanager.pid"
port=$(cat "$run/alertmanager/port")
listen=127.0.0.1
[ -f "$run/alertmanager/listen" ] && listen=$(cat "$run/alertmanager/listen")

case $action in
start)
  setsid prometheus-alertmanager --config.file="$run/alertmanager/config.yml" \
    --storage.path="$run/alertmanager/data" --web.listen-address="$listen:$port" \
    --cluster.listen-address= >>"$run/logs/alertmanager.log" 2>&1 </dev/null &
  echo $! >"$pidfile"
  for _ in $(seq 100); do
    curl -sf "http://127.0.0.1:$port/-/ready" >/dev/null 2>&1 && exit 0
    kill -0 "$(cat "$pidfile")" 2>/dev/null || { echo "alertmanager.sh: exited; see $run/logs/alertmanager.log" >&2; exit 1; }
    sleep 0.2
  done
  echo "alertmanager.sh: not ready after 20s; see $run/logs/alertmanager.log" >&2
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
*) echo "usage: alertmanager.sh start|stop RUN_DIR" >&2; exit 2 ;;
esac
