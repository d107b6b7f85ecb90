"""Zoo staff pages for the catalogue side of the Zoo: adding galaxies (ingestion jobs and their progress) and
the standard set (coverage of 45–90°, its gaps, and promoting settled galaxies to standards).

Thin views: the work is in ``ingest`` (``ingest_job_create``), ``standards`` (``standard_promote``) and the
Celery task ``labeling.ingest_galaxies``; the reads in ``selectors``.
"""
from __future__ import annotations

from django.contrib.auth.decorators import login_required
from django.db import transaction
from django.http import HttpRequest, HttpResponse, HttpResponseForbidden
from django.shortcuts import redirect, render
from django.urls import reverse, reverse_lazy

from core.errors import ApplicationError, InvalidInput

from . import selectors
from .ingest import ingest_job_create, ingest_settings
from .models import IngestStatus, Role
from .standards import standard_promote, standards_fill_gaps

LOGIN = reverse_lazy("labeling:login")


def _staff_or_403(request: HttpRequest) -> HttpResponse | None:
    if selectors.volunteer_role(user=request.user) != Role.STAFF:
        return HttpResponseForbidden("Staff only.")
    return None


def _float_list(text: str, count: int) -> list[float] | None:
    parts = text.replace(",", " ").split()
    try:
        values = [float(p) for p in parts]
    except ValueError:
        return None
    return values if len(values) == count else None


def _ingest_request(request: HttpRequest) -> dict:
    """The form's choice as ``ingest_job_create`` arguments; InvalidInput for input it cannot read."""
    mode, value = request.POST.get("mode", ""), request.POST.get("value", "").strip()[:20_000]
    if mode == "pgc":
        try:
            pgcs = [int(p.strip().upper().removeprefix("PGC")) for p in value.replace("\n", ",").split(",") if p.strip()]
        except ValueError:
            raise InvalidInput("PGC numbers separated by commas, e.g. 2557, 5818.") from None
        return {"pgcs": pgcs}
    if mode == "region":
        region = _float_list(value, 3)
        if region is None:
            raise InvalidInput('A region is "RA Dec radius" in degrees, e.g. 150.1 2.2 0.5.')
        return {"region": tuple(region)}
    if mode == "top":
        if not value.isascii() or not value.isdigit():
            raise InvalidInput("Give how many galaxies, e.g. 200.")
        return {"top": int(value)}
    raise InvalidInput("Choose PGC numbers, a region or top priority.")


@login_required(login_url=LOGIN)
def staff_ingest(request: HttpRequest) -> HttpResponse:
    """Add catalogue galaxies to the Zoo: the form queues a job on the worker; the table shows every job's progress."""
    if (refused := _staff_or_403(request)) is not None:
        return refused
    error = ""
    if request.method == "POST":
        from .tasks import ingest_galaxies

        try:
            with transaction.atomic():
                job = ingest_job_create(user=request.user, **_ingest_request(request))
                transaction.on_commit(lambda: ingest_galaxies.delay(job.pk))
        except ApplicationError as exc:
            error = exc.message
        else:
            return redirect(f"{reverse('labeling:staff-ingest')}?queued={job.pk}")
    jobs = selectors.ingest_jobs()
    size, rate = ingest_settings()
    return render(request, "labeling/staff_ingest.html", {
        "jobs": jobs, "error": error, "size": size, "rate": rate, "form": request.POST if error else {},
        "refresh": any(j.status in (IngestStatus.PENDING, IngestStatus.RUNNING) for j in jobs),
    }, status=400 if error else 200)


@login_required(login_url=LOGIN)
def staff_standards(request: HttpRequest) -> HttpResponse:
    """The standard set: standards per degree over 45–90° with the gaps, and settled galaxies staff may promote."""
    if (refused := _staff_or_403(request)) is not None:
        return refused
    error = ""
    if request.method == "POST" and request.POST.get("fill_gaps"):
        made = standards_fill_gaps(by=request.user)
        return redirect(f"{reverse('labeling:staff-standards')}?filled={len(made)}")
    if request.method == "POST":
        galaxy_id = request.POST.get("galaxy_id", "")
        try:
            if not galaxy_id.isascii() or not galaxy_id.isdigit():
                raise InvalidInput("Choose a galaxy to promote.")
            standard = standard_promote(galaxy_id=int(galaxy_id), by=request.user)
        except ApplicationError as exc:
            error = exc.message
        else:
            return redirect(f"{reverse('labeling:staff-standards')}?promoted={standard.pk}")
    return render(request, "labeling/staff_standards.html", {
        "coverage": selectors.standard_coverage(), "candidates": selectors.promotion_candidates(), "error": error,
        "spread": selectors.PROMOTION_SPREAD, "max_scatter": selectors.PROMOTION_MAX_SCATTER,
        "promoted": request.GET.get("promoted", ""), "filled": request.GET.get("filled", ""),
    }, status=400 if error else 200)
