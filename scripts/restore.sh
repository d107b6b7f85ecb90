#!/usr/bin/env bash
# Restore a backup made by scripts/backup.sh into a database and a model store.
#
#   DATABASE_URL=postgres://.../target MODEL_STORE=/srv/inclinet/model_store scripts/restore.sh BACKUP_DIR
#
# The target database must exist (createdb); objects in it are replaced (pg_restore --clean --if-exists).
# The model store folder is replaced by the archive's content (the old one is kept as MODEL_STORE.old-<time>).
# Checksums are verified first; run `manage.py migrate` and `manage.py consensus_rebuild --check` afterwards.
set -euo pipefail

BACKUP_DIR="${1:?usage: scripts/restore.sh BACKUP_DIR}"
: "${DATABASE_URL:?set DATABASE_URL of the target database}"
ROOT="$(cd "$(dirname "$0")/.." && pwd)"
MODEL_STORE="${MODEL_STORE:-$ROOT/var/model_store}"

(cd "$BACKUP_DIR" && sha256sum --check --quiet SHA256SUMS)
pg_restore --clean --if-exists --no-owner --exit-on-error --single-transaction --dbname "$DATABASE_URL" \
  "$BACKUP_DIR/db.dump"
staging="$(mktemp -d "$(dirname "$MODEL_STORE")/.restore-XXXXXX")"
tar -C "$staging" -xzf "$BACKUP_DIR/model_store.tar.gz"
if [ -e "$MODEL_STORE" ]; then
  mv "$MODEL_STORE" "$MODEL_STORE.old-$(date -u +%Y%m%dT%H%M%SZ)"
fi
mv "$staging" "$MODEL_STORE"
if [ -f "$BACKUP_DIR/media.tar.gz" ] && [ -n "${MEDIA_ROOT:-}" ]; then
  mkdir -p "$MEDIA_ROOT" && tar -C "$MEDIA_ROOT" -xzf "$BACKUP_DIR/media.tar.gz"
fi
echo "restored $BACKUP_DIR into the database and $MODEL_STORE"
