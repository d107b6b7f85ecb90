"""Celery tasks of the predictions app: thin wrappers around ``predictions.batch``."""
from celery import shared_task
from celery.signals import worker_ready

from .batch import batch_job_run, batch_jobs_orphaned


@shared_task(name="predictions.tasks.run_batch_job", acks_late=True, reject_on_worker_lost=True)
def run_batch_job(job_id: str) -> dict:
    job = batch_job_run(job_id=job_id)
    return {"job": str(job.id), "status": job.status, "done": job.done, "failed": job.failed}


@shared_task(name="predictions.tasks.requeue_orphaned_batch_jobs")
def requeue_orphaned_batch_jobs() -> list[str]:
    """Queue again the batch jobs whose worker died mid-run (SIGKILL, OOM, host loss)."""
    orphans = batch_jobs_orphaned()
    for job_id in orphans:
        run_batch_job.delay(job_id)
    return orphans


@worker_ready.connect
def _resume_orphaned_batch_jobs(sender, **_: object) -> None:  # noqa: ANN001
    """A (re)started worker resumes killed batch jobs now, not after the broker's one-hour visibility timeout."""
    requeue_orphaned_batch_jobs.apply_async(queue="predict")
