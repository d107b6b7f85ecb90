"""The prediction REST API: ``/api/pgc/<id>``, ``/api/objname/<name>``, ``/api/file`` and ``/api/coords``.

Paths, fields and messages follow the original IncliNET API so existing scripts keep working; the
additive fields are ``model_version``, ``alarm``, ``alarm_reason``, ``image_url``, the orientation
(``pa_measured``, ``pa_source``), the axial-ratio cross-check (``axial_ratio``,
``axial_ratio_inclination``), the verdict (``verdict``, ``verdict_code``, ``inclination_error``,
``catalog_inclination``, ``member_inclinations``, ``member_rejections``, see ``verdict``) and
``permalink``; see ``services`` for when the measured angle is used.

Downloads: each result is JSON by default and CSV with ``?format=csv`` (or ``Accept: text/csv``), one
header line and one row (``renderers``). Failures stay JSON whatever was asked.
"""
from __future__ import annotations

import uuid
from typing import Any

import astropy.units as u
from django.conf import settings
from drf_spectacular.types import OpenApiTypes
from drf_spectacular.utils import OpenApiExample, OpenApiParameter, extend_schema
from rest_framework import status
from rest_framework.parsers import MultiPartParser
from rest_framework.renderers import JSONRenderer
from rest_framework.request import Request
from rest_framework.response import Response
from rest_framework.throttling import AnonRateThrottle
from rest_framework.views import APIView

from catalog.coordinates import CoordinateError, check_position, parse_angle, parse_field
from catalog.imaging import ImageError
from catalog.selectors import GalaxyNotFound, NameResolversUnreachable, Target, galaxy_nearest, target_resolve_name
from catalog.selectors import MAX_NAME_CHARS
from catalog.services import galaxy_get_or_fetch_by_pgc
from catalog.sources import ImageSourceError
from core.errors import ApplicationError, Conflict, InvalidInput, NotFound, TooLarge, UpstreamFailed, Unavailable
from inclinet_site.api import failed
from inclinet_site.security import SignedInUserRateThrottle

from . import serializers as s
from .inference import NoActiveEnsemble, active_pointer
from .renderers import PredictionCsvRenderer
from .services import permalink_path, prediction_for_target, prediction_for_upload

UPLOAD_HINT = "[Note] Please upload jpg, png, jpeg, and gif files no larger than 1 MB !"


def _failures(*codes: int) -> dict[int, type]:
    """OpenAPI responses for these error statuses: every failure has the documented ``FailedResponse`` shape."""
    return {code: s.FailedResponseSerializer for code in codes}


FORMAT_PARAMETER = OpenApiParameter(
    "format", str, OpenApiParameter.QUERY, required=False, enum=["json", "csv"],
    description="download format: json (default) or csv (one header line and one row; nested keys joined with "
                "dots, e.g. inclinations.summary.median). Accept: text/csv does the same. Failures are always JSON.")


def _unreachable(exc: GalaxyNotFound) -> ApplicationError:
    """503 with the reason when no name service could be asked, 404 when the galaxy is simply unknown."""
    if isinstance(exc, NameResolversUnreachable):
        return Unavailable(str(exc))
    return NotFound(str(exc))


def galaxy_info(target: Target, *, pgc_as_string: bool) -> dict[str, Any]:
    pgc: Any = target.pgc
    if pgc_as_string and pgc is not None:
        pgc = str(pgc)
    return {
        "pgc": pgc,
        "ra": f"{target.ra:.4f} deg",
        "dec": f"{target.dec:.4f} deg",
        "fov": f"{target.fov_arcmin:.2f} arcmin",
        "pa": f"{target.pa} deg" if target.pa is not None else "",
        "objname": target.name,
    }


