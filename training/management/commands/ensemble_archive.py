"""Export an ensemble to one tar.gz (manifest + weights + plots), or import such an archive as a candidate,
so a GPU machine can train and a CPU server can serve.

    manage.py ensemble_archive export <version> <file.tar.gz>
    manage.py ensemble_archive import <file.tar.gz> [--promote]
"""
from pathlib import Path

from django.core.management.base import BaseCommand, CommandError

from training.archives import ensemble_export_archive, ensemble_import_archive
from training.models import Ensemble
from training.registry import RegistryError, ensemble_activate


class Command(BaseCommand):
    help = "Export an ensemble as one tar.gz, or import one (registered as a candidate, optionally promoted)."

    def add_arguments(self, parser) -> None:  # noqa: ANN001
        sub = parser.add_subparsers(dest="action", required=True)
        export = sub.add_parser("export")
        export.add_argument("version", help="ensemble version, or 'active'")
        export.add_argument("path", type=Path)
        imported = sub.add_parser("import")
        imported.add_argument("path", type=Path)
        imported.add_argument("--promote", action="store_true")

    def handle(self, *args: object, action: str, path: Path, **options: object) -> None:
        try:
            if action == "export":
                version = str(options["version"])
                ensemble = (Ensemble.objects.filter(status=Ensemble.Status.ACTIVE).first() if version == "active"
                            else Ensemble.objects.filter(version=version).first())
                if ensemble is None:
                    raise CommandError(f"No ensemble {version!r} is registered.")
                ensemble_export_archive(ensemble=ensemble, path=path)
                self.stdout.write(f"Exported {ensemble.version} to {path} ({path.stat().st_size / 1e6:.1f} MB).")
                return
            if not path.exists():
                raise CommandError(f"{path} does not exist.")
            ensemble = ensemble_import_archive(path=path)
            if options.get("promote"):
                ensemble_activate(ensemble=ensemble)
            self.stdout.write(f"Imported {ensemble.version}{' and promoted it' if options.get('promote') else ''}.")
        except RegistryError as exc:
            raise CommandError(str(exc)) from None
