"""Batch jobs: validate the upload, then evaluate item by item on Celery with progress and resumption.

Results are appended to a JSON-lines file as items finish, so a worker killed mid-job resumes where it
stopped (``acks_late``) instead of repeating or losing items.

A job is sent to the worker after its row commits; a broker that is down fails the job at once with the
reason and answers 503 (``batch_job_enqueue``). A job whose message was lost anyway (a broker restarted
without persistence) is sent again by the periodic sweep once it has been queued ``QUEUED_JOB_STALE_S``.
"""
from __future__ import annotations

import csv
import io
import json
import uuid
import zipfile
from collections.abc import Iterator
from contextlib import contextmanager
from pathlib import PurePosixPath
from typing import Any

from celery.exceptions import SoftTimeLimitExceeded
from django.conf import settings
from django.core.files.base import ContentFile
from django.core.files.storage import default_storage
from django.db import connection
from django.db.models import F
from django.utils import timezone

from catalog.imaging import ImageError
from catalog.selectors import GalaxyNotFound, Target, target_resolve_name
from catalog.services import galaxy_get_or_fetch_by_pgc
from catalog.sources import ImageSourceError
from core.errors import InvalidInput
from inclinet_site.celery import enqueue_on_commit
from inclinet_site.csv_safety import csv_safe_row

from .inference import NoActiveEnsemble
from .models import BatchJob
from .services import prediction_for_target, prediction_for_upload

MAX_BATCH_ITEMS = 5000
MAX_ZIP_BYTES = 50 * 1024 * 1024
IMAGE_SUFFIXES = {".png", ".jpg", ".jpeg", ".gif"}


class BatchInputError(InvalidInput):
    """An unusable batch upload; the message says what to fix (400)."""


def _csv_items(data: bytes) -> list[str]:
    try:
        text = data.decode("utf-8-sig")
    except UnicodeDecodeError:
        raise BatchInputError("The CSV file must be UTF-8 text.") from None
    try:
        # newline="": the csv module's own line handling, so a bare CR ends a line instead of failing the read.
        rows = [row for row in csv.reader(io.StringIO(text, newline="")) if row and row[0].strip()]
    except csv.Error as exc:  # e.g. a field over the csv module's 128 KB limit
        raise BatchInputError(f"The CSV file cannot be read: {exc}.") from None
    if rows and rows[0][0].strip().lower() in {"pgc", "name", "objname", "galaxy"}:
        rows = rows[1:]
    items = [row[0].strip() for row in rows]
    if not items:
        raise BatchInputError("The CSV file holds no PGC numbers or names (one per line, first column).")
    return items


def _zip_items(data: bytes) -> list[str]:
    try:
        archive = zipfile.ZipFile(io.BytesIO(data))
    except zipfile.BadZipFile:
        raise BatchInputError("The file is not a valid zip archive.") from None
    names = []
    total = 0
    for info in archive.infolist():
        path = PurePosixPath(info.filename)
        if info.is_dir() or path.name.startswith("."):
            continue
        if path.is_absolute() or ".." in path.parts:
            raise BatchInputError(f"Refusing the archive member {info.filename!r}: paths may not leave the archive.")
        total += info.file_size
        if info.file_size > settings.MAX_UPLOAD_BYTES or total > MAX_ZIP_BYTES:
            raise BatchInputError("The archive is too large once unpacked: at most 1 MB per image and 50 MB in all.")
        if path.suffix.lower() in IMAGE_SUFFIXES:
            names.append(info.filename)
    if not names:
        raise BatchInputError("The archive holds no PNG, JPEG or GIF images.")
    return names


def batch_job_create(*, kind: str, filename: str, data: bytes, owner: Any = None) -> BatchJob:
    if kind not in BatchJob.Kind.values:
        raise BatchInputError(f"Unknown batch kind {kind!r}; use 'csv' or 'zip'.")
    items = _csv_items(data) if kind == BatchJob.Kind.CSV else _zip_items(data)
    if len(items) > MAX_BATCH_ITEMS:
        raise BatchInputError(f"A batch holds at most {MAX_BATCH_ITEMS} items; this one has {len(items)}.")
    job = BatchJob(kind=kind, total=len(items), owner=owner if getattr(owner, "is_authenticated", False) else None)
    job.input_file.save(f"{job.id}.{kind}", ContentFile(data), save=False)
    job.save()
    return job


