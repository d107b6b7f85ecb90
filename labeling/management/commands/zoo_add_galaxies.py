"""``manage.py zoo_add_galaxies``: add catalogue galaxies to the Zoo with their colour and g, r, i images.

    manage.py zoo_add_galaxies --pgc 2557,5818,44182
    manage.py zoo_add_galaxies --region "150.1 2.2 0.5"      # RA, Dec, radius in degrees
    manage.py zoo_add_galaxies --top-priority 500            # the 500 unlabelled galaxies the models doubt most
    manage.py zoo_add_galaxies --job 12                      # run job 12 again (it continues)

Each galaxy's images come from the Legacy Survey FITS cut-outs (or, outside them, the colour JPEG of SDSS or the
Legacy Survey), at ``LABELING_INGEST_REQUESTS_PER_S`` requests per second; galaxies that already have them are
skipped, so running the same command again continues an interrupted run. The run is recorded as a job, so the
staff page (zoo/staff/ingest/) shows its progress too.
"""
from __future__ import annotations

from django.core.management.base import BaseCommand, CommandError, CommandParser
from tqdm import tqdm

from core.errors import InvalidInput
from labeling.ingest import ingest_job_create, ingest_job_run, ingest_settings
from labeling.models import IngestJob


def _pgcs(text: str) -> list[int]:
    try:
        return [int(part.strip().upper().removeprefix("PGC")) for part in text.split(",") if part.strip()]
    except ValueError:
        raise CommandError("--pgc takes PGC numbers separated by commas, e.g. 2557,5818.") from None


def _region(text: str) -> tuple[float, float, float]:
    try:
        ra, dec, radius = (float(part) for part in text.replace(",", " ").split())
    except ValueError:
        raise CommandError('--region takes "RA Dec radius" in degrees, e.g. "150.1 2.2 0.5".') from None
    return ra, dec, radius


class Command(BaseCommand):
    help = "Add catalogue galaxies (by PGC, region or top priority) to the Zoo with their images."

    def add_arguments(self, parser: CommandParser) -> None:
        chosen = parser.add_mutually_exclusive_group(required=True)
        chosen.add_argument("--pgc", help="PGC numbers separated by commas")
        chosen.add_argument("--region", help='"RA Dec radius", degrees')
        chosen.add_argument("--top-priority", type=int, metavar="N",
                            help="the N unlabelled galaxies with the highest labeling priority")
        chosen.add_argument("--job", type=int, help="run an earlier job again (it skips what is done)")
        parser.add_argument("--no-progress", action="store_true", help="no progress bar (logs, cron)")

    def handle(self, *args: object, **options: object) -> None:
        if options["job"] is not None:
            job = IngestJob.objects.filter(pk=options["job"]).first()
            if job is None:
                raise CommandError(f"There is no ingestion job {options['job']}.")
        else:
            try:
                job = ingest_job_create(
                    pgcs=_pgcs(options["pgc"]) if options["pgc"] else None,
                    region=_region(options["region"]) if options["region"] else None,
                    top=options["top_priority"],
                )
            except InvalidInput as exc:
                raise CommandError(exc.message) from None
        size, rate = ingest_settings()
        self.stdout.write(f"Job {job.pk}: {job.selection}: {job.total} galaxies"
                          f"{f', {job.not_found} PGC numbers not in the catalogue' if job.not_found else ''}; "
                          f"{size} px images, {rate:g} requests/s at most.")
        with tqdm(total=job.total, unit="galaxy", disable=bool(options["no_progress"]), file=self.stderr) as bar:
            def advance(outcome: str) -> None:
                bar.update(1)
                bar.set_postfix_str(outcome, refresh=False)

            job = ingest_job_run(job_id=job.pk, progress=advance)
        self.stdout.write(f"Job {job.pk} {job.status}: {job.added} added, {job.skipped} already done, "
                          f"{job.failed} without images.")
        for error in job.errors:
            self.stdout.write(f"  {error}")
