"""Catalogue API routes, mounted under ``<WEBROOT>api/``."""
from django.urls import path

from . import api

urlpatterns = [
    path("catalog/pgc/<int:pgc>", api.GalaxyByPgcView.as_view(), name="catalog-pgc"),
    path("catalog/resolve", api.ResolveView.as_view(), name="catalog-resolve"),
]
