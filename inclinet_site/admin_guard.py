"""A guard in front of the Django admin for input its views mishandle (issue 16's parameter fuzz).

``?_to_field=`` (present but empty) reaches ``ModelAdmin.get_object`` as the field name ``""``: Django 5.2
checks the parameter only when it is non-empty, then looks the empty name up and raises
``FieldDoesNotExist``, a 500. The admin answers a disallowed ``_to_field`` with a 400; an empty one gets
the same here, before the admin sees it.
"""
from __future__ import annotations

from collections.abc import Callable

from django.conf import settings
from django.http import HttpRequest, HttpResponse, HttpResponseBadRequest

TO_FIELD_VAR = "_to_field"  # django.contrib.admin.options.TO_FIELD_VAR


class AdminInputGuardMiddleware:
    def __init__(self, get_response: Callable[[HttpRequest], HttpResponse]) -> None:
        self.get_response = get_response
        self.prefix = f"{settings.WEBROOT}admin/"

    def __call__(self, request: HttpRequest) -> HttpResponse:
        if request.path.startswith(self.prefix) and request.GET.get(TO_FIELD_VAR, None) == "":
            return HttpResponseBadRequest("The field '' cannot be referenced.", content_type="text/plain")
        return self.get_response(request)
