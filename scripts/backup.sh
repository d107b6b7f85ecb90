#!/usr/bin/env bash
# Back up the database (pg_dump custom format) and the model store (tar) into one folder.
#
#   DATABASE_URL=postgres://... MODEL_STORE=/srv/inclinet/model_store scripts/backup.sh [OUT_DIR]
#
# OUT_DIR defaults to var/backups/<UTC timestamp>. Writes db.dump, model_store.tar.gz and SHA256SUMS;
# MEDIA_ROOT (uploads, cached images) is added as media.tar.gz when BACKUP_MEDIA=1. Restore with
# scripts/restore.sh. pg_dump takes a consistent snapshot while the site keeps running.
set -euo pipefail

: "${DATABASE_URL:?set DATABASE_URL (postgres://user@host:port/db)}"
ROOT="$(cd "$(dirname "$0")/.." && pwd)"
MODEL_STORE="${MODEL_STORE:-$ROOT/var/model_store}"
OUT_DIR="${1:-$ROOT/var/backups/$(date -u +%Y%m%dT%H%M%SZ)}"

mkdir -p "$OUT_DIR"
# Write under temporary names and rename at the end: a backup folder is complete or visibly unfinished.
pg_dump --format=custom --no-owner --file "$OUT_DIR/db.dump.partial" "$DATABASE_URL"
mv "$OUT_DIR/db.dump.partial" "$OUT_DIR/db.dump"
if [ -d "$MODEL_STORE" ]; then
  tar -C "$MODEL_STORE" -czf "$OUT_DIR/model_store.tar.gz.partial" .
else
  tar -czf "$OUT_DIR/model_store.tar.gz.partial" -T /dev/null  # no model yet: an empty archive
fi
mv "$OUT_DIR/model_store.tar.gz.partial" "$OUT_DIR/model_store.tar.gz"
if [ "${BACKUP_MEDIA:-0}" = "1" ] && [ -d "${MEDIA_ROOT:-$ROOT/var/media}" ]; then
  tar -C "${MEDIA_ROOT:-$ROOT/var/media}" -czf "$OUT_DIR/media.tar.gz.partial" .
  mv "$OUT_DIR/media.tar.gz.partial" "$OUT_DIR/media.tar.gz"
fi
(cd "$OUT_DIR" && sha256sum -- *.dump *.tar.gz > SHA256SUMS)
echo "backup written to $OUT_DIR"
