"""Media files served by Django when no web server sits in front of ``MEDIA_ROOT`` (``SERVE_MEDIA``, the
default in embedded mode, docker compose and with DEBUG).

Public: the folders whose files the pages link publicly (galaxy images, model inputs and astronomers'
uploads, named by a random id). Zoo exports: only to the volunteer who asked for the export, or staff
(issue 16: with DEBUG on they were served to anyone). Everything else under ``MEDIA_ROOT`` (batch inputs
and results) is downloaded through views that check who asks, and is never served here.
"""
from django.conf import settings
from django.http import Http404, HttpRequest, HttpResponse
from django.utils.cache import patch_cache_control
from django.views.static import serve

PUBLIC_MEDIA_FOLDERS = ("galaxy_images/", "model_inputs/", "uploads/")
EXPORT_FOLDER = "labeling/exports/"


def _may_download_export(request: HttpRequest, path: str) -> bool:
    from labeling.models import ExportJob, Role
    from labeling.selectors import volunteer_role

    user = request.user
    if not user.is_authenticated:
        return False
    if volunteer_role(user=user) == Role.STAFF:
        return True
    return ExportJob.objects.filter(file=path, requested_by=user).exists()


def public_media(request: HttpRequest, path: str) -> HttpResponse:
    # serve() refuses paths that leave MEDIA_ROOT; the folder checks keep the private folders private.
    if ".." in path.split("/"):
        raise Http404("No such file")
    if path.startswith(PUBLIC_MEDIA_FOLDERS):
        response = serve(request, path, document_root=settings.MEDIA_ROOT, show_indexes=False)
        patch_cache_control(response, public=True, max_age=3600)
        return response
    if path.startswith(EXPORT_FOLDER) and _may_download_export(request, path):
        response = serve(request, path, document_root=settings.MEDIA_ROOT, show_indexes=False)
        patch_cache_control(response, private=True, no_store=True)
        return response
    raise Http404("No such file")
