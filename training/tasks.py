"""Celery tasks of the training app: thin wrappers around ``training.services`` (logic) and ``training/ml``.

Every task is safe to run twice. Long tasks use ``acks_late`` with ``reject_on_worker_lost``, so a message
survives a dead worker; the run lease in the database (see ``services``) makes a duplicate a no-op and a
resumed run continue from its last per-epoch checkpoint. Training tasks go to the ``train`` queue (routes
in settings), unless a job names another; scoring goes to ``predict``.
"""
from __future__ import annotations

from celery import shared_task
from celery.signals import worker_ready
from celery.schedules import crontab
from django.core.management import call_command

from inclinet_site.celery import app

LONG = {"acks_late": True, "reject_on_worker_lost": True}


@shared_task(name="training.tasks.build_ensemble", **LONG)
def build_ensemble(profile: str = "quick", promote: bool = True, if_none_active: bool = True) -> str:
    """Build (or resume building) an ensemble; checkpoints make a redelivered task continue, not restart."""
    call_command("build_ensemble", profile=profile, promote=promote, if_none_active=if_none_active)
    return profile


@shared_task(name="training.tasks.build_snapshot", **LONG)
def build_snapshot(job_id: int) -> int | None:
    from .services import retrain_job_snapshot

    job = retrain_job_snapshot(job_id=job_id)
    return job.snapshot_id


@shared_task(name="training.tasks.train_ensemble", **LONG)
def train_ensemble(job_id: int) -> list[int]:
    """Fan out one ``train_model`` per member; the last one to finish queues ``evaluate_model``."""
    from .services import retrain_job_start_training

    return [run.pk for run in retrain_job_start_training(job_id=job_id)]


@shared_task(name="training.tasks.train_model", **LONG)
def train_model(run_id: int, key: str) -> dict:
    """One architecture × flavour; resumes from its checkpoint when redelivered after a crash."""
    from .services import training_run_execute

    return training_run_execute(run_id=run_id, key=key)


@shared_task(name="training.tasks.evaluate_model", **LONG)
def evaluate_model(job_id: int) -> str | None:
    """Assemble, evaluate, register (candidate), compare with the active ensemble; promote if asked."""
    from .services import retrain_job_evaluate, retrain_job_fail

    try:
        ensemble = retrain_job_evaluate(job_id=job_id)
    except Exception as exc:
        retrain_job_fail(job_id=job_id, error=f"evaluation failed: {exc}")
        raise
    return ensemble.version if ensemble else None


@shared_task(name="training.tasks.predict_catalogue", **LONG)
def predict_catalogue(limit: int | None = None) -> dict:
    from .services import catalogue_predict

    return catalogue_predict(limit=limit)


@shared_task(name="training.tasks.requeue_orphaned_runs")
def requeue_orphaned_runs() -> list[int]:
    from .services import training_runs_requeue_orphans

    return training_runs_requeue_orphans()


@shared_task(name="training.tasks.export_consensus")
def export_consensus() -> str:
    from .services import consensus_export_to_store

    return str(consensus_export_to_store())


@shared_task(name="training.tasks.retrain_if_due")
def retrain_if_due() -> int | None:
    from .services import retrain_if_due as service

    job = service()
    return job.pk if job else None


@worker_ready.connect
def _resume_orphans_on_start(sender, **_: object) -> None:  # noqa: ANN001
    """A worker that starts (e.g. after the previous one was killed) picks up runs whose owner died,
    instead of waiting for the broker's visibility timeout to redeliver their messages."""
    requeue_orphaned_runs.apply_async(queue="train")


# Periodic work for celery beat, added the way labeling/tasks.py adds its own.
app.conf.beat_schedule = {
    **(app.conf.beat_schedule or {}),
    "training-requeue-orphaned-runs": {"task": "training.tasks.requeue_orphaned_runs", "schedule": 120.0,
                                       "options": {"queue": "train"}},
    "training-export-consensus": {"task": "training.tasks.export_consensus", "schedule": crontab(hour=2, minute=30),
                                  "options": {"queue": "default"}},
    "training-weekly-retrain": {"task": "training.tasks.retrain_if_due",
                                "schedule": crontab(hour=3, minute=0, day_of_week="sunday"),
                                "options": {"queue": "default"}},
}
