"""Install the ensemble shipped in the repository (``models/manifest.json`` + its archive) and make it
active when no ensemble is active, so a fresh ``make run`` or ``docker compose up`` predicts at once.

    manage.py install_shipped_ensemble [--models-dir models] [--no-activate]
"""
from pathlib import Path

from django.conf import settings
from django.core.management.base import BaseCommand, CommandError

from training.archives import ensemble_install_shipped
from training.registry import RegistryError


class Command(BaseCommand):
    help = "Import models/<archive> (checksum verified) and activate it if no ensemble is active."

    def add_arguments(self, parser) -> None:  # noqa: ANN001
        parser.add_argument("--models-dir", type=Path, default=Path(settings.BASE_DIR) / "models")
        parser.add_argument("--no-activate", action="store_true", help="register it as a candidate only")

    def handle(self, *args: object, models_dir: Path, no_activate: bool, **options: object) -> None:
        try:
            ensemble = ensemble_install_shipped(models_dir=models_dir, activate_if_none=not no_activate)
        except RegistryError as exc:
            raise CommandError(str(exc)) from None
        if ensemble is None:
            self.stdout.write(f"No shipped ensemble in {models_dir}.")
            return
        self.stdout.write(f"Shipped ensemble {ensemble.version}: {ensemble.status}.")
