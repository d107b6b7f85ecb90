"""The image of a task's target, served under a one-off URL (``selectors.task_image_urls``).

A gold task's target is a standard, and standards are listed with their answers (tutorial, step grids). Under
its own image URL the target could be matched to that list, so a task's target is only ever served here: the
URL is signed per assignment and band, only the volunteer holding the task (or staff) may load it, and the
picture is mirrored (``selectors.task_image_flip``) and re-encoded, so not even its bytes equal the standard's.
"""
from __future__ import annotations

import io

from django.contrib.auth.decorators import login_required
from django.core.cache import cache
from django.http import Http404, HttpRequest, HttpResponse
from django.urls import reverse_lazy
from django.views.decorators.cache import cache_control
from PIL import Image

from catalog.models import GalaxyImage

from . import selectors
from .conf import zoo_setting
from .models import Assignment, Role

_FLIPS = {"lr": (Image.Transpose.FLIP_LEFT_RIGHT,), "tb": (Image.Transpose.FLIP_TOP_BOTTOM,),
          "both": (Image.Transpose.ROTATE_180,)}


@login_required(login_url=reverse_lazy("labeling:login"))
@cache_control(private=True, max_age=int(zoo_setting("LEASE_SECONDS")))
def task_image(request: HttpRequest, task_id: int, kind: str, token: str) -> HttpResponse:
    if not selectors.task_image_token_valid(assignment_id=task_id, kind=kind, token=token):
        raise Http404("No such image")
    assignment = Assignment.objects.filter(pk=task_id).only("user_id", "galaxy_id").first()
    if assignment is None or (assignment.user_id != request.user.pk
                              and selectors.volunteer_role(user=request.user) != Role.STAFF):
        raise Http404("No such image")
    stored = selectors.task_target_image(galaxy_id=assignment.galaxy_id, kind=kind)
    if stored is None or not stored.file:
        raise Http404("No such image")
    flip = selectors.task_image_flip(assignment_id=task_id)
    # Three variants per image at most: kept in the cache, since re-encoding a 512 px PNG costs ~0.1 s of CPU.
    key = f"zoo-task-image:{stored.pk}:{stored.sha256[:16]}:{flip}"
    data = cache.get(key)
    if data is None:
        data = _mirrored_png(stored, flip)
        cache.set(key, data, 24 * 3600)
    return HttpResponse(data, content_type="image/png")


def _mirrored_png(stored: GalaxyImage, flip: str) -> bytes:
    try:
        with stored.file.open("rb") as handle, Image.open(handle, formats=["PNG", "JPEG"]) as picture:
            picture.load()
            for step in _FLIPS[flip]:
                picture = picture.transpose(step)
            buffer = io.BytesIO()
            picture.save(buffer, format="PNG", compress_level=1)
    except FileNotFoundError:
        raise Http404("Image file missing") from None
    return buffer.getvalue()
