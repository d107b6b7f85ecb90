"""Serializers of the Zoo API: one small class per direction (input validation, output shape)."""
from __future__ import annotations

from rest_framework import serializers

from .models import REJECT_REASONS, DisplayMode


class FailedSerializer(serializers.Serializer):
    status = serializers.CharField(default="failed")
    message = serializers.CharField()
    code = serializers.CharField(required=False)

    class Meta:
        # The catalogue's "Failed" has no ``code``; one schema name for two shapes breaks the OpenAPI schema.
        ref_name = "ZooFailed"


class ImagesSerializer(serializers.Serializer):
    colour = serializers.CharField()
    g = serializers.CharField()
    r = serializers.CharField()
    i = serializers.CharField()


class StandardOutSerializer(serializers.Serializer):
    id = serializers.IntegerField()
    inclination = serializers.FloatField()
    scale = serializers.FloatField()
    angle = serializers.FloatField()
    images = ImagesSerializer()


class GalaxyOutSerializer(serializers.Serializer):
    id = serializers.IntegerField()
    name = serializers.CharField()
    pgc = serializers.IntegerField(allow_null=True)


class TaskOutSerializer(serializers.Serializer):
    id = serializers.IntegerField()
    galaxy = GalaxyOutSerializer()
    images = ImagesSerializer()
    leased_until = serializers.DateTimeField()
    standards = StandardOutSerializer(many=True, help_text="Step 1: nine standards, 45-85°, sorted left to right")


class TaskResponseSerializer(serializers.Serializer):
    status = serializers.CharField(default="success")
    task = TaskOutSerializer()


class DrawInSerializer(serializers.Serializer):
    step = serializers.ChoiceField(choices=[1, 2])
    low = serializers.IntegerField(required=False, allow_null=True,
                                   help_text="Step 2 only: the step-1 interval's lower edge (45, 50, ... 85)")


class StandardsResponseSerializer(serializers.Serializer):
    status = serializers.CharField(default="success")
    standards = StandardOutSerializer(many=True)


class SubmitInSerializer(serializers.Serializer):
    left_standard = serializers.IntegerField(required=False, allow_null=True, default=None)
    right_standard = serializers.IntegerField(required=False, allow_null=True, default=None)
    step1_low = serializers.IntegerField(required=False, allow_null=True, default=None)
    face_on = serializers.BooleanField(required=False, default=False)
    reasons = serializers.ListField(child=serializers.ChoiceField(choices=REJECT_REASONS), required=False,
                                    default=list, max_length=len(REJECT_REASONS))
    note = serializers.CharField(required=False, allow_blank=True, default="", max_length=500)
    display_mode = serializers.ChoiceField(choices=DisplayMode.values, required=False, default=DisplayMode.COLOUR)
    inverted = serializers.BooleanField(required=False, default=False)
    zoom = serializers.FloatField(required=False, default=1.0, min_value=0.2, max_value=5.0)
    angle = serializers.FloatField(required=False, default=0.0, min_value=-360.0, max_value=360.0)
    started_at = serializers.DateTimeField(required=False, allow_null=True, default=None)
    finished_at = serializers.DateTimeField(required=False, allow_null=True, default=None)
    shown_other_votes = serializers.BooleanField(required=False, default=False)
    shown_model = serializers.BooleanField(required=False, default=False)


class MeasurementOutSerializer(serializers.Serializer):
    id = serializers.IntegerField()
    inclination = serializers.IntegerField(allow_null=True)
    inclination_raw = serializers.FloatField(allow_null=True)
    face_on = serializers.BooleanField()
    rejected = serializers.BooleanField()
    counted = serializers.BooleanField()


class SubmitResponseSerializer(serializers.Serializer):
    status = serializers.CharField(default="success")
    measurement = MeasurementOutSerializer()
    feedback = serializers.DictField(required=False, allow_null=True)


class PreferencesSerializer(serializers.Serializer):
    display_mode = serializers.ChoiceField(choices=DisplayMode.values, required=False)
    inverted = serializers.BooleanField(required=False)
    zoom = serializers.FloatField(required=False, min_value=0.2, max_value=5.0)
    tutorial_done = serializers.BooleanField(required=False)


class ExportInSerializer(serializers.Serializer):
    format = serializers.ChoiceField(choices=["csv", "json"], default="csv")
    retired_only = serializers.BooleanField(default=True)


class ExportOutSerializer(serializers.Serializer):
    id = serializers.UUIDField()
    format = serializers.CharField(source="fmt")
    status = serializers.CharField()
    n_rows = serializers.IntegerField()
    error = serializers.CharField()
    created_at = serializers.DateTimeField()
    finished_at = serializers.DateTimeField(allow_null=True)


class StandardInSerializer(serializers.Serializer):
    galaxy_id = serializers.IntegerField()
    inclination = serializers.FloatField(min_value=0, max_value=90)
    morphology = serializers.CharField(required=False, allow_blank=True, default="", max_length=32)
    display_scale = serializers.FloatField(required=False, default=1.0, min_value=0.1, max_value=10)
    display_angle = serializers.FloatField(required=False, default=0.0, min_value=-360, max_value=360)


class StandardPatchSerializer(serializers.Serializer):
    inclination = serializers.FloatField(required=False, min_value=0, max_value=90)
    morphology = serializers.CharField(required=False, allow_blank=True, max_length=32)
    display_scale = serializers.FloatField(required=False, min_value=0.1, max_value=10)
    display_angle = serializers.FloatField(required=False, min_value=-360, max_value=360)
    active = serializers.BooleanField(required=False)


class StandardAdminOutSerializer(serializers.Serializer):
    id = serializers.IntegerField()
    galaxy_id = serializers.IntegerField()
    inclination = serializers.FloatField()
    morphology = serializers.CharField()
    display_scale = serializers.FloatField()
    display_angle = serializers.FloatField()
    method = serializers.CharField()
    active = serializers.BooleanField()


class ProposalInSerializer(serializers.Serializer):
    galaxy_id = serializers.IntegerField()
    inclination = serializers.FloatField(min_value=45, max_value=90)
    morphology = serializers.CharField(required=False, allow_blank=True, default="", max_length=32)
    display_scale = serializers.FloatField(required=False, default=1.0, min_value=0.1, max_value=10)
    display_angle = serializers.FloatField(required=False, default=0.0, min_value=-360, max_value=360)


class ConsensusOutSerializer(serializers.Serializer):
    galaxy_id = serializers.IntegerField()
    status = serializers.CharField()
    inc = serializers.FloatField(allow_null=True)
    inc_e = serializers.FloatField(allow_null=True)
    n_votes = serializers.IntegerField()
    retired = serializers.BooleanField()
    retire_reason = serializers.CharField()


class PromoteInSerializer(serializers.Serializer):
    galaxy_id = serializers.IntegerField(min_value=1, max_value=2**63 - 1,
                                         help_text="A retired, accepted galaxy with a small scatter")
