#!/usr/bin/env bash
# Runs every cargo-fuzz target for SECONDS each (default 60) and prints one
# line per target: executions, time, result. Seeds each corpus from the test
# fixtures and the default policy; corpora and crashes stay under fuzz/
# (git-ignored). Needs the nightly toolchain; installs cargo-fuzz if missing.
#   scripts/fuzz.sh [SECONDS]
set -euo pipefail
root=$(cd "$(dirname "$0")/.." && pwd)
seconds=${1:-60}
cd "$root/fuzz"
command -v cargo-fuzz >/dev/null || cargo install cargo-fuzz --locked --version 0.13.2

seed() {
  local target=$1
  shift
  mkdir -p "corpus/$target"
  for f in "$@"; do cp -f "$f" "corpus/$target/" 2>/dev/null || true; done
}
seed admission_review "$root"/tests/fixtures/*.json
seed pin_patch "$root"/tests/fixtures/*.json
seed policy "$root"/policy/*.yaml
mkdir -p corpus/image_reference
printf '%s' 'nginx:1.27' >corpus/image_reference/tag
printf '%s' 'registry.example:5000/team/app:v1@sha256:0000000000000000000000000000000000000000000000000000000000000000' >corpus/image_reference/digest
printf '%s' '[::1]:5000/a/b' >corpus/image_reference/ipv6

cargo +nightly fuzz build -O
status=0
for target in $(cargo +nightly fuzz list); do
  log=$(mktemp)
  if cargo +nightly fuzz run -O "$target" "corpus/$target" -- \
      -max_total_time="$seconds" -print_final_stats=1 -rss_limit_mb=2048 >"$log" 2>&1; then
    result="no crash"
  else
    result="FAILED (see fuzz/artifacts/$target)"
    status=1
    tail -40 "$log" >&2
  fi
  runs=$(grep -o '^stat::number_of_executed_units: *[0-9]*' "$log" | grep -o '[0-9]*$' || echo '?')
  echo "fuzz $target: $runs executions in ${seconds}s, $result"
  rm -f "$log"
done
exit $status