def _evaluate_target(target: Target, *, pgc_as_string: bool, trust_pa: bool = True, permalink: str | None = None,
                     request: Request | None = None) -> Response:
    try:
        body = prediction_for_target(target=target, trust_pa=trust_pa)
    except ImageSourceError as exc:
        raise UpstreamFailed(f"Could not get an image of {target.name or 'this position'}: {exc}") from None
    except ImageError as exc:
        raise UpstreamFailed(f"The image service returned an unusable image: {exc}") from None
    if permalink is not None and request is not None:
        body = {**body, "permalink": request.build_absolute_uri(permalink)}
    return Response({"status": "success", "galaxy": galaxy_info(target, pgc_as_string=pgc_as_string), **body})


def _with_hyperleda(target: Target) -> Target:
    """A name only Sesame/NED knew, whose PGC HyperLEDA knows: the catalogue galaxy HyperLEDA describes (field
    1.5 × D25, PA), stored; the remote target as it was when HyperLEDA cannot help."""
    try:
        galaxy = galaxy_get_or_fetch_by_pgc(pgc=int(target.pgc or 0))
    except GalaxyNotFound:
        return target
    return Target.from_galaxy(galaxy, resolved_by=target.resolved_by)


class PredictionView(APIView):
    throttle_classes = [AnonRateThrottle, SignedInUserRateThrottle]
    error_codes_in_body = False  # the original API's failures carry no code (inclinet_site.api.exception_handler)


class DownloadablePredictionView(PredictionView):
    """A single result, as JSON or CSV; failures are always rendered as the documented JSON."""

    renderer_classes = [JSONRenderer, PredictionCsvRenderer]

    def perform_content_negotiation(self, request: Request, force: bool = False) -> Any:
        fmt = request.query_params.get("format")
        if not force and fmt is not None and fmt not in ("json", "csv"):  # DRF would answer a bare 404
            raise InvalidInput(f"format must be json or csv, not {fmt[:20]!r}.")
        return super().perform_content_negotiation(request, force)

    def finalize_response(self, request: Request, response: Any, *args: Any, **kwargs: Any) -> Any:  # noqa: ANN401
        if isinstance(response, Response) and response.status_code >= 400:
            request.accepted_renderer, request.accepted_media_type = JSONRenderer(), JSONRenderer.media_type
        return super().finalize_response(request, response, *args, **kwargs)


class PgcPredictionView(DownloadablePredictionView):
    @extend_schema(
        operation_id="predict_pgc",
        summary="Evaluate a galaxy by its PGC number",
        description="The local catalogue first; a PGC number it lacks is looked up in HyperLEDA (and stored). "
                    "503 when the catalogue lacks it and HyperLEDA cannot be reached.",
        parameters=[OpenApiParameter("pgc_id", {"type": "integer", "minimum": 1}, OpenApiParameter.PATH,
                                     examples=[OpenApiExample("M31", value=2557)]), FORMAT_PARAMETER],
        responses={200: s.PredictionResponseSerializer, **_failures(400, 404, 429, 502, 503)},
    )
    def get(self, request: Request, pgc_id: str) -> Response:
        try:
            pgc = int(pgc_id)
            if pgc <= 0:
                raise ValueError
        except ValueError:
            raise InvalidInput(
                f"Could not find PGC{pgc_id} in the database. PGC numbers are positive integers.") from None
        try:
            target = Target.from_galaxy(galaxy_get_or_fetch_by_pgc(pgc=pgc))
        except GalaxyNotFound as exc:
            raise _unreachable(exc) from None
        return _evaluate_target(target, pgc_as_string=True, permalink=permalink_path(pgc=pgc), request=request)


class ObjnamePredictionView(DownloadablePredictionView):
    @extend_schema(
        operation_id="predict_objname",
        summary="Evaluate a galaxy by name (local catalogue, then Sesame/NED)",
        parameters=[OpenApiParameter("objname", str, OpenApiParameter.PATH, examples=[OpenApiExample("Sombrero", value="Sombrero")]),
                    FORMAT_PARAMETER],
        responses={200: s.PredictionResponseSerializer, **_failures(400, 404, 414, 429, 502, 503)},
    )
    def get(self, request: Request, objname: str) -> Response:
        if len(objname) > MAX_NAME_CHARS:  # the name is in the URI, hence 414 (an HTTP matter, not a service's)
            return failed(f"An object name is at most {MAX_NAME_CHARS} characters; this one has {len(objname):,}.",
                          status=status.HTTP_414_REQUEST_URI_TOO_LONG)
        try:
            target = target_resolve_name(name=objname)
        except GalaxyNotFound as exc:
            raise _unreachable(exc) from None
        if target.galaxy_id is None and target.pgc is not None:
            target = _with_hyperleda(target)
        return _evaluate_target(Target(**{**target.__dict__, "name": objname.strip()}), pgc_as_string=False,
                                permalink=permalink_path(name=objname.strip()), request=request)


