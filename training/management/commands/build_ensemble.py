"""Build an ensemble on synthetic galaxies with a profile (quick, long, full, ...), register it, and optionally
promote it. Every build is a job of kind "build" that the staff pages show (stage, progress, failure).

    manage.py build_ensemble --profile quick --promote               # here, in this process
    manage.py build_ensemble --profile quick --promote --on-worker   # queued on a Celery worker (train queue)
    manage.py build_ensemble --resume 12                             # continue failed build #12 from its checkpoints

Before it is promoted, the new ensemble is judged on the independent family (never trained on;
``training/independent_services.py``), and printed beside its in-family figures, the axial-ratio method on
the same images and the active ensemble; ``--skip-independent`` leaves that out (tests, CI).
"""
from django.core.management.base import BaseCommand, CommandError

from training.builds import (BuildBusy, BuildError, ensemble_build_create, ensemble_build_execute,
                                     ensemble_build_queue, ensemble_build_reopen)
from training.ml.pipeline import PROFILES


class Command(BaseCommand):
    help = "Generate synthetic galaxies, train every member, evaluate, register the ensemble (and promote it)."

    def add_arguments(self, parser) -> None:  # noqa: ANN001
        parser.add_argument("--profile", choices=sorted(PROFILES), default="quick")
        parser.add_argument("--promote", action="store_true", help="make it the active ensemble")
        parser.add_argument("--if-none-active", action="store_true", help="do nothing when an ensemble is active")
        parser.add_argument("--workers", type=int, default=2)
        parser.add_argument("--on-worker", action="store_true",
                            help="queue the build on a Celery worker instead of running it here")
        parser.add_argument("--resume", type=int, metavar="JOB", help="run failed build JOB again, from its checkpoints")
        parser.add_argument("--skip-independent", action="store_true",
                            help="do not judge the new ensemble on the independent family before promoting it")

    def handle(self, *args: object, profile: str, promote: bool, if_none_active: bool, workers: int,
               on_worker: bool, resume: int | None, skip_independent: bool = False, **options: object) -> None:
        from training.models import Ensemble

        if resume is None and if_none_active and Ensemble.objects.filter(status=Ensemble.Status.ACTIVE).exists():
            self.stdout.write("An ensemble is already active; nothing to build.")
            return
        try:
            if resume is not None:
                job = ensemble_build_reopen(job_id=resume)
            elif on_worker:
                job = ensemble_build_queue(profile=profile, promote=promote, if_none_active=if_none_active,
                                           independent=not skip_independent)
                if job is not None:
                    self.stdout.write(f"Build #{job.pk} ({job.params['version']}) is queued on the train queue.")
                return
            else:
                job = ensemble_build_create(profile=profile, promote=promote, if_none_active=if_none_active,
                                            workers=workers, independent=not skip_independent)
        except BuildError as exc:
            raise CommandError(str(exc)) from None
        self.stdout.write(f"Build #{job.pk}: {job.params['version']}")
        try:
            result = ensemble_build_execute(job_id=job.pk, key=str(job.key), log=self.stdout.write)
        except BuildBusy as busy:
            raise CommandError(f"{busy} Build #{job.pk} stays queued: run `manage.py build_ensemble --resume "
                               f"{job.pk}` when that one is done (a worker's sweep may also pick it up).") from None
        except KeyboardInterrupt:
            raise CommandError(f"Interrupted; `manage.py build_ensemble --resume {job.pk}` continues "
                               f"from its checkpoints.") from None
        if result.get("skipped"):
            self.stdout.write(f"Build #{job.pk}: nothing done ({result.get('status')}).")
            return
        self.stdout.write(f"Ensemble {result['version']} registered"
                          f"{' and promoted' if result['status'] == Ensemble.Status.ACTIVE else ''}.")
