"""The astronomer page and its JSON helpers: cut-out proxy, upload, and evaluate with measured or manual alignment.

An evaluation is aligned automatically (``"auto": true``: turned by the angle measured on the image, about
the measured centre, as ``/api/file`` does) unless the user has turned the image themselves, in which case
their angle is used as it is (about the image centre, as the viewer shows it).

Cheap checks come first (issue 16): each helper is rate-limited (``PREDICT_*_RATE``, 429 in the failed shape
with ``Retry-After``), an evaluation's parameters are validated and the active model is looked up before
any image is fetched or decoded, and large images are decoded downscaled (``MAX_DECODE_SIDE``).
"""
from __future__ import annotations

import functools
import logging
import math
import uuid
from collections.abc import Callable
from typing import Any

import astropy.units as u
from django.conf import settings
from django.core.files.base import ContentFile
from django.core.files.storage import default_storage
from django.http import HttpRequest, HttpResponse, JsonResponse
from django.shortcuts import render
from django.views.decorators.http import require_GET, require_POST
from rest_framework.throttling import SimpleRateThrottle

from catalog.coordinates import CoordinateError, check_position, parse_angle, parse_field
from catalog.imaging import ImageError, encode_jpeg, load_image
from catalog.sources import ImageSourceError, fetch_cutout
from inclinet_site.security import loads_object

from .heavy import run_heavy
from .inference import NoActiveEnsemble, active_pointer
from .services import UPLOAD_FORMATS, align_image, measure_image_orientation, prediction_for_aligned

UPLOAD_DIR = "uploads"
MAX_UPLOAD_ID_CHARS = 64  # ids are uuid4 hex (32 characters)
logger = logging.getLogger(__name__)


def failed(message: str, status: int) -> JsonResponse:
    return JsonResponse({"status": "failed", "message": message}, status=status)


class _HelperThrottle(SimpleRateThrottle):
    """DRF's cache-backed rate for one helper (scope), counted per signed-in user or per client address
    (``get_ident`` reads X-Forwarded-For only behind ``NUM_PROXIES`` trusted proxies)."""

    def get_rate(self) -> str | None:
        # DRF's rate table, else the settings: replacing the table for other scopes (tests do) leaves these set.
        return self.THROTTLE_RATES.get(self.scope) or settings.REST_FRAMEWORK["DEFAULT_THROTTLE_RATES"][self.scope]

    def get_cache_key(self, request: Any, view: Any) -> str:
        user = getattr(request, "user", None)
        ident = f"user-{user.pk}" if user is not None and user.is_authenticated else self.get_ident(request)
        return self.cache_format % {"scope": self.scope, "ident": ident}


def throttled(scope: str) -> Callable[[Callable[..., HttpResponse]], Callable[..., HttpResponse]]:
    """Limit a helper to the ``scope`` rate of ``DEFAULT_THROTTLE_RATES``: 429 failed JSON with Retry-After."""
    throttle_class = type(f"{scope.title().replace('_', '')}Throttle", (_HelperThrottle,), {"scope": scope})

    def decorate(view: Callable[..., HttpResponse]) -> Callable[..., HttpResponse]:
        @functools.wraps(view)
        def wrapped(request: HttpRequest, *args: Any, **kwargs: Any) -> HttpResponse:
            throttle = throttle_class()
            if not throttle.allow_request(request, None):
                wait = int(math.ceil(throttle.wait() or 60))
                response = failed(f"Too many requests; try again in {wait} s.", 429)
                response["Retry-After"] = str(wait)
                return response
            return view(request, *args, **kwargs)

        return wrapped

    return decorate


def page(request: HttpRequest) -> HttpResponse:
    return render(request, "predictions/page.html", {"max_upload_bytes": settings.MAX_UPLOAD_BYTES})


def _position(params: dict) -> tuple[float, float, float]:
    ra = parse_angle(str(params.get("ra", "")), unit=u.hourangle, name="RA")
    dec = parse_angle(str(params.get("dec", "")), unit=u.deg, name="Dec")
    check_position(ra, dec)
    return ra, dec, parse_field(str(params.get("fov", "")))


@require_GET
@throttled("predict_cutout")
def cutout(request: HttpRequest) -> HttpResponse:
    """The sky image the page shows, through the same cached image sources the API uses."""
    try:
        ra, dec, fov = _position(request.GET)
        fetched = fetch_cutout(ra=ra, dec=dec, fov_arcmin=fov)
    except CoordinateError as exc:
        return failed(str(exc), 400)
    except ImageSourceError as exc:
        return failed(f"Could not get an image of this position: {exc}", 502)
    return HttpResponse(fetched.data, content_type=fetched.content_type)


