"""API error shape shared by every endpoint: ``{"status": "failed", "message": ...}`` with a 4xx/5xx.

The one place where the services' error vocabulary (``core.errors``) becomes HTTP: ``HTTP_STATUS_BY_KIND``.
"""
from __future__ import annotations

from typing import Any

from rest_framework import status as http_status
from rest_framework.response import Response
from rest_framework.views import exception_handler as drf_exception_handler

from core.errors import ApplicationError


HTTP_STATUS_BY_KIND: dict[str, int] = {
    "invalid": http_status.HTTP_400_BAD_REQUEST,
    "forbidden": http_status.HTTP_403_FORBIDDEN,
    "not_found": http_status.HTTP_404_NOT_FOUND,
    "conflict": http_status.HTTP_409_CONFLICT,
    "too_large": http_status.HTTP_413_REQUEST_ENTITY_TOO_LARGE,
    "upstream": http_status.HTTP_502_BAD_GATEWAY,
    "unavailable": http_status.HTTP_503_SERVICE_UNAVAILABLE,
}


def application_error_response(exc: ApplicationError, *, with_code: bool = True) -> Response:
    """The failed shape for a service's error, as a DRF ``Response`` (for DRF views and the exception handler).
    ``with_code=False`` leaves ``code`` out, for endpoints whose failures never carried one (the prediction API
    and page, kept as the original IncliNET API answered)."""
    codes = {"code": exc.code} if with_code else {}
    return failed(exc.message, status=HTTP_STATUS_BY_KIND[exc.kind], **codes, **exc.extra)


def failed(message: str, *, status: int, **extra: Any) -> Response:
    return Response({"status": "failed", "message": message, **extra}, status=status)


def validation_message(detail: Any) -> str:
    """DRF's error detail (nested dicts and lists) as one line for people: ``field: what is wrong; …``."""
    if isinstance(detail, dict):
        return "; ".join(f"{key}: {validation_message(value)}" for key, value in detail.items())
    if isinstance(detail, list):
        return "; ".join(validation_message(item) for item in detail)
    return str(detail)


def exception_handler(exc: Exception, context: dict[str, Any]) -> Response | None:
    if isinstance(exc, ApplicationError):
        return application_error_response(exc, with_code=getattr(context.get("view"), "error_codes_in_body", True))
    response = drf_exception_handler(exc, context)
    if response is not None:
        response.data = {"status": "failed", "message": validation_message(response.data)}
    return response
