"""URL configuration. Every route lives under ``WEBROOT`` (e.g. ``/inclinet/``), as the original did."""
import re

from django.conf import settings
from django.contrib import admin
from django.urls import include, path, re_path
from drf_spectacular.views import SpectacularAPIView

from . import health, media, views
from .api_docs import RedocView, SwaggerView
from .security import throttle_posts

# The admin log-in is a password form like the Zoo's: same throttle (set before admin.site.urls is built).
admin.site.login = throttle_posts("login")(admin.site.login)

site_patterns = [
    path("", views.home, name="home"),
    path("healthz", health.healthz, name="healthz"),
    path("admin/", admin.site.urls),
    path("api/schema/", SpectacularAPIView.as_view(), name="schema"),
    # Swagger UI and ReDoc load their scripts from our static files (drf-spectacular-sidecar), not a CDN.
    path("api/docs", SwaggerView.as_view(url_name="schema"), name="api-docs"),
    path("api/docs/", SwaggerView.as_view(url_name="schema")),
    path("api/redoc/", RedocView.as_view(url_name="schema"), name="api-redoc"),
    path("api/", include("catalog.urls")),
    path("zoo/", include("labeling.urls")),
    path("api/", include("predictions.urls")),
    path("predict/", include("predictions.page_urls")),
    path("staff/training/", include("training.urls")),
]

prefix = settings.WEBROOT.lstrip("/")
urlpatterns = [path(prefix, include(site_patterns))]
if settings.SERVE_MEDIA:
    urlpatterns.append(re_path(rf"^{re.escape(settings.MEDIA_URL.lstrip('/'))}(?P<path>.*)$", media.public_media))

handler404 = "inclinet_site.views.not_found"
handler500 = "inclinet_site.views.server_error"
