"""API representations of catalogue look-ups."""
from rest_framework import serializers


class TargetSerializer(serializers.Serializer):
    status = serializers.CharField(default="success")
    pgc = serializers.IntegerField(allow_null=True)
    objname = serializers.CharField(source="name")
    ra = serializers.FloatField(help_text="degrees")
    dec = serializers.FloatField(help_text="degrees")
    fov = serializers.FloatField(source="fov_arcmin", help_text="arcmin (1.5 × D25 for catalogue galaxies)")
    pa = serializers.FloatField(allow_null=True, help_text="degrees")
    resolved_by = serializers.CharField()


class ResolveQuerySerializer(serializers.Serializer):
    q = serializers.CharField(max_length=128, help_text="PGC number, name (M33, NGC 598, Triangulum Galaxy) or position")
    fov = serializers.CharField(required=False, allow_blank=True, help_text="field size, e.g. '5 arcmin', '30 arcsec'")


class FailedSerializer(serializers.Serializer):
    status = serializers.CharField(default="failed")
    message = serializers.CharField()
