"""Celery tasks of the training app: thin wrappers around the services (``jobs``, ``runs``, ``builds``,
``snapshots``) and ``training/ml``. The services send tasks by name (``training.dispatch``), never importing
this module, so it imports them at the top.

Every task is safe to run twice. Long tasks use ``acks_late`` with ``reject_on_worker_lost``, so a message
survives a dead worker; the lease in the database (``training.leases``) makes a duplicate a no-op and a
resumed run continue from its last per-epoch checkpoint. Training tasks go to the ``train`` queue (routes
in settings), unless a job names another.
"""
from __future__ import annotations

from typing import Any

from celery import Task, shared_task
from celery.signals import worker_ready

from inclinet_site.celery import worker_consumes

from .builds import (BuildBusy, build_time_limits, ensemble_build_execute, ensemble_build_for_message,
                     ensemble_builds_requeue_orphans)
from .conf import training_setting
from .jobs import retrain_if_due as retrain_if_due_service
from .jobs import retrain_job_evaluate, retrain_job_fail, retrain_job_snapshot, retrain_job_start_training
from .runs import training_run_execute, training_runs_requeue_orphans
from .snapshots import consensus_export_to_store

LONG = {"acks_late": True, "reject_on_worker_lost": True}


class BuildTask(Task):
    """``build_ensemble``'s messages carry their profile's soft and hard time limits
    (``settings.TRAINING_BUILD_TIME_LIMITS_S``) unless the caller sets others; retries keep them."""

    def apply_async(self, args: Any = None, kwargs: Any = None, **options: Any) -> Any:
        profile = (kwargs or {}).get("profile") or (args[0] if args else "quick")
        soft, hard = build_time_limits(str(profile))
        options.setdefault("soft_time_limit", soft)
        options.setdefault("time_limit", hard)
        return super().apply_async(args, kwargs, **options)


@shared_task(name="training.tasks.build_ensemble", base=BuildTask, bind=True, **LONG)
def build_ensemble(self: Task, profile: str = "quick", promote: bool = True, if_none_active: bool = True,
                   job_id: int | None = None, key: str | None = None) -> dict:
    """Build (or resume) an ensemble as a job the staff pages show. Queue it with
    ``builds.ensemble_build_queue``; a bare ``build_ensemble.delay("quick")`` also works (its job is
    keyed by the message id). A redelivered message resumes in the same folder from the checkpoints; while
    another build runs this one waits (retried every ``TRAINING_BUILD_WAIT_S``)."""
    if job_id is None:
        job = ensemble_build_for_message(message_id=self.request.id, profile=profile, promote=promote,
                                         if_none_active=if_none_active)
        job_id, key = job.pk, str(job.key)
    _, soft = self.request.timelimit or (None, None)
    try:
        return ensemble_build_execute(job_id=job_id, key=str(key), soft_time_limit=soft)
    except BuildBusy as busy:
        raise self.retry(countdown=float(training_setting("BUILD_WAIT_S")), max_retries=None, exc=busy) from None


@shared_task(name="training.tasks.requeue_orphaned_builds")
def requeue_orphaned_builds() -> list[int]:
    return ensemble_builds_requeue_orphans()


@shared_task(name="training.tasks.build_snapshot", **LONG)
def build_snapshot(job_id: int) -> int | None:
    job = retrain_job_snapshot(job_id=job_id)
    return job.snapshot_id


@shared_task(name="training.tasks.train_ensemble", **LONG)
def train_ensemble(job_id: int) -> list[int]:
    """Fan out one ``train_model`` per member; the last one to finish queues ``evaluate_model``."""
    return [run.pk for run in retrain_job_start_training(job_id=job_id)]


@shared_task(name="training.tasks.train_model", **LONG)
def train_model(run_id: int, key: str) -> dict:
    """One architecture × flavour; resumes from its checkpoint when redelivered after a crash."""
    return training_run_execute(run_id=run_id, key=key)


@shared_task(name="training.tasks.evaluate_model", **LONG)
def evaluate_model(job_id: int) -> str | None:
    """Assemble, evaluate, register (candidate), compare with the active ensemble; promote if asked."""
    try:
        ensemble = retrain_job_evaluate(job_id=job_id)
    except Exception as exc:
        retrain_job_fail(job_id=job_id, error=f"evaluation failed: {exc}")
        raise
    return ensemble.version if ensemble else None


@shared_task(name="training.tasks.requeue_orphaned_runs")
def requeue_orphaned_runs() -> list[int]:
    return training_runs_requeue_orphans()


@shared_task(name="training.tasks.export_consensus")
def export_consensus() -> str:
    return str(consensus_export_to_store())


@shared_task(name="training.tasks.retrain_if_due")
def retrain_if_due() -> int | None:
    job = retrain_if_due_service()
    return job.pk if job else None


@worker_ready.connect
def _resume_orphans_on_start(sender, **_: object) -> None:  # noqa: ANN001
    """A worker that starts (e.g. after the previous one was killed) picks up runs and builds whose owner
    died, instead of waiting for the broker's visibility timeout to redeliver their messages. Only a worker
    of the train queue: another worker restarting says nothing about training."""
    if worker_consumes(sender, "train"):
        requeue_orphaned_runs.apply_async(queue="train")
        requeue_orphaned_builds.apply_async(queue="train")
