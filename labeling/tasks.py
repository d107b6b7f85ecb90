"""Celery tasks of the Zoo: thin wrappers around its services (calibration, priorities, exports, ingestion)."""
from __future__ import annotations

from celery import shared_task


@shared_task(name="labeling.calibrate")
def calibrate() -> dict:
    from .calibration import calibration_fit

    report = calibration_fit()
    return {"iterations": report.iterations, "converged": report.converged,
            "calibrated": report.calibrated, "identity": report.identity}


@shared_task(name="labeling.sync_priorities")
def sync_priorities() -> int:
    from .assignment import queue_sync_priorities

    return queue_sync_priorities()


# ignore_result: the job row holds the outcome, and sending then needs the broker only (not the result store).
@shared_task(name="labeling.export", bind=True, max_retries=2, ignore_result=True)
def export_consensus(self, job_id: str) -> str:  # noqa: ANN001 - bound task
    from .export import export_job_run

    return str(export_job_run(job_id=job_id).pk)


@shared_task(name="labeling.requeue_stale_exports")
def requeue_stale_exports() -> list[str]:
    """Periodic: send again the exports whose message was lost (still pending after QUEUED_JOB_STALE_S)."""
    from .export_queue import export_jobs_stale_pending

    stale = export_jobs_stale_pending()
    for job_id in stale:
        export_consensus.delay(job_id)
    return stale


@shared_task(name="labeling.ingest_galaxies")
def ingest_galaxies(job_id: int) -> dict:
    """Fetch the images of a staff ingestion job's galaxies and queue them (resumable: done ones are skipped)."""
    from .ingest import ingest_job_run

    job = ingest_job_run(job_id=job_id)
    return {"added": job.added, "skipped": job.skipped, "failed": job.failed}
