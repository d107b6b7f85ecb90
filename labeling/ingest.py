"""Catalogue galaxies into the Zoo: staff choose them (PGC numbers, a sky region, or the top N by labeling
priority) as an ``IngestJob``; the worker fetches each one's images, politely rate-limited, and queues it.
A job run again (or a redelivered task) only does what is left.
"""
from __future__ import annotations

import math
from collections.abc import Callable
from typing import Any

from django.contrib.auth.models import AbstractBaseUser
from django.utils import timezone

from catalog.models import Galaxy
from core.errors import InvalidInput

from .assignment import queue_add
from .conf import zoo_setting
from .models import IngestJob, IngestStatus
from .selectors import ingest_by_pgc, ingest_by_region, ingest_top_priority

INGEST_ERRORS_KEPT = 20


def ingest_settings() -> tuple[int, float]:
    """Image size in pixels (``LABELING_INGEST_IMAGE_SIZE``, at least 256) and requests per second towards the
    image services (``LABELING_INGEST_REQUESTS_PER_S``; 0 means no limit)."""
    size = int(zoo_setting("INGEST_IMAGE_SIZE"))
    rate = float(zoo_setting("INGEST_REQUESTS_PER_S"))
    return max(size, 256), rate


def ingest_job_create(*, user: AbstractBaseUser | None = None, pgcs: list[int] | None = None,
                      region: tuple[float, float, float] | None = None, top: int | None = None) -> IngestJob:
    """Choose the galaxies (exactly one of a PGC list, a sky region ``(ra, dec, radius_deg)`` or the ``top``
    N unlabelled by priority) and record them as a job. Nothing is fetched yet."""
    if sum(x is not None for x in (pgcs, region, top)) != 1:
        raise InvalidInput("Give exactly one of: PGC numbers, a region, or a number of top-priority galaxies.")
    missing: list[int] = []
    if pgcs is not None:
        if not pgcs or any(not 0 < p < 2**63 for p in pgcs) or len(pgcs) > 100_000:
            raise InvalidInput("PGC numbers are positive integers (at most 100,000 at once).")
        ids, missing = ingest_by_pgc(pgcs=pgcs)
        selection = f"PGC list ({len(pgcs)})"
    elif region is not None:
        ra, dec, radius = region
        if not (math.isfinite(ra) and math.isfinite(dec) and math.isfinite(radius)) \
                or not (0 <= ra < 360 and -90 <= dec <= 90 and 0 < radius <= 10):
            raise InvalidInput("A region is RA 0-360, Dec -90..90 and a radius of more than 0 and at most 10 degrees.")
        ids = ingest_by_region(ra=ra, dec=dec, radius_deg=radius)
        selection = f"region RA {ra:g} Dec {dec:g} radius {radius:g}°"
    else:
        assert top is not None
        if not 0 < top <= 100_000:
            raise InvalidInput("The number of galaxies must be between 1 and 100,000.")
        ids = ingest_top_priority(n=top)
        selection = f"top {top} by labeling priority"
    errors = [f"PGC {p}: not in the catalogue" for p in missing[:INGEST_ERRORS_KEPT]]
    return IngestJob.objects.create(requested_by=user, selection=selection, galaxy_ids=ids, total=len(ids),
                                    not_found=len(missing), errors=errors)


def _ingest_one(*, galaxy: Galaxy, size: int, limiter: Any) -> str:
    """``added`` or ``skipped`` (images already there: only queued, if that was missed); ImageSourceError when no
    source has the galaxy."""
    from catalog.services import galaxy_fetch_zoo_images

    report = galaxy_fetch_zoo_images(galaxy=galaxy, size=size, limiter=limiter)
    queue_add(galaxy_ids=[galaxy.id])
    return "skipped" if report.skipped else "added"


def ingest_job_run(*, job_id: int, progress: Callable[[str], None] | None = None) -> IngestJob:
    """Fetch each chosen galaxy's images and queue it, counting as it goes (the staff page's progress row).
    Rate-limited towards the image services; galaxies already done are skipped, so running a job again (or a
    redelivered task) only does what is left. ``progress`` is called with each galaxy's outcome."""
    from catalog.sources import ImageSourceError, RateLimiter

    job = IngestJob.objects.get(pk=job_id)
    size, rate = ingest_settings()
    limiter = RateLimiter(rate)
    job.added = job.skipped = job.failed = 0  # counted afresh: done galaxies are skipped quickly
    job.errors = [e for e in job.errors if e.endswith("not in the catalogue")]
    job.status, job.started_at, job.finished_at = IngestStatus.RUNNING, timezone.now(), None
    job.save()
    galaxies = Galaxy.objects.in_bulk(job.galaxy_ids)
    counters = ["added", "skipped", "failed", "errors", "updated_at"]
    try:
        for galaxy_id in job.galaxy_ids:
            galaxy = galaxies.get(galaxy_id)
            try:
                if galaxy is None:
                    raise ImageSourceError("the galaxy is no longer in the catalogue")
                outcome = _ingest_one(galaxy=galaxy, size=size, limiter=limiter)
            except ImageSourceError as exc:
                outcome = "failed"
                label = f"PGC {galaxy.pgc}" if galaxy is not None and galaxy.pgc else f"galaxy {galaxy_id}"
                job.errors = [*job.errors, f"{label}: {exc.message}"][-INGEST_ERRORS_KEPT:]
            setattr(job, outcome, getattr(job, outcome) + 1)
            job.save(update_fields=counters)
            if progress:
                progress(outcome)
    except Exception as exc:
        job.status, job.finished_at = IngestStatus.FAILED, timezone.now()
        job.errors = [*job.errors, f"stopped: {type(exc).__name__}: {exc}"][-INGEST_ERRORS_KEPT:]
        job.save()
        raise
    job.status, job.finished_at = IngestStatus.DONE, timezone.now()
    job.save()
    return job
