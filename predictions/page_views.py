"""Page views of the astronomer pages: the evaluate page and the batch page.

They render templates (and one catalogue read, ``galaxy``); everything they show comes from the JSON
endpoints (``page_api`` for the page's cut-out, upload and evaluate helpers, ``api`` for ``/api/batch``). The
page is told whether a model is active so it can say so in astronomers' words before anyone presses Evaluate.
"""
from __future__ import annotations

from django.conf import settings
from django.http import HttpRequest, HttpResponse, JsonResponse
from django.shortcuts import render
from django.views.decorators.http import require_GET

from catalog.coordinates import MAX_FIELD_ARCMIN
from catalog.selectors import GalaxyNotFound, galaxy_get_by_pgc

from .inference import NoActiveEnsemble, active_pointer


def _model_ready() -> bool:
    try:
        active_pointer()
    except NoActiveEnsemble:
        return False
    return True


def page(request: HttpRequest) -> HttpResponse:
    return render(request, "predictions/page.html", {
        "max_upload_bytes": settings.MAX_UPLOAD_BYTES,
        "max_field_arcmin": MAX_FIELD_ARCMIN,
        "model_ready": _model_ready(),
    })


def batch_page(request: HttpRequest) -> HttpResponse:
    from .batch import MAX_BATCH_ITEMS

    return render(request, "predictions/batch.html", {
        "max_items": MAX_BATCH_ITEMS,
        "model_ready": _model_ready(),
    })


@require_GET
def galaxy(request: HttpRequest, pgc: int) -> JsonResponse:
    """The catalogue's axis-ratio inclination of a galaxy the page has loaded (local catalogue only: the
    page's look-up has already stored what HyperLEDA said), shown beside the networks' answer."""
    try:
        found = galaxy_get_by_pgc(pgc=pgc)
    except GalaxyNotFound as exc:
        return JsonResponse({"status": "failed", "message": str(exc)}, status=404)
    value = found.catalogue_inclination
    return JsonResponse({"status": "success", "pgc": found.pgc,
                         "catalog_inclination": None if value is None else round(value, 1)})
