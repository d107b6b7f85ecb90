"""Retrain jobs: snapshot → member runs (the chord's header) → evaluation and registration.

Each step queues the next by name (``training.dispatch``); the database, not a Celery chord counter, decides
when every member is done, so a redelivered member cannot fire evaluation early.
"""
from __future__ import annotations

import logging
from pathlib import Path
from typing import Any

from django.conf import settings
from django.db import transaction
from django.utils import timezone

from core.errors import InvalidInput

from . import dispatch
from .conf import training_setting
from .independent_services import independent_check
from .models import DatasetSnapshot, Ensemble, RetrainJob, TrainingRun
from .registry import ensemble_activate, ensemble_register
from .selectors import consensus_labels_since
from .snapshots import SnapshotError, snapshot_build, snapshot_folder
from .store import ensemble_folder, store_root

logger = logging.getLogger(__name__)


class RetrainError(InvalidInput, ValueError):
    """Bad retrain parameters; the message is shown to staff."""


def _queues() -> tuple[str, ...]:
    return tuple(settings.CELERY_TASK_QUEUES_NAMES)


def _mark(job: RetrainJob, phase: str) -> None:
    job.timings[phase] = timezone.now().isoformat()


def retrain_job_create(*, user: Any = None, snapshot_id: int | None = None, synthetic: int = 0,
                       profile: str = "quick", architectures: list[str] | None = None,
                       flavours: list[int] | None = None, reject_architectures: list[str] | None = None,
                       epochs: int | None = None, reject_epochs: int | None = None,
                       steps_per_epoch: int | None = None, batch_size: int | None = None, queue: str = "train",
                       promote: bool = False) -> RetrainJob:
    """Validate the request, record the job and queue its first task (snapshot, or training directly)."""
    from training.ml.architectures import ARCHITECTURES
    from training.ml.retrain import plan_members

    unknown = sorted((set(architectures or []) | set(reject_architectures or [])) - set(ARCHITECTURES))
    if unknown:
        raise RetrainError(f"Unknown architecture {', '.join(unknown)}; choose from {', '.join(ARCHITECTURES)}.")
    if queue not in _queues():
        raise RetrainError(f"Unknown queue {queue!r}; choose from {', '.join(_queues())}.")
    try:
        plans = plan_members(profile=profile, architectures=architectures, flavours=flavours,
                             reject_architectures=reject_architectures, epochs=epochs, reject_epochs=reject_epochs,
                             steps_per_epoch=steps_per_epoch, batch_size=batch_size)
    except ValueError as exc:
        raise RetrainError(str(exc)) from None
    snapshot = None
    if snapshot_id is not None:
        snapshot = DatasetSnapshot.objects.filter(pk=snapshot_id).first()
        if snapshot is None:
            raise RetrainError(f"There is no snapshot {snapshot_id}.")
    params = {"profile": profile, "synthetic": synthetic, "members": [p.to_json() for p in plans]}
    with transaction.atomic():
        job = RetrainJob.objects.create(
            status=RetrainJob.Status.TRAINING if snapshot else RetrainJob.Status.SNAPSHOT, snapshot=snapshot,
            params=params, queue=queue, promote=promote, started_by=user if getattr(user, "pk", None) else None,
            timings={"created": timezone.now().isoformat()})
        first = dispatch.BUILD_SNAPSHOT if snapshot is None else dispatch.TRAIN_ENSEMBLE
        dispatch.send_on_commit(first, args=[job.pk], queue=job.queue)
    return job


def retrain_job_fail(*, job_id: int, error: str) -> None:
    RetrainJob.objects.filter(pk=job_id).exclude(status=RetrainJob.Status.DONE).update(
        status=RetrainJob.Status.FAILED, error=error[:4000], updated_at=timezone.now())


def retrain_job_snapshot(*, job_id: int) -> RetrainJob:
    """Build (or reuse) the job's snapshot, then queue its training."""
    job = RetrainJob.objects.get(pk=job_id)
    if job.status == RetrainJob.Status.SNAPSHOT:
        try:
            snapshot = snapshot_build(synthetic=int(job.params.get("synthetic", 0)), user=job.started_by)
        except SnapshotError as exc:
            retrain_job_fail(job_id=job.pk, error=str(exc))
            raise
        job.snapshot = snapshot
        job.status = RetrainJob.Status.TRAINING
        _mark(job, "snapshot_done")
        job.save(update_fields=["snapshot", "status", "timings", "updated_at"])
    if job.status == RetrainJob.Status.TRAINING:
        dispatch.send(dispatch.TRAIN_ENSEMBLE, args=[job.pk], queue=job.queue)
    return job


def retrain_job_start_training(*, job_id: int) -> list[TrainingRun]:
    """Create the member runs once (idempotent) and queue every run that has not succeeded.

    This is the header of the job's chord. Its body is ``retrain_job_advance``: the database, not a
    Celery chord counter, decides when every member is done. A Redis chord counts a redelivered member
    twice and could fire evaluation early; a row lock on the job cannot.
    """
    with transaction.atomic():
        job = RetrainJob.objects.select_for_update().get(pk=job_id)
        if job.status != RetrainJob.Status.TRAINING:
            return []
        if not job.runs.exists():
            TrainingRun.objects.bulk_create([
                TrainingRun(job=job, snapshot=job.snapshot, name=m["name"], architecture=m["architecture"],
                            flavour=m["flavour"], kind=m["kind"], config=m, started_by=job.started_by)
                for m in job.params["members"]])
            _mark(job, "training_started")
            job.save(update_fields=["timings", "updated_at"])
        runs = list(job.runs.exclude(status=TrainingRun.Status.SUCCEEDED).order_by("pk"))
        queue = job.queue
    for run in runs:
        dispatch.send(dispatch.TRAIN_MODEL, args=[run.pk, str(run.key)], queue=queue)
    return runs


