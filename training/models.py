"""Training domain models: dataset snapshots, training runs, model versions and ensembles."""
from __future__ import annotations

import uuid

from django.conf import settings
from django.db import models


class DatasetSnapshot(models.Model):
    """A frozen training set: consensus labels and/or synthetic galaxies, with a content hash."""

    name = models.CharField(max_length=100, unique=True)
    content_hash = models.CharField(max_length=64, db_index=True)
    path = models.CharField(max_length=500, help_text="folder under MODEL_STORE/datasets")
    n_train = models.PositiveIntegerField(default=0)
    n_test = models.PositiveIntegerField(default=0)
    n_val = models.PositiveIntegerField(default=0)
    description = models.JSONField(default=dict, blank=True)
    created_by = models.ForeignKey(settings.AUTH_USER_MODEL, null=True, blank=True, on_delete=models.SET_NULL,
                                   related_name="+")
    created_at = models.DateTimeField(auto_now_add=True)

    def __str__(self) -> str:
        return self.name


class RetrainJob(models.Model):
    """One press of "Retrain": a snapshot, a set of training runs, then evaluation and a candidate ensemble.

    The job is the barrier of the member runs: the last run to succeed moves it on to evaluation (see
    ``services.retrain_job_advance``), which survives redelivered and duplicated Celery messages.

    A job of kind ``build`` is one ``build_ensemble`` on synthetic galaxies (``training.builds``):
    queued → running (``stage``, ``progress``) → done or failed, in the folder ``params["version"]``. It holds
    a lease like a training run (``worker``, ``heartbeat_at``), and at most one build runs at a time (a
    partial unique index, so SQLite enforces it as well as PostgreSQL).
    """

    class Kind(models.TextChoices):
        RETRAIN = "retrain"
        BUILD = "build"

    class Status(models.TextChoices):
        SNAPSHOT = "snapshot"  # building the dataset snapshot
        TRAINING = "training"
        EVALUATING = "evaluating"
        QUEUED = "queued"  # builds: waiting for a worker (or for the running build)
        RUNNING = "running"  # builds: generating, training, evaluating (see ``stage``)
        DONE = "done"  # a candidate ensemble is registered (and promoted when asked)
        FAILED = "failed"

    kind = models.CharField(max_length=16, choices=Kind.choices, default=Kind.RETRAIN, db_index=True)
    # Sent with a build's Celery messages: a message left over from another database (ids restart) is ignored.
    key = models.UUIDField(default=uuid.uuid4, editable=False)
    status = models.CharField(max_length=16, choices=Status.choices, default=Status.SNAPSHOT, db_index=True)
    stage = models.CharField(max_length=200, blank=True, help_text="builds: what the build is doing now")
    progress = models.FloatField(default=0.0, help_text="builds: 0–1 over generation, training and evaluation")
    worker = models.CharField(max_length=200, blank=True, help_text="builds: host:pid of the process running it")
    heartbeat_at = models.DateTimeField(null=True, blank=True)
    sessions = models.JSONField(default=list, blank=True, help_text="builds: one entry per process that ran it")
    snapshot = models.ForeignKey(DatasetSnapshot, null=True, blank=True, on_delete=models.PROTECT, related_name="jobs")
    params = models.JSONField(default=dict, help_text="the retrain form: members, epochs, queue, snapshot options")
    queue = models.CharField(max_length=32, default="train")
    promote = models.BooleanField(default=False, help_text="promote the candidate when evaluation succeeds")
    ensemble = models.ForeignKey("Ensemble", null=True, blank=True, on_delete=models.SET_NULL, related_name="+")
    error = models.TextField(blank=True)
    timings = models.JSONField(default=dict, blank=True, help_text="wall-clock marks (ISO) of each phase")
    started_by = models.ForeignKey(settings.AUTH_USER_MODEL, null=True, blank=True, on_delete=models.SET_NULL,
                                   related_name="+")
    created_at = models.DateTimeField(auto_now_add=True)
    updated_at = models.DateTimeField(auto_now=True)

    class Meta:
        constraints = [
            # The build lock: a second build cannot become running while one is (see training.builds).
            models.UniqueConstraint(fields=["kind"], condition=models.Q(kind="build", status="running"),
                                    name="one_running_build"),
        ]

    def __str__(self) -> str:
        return f"{self.kind} #{self.pk} ({self.status})"


