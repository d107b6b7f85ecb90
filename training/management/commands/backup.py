"""``manage.py backup [OUT_DIR]``: the database, the model store and the media as one consistent set.

The logic is in ``inclinet_site.backup``; ``scripts/backup.sh`` calls this command so it reads the same
settings as the site (DATABASE_URL, MODEL_STORE, MEDIA_ROOT, VAR_DIR).
"""
from __future__ import annotations

import json
from pathlib import Path
from typing import Any

from django.core.management.base import BaseCommand, CommandError, CommandParser

from inclinet_site.backup import BackupError, backup_create, default_backup_root


class Command(BaseCommand):
    requires_system_checks: list[str] = []  # a backup or a restore must not depend on the site's URL or app checks
    help = "Back up the database, the model store and the media into one folder with a manifest and checksums."

    def add_arguments(self, parser: CommandParser) -> None:
        parser.add_argument("out_dir", nargs="?", type=Path,
                            help=f"the backup folder to create (default: {default_backup_root()}/<UTC time>)")
        parser.add_argument("--no-media", action="store_true", help="leave MEDIA_ROOT out")

    def handle(self, *args: Any, **options: Any) -> None:
        try:
            folder = backup_create(out_dir=options["out_dir"], media=not options["no_media"])
        except BackupError as exc:
            raise CommandError(str(exc)) from exc
        manifest = json.loads((folder / "manifest.json").read_text())
        store = manifest["model_store"]
        for missing in store["missing_folders"]:
            self.stderr.write(f"warning: the database names {missing} in the model store, which does not exist")
        media = manifest["media"]
        self.stdout.write(
            f"backup written to {folder}: {manifest['database']['vendor']} database "
            f"({sum(manifest['database']['tables'].values())} rows), {len(store['files'])} model-store files "
            f"(active: {store['active'] or 'none'}), "
            + (f"{len(media['files'])} media files" if media else "no media"))
