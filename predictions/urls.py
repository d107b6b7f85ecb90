"""Prediction API routes under ``<WEBROOT>api/``, with the original paths."""
from django.urls import path, re_path

from . import api

urlpatterns = [
    re_path(r"^pgc/(?P<pgc_id>-?\d+)$", api.PgcPredictionView.as_view(), name="api-pgc"),
    path("objname/<path:objname>", api.ObjnamePredictionView.as_view(), name="api-objname"),
    path("coords", api.CoordsPredictionView.as_view(), name="api-coords"),
    path("file", api.FilePredictionView.as_view(), name="api-file"),
    path("batch", api.BatchCreateView.as_view(), name="api-batch"),
    path("batch/<uuid:job_id>", api.BatchDetailView.as_view(), name="api-batch-detail"),
    re_path(r"^batch/(?P<job_id>[0-9a-f-]{36})/result\.(?P<fmt>csv|json)$", api.BatchResultView.as_view(),
            name="api-batch-result"),
]
