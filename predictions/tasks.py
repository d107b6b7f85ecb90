"""Celery tasks of the predictions app: thin wrappers around ``predictions.batch``."""
from celery import shared_task

from .batch import batch_job_run


@shared_task(name="predictions.tasks.run_batch_job", acks_late=True, reject_on_worker_lost=True)
def run_batch_job(job_id: str) -> dict:
    job = batch_job_run(job_id=job_id)
    return {"job": str(job.id), "status": job.status, "done": job.done, "failed": job.failed}
