"""Site-wide pages: the landing page that links the volunteer, astronomer and staff areas."""
from django.http import HttpRequest, HttpResponse
from django.shortcuts import render

from catalog.selectors import catalogue_counts


def home(request: HttpRequest) -> HttpResponse:
    return render(request, "home.html", {"counts": catalogue_counts()})
