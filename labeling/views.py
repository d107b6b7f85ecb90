"""Zoo pages: the measurement page, the tutorial, my measurements, the staff report, sign-up and images."""
from __future__ import annotations

import math
from typing import Any

from django.contrib.auth import login
from django.contrib.auth.decorators import login_required
from django.contrib.auth.forms import UserCreationForm
from django.contrib.auth.views import LoginView, LogoutView
from django.core.exceptions import PermissionDenied
from django.http import FileResponse, Http404, HttpRequest, HttpResponse
from django.shortcuts import redirect, render
from django.urls import reverse_lazy
from django.views.decorators.cache import cache_control
from django.utils.decorators import method_decorator
from django.views.decorators.csrf import ensure_csrf_cookie

from inclinet_site.security import SignupRateThrottle, throttle_posts

from catalog.models import GalaxyImage

from . import experience, guide, selectors, tutorial as zoo_tutorial
from .feedback import REASON_LABELS
from .models import Role
from .profiles import profile_get_or_create

LOGIN = reverse_lazy("labeling:login")


@login_required(login_url=LOGIN)
@ensure_csrf_cookie
def measure(request: HttpRequest) -> HttpResponse:
    profile = profile_get_or_create(user=request.user)
    if profile.tutorial_passed_at is None and selectors.volunteer_role(user=request.user) == Role.VOLUNTEER:
        return redirect("labeling:tutorial")  # the tutorial must be passed first (staff and experts may skip it)
    return render(request, "labeling/measure.html", {
        "profile": profile, "progress": experience.volunteer_progress(user=request.user),
        "reasons": _reject_choices()})


def _reject_choices() -> list[tuple[str, str]]:
    # Face-on has its own button (one way to say it), so it is not offered among the reject reasons.
    return [(r, label) for r, label in REASON_LABELS.items() if r != "face_on"]


@login_required(login_url=LOGIN)
@ensure_csrf_cookie
def tutorial(request: HttpRequest) -> HttpResponse:
    profile = profile_get_or_create(user=request.user)
    return render(request, "labeling/tutorial.html", {
        "profile": profile, "threshold": zoo_tutorial.PASS_MEDIAN_ERROR_DEG,
        "inclination_examples": guide.INCLINATION_EXAMPLES, "reject_examples": guide.REJECT_EXAMPLES,
        "reasons": _reject_choices()})


def field_guide(request: HttpRequest) -> HttpResponse:
    return render(request, "labeling/guide.html", {
        "inclination_examples": guide.INCLINATION_EXAMPLES, "reject_examples": guide.REJECT_EXAMPLES,
        "threshold": zoo_tutorial.PASS_MEDIAN_ERROR_DEG})


@cache_control(public=True, max_age=86400)
def guide_example(request: HttpRequest, name: str) -> HttpResponse:
    try:
        png = guide.example_png(name)
    except KeyError:
        raise Http404("No such example") from None
    return HttpResponse(png, content_type="image/png")


@login_required(login_url=LOGIN)
def my_measurements(request: HttpRequest) -> HttpResponse:
    return render(request, "labeling/me.html", {
        "stats": selectors.volunteer_stats(user=request.user),
        "progress": experience.volunteer_progress(user=request.user),
        "profile": profile_get_or_create(user=request.user),
        "measurements": selectors.measurement_list_for_user(user=request.user),
    })


def _staff_or_403(request: HttpRequest) -> HttpResponse | None:
    if selectors.volunteer_role(user=request.user) != Role.STAFF:
        raise PermissionDenied("Staff only.")  # the styled 403 page
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


class _RecordAfterOutcome:
    """A throttle whose allow_request() only checks; record() counts, once the outcome is known."""

    def throttle_success(self) -> bool:
        return True

    def record(self) -> None:
        self.history.insert(0, self.now)
        self.cache.set(self.key, self.history, self.duration)


class SignupSuccessThrottle(_RecordAfterOutcome, SignupRateThrottle):
    """Accounts made per address (scope ``signup``: SIGNUP_RATE, 5/hour); failed forms do not count."""


class SignupFailureThrottle(_RecordAfterOutcome, SignupRateThrottle):
    """Rejected sign-up forms per address: room for typos, not for guessing."""

    scope = "signup_failed"
    rate = "30/hour"


def too_many_requests(request: HttpRequest, wait_s: float) -> HttpResponse:
    """The styled 429 page: how long to wait, in minutes, and a way to log in instead."""
    minutes = max(1, math.ceil(wait_s / 60))
    response = render(request, "429.html", {"wait_minutes": minutes}, status=429)
    response["Retry-After"] = str(int(math.ceil(wait_s)))
    return response


def signup(request: HttpRequest) -> HttpResponse:
    if request.method == "POST":
        successes, failures = SignupSuccessThrottle(), SignupFailureThrottle()
        for throttle in (successes, failures):
            if not throttle.allow_request(request, None):
                return too_many_requests(request, throttle.wait() or 60)
    form = UserCreationForm(request.POST or None)
    if request.method == "POST":
        if form.is_valid():
            user = form.save()
            successes.record()
            profile_get_or_create(user=user)
            login(request, user)
            return redirect("labeling:tutorial")
        failures.record()
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
