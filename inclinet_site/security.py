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
- ``LockoutModelBackend`` adds a per-account lock-out to that per-address limit: after
  ``LOGIN_LOCKOUT_THRESHOLD`` failed log-ins on one account it is refused for ``LOGIN_LOCKOUT_BASE_S``,
  doubling with each further failure up to ``LOGIN_LOCKOUT_MAX_S``; a successful log-in resets it. The log-in
  page says so in its form (answered 429 with Retry-After).
- ``ContentSecurityPolicyMiddleware`` sends ``CONTENT_SECURITY_POLICY`` (no inline scripts or styles) on every
  response that has not set its own (the API docs pages do).
"""
from __future__ import annotations

import functools
import hashlib
import json
import time
from collections.abc import Callable
from typing import Any

from django.conf import settings
from django.contrib.auth import get_user_model
from django.contrib.auth.backends import ModelBackend
from django.core.cache import cache
from django.core.exceptions import ValidationError
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
                    if not _is_api(request):  # people get the styled page, with the wait in minutes
                        from django.shortcuts import render

                        page = render(request, "429.html", {"wait_minutes": -(-wait // 60)}, status=429)
                        page["Retry-After"] = str(wait)
                        return page
                    return failed_response(request, f"Too many attempts; try again in {wait} s.", 429,
                                           **{"Retry-After": str(wait)})
            response = view(request, *args, **kwargs)
            locked_for = getattr(request, "account_locked_for", 0)
            if locked_for:  # the page shows the lock-out in its form; clients see the status and when to retry
                response.status_code = 429
                response["Retry-After"] = str(locked_for)
            return response

        return wrapped

    return decorate


# --- per-account log-in lock-out ---------------------------------------------------------------------


def _lockout_key(username: str) -> str:
    # Hashed: the cache never holds user names, and any name (real or not) is locked alike.
    return "login-lockout:" + hashlib.sha256(username.strip().casefold().encode()).hexdigest()


def account_lockout_wait(username: str) -> int:
    """Seconds left until ``username`` may try to log in again (0: now)."""
    state = cache.get(_lockout_key(username)) or {}
    return max(0, int(state.get("until", 0) - time.time() + 0.999))


def account_login_failed(username: str) -> None:
    key = _lockout_key(username)
    state = cache.get(key) or {"failures": 0, "until": 0}
    state["failures"] += 1
    over = state["failures"] - int(settings.LOGIN_LOCKOUT_THRESHOLD)
    if over >= 0:
        wait = min(float(settings.LOGIN_LOCKOUT_BASE_S) * 2 ** over, float(settings.LOGIN_LOCKOUT_MAX_S))
        state["until"] = time.time() + wait
    cache.set(key, state, timeout=int(settings.LOGIN_LOCKOUT_MAX_S) * 4)


def account_login_succeeded(username: str) -> None:
    cache.delete(_lockout_key(username))


def _minutes_and_seconds(seconds: int) -> str:
    return f"{seconds} s" if seconds < 90 else f"{-(-seconds // 60)} minutes"


class LockoutModelBackend(ModelBackend):
    """Django's password check, refused while the account is locked out after repeated failures."""

    def authenticate(self, request: HttpRequest | None, username: str | None = None, password: str | None = None,
                     **kwargs: Any) -> Any:
        if username is None:
            username = kwargs.get(get_user_model().USERNAME_FIELD)
        if username is None or password is None:
            return None
        wait = account_lockout_wait(username)
        if wait:
            if request is not None:
                request.account_locked_for = wait  # type: ignore[attr-defined]
            # Raised through authenticate() into the log-in form, which shows it as its error.
            raise ValidationError(
                f"Too many failed log-ins for this account. Try again in {_minutes_and_seconds(wait)}.",
                code="account_locked")
        user = super().authenticate(request, username=username, password=password, **kwargs)
        if user is None:
            account_login_failed(username)
        else:
            account_login_succeeded(username)
        return user


# --- Content-Security-Policy ------------------------------------------------------------------------


class ContentSecurityPolicyMiddleware:
    """``settings.CONTENT_SECURITY_POLICY`` on every response that does not carry its own."""

    def __init__(self, get_response: Callable[[HttpRequest], HttpResponse]) -> None:
        self.get_response = get_response

    def __call__(self, request: HttpRequest) -> HttpResponse:
        response = self.get_response(request)
        if settings.CONTENT_SECURITY_POLICY and "Content-Security-Policy" not in response:
            response["Content-Security-Policy"] = settings.CONTENT_SECURITY_POLICY
        return response
