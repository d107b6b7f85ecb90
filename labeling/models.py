"""Galaxy Inclination Zoo models: volunteers, standards, leases, measurements, consensus and calibration.

Measurements are append-only: nothing in the app updates or deletes one. Everything derived from them
(``Consensus``, ``VolunteerCalibration``) can be recomputed from the measurements at any time.
"""
from __future__ import annotations

import random
import uuid

from django.conf import settings
from django.db import models
from django.db.models import Q

from catalog.models import Galaxy, ImageKind

REJECT_REASONS = (
    "not_sure", "better_image", "bad_TF", "ambiguous", "disturbed", "HI", "face_on", "not_spiral", "multiple",
)


class Role(models.TextChoices):
    VOLUNTEER = "volunteer", "Volunteer"
    EXPERT = "expert", "Expert (may propose gold standards)"
    STAFF = "staff", "Staff"


class DisplayMode(models.TextChoices):
    COLOUR = ImageKind.COLOUR.value, "Colour"
    G = ImageKind.G.value, "g band (grey)"
    R = ImageKind.R.value, "r band (grey)"
    I = ImageKind.I.value, "i band (grey)"  # noqa: E741 - the SDSS band is called i


class VolunteerProfile(models.Model):
    """A volunteer's role, display preferences and progress through the gold-standard schedule."""

    user = models.OneToOneField(settings.AUTH_USER_MODEL, on_delete=models.CASCADE, related_name="zoo_profile")
    role = models.CharField(max_length=16, choices=Role.choices, default=Role.VOLUNTEER)
    display_mode = models.CharField(max_length=8, choices=DisplayMode.choices, default=DisplayMode.COLOUR)
    inverted = models.BooleanField(default=False)
    zoom = models.FloatField(default=1.0)
    tutorial_done = models.BooleanField(default=False)
    # Set only by the server-side tutorial check (labeling/tutorial.py), never by a preferences PATCH.
    tutorial_passed_at = models.DateTimeField(null=True, blank=True)
    tutorial_median_error = models.FloatField(null=True, blank=True, help_text="Median error, degrees, of the last attempt")
    tutorial_attempts = models.PositiveIntegerField(default=0)
    # Tasks handed out so far; the gold-standard injection rate decays with it.
    tasks_served = models.PositiveIntegerField(default=0)
    created_at = models.DateTimeField(auto_now_add=True)

    def __str__(self) -> str:
        return f"{self.user} ({self.role})"


class StandardMethod(models.TextChoices):
    STAFF = "staff", "Chosen by staff"
    EXPERTS = "experts", "Three experts agreed"
    CROWD = "crowd", "Promoted by staff from a settled consensus"


class Standard(models.Model):
    """A galaxy with an accepted inclination, used as a comparison image and as a gold task.

    Several standards may share an inclination (different morphologies), so the page can redraw them.
    """

    galaxy = models.OneToOneField(Galaxy, on_delete=models.CASCADE, related_name="zoo_standard")
    inclination = models.FloatField(help_text="Accepted inclination, degrees (45-90 for the comparison grid)")
    morphology = models.CharField(max_length=32, blank=True, default="")
    display_scale = models.FloatField(default=1.0, help_text="Zoom applied when shown (STDscales.zoom)")
    display_angle = models.FloatField(default=0.0, help_text="Rotation applied when shown, degrees (STDscales.dPA)")
    method = models.CharField(max_length=8, choices=StandardMethod.choices, default=StandardMethod.STAFF)
    chosen_by = models.ManyToManyField(settings.AUTH_USER_MODEL, blank=True, related_name="zoo_standards_chosen")
    active = models.BooleanField(default=True)
    created_at = models.DateTimeField(auto_now_add=True)

    class Meta:
        indexes = [models.Index(fields=["active", "inclination"], name="zoo_standard_active_inc")]
        constraints = [
            models.CheckConstraint(condition=Q(inclination__gte=0, inclination__lte=90), name="zoo_standard_inc_range"),
        ]

    def __str__(self) -> str:
        return f"standard {self.galaxy} @ {self.inclination:g}°"


class StandardProposal(models.Model):
    """An expert's measurement of a candidate standard; three agreeing within 3° make it a standard."""

    galaxy = models.ForeignKey(Galaxy, on_delete=models.CASCADE, related_name="zoo_standard_proposals")
    expert = models.ForeignKey(settings.AUTH_USER_MODEL, on_delete=models.CASCADE, related_name="+")
    inclination = models.FloatField()
    morphology = models.CharField(max_length=32, blank=True, default="")
    display_scale = models.FloatField(default=1.0)
    display_angle = models.FloatField(default=0.0)
    created_at = models.DateTimeField(auto_now_add=True)

    class Meta:
        constraints = [models.UniqueConstraint(fields=["galaxy", "expert"], name="zoo_one_proposal_per_expert")]