def retrain_job_advance(*, job_id: int) -> bool:
    """Move the job to evaluation when every run has succeeded; True if this call did it (exactly once)."""
    with transaction.atomic():
        job = RetrainJob.objects.select_for_update().get(pk=job_id)
        if job.status != RetrainJob.Status.TRAINING:
            return False
        statuses = set(job.runs.values_list("status", flat=True))
        if statuses != {TrainingRun.Status.SUCCEEDED}:
            return False
        job.status = RetrainJob.Status.EVALUATING
        _mark(job, "training_done")
        job.save(update_fields=["status", "timings", "updated_at"])
        dispatch.send_on_commit(dispatch.EVALUATE_MODEL, args=[job_id], queue=job.queue)
    return True


def _assemble_and_evaluate(job: RetrainJob, runs: list[TrainingRun], rows: Any) -> tuple[Path, dict[str, Any]]:
    """The job's members assembled into an ensemble folder, and its evaluation on the snapshot's test set."""
    from training.ml.pipeline import PROFILES
    from training.ml.retrain import assemble_ensemble, evaluate_folder

    version = f"retrain-{job.pk}-{job.snapshot.content_hash[:8]}"
    folder = store_root() / "ensembles" / version
    members = [{"name": r.name, "architecture": r.architecture, "flavour": r.flavour, "kind": r.kind,
                "group": r.config.get("group", 0), "history": r.history,
                "model_path": Path(r.output_dir) / "best.keras"} for r in runs]
    tta = PROFILES.get(job.params.get("profile") or "quick", PROFILES["quick"]).tta
    assemble_ensemble(folder, version=version, members=members, tta=tta,
                      snapshot={"name": job.snapshot.name, "content_hash": job.snapshot.content_hash})
    return folder, evaluate_folder(folder, rows, log=logger.info)


def _compare_with_active(ensemble: Ensemble, folder: Path, rows: Any) -> dict[str, Any]:
    """The candidate beside the active ensemble on the same test set."""
    from training.ml.retrain import compare_on_test

    active = Ensemble.objects.filter(status=Ensemble.Status.ACTIVE).exclude(pk=ensemble.pk).first()
    folders = {"candidate": folder}
    if active:
        folders["active"] = ensemble_folder(active.folder)
    try:
        return compare_on_test(folders, rows)
    except Exception as exc:  # noqa: BLE001 - a broken old ensemble must not block the new candidate
        return {"error": f"comparison failed: {exc}"}


def _link_members_to_runs(ensemble: Ensemble, runs: list[TrainingRun], metrics: dict[str, Any]) -> None:
    by_name = {r.name: r for r in runs}
    for member in ensemble.members.all():
        run = by_name.get(member.name)
        if run:
            member.run = run
            member.save(update_fields=["run"])
            test_metrics = metrics.get("test", {}).get("members", {}).get(member.name) \
                or metrics.get("reject", {}).get("members", {}).get(member.name)
            run.metrics = {**run.metrics, "test": test_metrics}
            run.save(update_fields=["metrics", "updated_at"])


def retrain_job_evaluate(*, job_id: int) -> Ensemble | None:
    """Assemble the members into an ensemble, evaluate it, register it as a candidate, compare it with the
    active ensemble on the same test set, judge it on the independent family, and promote it if the job
    asked for that. Idempotent."""
    from training.ml.retrain import json_safe
    from training.ml.snapshot import load_snapshot

    job = RetrainJob.objects.select_related("snapshot").get(pk=job_id)
    if job.status == RetrainJob.Status.DONE:
        return job.ensemble
    if job.status != RetrainJob.Status.EVALUATING:
        return None
    runs = list(job.runs.order_by("pk"))
    rows = load_snapshot(snapshot_folder(snapshot=job.snapshot))
    folder, metrics = _assemble_and_evaluate(job, runs, rows)
    ensemble = ensemble_register(folder=folder)
    ensemble.snapshot = job.snapshot
    comparison = _compare_with_active(ensemble, folder, rows)
    ensemble.metrics = json_safe({**ensemble.metrics, "comparison": comparison})
    ensemble.save(update_fields=["snapshot", "metrics"])
    if job.params.get("independent", True) and training_setting("INDEPENDENT_CHECK"):
        # Judged on the independent family before anyone promotes it (≈ 1–2 min at 240 + 80 images).
        independent_check(ensemble=ensemble, log=logger.info)
    _link_members_to_runs(ensemble, runs, metrics)
    with transaction.atomic():
        job = RetrainJob.objects.select_for_update().get(pk=job_id)
        job.ensemble = ensemble
        job.status = RetrainJob.Status.DONE
        _mark(job, "evaluated")
        if job.promote:
            ensemble_activate(ensemble=ensemble)
            _mark(job, "promoted")
        job.save(update_fields=["ensemble", "status", "timings", "updated_at"])
    return ensemble


def retrain_if_due() -> RetrainJob | None:
    """The weekly job: retrain when enabled and enough consensus labels are newer than the last snapshot."""
    if not training_setting("WEEKLY_RETRAIN"):
        return None
    last = DatasetSnapshot.objects.order_by("-created_at").first()
    new_labels = consensus_labels_since(since=last.created_at if last else None)
    if new_labels < int(training_setting("RETRAIN_MIN_NEW_LABELS")):
        return None
    return retrain_job_create(profile=str(training_setting("RETRAIN_PROFILE")))