def batch_job_enqueue(job: BatchJob) -> None:
    """Send ``job`` to the worker once committed; with the broker down the job fails with the reason and
    ``QueueUnavailable`` (503) is raised."""
    from .tasks import run_batch_job

    def unavailable(reason: str) -> None:
        BatchJob.objects.filter(pk=job.pk, status=BatchJob.Status.QUEUED).update(
            status=BatchJob.Status.FAILED, finished_at=timezone.now(),
            error=f"Not started: {reason}. Please submit the batch again.")

    enqueue_on_commit(lambda: run_batch_job.delay(str(job.id)), on_unavailable=unavailable,
                      what=f"batch job {job.id}")


def batch_jobs_stale_queued() -> list[str]:
    """Jobs still queued ``QUEUED_JOB_STALE_S`` after they were created: their message was lost."""
    cutoff = timezone.now() - timezone.timedelta(seconds=float(settings.QUEUED_JOB_STALE_S))
    return [str(pk) for pk in BatchJob.objects.filter(status=BatchJob.Status.QUEUED, created_at__lt=cutoff)
            .values_list("pk", flat=True)]


def _items(job: BatchJob) -> Iterator[tuple[str, bytes | None]]:
    with job.input_file.open("rb") as handle:
        data = handle.read()
    if job.kind == BatchJob.Kind.CSV:
        for item in _csv_items(data):
            yield item, None
    else:
        archive = zipfile.ZipFile(io.BytesIO(data))
        for name in _zip_items(data):
            yield name, archive.read(name)


def _evaluate_item(job: BatchJob, item: str, payload: bytes | None) -> dict[str, Any]:
    try:
        if payload is not None:
            body = prediction_for_upload(data=payload)
            return {"item": item, "status": "success", **body}
        if item.isascii() and item.isdigit():  # as /api/pgc: HyperLEDA answers for PGCs the catalogue lacks
            target = Target.from_galaxy(galaxy_get_or_fetch_by_pgc(pgc=int(item)))
        else:
            target = target_resolve_name(name=item)
        return {"item": item, "status": "success", "pgc": target.pgc, "objname": target.name,
                **prediction_for_target(target=target)}
    except (GalaxyNotFound, ImageError, ImageSourceError, ValueError) as exc:
        return {"item": item, "status": "failed", "message": str(exc)}


def _partial_path(job: BatchJob) -> str:
    return f"batch/partial/{job.id}.jsonl"


def _lock_key(job_id: Any) -> int:
    return uuid.UUID(str(job_id)).int % (2**63)


@contextmanager
def _job_lock(job_id: Any) -> Iterator[bool]:
    """A PostgreSQL session advisory lock per job: one runner at a time, released by the server itself
    when a killed worker's connection goes away (so a restarted worker can tell an orphan from a live run)."""
    if connection.vendor != "postgresql":
        yield True
        return
    with connection.cursor() as cursor:
        cursor.execute("SELECT pg_try_advisory_lock(%s)", [_lock_key(job_id)])
        got = bool(cursor.fetchone()[0])
    try:
        yield got
    finally:
        if got:
            with connection.cursor() as cursor:
                cursor.execute("SELECT pg_advisory_unlock(%s)", [_lock_key(job_id)])


def batch_jobs_orphaned(*, only_provable: bool = False) -> list[str]:
    """Jobs marked running whose runner is gone (nobody holds their lock): to be queued again.
    Without PostgreSQL's locks a live run cannot be told from a dead one: ``only_provable`` (the periodic
    sweep) then finds none; a worker that starts finds all (its predecessor's runs are dead)."""
    if only_provable and connection.vendor != "postgresql":
        return []
    orphans = []
    for job_id in BatchJob.objects.filter(status=BatchJob.Status.RUNNING).values_list("pk", flat=True):
        with _job_lock(job_id) as free:
            if free:
                orphans.append(str(job_id))
    return orphans


