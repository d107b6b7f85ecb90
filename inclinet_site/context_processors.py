"""Template context shared by every page: the WEBROOT sub-path, for JavaScript URL building."""
from django.conf import settings
from django.http import HttpRequest


def site(request: HttpRequest) -> dict[str, str]:
    return {"WEBROOT": settings.WEBROOT}