class CoordsPredictionView(DownloadablePredictionView):
    @extend_schema(
        operation_id="predict_coords",
        summary="Evaluate the galaxy at a sky position",
        parameters=[s.CoordsQuerySerializer, FORMAT_PARAMETER],
        examples=[OpenApiExample("NGC 4826", value={"ra": "194.1825", "dec": "21.6820", "fov": "15.71 arcmin"})],
        responses={200: s.PredictionResponseSerializer, **_failures(400, 429, 502, 503)},
    )
    def get(self, request: Request) -> Response:
        query = s.CoordsQuerySerializer(data=request.query_params)
        if not query.is_valid():
            raise InvalidInput("Give ra, dec and fov, e.g. ?ra=194.1825&dec=21.682&fov=15.7")
        try:
            ra = parse_angle(query.validated_data["ra"], unit=u.hourangle, name="RA")
            dec = parse_angle(query.validated_data["dec"], unit=u.deg, name="Dec")
            check_position(ra, dec)
            fov = parse_field(query.validated_data["fov"])
        except CoordinateError as exc:
            raise InvalidInput(str(exc)) from None
        galaxy = galaxy_nearest(ra=ra, dec=dec, radius_arcmin=min(fov / 4, 1.0))
        known = Target.from_galaxy(galaxy) if galaxy else None
        target = Target(ra=ra, dec=dec, fov_arcmin=fov, pa=known.pa if known else None,
                        name=known.name if known else "", pgc=known.pgc if known else None, resolved_by="position")
        # The position need not be the catalogue galaxy's centre: the angle is measured on the cut-out.
        link = permalink_path(ra=query.validated_data["ra"], dec=query.validated_data["dec"],
                              fov=query.validated_data["fov"])
        return _evaluate_target(target, pgc_as_string=False, trust_pa=False, permalink=link, request=request)


class FilePredictionView(DownloadablePredictionView):
    parser_classes = [MultiPartParser]

    @extend_schema(
        operation_id="predict_file",
        summary="Evaluate an uploaded image (PNG, JPEG or GIF, at most 1 MB)",
        request={"multipart/form-data": s.FileUploadSerializer},
        parameters=[FORMAT_PARAMETER],
        responses={200: s.PredictionResponseSerializer, **_failures(400, 413, 415, 429, 503)},
    )
    def post(self, request: Request) -> Response:
        upload = request.FILES.get("file")
        if upload is None:
            raise InvalidInput(f"No file received in the multipart field 'file'. {UPLOAD_HINT}")
        filename = upload.name[:255]
        if upload.size > settings.MAX_UPLOAD_BYTES:
            raise TooLarge(f"{filename} is {upload.size} bytes. {UPLOAD_HINT}", filename=filename)
        try:
            active_pointer()  # no model: answer 503 before decoding anything (issue 16)
            body = prediction_for_upload(data=upload.read())
        except ImageError as exc:
            raise InvalidInput(f"{exc} {UPLOAD_HINT}", filename=filename) from None
        except NoActiveEnsemble as exc:
            raise NoActiveEnsemble(exc.message, filename=filename) from None
        return Response({"status": "success", "filename": filename, **body})


class BatchUploadSerializer(s.serializers.Serializer):
    file = s.UploadField(help_text="CSV (first column: PGC numbers or names) or a zip of PNG/JPEG/GIF images")
    kind = s.serializers.ChoiceField(choices=["csv", "zip"], required=False, help_text="defaults from the file name")


