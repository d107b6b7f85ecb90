"""``manage.py restore BACKUP_DIR``: put a backup from ``manage.py backup`` back into the configured paths.

Stop the site first (web, worker, beat). Checksums are verified before anything is touched; the database
(DATABASE_URL), MODEL_STORE and MEDIA_ROOT are replaced, the previous folders and SQLite file kept aside as
``<name>.old-<UTC time>``. Run ``manage.py migrate`` and ``manage.py consensus_rebuild --check`` afterwards.
"""
from __future__ import annotations

from pathlib import Path
from typing import Any

from django.core.management.base import BaseCommand, CommandError, CommandParser

from inclinet_site.backup import BackupError, backup_restore


class Command(BaseCommand):
    requires_system_checks: list[str] = []  # a backup or a restore must not depend on the site's URL or app checks
    help = "Restore a backup folder into the configured database, model store and media folder."

    def add_arguments(self, parser: CommandParser) -> None:
        parser.add_argument("backup_dir", type=Path)

    def handle(self, *args: Any, **options: Any) -> None:
        try:
            report = backup_restore(folder=options["backup_dir"])
        except BackupError as exc:
            raise CommandError(str(exc)) from exc
        self.stdout.write(
            f"restored {report.folder}: {report.vendor} database ({report.tables} tables, {report.rows} rows, "
            f"counts checked), model store {report.model_store}"
            + (f", media {report.media}" if report.media else ", no media in this backup"))
        for path in report.kept:
            self.stdout.write(f"the previous copy is kept as {path}")
