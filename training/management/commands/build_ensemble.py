"""Build an ensemble on synthetic galaxies with a profile (quick, long or full), register it, and optionally promote it."""
from datetime import datetime, timezone
from pathlib import Path

from django.conf import settings
from django.core.management.base import BaseCommand, CommandError

from training.ml.pipeline import PROFILES, build_ensemble
from training.services import ensemble_activate, ensemble_register


class Command(BaseCommand):
    help = "Generate synthetic galaxies, train every member, evaluate, register the ensemble (and promote it)."

    def add_arguments(self, parser) -> None:  # noqa: ANN001
        parser.add_argument("--profile", choices=sorted(PROFILES), default="quick")
        parser.add_argument("--promote", action="store_true", help="make it the active ensemble")
        parser.add_argument("--if-none-active", action="store_true", help="do nothing when an ensemble is active")
        parser.add_argument("--workers", type=int, default=2)

    def handle(self, *args: object, profile: str, promote: bool, if_none_active: bool, workers: int,
               **options: object) -> None:
        from training.models import Ensemble

        if if_none_active and Ensemble.objects.filter(status=Ensemble.Status.ACTIVE).exists():
            self.stdout.write("An ensemble is already active; nothing to build.")
            return
        version = f"{profile}-{datetime.now(timezone.utc):%Y%m%d-%H%M%S}"
        folder = Path(settings.MODEL_STORE) / "ensembles" / version
        try:
            build_ensemble(PROFILES[profile], folder, version=version, workers=workers, log=self.stdout.write)
        except KeyboardInterrupt:
            raise CommandError(f"Interrupted; the partial run is in {folder} and resumes when built again.") from None
        ensemble = ensemble_register(folder=folder)
        if promote:
            ensemble_activate(ensemble=ensemble)  # and re-score the catalogue for labeling
        self.stdout.write(f"Ensemble {ensemble.version} registered{' and promoted' if promote else ''}.")
