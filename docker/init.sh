#!/bin/sh
# docker compose's one-shot "init" service: everything the other services need before they start.
# Each step is idempotent, so it runs again harmlessly on every `docker compose up`.
set -eu
python manage.py migrate --noinput
python manage.py import_openngc -v0
# Imports models/<archive>.tar.gz from models/manifest.json when no ensemble is active yet.
python manage.py install_shipped_ensemble
# active.json on the data volume must name the database's active ensemble (the database wins).
python manage.py reconcile_active_model
# The staff account: STAFF_PASSWORD if given, else a random one printed here (`docker compose logs init`)
# and kept in $VAR_DIR/staff-password.txt on the data volume.
python manage.py ensure_staff