def batch_job_run(*, job_id: str, resume: bool = True) -> BatchJob:
    """Evaluate every item not yet done; safe to call again after a crash, and twice at once (one waits out).
    ``resume=False`` (a first send, or a stale job's resend) leaves alone a job that has started: without
    PostgreSQL's lock that is how a duplicate message keeps off a live run."""
    with _job_lock(job_id) as mine:
        job = BatchJob.objects.get(pk=job_id)
        if not mine:
            return job  # another worker is running it right now (a redelivered or requeued message)
        if not resume and connection.vendor != "postgresql" and job.status == BatchJob.Status.RUNNING:
            return job
        try:
            return _batch_job_run_locked(job)
        except SoftTimeLimitExceeded:
            limit = settings.TASK_SOFT_TIME_LIMITS_S.get("predictions.tasks.run_batch_job", 0.0)
            job.refresh_from_db()
            BatchJob.objects.filter(pk=job.pk).update(
                status=BatchJob.Status.FAILED, finished_at=timezone.now(),
                error=f"Stopped at the time limit of {limit:g} s after {job.done} of {job.total} items.")
            job.refresh_from_db()
            return job
        except NoActiveEnsemble as exc:
            # Not an item's fault: the whole job cannot run. Say so instead of leaving it "running" forever.
            BatchJob.objects.filter(pk=job.pk).update(status=BatchJob.Status.FAILED, error=str(exc),
                                                      finished_at=timezone.now())
            job.refresh_from_db()
            return job


def _batch_job_run_locked(job: BatchJob) -> BatchJob:
    if job.status in (BatchJob.Status.SUCCEEDED, BatchJob.Status.FAILED):
        return job
    BatchJob.objects.filter(pk=job.pk).update(status=BatchJob.Status.RUNNING)
    partial = default_storage.path(_partial_path(job))
    done_items: list[dict[str, Any]] = []
    try:
        with open(partial) as handle:
            done_items = [json.loads(line) for line in handle if line.strip()]
    except FileNotFoundError:
        default_storage.save(_partial_path(job), ContentFile(b""))
    # The partial file, not the counter, is the truth about progress: it is written before the counter.
    BatchJob.objects.filter(pk=job.pk).update(done=len(done_items),
                                              failed=sum(1 for r in done_items if r["status"] != "success"))
    with open(partial, "a") as out:
        for index, (item, payload) in enumerate(_items(job)):
            if index < len(done_items):
                continue
            result = _evaluate_item(job, item, payload)
            out.write(json.dumps(result) + "\n")
            out.flush()
            BatchJob.objects.filter(pk=job.pk).update(
                done=F("done") + 1, failed=F("failed") + (0 if result["status"] == "success" else 1)
            )
    job.refresh_from_db()
    _write_results(job, partial)
    return job


def _flatten(result: dict[str, Any]) -> dict[str, Any]:
    row = {"item": result["item"], "status": result["status"], "message": result.get("message", "")}
    if result["status"] == "success":
        row.update({
            "pgc": result.get("pgc", ""), "objname": result.get("objname", ""),
            "inclination_median": result["inclinations"]["summary"]["median"],
            "inclination_mean": result["inclinations"]["summary"]["mean"],
            "inclination_stdev": result["inclinations"]["summary"]["stdev"],
            "rejection_median": result["rejection_likelihood"]["summary"]["median"],
            "alarm": result["alarm"], "model_version": result["model_version"],
            "pa_measured": result.get("pa_measured", ""), "pa_source": result.get("pa_source", ""),
            "axial_ratio_inclination": result.get("axial_ratio_inclination", ""),
            "alarm_reason": result.get("alarm_reason", ""),
        })
    return row


def _write_results(job: BatchJob, partial: str) -> None:
    with open(partial) as handle:
        results = [json.loads(line) for line in handle if line.strip()]
    columns = ["item", "status", "message", "pgc", "objname", "inclination_median", "inclination_mean",
               "inclination_stdev", "rejection_median", "alarm", "model_version", "pa_measured", "pa_source",
               "axial_ratio_inclination", "alarm_reason"]
    buffer = io.StringIO()
    writer = csv.DictWriter(buffer, fieldnames=columns)
    writer.writeheader()
    for result in results:
        writer.writerow(csv_safe_row(_flatten(result)))  # items and messages echo the uploader's text
    job.result_file.save(f"{job.id}.csv", ContentFile(buffer.getvalue().encode()), save=False)
    default_storage.save(f"batch/results/{job.id}.json", ContentFile(json.dumps(results).encode()))
    job.status = BatchJob.Status.SUCCEEDED
    job.finished_at = timezone.now()
    job.save(update_fields=["result_file", "status", "finished_at"])
