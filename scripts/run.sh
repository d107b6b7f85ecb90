#!/usr/bin/env bash
# Bring IncliNET up on embedded defaults (SQLite + filesystem Celery broker unless DATABASE_URL /
# REDIS_URL are set): migrate, load the catalogue and demo data, create staff, start workers, beat and web.
set -euo pipefail
cd "$(dirname "$0")/.."
PY=.venv/bin/python
HOST=${HOST:-127.0.0.1}
PORT=${PORT:-8000}
export TF_CPP_MIN_LOG_LEVEL=${TF_CPP_MIN_LOG_LEVEL:-2}
# Plain http on this machine, and a key kept in var/, also when DATABASE_URL points at PostgreSQL (README).
export INSECURE_HTTP=${INSECURE_HTTP:-1}
export SECRET_KEY_FILE=${SECRET_KEY_FILE:-${VAR_DIR:-var}/secret_key}
mkdir -p var/run var/log

$PY manage.py migrate --noinput -v0
# collectstatic re-hashes every file (≈ 6 s); a second run skips it unless a static source changed.
STATIC_DIR=${STATIC_ROOT:-${VAR_DIR:-var}/staticfiles}
if [ ! -f "$STATIC_DIR/staticfiles.json" ] || [ ! -f var/run/collectstatic.stamp ] \
   || [ -n "$(find static ./*/static requirements.txt -newer var/run/collectstatic.stamp -print -quit 2>/dev/null)" ]; then
  $PY manage.py collectstatic --noinput -v0
  touch var/run/collectstatic.stamp
fi
if [ "$($PY manage.py shell -c 'from catalog.models import Galaxy; print(Galaxy.objects.filter(source="openngc").exists())')" != "True" ]; then
  echo "Importing the OpenNGC catalogue..."
  $PY manage.py import_openngc -v0
fi
$PY manage.py load_demo_data
$PY manage.py zoo_seed_demo
$PY manage.py ensure_staff
# The ensemble shipped under models/ (checksum verified) becomes active when none is: predictions at once.
$PY manage.py install_shipped_ensemble || echo "The shipped ensemble could not be installed (see above); the worker will build one."
# active.json must name the database's active ensemble (a crash between a promotion's commit and its pointer).
$PY manage.py reconcile_active_model

WEBROOT_PATH=$($PY -c 'import os; r=os.environ.get("WEBROOT","/").strip("/"); print("/"+r+"/" if r else "/")')
URL="http://$HOST:$PORT$WEBROOT_PATH"

alive() { for pid in "$@"; do [ -n "$pid" ] && kill -0 "$pid" 2>/dev/null && return 0; done; return 1; }
cleanup() {
  # Warm shutdown first; a worker still busy after STOP_GRACE_S (a build, a catalogue re-score) gets a cold
  # shutdown (SIGQUIT): its tasks are acks_late, so the broker hands them out again on the next start and a
  # build resumes from its checkpoints. Ctrl-C never waits on a long task.
  kill -TERM "${WORKER_PID:-}" "${TRAIN_WORKER_PID:-}" "${BEAT_PID:-}" "${WEB_PID:-}" 2>/dev/null || true
  for _ in $(seq 1 "${STOP_GRACE_S:-15}"); do
    alive "${WORKER_PID:-}" "${TRAIN_WORKER_PID:-}" "${BEAT_PID:-}" "${WEB_PID:-}" || break; sleep 1
  done
  for worker in "${WORKER_PID:-}" "${TRAIN_WORKER_PID:-}"; do
    if alive "$worker"; then kill -QUIT "$worker" 2>/dev/null || true; fi
  done
  for _ in $(seq 1 10); do alive "${WORKER_PID:-}" "${TRAIN_WORKER_PID:-}" || break; sleep 1; done
  for pid in "${WORKER_PID:-}" "${TRAIN_WORKER_PID:-}" "${BEAT_PID:-}" "${WEB_PID:-}"; do
    [ -n "$pid" ] || continue
    pkill -KILL -P "$pid" 2>/dev/null || true
    kill -KILL "$pid" 2>/dev/null || true
  done
  wait 2>/dev/null || true
}
trap cleanup EXIT
trap 'exit 130' INT
trap 'exit 143' TERM

# Two workers, as in docker compose: exports, batches, predictions and the health ping on one; training on
# its own, so a long build never holds the others up (issue 16). Each task has time limits (settings).
.venv/bin/celery -A inclinet_site worker -Q default,predict --concurrency "${WORKER_CONCURRENCY:-2}" \
  -n "inclinet@%h" --loglevel INFO >var/log/worker.log 2>&1 &
WORKER_PID=$!
.venv/bin/celery -A inclinet_site worker -Q train --concurrency 1 -n "train@%h" \
  --loglevel INFO >var/log/worker-train.log 2>&1 &
TRAIN_WORKER_PID=$!
# Beat runs the scheduled jobs (calibration, orphan sweeps, consensus export, weekly retrain check).
.venv/bin/celery -A inclinet_site beat --schedule var/run/celerybeat-schedule --pidfile "" \
  --loglevel INFO >var/log/beat.log 2>&1 &
BEAT_PID=$!
# Each web process hands predictions to its own niced prediction process (predictions/heavy.py), so the
# networks never hold the GIL that Zoo requests need.
PREDICTION_PROCESSES="${PREDICTION_PROCESSES:-1}" \
  .venv/bin/gunicorn inclinet_site.wsgi -b "$HOST:$PORT" --workers 2 --threads 4 --timeout 120 \
  --access-logfile var/log/access.log >var/log/web.log 2>&1 &
WEB_PID=$!

if [ "$($PY manage.py shell -c 'from training.models import Ensemble; print(Ensemble.objects.filter(status="active").exists())')" != "True" ]; then
  # Nothing shipped and no model yet: the worker trains the BUILD_PROFILE ensemble and promotes it.
  PROFILE=${BUILD_PROFILE:-quick}
  # Recorded as a build job first, so /staff/training/ shows it queued, then its progress or its failure.
  $PY manage.py build_ensemble --profile "$PROFILE" --promote --if-none-active --on-worker
  echo "No model ensemble yet: building the $PROFILE profile on the worker (progress at ${URL}staff/training/); prediction starts when it is promoted."
fi

for _ in $(seq 1 60); do
  if curl -fsS -o /dev/null "$URL" 2>/dev/null; then break; fi
  sleep 1
done
echo "IncliNET is running at $URL   (health: ${URL}healthz, API docs: ${URL}api/docs, admin: ${URL}admin/)"
echo "Logs in var/log/. Press Ctrl-C to stop."
wait -n "$WORKER_PID" "$TRAIN_WORKER_PID" "$BEAT_PID" "$WEB_PID"
