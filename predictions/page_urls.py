"""Routes of the astronomer pages and their JSON helpers, under ``<WEBROOT>predict/``."""
from django.urls import path
from django.views.decorators.csrf import ensure_csrf_cookie

from . import page_api, page_views

urlpatterns = [
    path("", ensure_csrf_cookie(page_views.page), name="predict-page"),
    path("batch/", ensure_csrf_cookie(page_views.batch_page), name="predict-batch-page"),
    path("galaxy/<int:pgc>", page_views.galaxy, name="predict-galaxy"),
    path("cutout", page_api.CutoutView.as_view(), name="predict-cutout"),
    path("upload", page_api.UploadView.as_view(), name="predict-upload"),
    path("evaluate", page_api.EvaluateView.as_view(), name="predict-evaluate"),
]
