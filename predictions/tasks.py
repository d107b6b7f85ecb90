"""Celery tasks of the predictions app: thin wrappers around ``predictions.batch``, ``predictions.catalogue``
and ``predictions.retention``."""
from celery import shared_task
from celery.signals import worker_ready

from inclinet_site.celery import worker_consumes

from .batch import batch_job_run, batch_jobs_orphaned, batch_jobs_stale_queued
from .catalogue import catalogue_predict


# ignore_result: progress lives in the database, and sending then needs the broker only (not the result store).
@shared_task(name="predictions.tasks.run_batch_job", acks_late=True, reject_on_worker_lost=True, ignore_result=True)
def run_batch_job(job_id: str, resume: bool = False) -> dict:
    job = batch_job_run(job_id=job_id, resume=resume)
    return {"job": str(job.id), "status": job.status, "done": job.done, "failed": job.failed}


@shared_task(name="predictions.tasks.requeue_orphaned_batch_jobs")
def requeue_orphaned_batch_jobs() -> list[str]:
    """Queue again the batch jobs whose worker died mid-run (SIGKILL, OOM, host loss)."""
    orphans = batch_jobs_orphaned()
    for job_id in orphans:
        run_batch_job.apply_async(args=[job_id], kwargs={"resume": True})
    return orphans


@shared_task(name="predictions.tasks.requeue_stale_batch_jobs")
def requeue_stale_batch_jobs() -> dict[str, list[str]]:
    """Periodic: send again jobs queued too long (message lost) and, where provable, orphaned runs."""
    stale = batch_jobs_stale_queued()
    for job_id in stale:
        run_batch_job.delay(job_id)
    orphans = batch_jobs_orphaned(only_provable=True)
    for job_id in orphans:
        run_batch_job.apply_async(args=[job_id], kwargs={"resume": True})
    return {"stale_queued": stale, "orphaned": orphans}


@shared_task(name="predictions.tasks.predict_catalogue", acks_late=True, reject_on_worker_lost=True)
def predict_catalogue(limit: int | None = None) -> dict:
    """Re-score the catalogue's labeling priorities with the active ensemble (queued by every promotion)."""
    return catalogue_predict(limit=limit)


@shared_task(name="predictions.tasks.expire_prediction_media")
def expire_prediction_media() -> dict[str, int]:
    """Periodic: delete page uploads and stored model inputs past their age (``predictions.retention``)."""
    from .retention import prediction_media_expire

    return prediction_media_expire()


@worker_ready.connect
def _resume_orphaned_batch_jobs(sender, **_: object) -> None:  # noqa: ANN001
    """A (re)started worker resumes killed batch jobs now, not after the broker's one-hour visibility timeout.
    Only a worker of the predict queue: the training worker restarting says nothing about batch runs."""
    if worker_consumes(sender, "predict"):
        requeue_orphaned_batch_jobs.apply_async(queue="predict")
