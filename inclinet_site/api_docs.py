"""Swagger UI and ReDoc pages that use nothing but this site.

Their scripts come from drf-spectacular-sidecar's static files. A Content-Security-Policy keeps the pages
on this origin too: ReDoc's bundle always fetches a logo from cdn.redoc.ly, which the browser now refuses
before any request leaves (a machine without internet access would otherwise wait on it, and a visitor's
address would reach a third party).
"""
from typing import Any

from drf_spectacular.views import SpectacularRedocView, SpectacularSwaggerView
from rest_framework.request import Request
from rest_framework.response import Response

# Inline scripts and styles: drf-spectacular's page templates and both UIs' styling need them. Blob workers:
# ReDoc's search index.
DOCS_CSP = (
    "default-src 'self'; script-src 'self' 'unsafe-inline'; style-src 'self' 'unsafe-inline'; "
    "img-src 'self' data:; font-src 'self' data:; worker-src 'self' blob:; connect-src 'self'; "
    "base-uri 'self'; form-action 'self'; frame-ancestors 'none'"
)


class _SameOriginOnly:
    def finalize_response(self, request: Request, response: Response, *args: Any, **kwargs: Any) -> Response:
        response = super().finalize_response(request, response, *args, **kwargs)  # type: ignore[misc]
        response["Content-Security-Policy"] = DOCS_CSP
        return response


class SwaggerView(_SameOriginOnly, SpectacularSwaggerView):
    """Swagger UI at ``api/docs/``."""


class RedocView(_SameOriginOnly, SpectacularRedocView):
    """ReDoc at ``api/redoc/``."""
