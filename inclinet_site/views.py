"""Site-wide pages: the landing page that links the volunteer, astronomer and staff areas."""
from django.http import HttpRequest, HttpResponse
from django.shortcuts import render

from catalog.selectors import catalogue_counts


def home(request: HttpRequest) -> HttpResponse:
    return render(request, "home.html", {"counts": catalogue_counts()})


def _is_api(request: HttpRequest) -> bool:
    from django.conf import settings

    # The site API and the Zoo's API (mounted under zoo/api/) both answer in the documented failed JSON.
    return request.path.startswith((f"{settings.WEBROOT}api/", f"{settings.WEBROOT}zoo/api/"))


def not_found(request: HttpRequest, exception: Exception | None = None) -> HttpResponse:
    """API clients get the documented failed JSON; people get a page."""
    from django.http import JsonResponse

    if _is_api(request):
        return JsonResponse({"status": "failed", "message": f"No API endpoint at {request.path}."}, status=404)
    return render(request, "404.html", status=404)


def server_error(request: HttpRequest) -> HttpResponse:
    from django.http import JsonResponse

    if _is_api(request):
        return JsonResponse({"status": "failed", "message": "Internal error; it has been logged."}, status=500)
    return render(request, "500.html", status=500)