class BatchJobSerializer(s.serializers.Serializer):
    status = s.serializers.CharField(default="success")
    id = s.serializers.UUIDField()
    kind = s.serializers.CharField()
    state = s.serializers.CharField(source="status")
    total = s.serializers.IntegerField()
    done = s.serializers.IntegerField()
    failed = s.serializers.IntegerField()
    progress = s.serializers.FloatField()
    result_csv = s.serializers.SerializerMethodField()
    result_json = s.serializers.SerializerMethodField()

    def _url(self, job, suffix: str) -> str | None:  # noqa: ANN001
        if job.status != "succeeded":
            return None
        request = self.context.get("request")
        from django.urls import reverse

        url = reverse("api-batch-result", args=[job.id, suffix])
        return request.build_absolute_uri(url) if request else url

    def get_result_csv(self, job) -> str | None:  # noqa: ANN001
        return self._url(job, "csv")

    def get_result_json(self, job) -> str | None:  # noqa: ANN001
        return self._url(job, "json")


class BatchCreateView(PredictionView):
    parser_classes = [MultiPartParser]

    @extend_schema(operation_id="batch_create", summary="Start a batch job (CSV of PGCs/names, or zip of images)",
                   request={"multipart/form-data": BatchUploadSerializer},
                   responses={202: BatchJobSerializer, **_failures(400, 413, 415, 429, 503)})
    def post(self, request: Request) -> Response:
        from .batch import batch_job_create, batch_job_enqueue

        upload = request.FILES.get("file")
        if upload is None:
            raise InvalidInput("Send the batch as the multipart field 'file'.")
        if upload.size > 50 * 1024 * 1024:
            raise TooLarge("A batch file may be at most 50 MB.")
        kind = request.data.get("kind")
        if kind is None:
            kind = "zip" if upload.name.lower().endswith(".zip") else "csv"
        elif kind not in ("csv", "zip"):
            raise InvalidInput(f"kind must be 'csv' or 'zip' (or left out to go by the file name), not {kind!r}.")
        job = batch_job_create(kind=kind, filename=upload.name, data=upload.read(), owner=request.user)
        batch_job_enqueue(job)  # after commit; a broker outage fails the job and answers 503
        return Response(BatchJobSerializer(job, context={"request": request}).data, status=status.HTTP_202_ACCEPTED)


class BatchDetailView(PredictionView):
    @extend_schema(operation_id="batch_detail", summary="Progress of a batch job",
                   responses={200: BatchJobSerializer, **_failures(404)})
    def get(self, request: Request, job_id: str) -> Response:
        from .models import BatchJob

        job = BatchJob.objects.filter(pk=job_id).first()
        if job is None:
            raise NotFound("No such batch job.")
        return Response(BatchJobSerializer(job, context={"request": request}).data)


class BatchResultView(PredictionView):
    @extend_schema(operation_id="batch_result", summary="Download a finished batch job's results (csv or json)",
                   parameters=[OpenApiParameter("job_id", OpenApiTypes.UUID, OpenApiParameter.PATH),
                               OpenApiParameter("fmt", str, OpenApiParameter.PATH, enum=["csv", "json"])],
                   responses={(200, "text/csv"): bytes, **_failures(404, 409)})
    def get(self, request: Request, job_id: str, fmt: str):  # noqa: ANN201
        from django.core.files.storage import default_storage
        from django.http import FileResponse

        from .models import BatchJob

        try:
            # The route's pattern admits 36 hex digits and dashes, which is not always a UUID.
            job = BatchJob.objects.filter(pk=uuid.UUID(job_id)).first()
        except ValueError:
            job = None
        if job is None:
            raise NotFound("No such batch job.")
        if job.status != BatchJob.Status.SUCCEEDED:
            raise Conflict(f"The batch job is {job.status}; results are ready when it has succeeded.")
        path = job.result_file.name if fmt == "csv" else f"batch/results/{job.id}.json"
        content_type = "text/csv" if fmt == "csv" else "application/json"
        return FileResponse(default_storage.open(path, "rb"), content_type=content_type, as_attachment=True,
                            filename=f"inclinet-batch-{job.id}.{fmt}")
