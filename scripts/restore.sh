#!/usr/bin/env bash
# Restore a backup made by scripts/backup.sh into the configured database, model store and media folder.
#
#   scripts/restore.sh BACKUP_DIR
#
# Stop the site first (web, worker, beat). The targets are the site's own settings, with run.sh's defaults:
# DATABASE_URL (default SQLite in var/; a PostgreSQL database must exist: createdb), MODEL_STORE, MEDIA_ROOT.
# SHA256SUMS and every archived file's checksum are verified before anything is replaced; the previous model
# store, media folder and SQLite file are kept as <name>.old-<UTC time>; afterwards every table's row count
# is compared with the backup's. Then run `manage.py migrate` and `manage.py consensus_rebuild --check`.
set -euo pipefail
[ $# -ge 1 ] || { echo "usage: scripts/restore.sh BACKUP_DIR" >&2; exit 2; }
ROOT="$(cd "$(dirname "$0")/.." && pwd)"
PY="${PYTHON:-$ROOT/.venv/bin/python}"
[ -x "$PY" ] || PY=python3
export SECRET_KEY_FILE="${SECRET_KEY_FILE:-${VAR_DIR:-$ROOT/var}/secret_key}"
export TF_CPP_MIN_LOG_LEVEL="${TF_CPP_MIN_LOG_LEVEL:-2}"
exec "$PY" "$ROOT/manage.py" restore "$@"
