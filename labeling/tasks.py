"""Celery tasks of the Zoo: thin wrappers around services (calibration, priorities, exports)."""
from __future__ import annotations

from celery import shared_task

from inclinet_site.celery import app

from .conf import zoo_setting


@shared_task(name="labeling.calibrate")
def calibrate() -> dict:
    from .services import calibration_fit

    report = calibration_fit()
    return {"iterations": report.iterations, "converged": report.converged,
            "calibrated": report.calibrated, "identity": report.identity}


@shared_task(name="labeling.sync_priorities")
def sync_priorities() -> int:
    from .services import queue_sync_priorities

    return queue_sync_priorities()


@shared_task(name="labeling.export", bind=True, max_retries=2)
def export_consensus(self, job_id: str) -> str:  # noqa: ANN001 - bound task
    from .services import export_job_run

    return str(export_job_run(job_id=job_id).pk)


# Periodic work for celery beat; added here so the app owns its schedule without touching settings.
app.conf.beat_schedule = {
    **(app.conf.beat_schedule or {}),
    "labeling-calibrate": {"task": "labeling.calibrate", "schedule": float(zoo_setting("CALIBRATION_INTERVAL_S"))},
    "labeling-sync-priorities": {"task": "labeling.sync_priorities", "schedule": 600.0},
}
