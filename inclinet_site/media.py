"""Public media files served by Django when no web server sits in front of ``MEDIA_ROOT`` (``SERVE_MEDIA``).

Only the folders whose files the pages link publicly are served: galaxy images, model inputs and
astronomers' uploads (named by a random id). Zoo exports and batch inputs/results also live under
``MEDIA_ROOT`` but are downloaded through views that check who asks, so they are never served here.
"""
from django.conf import settings
from django.http import Http404, HttpRequest, HttpResponse
from django.views.decorators.cache import cache_control
from django.views.static import serve

PUBLIC_MEDIA_FOLDERS = ("galaxy_images/", "model_inputs/", "uploads/")


@cache_control(public=True, max_age=3600)
def public_media(request: HttpRequest, path: str) -> HttpResponse:
    # serve() refuses paths that leave MEDIA_ROOT; the folder check keeps the private folders private.
    if not path.startswith(PUBLIC_MEDIA_FOLDERS) or ".." in path.split("/"):
        raise Http404("No such file")
    return serve(request, path, document_root=settings.MEDIA_ROOT, show_indexes=False)