class AssignmentStatus(models.TextChoices):
    OPEN = "open", "Open (leased)"
    DONE = "done", "Measured"
    SKIPPED = "skipped", "Skipped"


class Assignment(models.Model):
    """A lease of one galaxy to one volunteer. Unique per (user, galaxy): nobody sees a galaxy twice."""

    user = models.ForeignKey(settings.AUTH_USER_MODEL, on_delete=models.CASCADE, related_name="zoo_assignments")
    galaxy = models.ForeignKey(Galaxy, on_delete=models.CASCADE, related_name="zoo_assignments")
    status = models.CharField(max_length=8, choices=AssignmentStatus.choices, default=AssignmentStatus.OPEN)
    is_gold = models.BooleanField(default=False)
    queue = models.CharField(max_length=16, default="", help_text="Which queue produced it (debugging)")
    leased_until = models.DateTimeField()
    # Every standard sequence drawn for this task, {"1": [[ids...], ...], "2": [[ids...], ...]}, so a submit can
    # be checked against what the page really showed (forged neighbour pairs are refused).
    shown = models.JSONField(default=dict, blank=True)
    created_at = models.DateTimeField(auto_now_add=True)

    class Meta:
        constraints = [models.UniqueConstraint(fields=["user", "galaxy"], name="zoo_assignment_once_per_user")]
        indexes = [
            # Open leases per galaxy: counted when a galaxy's free slots are checked.
            models.Index(fields=["galaxy", "leased_until"], name="zoo_assign_open",
                         condition=Q(status="open")),
            models.Index(fields=["user", "status"], name="zoo_assign_user_status"),
        ]

    def __str__(self) -> str:
        return f"{self.user} → {self.galaxy} ({self.status})"


class AppendOnlyError(RuntimeError):
    """Raised on any attempt to change or delete a stored measurement."""


class MeasurementQuerySet(models.QuerySet):
    """Bulk ``update()`` and ``delete()`` are refused: a measurement, once stored, is the audit record."""

    def update(self, **kwargs: object) -> int:
        raise AppendOnlyError("Measurements are append-only; they cannot be updated.")

    def delete(self) -> tuple[int, dict[str, int]]:
        raise AppendOnlyError("Measurements are append-only; they cannot be deleted.")