class TrainingRun(models.Model):
    """One architecture × flavour fit, with live progress written by the Celery task."""

    class Status(models.TextChoices):
        QUEUED = "queued"
        RUNNING = "running"
        SUCCEEDED = "succeeded"
        FAILED = "failed"

    snapshot = models.ForeignKey(DatasetSnapshot, on_delete=models.PROTECT, related_name="runs", null=True, blank=True)
    job = models.ForeignKey(RetrainJob, null=True, blank=True, on_delete=models.CASCADE, related_name="runs")
    # Sent with every Celery message: a message left over from another database (ids restart) is ignored.
    key = models.UUIDField(default=uuid.uuid4, editable=False)
    name = models.CharField(max_length=32, blank=True, help_text="member name in the ensemble, e.g. compact2")
    architecture = models.CharField(max_length=32)
    flavour = models.PositiveSmallIntegerField(default=0)
    kind = models.CharField(max_length=16, default="regression")
    config = models.JSONField(default=dict, blank=True)
    status = models.CharField(max_length=16, choices=Status.choices, default=Status.QUEUED)
    epoch = models.PositiveIntegerField(default=0)
    step = models.PositiveIntegerField(default=0, help_text="global step: (epoch − 1) × steps + step in epoch")
    total_steps = models.PositiveIntegerField(default=0)
    loss = models.FloatField(null=True, blank=True, help_text="running loss of the current epoch")
    progress = models.FloatField(default=0.0)
    eta_seconds = models.FloatField(null=True, blank=True)
    history = models.JSONField(default=dict, blank=True)
    metrics = models.JSONField(default=dict, blank=True)
    output_dir = models.CharField(max_length=500, blank=True)
    error = models.TextField(blank=True)
    # Lease: who trains it now and when it last reported; a stale or dead owner lets another worker resume.
    worker = models.CharField(max_length=200, blank=True, help_text="host:pid of the process training it")
    heartbeat_at = models.DateTimeField(null=True, blank=True)
    # One entry per process that trained it: from which epoch it resumed and which steps it redid.
    sessions = models.JSONField(default=list, blank=True)
    started_by = models.ForeignKey(settings.AUTH_USER_MODEL, null=True, blank=True, on_delete=models.SET_NULL)
    started_at = models.DateTimeField(null=True, blank=True)
    finished_at = models.DateTimeField(null=True, blank=True)
    created_at = models.DateTimeField(auto_now_add=True)
    updated_at = models.DateTimeField(auto_now=True)

    class Meta:
        indexes = [models.Index(fields=["status", "heartbeat_at"], name="training_run_lease")]

    def __str__(self) -> str:
        return f"{self.name or self.architecture} flavour {self.flavour} ({self.status})"


class Ensemble(models.Model):
    """Model versions that serve together; exactly one ensemble is active at a time."""

    class Status(models.TextChoices):
        CANDIDATE = "candidate"
        ACTIVE = "active"
        RETIRED = "retired"

    version = models.CharField(max_length=64, unique=True)
    folder = models.CharField(max_length=500, help_text="folder under MODEL_STORE holding manifest.json and weights")
    status = models.CharField(max_length=16, choices=Status.choices, default=Status.CANDIDATE, db_index=True)
    manifest = models.JSONField(default=dict)
    metrics = models.JSONField(default=dict, blank=True)
    independent_evaluation = models.JSONField(
        default=dict, blank=True,
        help_text="the independent family at promotion (training.independent_services): ensemble vs axial ratio")
    snapshot = models.ForeignKey(DatasetSnapshot, null=True, blank=True, on_delete=models.SET_NULL)
    previous = models.ForeignKey("self", null=True, blank=True, on_delete=models.SET_NULL, related_name="+")
    created_at = models.DateTimeField(auto_now_add=True)
    promoted_at = models.DateTimeField(null=True, blank=True)

    class Meta:
        constraints = [
            models.UniqueConstraint(fields=["status"], condition=models.Q(status="active"), name="one_active_ensemble")
        ]

    def __str__(self) -> str:
        return f"{self.version} ({self.status})"


class ModelVersion(models.Model):
    """One trained network: architecture × flavour, its weights file and manifest entry."""

    class Status(models.TextChoices):
        CANDIDATE = "candidate"
        ACTIVE = "active"
        RETIRED = "retired"

    ensemble = models.ForeignKey(Ensemble, on_delete=models.CASCADE, related_name="members")
    name = models.CharField(max_length=32, help_text="public name, e.g. model41 or model5-binary")
    architecture = models.CharField(max_length=32)
    flavour = models.PositiveSmallIntegerField(default=0)
    kind = models.CharField(max_length=16)
    weights = models.CharField(max_length=500)
    metrics = models.JSONField(default=dict, blank=True)
    run = models.ForeignKey(TrainingRun, null=True, blank=True, on_delete=models.SET_NULL)
    status = models.CharField(max_length=16, choices=Status.choices, default=Status.CANDIDATE)

    class Meta:
        constraints = [models.UniqueConstraint(fields=["ensemble", "name"], name="model_name_unique_in_ensemble")]

    def __str__(self) -> str:
        return f"{self.name} in {self.ensemble.version}"
