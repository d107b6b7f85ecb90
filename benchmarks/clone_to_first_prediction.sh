#!/usr/bin/env bash
# Benchmark (issue 13): a fresh `git clone`, then `make run` exactly as the README says (embedded defaults:
# SQLite, filesystem Celery broker, a real worker). Measures seconds from the clone to
#   - the end of the venv + pinned-package install,
#   - the first page served,
#   - /healthz "ok" with an active model (the shipped ensemble installed),
#   - the first answered POST /api/file prediction;
# then stops it (Ctrl-C) and runs `make run` a second time in the same folder, the comparison in the same
# run: seconds to the first page and to the first prediction when everything is reused (target < 30 s).
# Usage: bash benchmarks/clone_to_first_prediction.sh [PORT]
set -euo pipefail
REPO="$(cd "$(dirname "$0")/.." && pwd)"
PORT=${1:-8011}
WORK=$(mktemp -d /tmp/inclinet-clone.XXXXXX)
URL="http://127.0.0.1:$PORT"
# The user's shell, not the test suite's: embedded defaults.
unset DATABASE_URL REDIS_URL DEBUG VAR_DIR MEDIA_ROOT MODEL_STORE SECRET_KEY WEBROOT
"$REPO/.venv/bin/python" - "$WORK/galaxy.png" <<'PY'
import sys
import numpy as np
from PIL import Image
y, x = np.mgrid[-96:96, -96:96].astype(float)
t = np.radians(35.0)
u, v = x * np.cos(t) + y * np.sin(t), -x * np.sin(t) + y * np.cos(t)
disk = 20 + 220 * np.exp(-np.hypot(u / 28.0, v / 9.0))
image = Image.fromarray(np.stack([disk.astype(np.uint8)] * 3, axis=-1))
image.save(sys.argv[1])
# The second run gets another image, so its prediction is computed, not read from the cache.
image.transpose(Image.Transpose.FLIP_LEFT_RIGHT).save(sys.argv[1].replace(".png", "-2.png"))
PY

RUN_PID=""
stop() {
  [ -n "$RUN_PID" ] || return 0
  kill -INT -- -"$RUN_PID" 2>/dev/null || true
  for _ in $(seq 1 60); do kill -0 -- -"$RUN_PID" 2>/dev/null || break; sleep 1; done
  kill -9 -- -"$RUN_PID" 2>/dev/null || true
  RUN_PID=""
}
trap stop EXIT

# One `make run`; sets RESULT="<first page s> <healthz ok s> <first prediction s> <install s>" from $1
# (epoch s). Runs in this shell, not a subshell, so RUN_PID stays visible to stop().
measure() {
  local t0=$1 log=$2 image=$3 installed="" page="" healthy="" predicted=""
  setsid env PORT="$PORT" make run >"$log" 2>&1 &
  RUN_PID=$!
  for _ in $(seq 1 1800); do
    now=$(date +%s.%N)
    if [ -z "$installed" ] && [ -f .venv/.installed ] && [ .venv/.installed -nt "$log.start" ]; then installed=$(echo "$now - $t0" | bc); fi
    if [ -z "$page" ] && curl -fsS -o /dev/null "$URL/" 2>/dev/null; then page=$(echo "$now - $t0" | bc); fi
    if [ -n "$page" ] && [ -z "$healthy" ] && curl -fsS "$URL/healthz" 2>/dev/null | grep -q '"status": *"ok"'; then healthy=$(echo "$now - $t0" | bc); fi
    if [ -n "$healthy" ] && curl -fsS -o /dev/null -F "file=@$image" "$URL/api/file" 2>/dev/null; then
      predicted=$(echo "$(date +%s.%N) - $t0" | bc); break
    fi
    sleep 0.5
  done
  RESULT="${page:-timeout} ${healthy:-timeout} ${predicted:-timeout} ${installed:-reused}"
}

start=$(date +%s.%N)
git clone -q "$REPO" "$WORK/inclinet"
cd "$WORK/inclinet"
touch "$WORK/first.log.start"
measure "$start" "$WORK/first.log" "$WORK/galaxy.png"
read -r page healthy predicted installed <<<"$RESULT"
stop
second_start=$(date +%s.%N)
touch "$WORK/second.log.start"
measure "$second_start" "$WORK/second.log" "$WORK/galaxy-2.png"
read -r page2 healthy2 predicted2 _ <<<"$RESULT"
stop
cpu=$(grep -m1 'model name' /proc/cpuinfo | cut -d: -f2 | xargs)
printf '%s\n' "machine: $cpu, $(nproc) cores; $(date -u +%F)"
printf '%-44s %10s %10s\n' "" "first run" "second run"
printf '%-44s %10.1f %10s\n' "venv + pinned packages installed (s)" "$installed" "reused"
printf '%-44s %10.1f %10.1f\n' "make run -> first page (s)" "$page" "$page2"
printf '%-44s %10.1f %10.1f\n' "make run -> /healthz ok, model active (s)" "$healthy" "$healthy2"
printf '%-44s %10.1f %10.1f\n' "make run -> first /api/file prediction (s)" "$predicted" "$predicted2"
echo "targets: first prediction <= 180 s from a fresh clone; second run up in < 30 s. Logs: $WORK"