class Measurement(models.Model):
    """One volunteer's answer for one galaxy. Append-only: the row is the audit trail (who, when, from which
    lease and user agent, what was shown), so saving an existing row or deleting one raises AppendOnlyError.
    Consensus and calibration are derived and can be rebuilt from these rows (``manage.py consensus_rebuild``).
    """

    objects = MeasurementQuerySet.as_manager()

    user = models.ForeignKey(settings.AUTH_USER_MODEL, on_delete=models.PROTECT, related_name="zoo_measurements")
    galaxy = models.ForeignKey(Galaxy, on_delete=models.PROTECT, related_name="zoo_measurements")
    # One measurement per lease: the database itself refuses a double submit.
    assignment = models.OneToOneField(Assignment, on_delete=models.PROTECT, null=True, blank=True,
                                      related_name="measurement")
    inclination_raw = models.FloatField(null=True, blank=True, help_text="Mean of the two neighbours")
    inclination = models.PositiveSmallIntegerField(null=True, blank=True, help_text="Raw, rounded up or down at random")
    left_standard = models.ForeignKey(Standard, on_delete=models.PROTECT, null=True, blank=True, related_name="+")
    right_standard = models.ForeignKey(Standard, on_delete=models.PROTECT, null=True, blank=True, related_name="+")
    step1_low = models.PositiveSmallIntegerField(null=True, blank=True, help_text="Step-1 interval, lower edge")
    step1_high = models.PositiveSmallIntegerField(null=True, blank=True)
    face_on = models.BooleanField(default=False, help_text="Placed left of 45° in step 1 (flag F)")
    rejected = models.BooleanField(default=False, help_text="Any reject reason given")
    not_sure = models.BooleanField(default=False)
    better_image = models.BooleanField(default=False)
    bad_TF = models.BooleanField(default=False)  # noqa: N815 - the original column name
    ambiguous = models.BooleanField(default=False)
    disturbed = models.BooleanField(default=False)
    HI = models.BooleanField(default=False)  # noqa: N815 - the original column name
    face_on_reason = models.BooleanField(default=False, db_column="face_on_flag", help_text="Reject reason face_on")
    not_spiral = models.BooleanField(default=False)
    multiple = models.BooleanField(default=False)
    note = models.CharField(max_length=500, blank=True, default="")
    display_mode = models.CharField(max_length=8, choices=DisplayMode.choices, default=DisplayMode.COLOUR)
    inverted = models.BooleanField(default=False)
    zoom = models.FloatField(default=1.0)
    angle = models.FloatField(default=0.0)
    started_at = models.DateTimeField(null=True, blank=True)
    finished_at = models.DateTimeField(null=True, blank=True)
    user_agent = models.CharField(max_length=300, blank=True, default="")
    shown_other_votes = models.BooleanField(default=False)
    shown_model = models.BooleanField(default=False)
    is_gold = models.BooleanField(default=False)
    counted = models.BooleanField(default=True, help_text="Only a volunteer's first measurement of a galaxy counts")
    created_at = models.DateTimeField(auto_now_add=True)

    class Meta:
        constraints = [
            models.UniqueConstraint(fields=["user", "galaxy"], condition=Q(counted=True),
                                    name="zoo_one_counted_measurement"),
        ]
        indexes = [
            models.Index(fields=["galaxy", "counted"], name="zoo_meas_galaxy"),
            models.Index(fields=["user", "created_at"], name="zoo_meas_user_time"),
        ]

    def save(self, *args: object, **kwargs: object) -> None:
        if not self._state.adding:
            raise AppendOnlyError("Measurements are append-only; a stored one cannot be changed.")
        super().save(*args, **kwargs)

    def delete(self, *args: object, **kwargs: object) -> tuple[int, dict[str, int]]:
        raise AppendOnlyError("Measurements are append-only; they cannot be deleted.")

    def reasons(self) -> list[str]:
        return [name for name in REJECT_REASONS if getattr(self, _reason_field(name))]

    def __str__(self) -> str:
        return f"{self.user} {self.galaxy}: {self.inclination}"


def _reason_field(name: str) -> str:
    """The reject reason ``face_on`` is stored as ``face_on_reason``: ``face_on`` is the step-1 placement flag."""
    return "face_on_reason" if name == "face_on" else name


class ConsensusStatus(models.TextChoices):
    PENDING = "", "No votes yet"
    ACCEPTED = "A", "Accepted"
    FACE_ON = "F", "Face-on"
    REJECTED = "J", "Rejected"


class RetireReason(models.TextChoices):
    CONSENSUS = "consensus", "Three votes agree"
    MAX_VOTES = "max_votes", "Reached the maximum number of votes"
    REJECTED = "rejected", "A majority rejected it"
    FACE_ON = "face_on", "A majority placed it face-on"
    STAFF = "staff", "Retired by staff"


def _random_key() -> float:
    return random.random()


class Consensus(models.Model):
    """The work queue entry and the current answer for one galaxy; recomputed with every vote."""

    galaxy = models.OneToOneField(Galaxy, on_delete=models.CASCADE, primary_key=True, related_name="zoo_consensus")
    n_votes = models.PositiveIntegerField(default=0, help_text="Counted measurements (inc_n)")
    n_reject = models.PositiveIntegerField(default=0)
    n_face_on = models.PositiveIntegerField(default=0)
    inc = models.FloatField(null=True, blank=True, help_text="Weighted median of calibrated values")
    inc_e = models.FloatField(null=True, blank=True, help_text="Scatter among volunteers")
    reject_fraction = models.FloatField(default=0.0)
    face_on_fraction = models.FloatField(default=0.0)
    status = models.CharField(max_length=1, choices=ConsensusStatus.choices, default=ConsensusStatus.PENDING, blank=True)
    retired = models.BooleanField(default=False)
    retire_reason = models.CharField(max_length=16, choices=RetireReason.choices, blank=True, default="")
    retired_at = models.DateTimeField(null=True, blank=True)
    retired_by = models.ForeignKey(settings.AUTH_USER_MODEL, on_delete=models.SET_NULL, null=True, blank=True,
                                   related_name="+")
    # Copied from Galaxy.labeling_priority so the queue is ordered from one index (see queue_sync_priorities).
    priority = models.FloatField(default=0.0)
    random_key = models.FloatField(default=_random_key)
    updated_at = models.DateTimeField(auto_now=True)

    class Meta:
        verbose_name_plural = "consensus"
        indexes = [
            # The three assignment queues, each over unretired galaxies only.
            models.Index(fields=["n_votes", "random_key"], name="zoo_queue_breadth", condition=Q(retired=False)),
            models.Index(fields=["-priority"], name="zoo_queue_priority", condition=Q(retired=False)),
            models.Index(fields=["random_key"], name="zoo_queue_random", condition=Q(retired=False)),
        ]

    def __str__(self) -> str:
        return f"{self.galaxy}: {self.status or '-'} {self.inc} (N={self.n_votes})"


