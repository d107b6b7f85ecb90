"""Batch prediction jobs: a CSV of PGC numbers or names, or a zip of images, evaluated on Celery."""
from __future__ import annotations

import uuid

from django.conf import settings
from django.db import models


class BatchJob(models.Model):
    class Kind(models.TextChoices):
        CSV = "csv", "CSV of PGC numbers or names"
        ZIP = "zip", "Zip of images"

    class Status(models.TextChoices):
        QUEUED = "queued"
        RUNNING = "running"
        SUCCEEDED = "succeeded"
        FAILED = "failed"

    id = models.UUIDField(primary_key=True, default=uuid.uuid4, editable=False)
    kind = models.CharField(max_length=8, choices=Kind.choices)
    status = models.CharField(max_length=16, choices=Status.choices, default=Status.QUEUED)
    input_file = models.FileField(upload_to="batch/input/")
    result_file = models.FileField(upload_to="batch/results/", blank=True)
    total = models.PositiveIntegerField(default=0)
    done = models.PositiveIntegerField(default=0)
    failed = models.PositiveIntegerField(default=0)
    error = models.TextField(blank=True)
    owner = models.ForeignKey(settings.AUTH_USER_MODEL, null=True, blank=True, on_delete=models.SET_NULL)
    created_at = models.DateTimeField(auto_now_add=True)
    finished_at = models.DateTimeField(null=True, blank=True)

    @property
    def progress(self) -> float:
        return self.done / self.total if self.total else 0.0

    def __str__(self) -> str:
        return f"{self.kind} batch {self.id} ({self.status})"
