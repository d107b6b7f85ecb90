"""Sending export jobs to the worker (issue 16): after the row commits, a broker outage recorded on the job
and answered 503, and jobs whose message was lost sent again by a periodic sweep."""
from __future__ import annotations

from django.conf import settings
from django.utils import timezone

from inclinet_site.celery import enqueue_on_commit

from .models import ExportJob, ExportStatus


def export_job_enqueue(job: ExportJob) -> None:
    """Send ``job`` once committed; with the broker down the job fails with the reason and ``QueueUnavailable``
    (503) is raised."""
    from .tasks import export_consensus

    def unavailable(reason: str) -> None:
        ExportJob.objects.filter(pk=job.pk, status=ExportStatus.PENDING).update(
            status=ExportStatus.FAILED, finished_at=timezone.now(),
            error=f"Not started: {reason}. Please request the export again.")

    enqueue_on_commit(lambda: export_consensus.delay(str(job.pk)), on_unavailable=unavailable,
                      what=f"export job {job.pk}")


def export_jobs_stale_pending() -> list[str]:
    """Exports still pending ``QUEUED_JOB_STALE_S`` after they were requested: their message was lost."""
    cutoff = timezone.now() - timezone.timedelta(seconds=float(settings.QUEUED_JOB_STALE_S))
    return [str(pk) for pk in ExportJob.objects.filter(status=ExportStatus.PENDING, created_at__lt=cutoff)
            .values_list("pk", flat=True)]