class VolunteerCalibration(models.Model):
    """A volunteer's fitted adjustment ``i_adj = a·i + b``, scatter and consensus weight."""

    user = models.OneToOneField(settings.AUTH_USER_MODEL, on_delete=models.CASCADE, primary_key=True,
                                related_name="zoo_calibration")
    a = models.FloatField(default=1.0)
    b = models.FloatField(default=0.0)
    scatter = models.FloatField(null=True, blank=True, help_text="RMS of calibrated values about the targets")
    weight = models.FloatField(default=1.0)
    n = models.PositiveIntegerField(default=0, help_text="Points used in the fit")
    n_gold = models.PositiveIntegerField(default=0)
    gold_rms = models.FloatField(null=True, blank=True)
    updated_at = models.DateTimeField(auto_now=True)

    def adjust(self, value: float) -> float:
        return self.a * value + self.b


class ExportStatus(models.TextChoices):
    PENDING = "pending", "Pending"
    RUNNING = "running", "Running"
    DONE = "done", "Done"
    FAILED = "failed", "Failed"


class ExportJob(models.Model):
    """A consensus-label export run by Celery; the file is downloaded once it is done."""

    id = models.UUIDField(primary_key=True, default=uuid.uuid4, editable=False)
    requested_by = models.ForeignKey(settings.AUTH_USER_MODEL, on_delete=models.CASCADE, related_name="+")
    fmt = models.CharField(max_length=4, choices=[("csv", "CSV"), ("json", "JSON")])
    retired_only = models.BooleanField(default=True)
    status = models.CharField(max_length=8, choices=ExportStatus.choices, default=ExportStatus.PENDING)
    file = models.FileField(upload_to="labeling/exports/", blank=True)
    n_rows = models.PositiveIntegerField(default=0)
    error = models.TextField(blank=True, default="")
    created_at = models.DateTimeField(auto_now_add=True)
    finished_at = models.DateTimeField(null=True, blank=True)


class IngestStatus(models.TextChoices):
    PENDING = "pending", "Pending"
    RUNNING = "running", "Running"
    DONE = "done", "Done"
    FAILED = "failed", "Failed"


class IngestJob(models.Model):
    """Catalogue galaxies being added to the Zoo (``manage.py zoo_add_galaxies`` or the staff page).

    The galaxies are chosen once, when the job is made (``galaxy_ids``); running it fetches each one's images
    and queues it, skipping those already done, so a rerun (or a redelivered task) continues where it stopped.
    The counters are the progress the staff page shows.
    """

    requested_by = models.ForeignKey(settings.AUTH_USER_MODEL, on_delete=models.SET_NULL, null=True, blank=True,
                                     related_name="+")
    selection = models.CharField(max_length=200, help_text="How the galaxies were chosen, in words")
    galaxy_ids = models.JSONField(default=list)
    status = models.CharField(max_length=8, choices=IngestStatus.choices, default=IngestStatus.PENDING)
    total = models.PositiveIntegerField(default=0)
    added = models.PositiveIntegerField(default=0, help_text="Images fetched and queued")
    skipped = models.PositiveIntegerField(default=0, help_text="Already had their images (an earlier run)")
    failed = models.PositiveIntegerField(default=0, help_text="No image source had them")
    not_found = models.PositiveIntegerField(default=0, help_text="PGC numbers asked for that the catalogue lacks")
    errors = models.JSONField(default=list, blank=True, help_text="The last failures, 'PGC n: why'")
    created_at = models.DateTimeField(auto_now_add=True)
    started_at = models.DateTimeField(null=True, blank=True)
    finished_at = models.DateTimeField(null=True, blank=True)
    updated_at = models.DateTimeField(auto_now=True)

    @property
    def processed(self) -> int:
        return self.added + self.skipped + self.failed

    def __str__(self) -> str:
        return f"ingest {self.pk}: {self.selection} ({self.status}, {self.processed}/{self.total})"
