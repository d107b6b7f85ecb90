"""The astronomer page's JSON helpers, under ``<WEBROOT>predict/``: cut-out proxy, upload, and evaluate with
measured or manual alignment.

An evaluation is aligned automatically (``"auto": true``: turned by the angle measured on the image, about
the measured centre, as ``/api/file`` does) unless the user has turned the image themselves, in which case
their angle is used as it is (about the image centre, as the viewer shows it).

Cheap checks come first (issue 16): each helper is rate-limited (``PREDICT_*_RATE``, 429 in the failed shape
with ``Retry-After``), an evaluation's parameters are validated and the active model is looked up before
any image is fetched or decoded, and large images are decoded downscaled (``MAX_DECODE_SIDE``).

They are DRF views over the same services as ``api``, but the page's own: left out of the OpenAPI schema,
CSRF-checked for every caller as Django checks a form (``as_view``), and counted per helper (``HelperThrottle``).
"""
from __future__ import annotations

import logging
import math
import uuid
from dataclasses import dataclass
from typing import Any

import astropy.units as u
from django.conf import settings
from django.core.files.base import ContentFile
from django.core.files.storage import default_storage
from django.http import HttpResponse
from drf_spectacular.utils import extend_schema
from rest_framework.authentication import SessionAuthentication
from rest_framework.exceptions import Throttled
from rest_framework.parsers import FormParser, MultiPartParser
from rest_framework.renderers import JSONRenderer
from rest_framework.request import Request
from rest_framework.response import Response
from rest_framework.throttling import ScopedRateThrottle
from rest_framework.views import APIView

from catalog.coordinates import CoordinateError, check_position, parse_angle, parse_field
from catalog.imaging import ImageError, encode_jpeg, load_image
from catalog.sources import ImageSourceError, fetch_cutout
from core.errors import InvalidInput, NotFound, TooLarge, UpstreamFailed
from inclinet_site.api import failed
from inclinet_site.security import loads_object

from .heavy import run_heavy
from .inference import active_pointer
from .services import UPLOAD_FORMATS, align_image, measure_image_orientation, prediction_for_aligned

UPLOAD_DIR = "uploads"
MAX_UPLOAD_ID_CHARS = 64  # ids are uuid4 hex (32 characters)
logger = logging.getLogger(__name__)


class HelperThrottle(ScopedRateThrottle):
    """DRF's cache-backed rate for one helper (the view's ``throttle_scope``), counted per signed-in user or per
    client address (``get_ident`` reads X-Forwarded-For only behind ``NUM_PROXIES`` trusted proxies)."""

    def get_rate(self) -> str | None:
        # DRF's rate table, else the settings: replacing the table for other scopes (tests do) leaves these set.
        return self.THROTTLE_RATES.get(self.scope) or settings.REST_FRAMEWORK["DEFAULT_THROTTLE_RATES"][self.scope]

    def get_cache_key(self, request: Any, view: Any) -> str:  # noqa: ANN401
        user = getattr(request, "user", None)
        ident = f"user-{user.pk}" if user is not None and user.is_authenticated else self.get_ident(request)
        return self.cache_format % {"scope": self.scope, "ident": ident}


class PageHelperView(APIView):
    """The page's session, JSON answers (failures without a ``code``, as the prediction API's), one throttle."""

    authentication_classes = [SessionAuthentication]
    renderer_classes = [JSONRenderer]
    throttle_classes = [HelperThrottle]
    error_codes_in_body = False  # read by inclinet_site.api.exception_handler

    @classmethod
    def as_view(cls, **initkwargs: Any) -> Any:  # noqa: ANN401
        view = super().as_view(**initkwargs)
        # DRF exempts its views from Django's CSRF check and checks only signed-in sessions; the page's helpers
        # keep Django's check for every caller, as the function views they were did.
        view.csrf_exempt = False
        return view

    def perform_content_negotiation(self, request: Request, force: bool = False) -> tuple[JSONRenderer, str]:
        return JSONRenderer(), JSONRenderer.media_type  # JSON (or the cut-out's image) whatever Accept asks

    def handle_exception(self, exc: Exception) -> Response:
        if isinstance(exc, Throttled):
            wait = int(math.ceil(exc.wait or 60))
            response = failed(f"Too many requests; try again in {wait} s.", status=429)
            response["Retry-After"] = str(wait)
            return response
        return super().handle_exception(exc)


def _position(params: Any) -> tuple[float, float, float]:  # noqa: ANN401
    ra = parse_angle(str(params.get("ra", "")), unit=u.hourangle, name="RA")
    dec = parse_angle(str(params.get("dec", "")), unit=u.deg, name="Dec")
    check_position(ra, dec)
    return ra, dec, parse_field(str(params.get("fov", "")))


@extend_schema(exclude=True)
class CutoutView(PageHelperView):
    """The sky image the page shows, through the same cached image sources the API uses."""

    http_method_names = ["get"]
    throttle_scope = "predict_cutout"

    def get(self, request: Request) -> HttpResponse:
        try:
            ra, dec, fov = _position(request.query_params)
            fetched = fetch_cutout(ra=ra, dec=dec, fov_arcmin=fov)
        except CoordinateError as exc:
            raise InvalidInput(str(exc)) from None
        except ImageSourceError as exc:
            raise UpstreamFailed(f"Could not get an image of this position: {exc}") from None
        return HttpResponse(fetched.data, content_type=fetched.content_type)


