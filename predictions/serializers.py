"""OpenAPI shapes of the prediction API; they mirror the original IncliNET JSON."""
from drf_spectacular.utils import extend_schema_field
from rest_framework import serializers


@extend_schema_field({"type": "string", "format": "binary"})
class UploadField(serializers.FileField):
    """A multipart file part. Plain ``FileField`` is documented as a URI string unless request and response
    components are split, so clients (and schemathesis) would send a text field instead of a file."""


class SummarySerializer(serializers.Serializer):
    mean = serializers.FloatField()
    median = serializers.FloatField()
    stdev = serializers.FloatField()


class InclinationsSerializer(serializers.Serializer):
    Group_0 = serializers.DictField(child=serializers.FloatField(), help_text="model4, model41..43 (degrees)")
    Group_1 = serializers.DictField(child=serializers.FloatField(), required=False, help_text="model5, model51..53")
    Group_2 = serializers.DictField(child=serializers.FloatField(), required=False, help_text="model6, model61..63")
    summary = SummarySerializer()


@extend_schema_field({"oneOf": [{"type": "string"}, {"type": "integer"}], "nullable": True})
class PgcField(serializers.Field):
    """The original API's quirk, kept for old scripts: ``/api/pgc`` echoes the PGC as a string, the other
    endpoints give an integer, and a position with no catalogued galaxy has none (null)."""

    def to_representation(self, value: object) -> object:
        return value


class GalaxyInfoSerializer(serializers.Serializer):
    pgc = PgcField(help_text="a string for /api/pgc, an integer for /api/objname and /api/coords, null when "
                             "/api/coords finds no catalogued galaxy at the position (as the original)")
    ra = serializers.CharField(help_text="e.g. '10.6848 deg'")
    dec = serializers.CharField(help_text="e.g. '41.2689 deg'")
    fov = serializers.CharField(help_text="e.g. '266.74 arcmin'")
    pa = serializers.CharField(help_text="e.g. '35.0 deg'")
    objname = serializers.CharField()


class PredictionResponseSerializer(serializers.Serializer):
    status = serializers.CharField(default="success")
    galaxy = GalaxyInfoSerializer(required=False)
    filename = serializers.CharField(required=False)
    inclinations = InclinationsSerializer()
    rejection_likelihood = serializers.DictField(help_text="model4-binary..model6-binary in percent, and summary")
    model_version = serializers.CharField()
    alarm = serializers.BooleanField()
    alarm_reason = serializers.CharField(allow_blank=True)
    image_url = serializers.CharField()
    pa_measured = serializers.FloatField(
        allow_null=True,
        help_text="position angle of the major axis measured on the image, degrees in [0, 180), astronomical "
                  "convention: from the image's up towards its left (north through east for north-up, east-left "
                  "cut-outs); null when no galaxy was found or it is too round (b/a > 0.9) for an angle")
    pa_source = serializers.ChoiceField(
        choices=["catalogue", "measured", "manual", "none"],
        help_text="what turned the image before evaluation: the catalogue PA + 90 (trusted when our catalogue "
                  "gives one), the measured angle (uploads, /api/coords, galaxies without a catalogue PA), the "
                  "page user's rotation, or nothing (no measurable angle)")
    axial_ratio = serializers.FloatField(allow_null=True, help_text="b/a of the outer isophote of the model input")
    axial_ratio_inclination = serializers.FloatField(
        allow_null=True,
        help_text="physics cross-check, degrees: cos² i = (q² − q0²)/(1 − q0²), q0 = 0.2, from the same aligned "
                  "image; the alarm is raised when it and the ensemble median differ by more than the margin "
                  "calibrated on validation galaxies. Null when no isophote is found")


    inclination_error = serializers.FloatField(
        help_text="1-sigma error bar of the inclination (inclinations.summary.median), degrees: the true inclination "
                  "lies within ±inclination_error for about 68% of clean galaxies. sqrt(a² + (b·stdev)² + "
                  "(c·|median − axial_ratio_inclination|)²), times a factor, with a, b, c and the factor fitted on "
                  "validation galaxies of the ensemble's training family (training.ml.error_calibration); the "
                  "coverage measured on the independent family is in docs/benchmarks.md. Only meaningful for "
                  "verdict_code 'inclined' or 'uncertain'")
    verdict = serializers.CharField(
        help_text="one line for people, e.g. 'inclined spiral, i = 74 ± 3°', 'likely face-on (< 45°): …', "
                  "'rejected: probably not a clean spiral (…)', 'uncertain: i = 62 ± 9° (see the alarm)'; whole "
                  "degrees, rounded half up, from the same values as the JSON")
    verdict_code = serializers.ChoiceField(
        choices=["inclined", "face_on", "rejected", "uncertain"],
        help_text="face_on: the axial-ratio inclination is below 45° and the galaxy is rejected or the networks sit "
                  "near their 45° floor (they only measure 45–90°); rejected: reject likelihood (median) ≥ 50%; "
                  "uncertain: an alarm, an error bar over 8° or a reject likelihood ≥ 30%; inclined: otherwise")
    catalog_inclination = serializers.FloatField(
        allow_null=True,
        help_text="the catalogue's axis-ratio inclination, degrees: HyperLEDA's incl when known, else from its "
                  "logr25 with q0 = 0.2; null when the catalogue has no axis ratio (e.g. OpenNGC rows, uploads)")
    member_inclinations = serializers.DictField(
        child=serializers.FloatField(),
        help_text="each regression member's inclination by the member's own name (the same values as "
                  "inclinations.Group_*), whole degrees")
    member_rejections = serializers.DictField(
        child=serializers.FloatField(), help_text="each reject member's likelihood by name, percent")
    permalink = serializers.CharField(
        allow_null=True,
        help_text="the page URL that reproduces this result (/predict/?pgc=…, ?name=… or ?ra=&dec=&fov=) with the "
                  "same model_version; null for uploads")


class FailedResponseSerializer(serializers.Serializer):
    status = serializers.CharField(default="failed")
    message = serializers.CharField()
    filename = serializers.CharField(required=False)


class FileUploadSerializer(serializers.Serializer):
    file = UploadField(help_text="PNG, JPEG or GIF, at most 1 MB, checked by content")


class CoordsQuerySerializer(serializers.Serializer):
    ra = serializers.CharField(help_text="degrees, or sexagesimal hours such as 10h42m00s")
    dec = serializers.CharField(help_text="degrees, or sexagesimal such as +41d16m")
    fov = serializers.CharField(help_text="field size, e.g. '5', '5 arcmin', '30 arcsec', '0.1 deg'")