@require_POST
@throttled("predict_upload")
def upload(request: HttpRequest) -> JsonResponse:
    """Check an uploaded image by content and keep it (re-encoded) for alignment and evaluation."""
    upload_file = request.FILES.get("file")
    if upload_file is None:
        return failed("Choose an image file to upload.", 400)
    if upload_file.size > settings.MAX_UPLOAD_BYTES:
        return failed(f"Please upload jpg, png, jpeg or gif files no larger than {settings.MAX_UPLOAD_BYTES // 1024} KB.", 413)
    try:
        image = load_image(upload_file.read(), max_bytes=settings.MAX_UPLOAD_BYTES,
                           max_pixels=settings.MAX_IMAGE_PIXELS, allowed_formats=UPLOAD_FORMATS,
                           max_side=settings.MAX_DECODE_SIDE)
    except ImageError as exc:
        return failed(str(exc), 400)
    upload_id = uuid.uuid4().hex
    # Stored under a name we choose: the client's file name never reaches the file system.
    try:
        path = default_storage.save(f"{UPLOAD_DIR}/{upload_id}.jpg", ContentFile(encode_jpeg(image.pixels, quality=95)))
    except OSError as exc:  # disk full, read-only volume: the storage left nothing half-written
        logger.error("upload could not be stored", extra={"error": str(exc)})
        return failed("The server could not store your image right now (storage full); please try again later.",
                      507)
    orientation = run_heavy(measure_image_orientation, image.pixels)
    pa = orientation.pa_astro_deg if orientation.ok else None
    return JsonResponse({"status": "success", "upload_id": upload_id, "image_url": default_storage.url(path),
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


@require_POST
@throttled("predict_evaluate")
def evaluate(request: HttpRequest) -> JsonResponse:
    """Evaluate what the page shows: a sky cut-out or an upload, rotated and zoomed by the user."""
    try:
        params = loads_object(request.body)  # a list or a 100 000-deep array is a 400, not a 500
        angle = float(params.get("angle", 0.0))
        scale = float(params.get("scale", 1.0))
        auto = params.get("auto", False)
        catalogue = params.get("catalogue", False)  # the angle is the catalogue PA + 90, untouched by the user
        if not isinstance(auto, bool) or not isinstance(catalogue, bool):
            raise ValueError("auto and catalogue must be true or false")
        if not math.isfinite(angle):
            raise ValueError("angle must be a finite number of degrees")
        if not 0.05 <= scale <= 20:
            raise ValueError("scale must be between 0.05 and 20")
        upload_id = _upload_id(params)
        position = None if upload_id else _position(params)
    except CoordinateError as exc:
        return failed(str(exc), 400)
    # OverflowError: float() of a JSON integer beyond 1e308 (e.g. 400 digits).
    except (ValueError, TypeError, OverflowError) as exc:
        return failed(f"Bad request: {exc}", 400)
    try:
        active_pointer()  # no model, no work: answer 503 before fetching or decoding anything
    except NoActiveEnsemble as exc:
        return failed(str(exc), 503)
    try:
        if upload_id:
            path = f"{UPLOAD_DIR}/{upload_id}.jpg"
            if not default_storage.exists(path):
                return failed("That upload has expired; upload the image again.", 404)
            with default_storage.open(path) as handle:
                data = handle.read()
        else:
            ra, dec, fov = position
            data = fetch_cutout(ra=ra, dec=dec, fov_arcmin=fov).data
        image = load_image(data, max_bytes=20 * settings.MAX_UPLOAD_BYTES, max_pixels=settings.MAX_IMAGE_PIXELS,
                           max_side=settings.MAX_DECODE_SIDE)
        aligned = run_heavy(align_image, image.pixels, angle_deg=None if auto else angle, scale=scale,
                            pa_source="catalogue" if catalogue else "manual")
        body = prediction_for_aligned(aligned)
    except ImageSourceError as exc:
        return failed(f"Could not get an image of this position: {exc}", 502)
    except ImageError as exc:
        return failed(str(exc), 400)
    except NoActiveEnsemble as exc:
        return failed(str(exc), 503)
    return JsonResponse({"status": "success", **body})
