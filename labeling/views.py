"""Zoo pages: the measurement page, the tutorial, my measurements, the staff report, sign-up and images."""
from __future__ import annotations

from django.contrib.auth import login
from django.contrib.auth.decorators import login_required
from django.contrib.auth.forms import UserCreationForm
from django.contrib.auth.views import LoginView, LogoutView
from django.http import FileResponse, Http404, HttpRequest, HttpResponse, HttpResponseForbidden
from django.shortcuts import redirect, render
from django.urls import reverse_lazy
from django.views.decorators.cache import cache_control
from django.utils.decorators import method_decorator
from django.views.decorators.csrf import ensure_csrf_cookie

from inclinet_site.security import throttle_posts

from catalog.models import GalaxyImage

from . import selectors, services
from .models import Role

LOGIN = reverse_lazy("labeling:login")


@login_required(login_url=LOGIN)
@ensure_csrf_cookie
def measure(request: HttpRequest) -> HttpResponse:
    profile = services.profile_get_or_create(user=request.user)
    return render(request, "labeling/measure.html", {"profile": profile, "mode": "measure"})


@login_required(login_url=LOGIN)
@ensure_csrf_cookie
def tutorial(request: HttpRequest) -> HttpResponse:
    profile = services.profile_get_or_create(user=request.user)
    return render(request, "labeling/measure.html", {"profile": profile, "mode": "tutorial"})


@login_required(login_url=LOGIN)
def my_measurements(request: HttpRequest) -> HttpResponse:
    return render(request, "labeling/me.html", {
        "stats": selectors.volunteer_stats(user=request.user),
        "measurements": selectors.measurement_list_for_user(user=request.user),
    })


def _staff_or_403(request: HttpRequest) -> HttpResponse | None:
    if selectors.volunteer_role(user=request.user) != Role.STAFF:
        return HttpResponseForbidden("Staff only.")
    return None


def _report_seed(request: HttpRequest) -> int:
    """The A/B split's seed from ``?seed=``; anything but ASCII digits ("²" passes str.isdigit) means 0."""
    raw = request.GET.get("seed", "")
    return int(raw) if raw.isascii() and raw.isdigit() and len(raw) <= 18 else 0


@login_required(login_url=LOGIN)
def staff_report(request: HttpRequest) -> HttpResponse:
    if (refused := _staff_or_403(request)) is not None:
        return refused
    seed = _report_seed(request)
    report = selectors.agreement_ab_report(seed=seed)
    return render(request, "labeling/report.html", {
        "agreement": report.as_dict(), "progress": selectors.progress_summary(),
        "gold": selectors.volunteer_gold_accuracy(), "seed": seed,
    })


@login_required(login_url=LOGIN)
def staff_report_png(request: HttpRequest) -> HttpResponse:
    if (refused := _staff_or_403(request)) is not None:
        return refused
    seed = _report_seed(request)
    png = selectors.agreement_ab_plot_png(report=selectors.agreement_ab_report(seed=seed))
    return HttpResponse(png, content_type="image/png")


@throttle_posts("signup")
def signup(request: HttpRequest) -> HttpResponse:
    form = UserCreationForm(request.POST or None)
    if request.method == "POST" and form.is_valid():
        user = form.save()
        services.profile_get_or_create(user=user)
        login(request, user)
        return redirect("labeling:tutorial")
    return render(request, "labeling/signup.html", {"form": form})


@method_decorator(throttle_posts("login"), name="dispatch")
class ZooLoginView(LoginView):
    template_name = "labeling/login.html"
    redirect_authenticated_user = True

    def get_default_redirect_url(self) -> str:
        return str(reverse_lazy("labeling:measure"))


class ZooLogoutView(LogoutView):
    next_page = LOGIN


@cache_control(public=True, max_age=86400)
def image(request: HttpRequest, image_id: int) -> FileResponse:
    """Serve a cached galaxy image when nothing in front of Django serves MEDIA_ROOT."""
    found = GalaxyImage.objects.filter(pk=image_id).only("file").first()
    if found is None or not found.file:
        raise Http404("No such image")
    try:
        handle = found.file.open("rb")
    except FileNotFoundError:
        raise Http404("Image file missing") from None
    return FileResponse(handle)
