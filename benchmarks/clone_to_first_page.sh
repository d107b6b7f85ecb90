#!/usr/bin/env bash
# Benchmark: seconds from `git clone` to the first page served by `make run` on a fresh clone (issue 2).
# Baseline in the same run: the seconds spent creating the virtualenv and installing the pinned packages,
# which is the part a warm machine (pip cache) skips. Prints both, checks /healthz and /api/docs, stops
# the platform. Usage: bash benchmarks/clone_to_first_page.sh [PORT]
set -euo pipefail
REPO="$(cd "$(dirname "$0")/.." && pwd)"
PORT=${1:-8011}
WORK=$(mktemp -d /tmp/inclinet-clone.XXXXXX)
start=$(date +%s)
git clone -q "$REPO" "$WORK/inclinet"
cd "$WORK/inclinet"
setsid env PORT=$PORT make run >"$WORK/run.log" 2>&1 &
RUN_PID=$!
stop() { kill -- -"$RUN_PID" 2>/dev/null || true; sleep 2; kill -9 -- -"$RUN_PID" 2>/dev/null || true; }
trap stop EXIT
installed=""
for _ in $(seq 1 1200); do
  if [ -z "$installed" ] && [ -f .venv/.installed ]; then installed=$(( $(date +%s) - start )); fi
  if curl -fsS -o /dev/null "http://127.0.0.1:$PORT/" 2>/dev/null; then break; fi
  sleep 1
done
first_page=$(( $(date +%s) - start ))
echo "clone -> first page: ${first_page} s (of which venv + pip install: ${installed:-?} s); load average: $(cut -d' ' -f1-3 /proc/loadavg)"
echo "healthz: $(curl -fsS "http://127.0.0.1:$PORT/healthz")"
echo "api docs: HTTP $(curl -s -o /dev/null -w '%{http_code}' "http://127.0.0.1:$PORT/api/docs/")"
