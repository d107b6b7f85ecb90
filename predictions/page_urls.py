"""Routes of the astronomer page and its JSON helpers, under ``<WEBROOT>predict/``."""
from django.urls import path
from django.views.decorators.csrf import ensure_csrf_cookie

from . import views

urlpatterns = [
    path("", ensure_csrf_cookie(views.page), name="predict-page"),
    path("cutout", views.cutout, name="predict-cutout"),
    path("upload", views.upload, name="predict-upload"),
    path("evaluate", views.evaluate, name="predict-evaluate"),
]
