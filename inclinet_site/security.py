"""Defences against hostile input that every view shares: body size limits, safe JSON, POST throttles.

- ``BodySizeLimitMiddleware`` answers 413 before any view reads a body that is too big: JSON and form
  bodies above ``DATA_UPLOAD_MAX_MEMORY_SIZE``, multipart uploads above ``MAX_REQUEST_BYTES``. API
  clients get the documented ``{"status": "failed", "message": ...}``.
- ``SafeJSONParser`` turns a JSON document nested deeply enough to exhaust the recursion limit into a
  400, where DRF's parser would let ``RecursionError`` through as a 500.
- ``SignedInUserRateThrottle`` is DRF's per-user API rate for signed-in users only; anonymous callers are
  counted once, per address, by ``AnonRateThrottle`` (DRF's ``UserRateThrottle`` counts them a second time).
- ``throttle_posts`` rate-limits the POSTs of plain Django views (log-in and sign-up pages, the admin
  log-in) with DRF's cache-backed throttles, so the counters live in Redis and are shared by every
  gunicorn worker.
"""
from __future__ import annotations

import functools
import json
from collections.abc import Callable
from typing import Any

from django.conf import settings
from django.http import HttpRequest, HttpResponse, JsonResponse
from rest_framework.exceptions import ParseError
from rest_framework.parsers import JSONParser
from rest_framework.throttling import SimpleRateThrottle, UserRateThrottle


def _is_api(request: HttpRequest) -> bool:
    """API paths and JSON clients get JSON errors; people get a short page."""
    return "/api/" in request.path or "json" in request.META.get("CONTENT_TYPE", "") \
        or "json" in request.META.get("HTTP_ACCEPT", "")


def failed_response(request: HttpRequest, message: str, status: int, **headers: str) -> HttpResponse:
    if _is_api(request) or request.path.startswith(f"{settings.WEBROOT}predict/"):
        response: HttpResponse = JsonResponse({"status": "failed", "message": message}, status=status)
    else:
        response = HttpResponse(message, status=status, content_type="text/plain; charset=utf-8")
    for name, value in headers.items():
        response[name] = value
    return response


class BodySizeLimitMiddleware:
    """Refuse over-large bodies from their Content-Length, before anything reads them."""

    def __init__(self, get_response: Callable[[HttpRequest], HttpResponse]) -> None:
        self.get_response = get_response

    def __call__(self, request: HttpRequest) -> HttpResponse:
        try:
            length = int(request.META.get("CONTENT_LENGTH") or 0)
        except ValueError:
            return failed_response(request, "Bad Content-Length header.", 400)
        multipart = request.META.get("CONTENT_TYPE", "").startswith("multipart/")
        # Multipart bodies stream files to disk, so they may be larger (batch archives); others are held in memory.
        limit = settings.MAX_REQUEST_BYTES if multipart else settings.DATA_UPLOAD_MAX_MEMORY_SIZE
        if length > limit:
            return failed_response(
                request, f"The request body is {length:,} bytes; at most {limit:,} bytes are accepted here.", 413
            )
        return self.get_response(request)


class SafeJSONParser(JSONParser):
    """DRF's JSON parser, with a too-deeply nested document answered as a parse error (400)."""

    def parse(self, stream: Any, media_type: str | None = None, parser_context: dict | None = None) -> Any:
        try:
            return super().parse(stream, media_type, parser_context)
        except RecursionError:
            raise ParseError("JSON parse error - the document is nested too deeply.") from None


def loads_object(body: bytes) -> dict[str, Any]:
    """Parse a JSON object from a request body; ValueError (never RecursionError) for anything else."""
    try:
        value = json.loads(body or b"{}")
    except RecursionError:
        raise ValueError("the JSON document is nested too deeply") from None
    if not isinstance(value, dict):
        raise ValueError("the body must be a JSON object")
    return value


class SignedInUserRateThrottle(UserRateThrottle):
    """``API_USER_RATE`` per signed-in user. Anonymous requests are left to ``AnonRateThrottle`` (the stricter
    ``API_ANON_RATE`` per address): a second per-address counter would cost two more Redis round trips on
    every anonymous API call and never refuse anything the first one allows."""

    def get_cache_key(self, request: Any, view: Any) -> str | None:
        if not (request.user and request.user.is_authenticated):
            return None
        return super().get_cache_key(request, view)


class _PostThrottle(SimpleRateThrottle):
    """Counts POSTs per client address in the default cache (Redis in production)."""

    def get_cache_key(self, request: Any, view: Any) -> str:
        return self.cache_format % {"scope": self.scope, "ident": self.get_ident(request)}


class LoginRateThrottle(_PostThrottle):
    scope = "login"


class SignupRateThrottle(_PostThrottle):
    scope = "signup"


THROTTLES: dict[str, type[_PostThrottle]] = {"login": LoginRateThrottle, "signup": SignupRateThrottle}


def throttle_posts(scope: str) -> Callable[[Callable[..., HttpResponse]], Callable[..., HttpResponse]]:
    """Decorate a Django view so that its POSTs are limited by the ``scope`` rate (429 beyond it)."""
    throttle_class = THROTTLES[scope]

    def decorate(view: Callable[..., HttpResponse]) -> Callable[..., HttpResponse]:
        @functools.wraps(view)
        def wrapped(request: HttpRequest, *args: Any, **kwargs: Any) -> HttpResponse:
            if request.method == "POST":
                throttle = throttle_class()
                if not throttle.allow_request(request, None):
                    wait = int(throttle.wait() or 60) + 1
                    return failed_response(request, f"Too many attempts; try again in {wait} s.", 429,
                                           **{"Retry-After": str(wait)})
            return view(request, *args, **kwargs)

        return wrapped

    return decorate
