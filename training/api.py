"""The retraining pages' JSON endpoints (DRF): recent jobs and one run's live progress, for active Django staff
only. Failures answer in the API's shape ``{"status": "failed", "message": ...}`` (``inclinet_site.api``)."""
from __future__ import annotations

from typing import Any

from django.http import Http404, HttpResponseNotAllowed
from django.shortcuts import get_object_or_404
from drf_spectacular.utils import extend_schema
from rest_framework import exceptions
from rest_framework.authentication import SessionAuthentication
from rest_framework.permissions import BasePermission
from rest_framework.renderers import JSONRenderer
from rest_framework.request import Request
from rest_framework.response import Response
from rest_framework.views import APIView

from core.errors import InvalidInput, PermissionDenied

from . import selectors
from .models import RetrainJob, TrainingRun

STAFF_ONLY = "Retraining is for staff only."


class IsActiveStaff(BasePermission):
    def has_permission(self, request: Request, view: Any) -> bool:  # noqa: ANN401
        user = request.user
        return bool(user and user.is_authenticated and user.is_active and user.is_staff)


@extend_schema(exclude=True)  # the staff pages' own helpers, not part of the public API
class StaffJSONView(APIView):
    """GET only, signed-in staff only (the staff pages' session), answering as the plain views did."""

    authentication_classes = [SessionAuthentication]
    permission_classes = [IsActiveStaff]
    renderer_classes = [JSONRenderer]
    http_method_names = ["get", "head"]
    error_codes_in_body = False  # these failures never carried a ``code``

    def permission_denied(self, request: Request, message: str | None = None, code: str | None = None) -> None:
        raise PermissionDenied(STAFF_ONLY)  # anonymous or not staff alike: one 403 in the failed shape

    def handle_exception(self, exc: Exception) -> Any:  # noqa: ANN401
        if isinstance(exc, Http404):
            raise exc  # a missing job or run answers the site's 404 page, as it always has
        if isinstance(exc, exceptions.MethodNotAllowed):
            return HttpResponseNotAllowed(["GET", "HEAD"])
        return super().handle_exception(exc)


class JobsView(StaffJSONView):
    def get(self, request: Request) -> Response:
        job_id = request.query_params.get("job")
        # ASCII digits, at most 18: "²".isdigit() is true but int() refuses it, and the id must fit a bigint.
        if job_id is not None and not (job_id.isascii() and job_id.isdigit() and len(job_id) <= 18):
            raise InvalidInput("job must be a number.")
        jobs = [get_object_or_404(RetrainJob, pk=int(job_id))] if job_id else selectors.job_list(limit=10)
        return Response({"jobs": [selectors.job_summary(job=j) for j in jobs]})


class RunView(StaffJSONView):
    def get(self, request: Request, run_id: int) -> Response:
        return Response(selectors.run_progress(run=get_object_or_404(TrainingRun, pk=run_id)))
