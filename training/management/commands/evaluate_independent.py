"""(Re)evaluate a registered ensemble on the independent family at promotion size and store the result on it.

    manage.py evaluate_independent active
    manage.py evaluate_independent quick-3-1a2b3c4d [--n 240 --rejects 80 --seed 2027]

Prints the ensemble beside the active one (in-family RMS, independent RMS / MAE / bias, axial-ratio RMS on
the same images and the ratio, rejects caught, clean galaxies flagged). See docs/retraining.md.
"""
from django.core.management.base import BaseCommand, CommandError

from training import selectors
from training.independent_services import IndependentCheckError, ensemble_evaluate_independent
from training.models import Ensemble


class Command(BaseCommand):
    help = "Evaluate a registered ensemble (a version, or 'active') on the independent family; store the result."

    def add_arguments(self, parser) -> None:  # noqa: ANN001
        parser.add_argument("version", help="an ensemble version, or 'active'")
        parser.add_argument("--n", type=int, default=None, help="clean galaxies (default TRAINING_INDEPENDENT_N)")
        parser.add_argument("--rejects", type=int, default=None, help="rejects (default TRAINING_INDEPENDENT_REJECTS)")
        parser.add_argument("--seed", type=int, default=None, help="the set's seed (default TRAINING_INDEPENDENT_SEED)")

    def handle(self, *args: object, version: str, n: int | None, rejects: int | None, seed: int | None,
               **options: object) -> None:
        query = Ensemble.objects.filter(status=Ensemble.Status.ACTIVE) if version == "active" \
            else Ensemble.objects.filter(version=version)
        ensemble = query.first()
        if ensemble is None:
            raise CommandError(f"No registered ensemble {version!r}.")

        def progress(done: int, total: int) -> None:
            if done % 50 == 0 or done == total:
                self.stdout.write(f"  {done}/{total}")

        try:
            result = ensemble_evaluate_independent(ensemble=ensemble, n=n, rejects=rejects, seed=seed,
                                                   log=self.stdout.write, progress=progress)
        except IndependentCheckError as exc:
            raise CommandError(str(exc)) from None
        seconds = result["seconds"]
        self.stdout.write(f"rendered in {seconds['render']:.0f} s (0: cached), evaluated in {seconds['evaluate']:.0f} s "
                          f"({seconds['per_image_ms']:.0f} ms per image)")
        self.stdout.write("\n".join(selectors.independent_comparison_lines(
            rows=selectors.independent_comparison(ensemble=ensemble))))