@extend_schema(exclude=True)
class UploadView(PageHelperView):
    """Check an uploaded image by content and keep it (re-encoded) for alignment and evaluation."""

    http_method_names = ["post"]
    throttle_scope = "predict_upload"
    parser_classes = [MultiPartParser, FormParser]

    def post(self, request: Request) -> Response:
        upload_file = request.FILES.get("file")
        if upload_file is None:
            raise InvalidInput("Choose an image file to upload.")
        if upload_file.size > settings.MAX_UPLOAD_BYTES:
            raise TooLarge(f"Please upload jpg, png, jpeg or gif files no larger than "
                           f"{settings.MAX_UPLOAD_BYTES // 1024} KB.")
        try:
            image = load_image(upload_file.read(), max_bytes=settings.MAX_UPLOAD_BYTES,
                               max_pixels=settings.MAX_IMAGE_PIXELS, allowed_formats=UPLOAD_FORMATS,
                               max_side=settings.MAX_DECODE_SIDE)
        except ImageError as exc:
            raise InvalidInput(str(exc)) from None
        upload_id = uuid.uuid4().hex
        # Stored under a name we choose: the client's file name never reaches the file system.
        try:
            path = default_storage.save(f"{UPLOAD_DIR}/{upload_id}.jpg",
                                        ContentFile(encode_jpeg(image.pixels, quality=95)))
        except OSError as exc:  # disk full, read-only volume: the storage left nothing half-written
            logger.error("upload could not be stored", extra={"error": str(exc)})
            return failed("The server could not store your image right now (storage full); please try again later.",
                          status=507)
        orientation = run_heavy(measure_image_orientation, image.pixels)
        pa = orientation.pa_astro_deg if orientation.ok else None
        return Response({"status": "success", "upload_id": upload_id, "image_url": default_storage.url(path),
                         "notes": image.notes, "pa_measured": None if pa is None else round(pa, 1),
                         # The viewer's clockwise turn that lays the measured major axis horizontal.
                         "angle": None if pa is None else round((pa + 90.0) % 180.0, 1)})


def _upload_id(params: dict) -> str | None:
    """The upload the evaluation is about, or None for a sky position; ValueError for an id we never issued."""
    if not params.get("upload_id"):
        return None
    upload_id = params["upload_id"]
    # ASCII only: "²".isalnum() is true, and the id becomes a file name.
    if not (isinstance(upload_id, str) and upload_id.isascii() and upload_id.isalnum()
            and len(upload_id) <= MAX_UPLOAD_ID_CHARS):
        raise ValueError("unknown upload_id")
    return upload_id


@dataclass(frozen=True)
class EvaluationRequest:
    """What the page asks to evaluate: an upload or a sky position, and how the user aligned it."""

    angle: float
    scale: float
    auto: bool  # turn by the angle measured on the image instead of ``angle``
    catalogue: bool  # ``angle`` is the catalogue PA + 90, untouched by the user
    upload_id: str | None
    position: tuple[float, float, float] | None  # ra, dec, field; None for an upload

    def image_bytes(self) -> bytes:
        if self.upload_id:
            path = f"{UPLOAD_DIR}/{self.upload_id}.jpg"
            if not default_storage.exists(path):
                raise NotFound("That upload has expired; upload the image again.")
            with default_storage.open(path) as handle:
                return handle.read()
        assert self.position is not None  # _evaluation_request sets one or the other
        ra, dec, fov = self.position
        return fetch_cutout(ra=ra, dec=dec, fov_arcmin=fov).data


def _evaluation_request(body: bytes) -> EvaluationRequest:
    """The evaluation's parameters, checked: angle, scale, auto, catalogue, and an upload or a position."""
    try:
        params = loads_object(body)  # a list or a 100 000-deep array is a 400, not a 500
        angle = float(params.get("angle", 0.0))
        scale = float(params.get("scale", 1.0))
        auto = params.get("auto", False)
        catalogue = params.get("catalogue", False)
        if not isinstance(auto, bool) or not isinstance(catalogue, bool):
            raise ValueError("auto and catalogue must be true or false")
        if not math.isfinite(angle):
            raise ValueError("angle must be a finite number of degrees")
        if not 0.05 <= scale <= 20:
            raise ValueError("scale must be between 0.05 and 20")
        upload_id = _upload_id(params)
        position = None if upload_id else _position(params)
    except CoordinateError as exc:
        raise InvalidInput(str(exc)) from None
    # OverflowError: float() of a JSON integer beyond 1e308 (e.g. 400 digits).
    except (ValueError, TypeError, OverflowError) as exc:
        raise InvalidInput(f"Bad request: {exc}") from None
    return EvaluationRequest(angle=angle, scale=scale, auto=auto, catalogue=catalogue, upload_id=upload_id,
                             position=position)


@extend_schema(exclude=True)
class EvaluateView(PageHelperView):
    """Evaluate what the page shows: a sky cut-out or an upload, rotated and zoomed by the user."""

    http_method_names = ["post"]
    throttle_scope = "predict_evaluate"

    def post(self, request: Request) -> Response:
        wanted = _evaluation_request(request.body)  # the raw body, whatever its content type says
        active_pointer()  # no model, no work: answer 503 before fetching or decoding anything
        try:
            image = load_image(wanted.image_bytes(), max_bytes=20 * settings.MAX_UPLOAD_BYTES,
                               max_pixels=settings.MAX_IMAGE_PIXELS, max_side=settings.MAX_DECODE_SIDE)
            aligned = run_heavy(align_image, image.pixels, angle_deg=None if wanted.auto else wanted.angle,
                                scale=wanted.scale, pa_source="catalogue" if wanted.catalogue else "manual")
            body = prediction_for_aligned(aligned)
        except ImageSourceError as exc:
            raise UpstreamFailed(f"Could not get an image of this position: {exc}") from None
        except ImageError as exc:
            raise InvalidInput(str(exc)) from None
        return Response({"status": "success", **body})
