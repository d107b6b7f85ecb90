#!/usr/bin/env bash
# Back up the whole site as one consistent set: the database (PostgreSQL: pg_dump; SQLite, the `make run`
# default: sqlite3's online backup API), the model store folders the database snapshot names, and MEDIA_ROOT.
#
#   scripts/backup.sh [OUT_DIR] [--no-media]
#
# Reads the same settings as the site, with run.sh's defaults: DATABASE_URL (default SQLite in var/),
# MODEL_STORE, MEDIA_ROOT, VAR_DIR. OUT_DIR defaults to VAR_DIR/backups/<UTC time>; it holds db.dump or
# db.sqlite3, model_store.tar.gz, media.tar.gz, manifest.json (row counts, a SHA-256 per archived file) and
# SHA256SUMS. The site keeps running meanwhile. Restore with scripts/restore.sh. Details: inclinet_site/backup.py.
set -euo pipefail
ROOT="$(cd "$(dirname "$0")/.." && pwd)"
PY="${PYTHON:-$ROOT/.venv/bin/python}"
[ -x "$PY" ] || PY=python3
# As run.sh: the key kept in var/ when the environment gives none (settings refuse to load without one).
export SECRET_KEY_FILE="${SECRET_KEY_FILE:-${VAR_DIR:-$ROOT/var}/secret_key}"
export TF_CPP_MIN_LOG_LEVEL="${TF_CPP_MIN_LOG_LEVEL:-2}"
exec "$PY" "$ROOT/manage.py" backup "$@"
