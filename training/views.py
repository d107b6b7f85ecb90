"""Staff pages of retraining: the Retrain form, live runs, evaluation plots, candidate vs active, promote
and roll back. Everything here answers 403 to anyone who is not staff (volunteers included); the JSON endpoints
the pages poll are in ``training.api``."""
from __future__ import annotations

import functools
from collections.abc import Callable
from typing import Any

from django.http import FileResponse, Http404, HttpRequest, HttpResponse, HttpResponseForbidden
from django.shortcuts import get_object_or_404, redirect, render
from django.urls import reverse
from django.views.decorators.http import require_GET, require_POST

from . import selectors
from .api import STAFF_ONLY
from .forms import RetrainForm
from .jobs import RetrainError, retrain_job_create
from .models import Ensemble, TrainingRun
from .registry import RegistryError, ensemble_activate, ensemble_rollback_and_rescore
from .store import ensemble_folder


def staff_only(view: Callable[..., HttpResponse]) -> Callable[..., HttpResponse]:
    """403 (not a login redirect) for anyone but active staff: the pages must not exist for volunteers."""

    @functools.wraps(view)
    def wrapped(request: HttpRequest, *args: Any, **kwargs: Any) -> HttpResponse:
        user = request.user
        if not (user.is_authenticated and user.is_active and user.is_staff):
            return HttpResponseForbidden(STAFF_ONLY)
        return view(request, *args, **kwargs)

    return wrapped


def _ensemble_plots(ensemble: Ensemble) -> list[str]:
    folder = ensemble_folder(ensemble.folder) / "plots"
    return sorted(p.name for p in folder.glob("*.png")) if folder.is_dir() else []


@staff_only
def dashboard(request: HttpRequest) -> HttpResponse:
    form = RetrainForm(request.POST or None)
    status = 200
    if request.method == "POST":
        if form.is_valid():
            try:
                job = retrain_job_create(user=request.user, **form.service_kwargs())
            except RetrainError as exc:
                form.add_error(None, str(exc))
            else:
                return redirect(f"{reverse('training:dashboard')}?job={job.pk}")
        status = 400
    return render(request, "training/dashboard.html", {
        "form": form, "jobs": selectors.job_list(), "snapshots": selectors.snapshot_list(limit=10),
        "active": selectors.ensemble_active(),
    }, status=status)


@staff_only
def run_detail(request: HttpRequest, run_id: int) -> HttpResponse:
    run = get_object_or_404(TrainingRun.objects.select_related("job", "snapshot"), pk=run_id)
    member = run.modelversion_set.select_related("ensemble").first()
    plot = None
    if member and f"history_{member.name}.png" in _ensemble_plots(member.ensemble):
        plot = reverse("training:ensemble-plot", args=[member.ensemble.pk, f"history_{member.name}.png"])
    return render(request, "training/run.html", {"run": run, "member": member, "plot": plot})


@staff_only
def ensembles(request: HttpRequest) -> HttpResponse:
    items = selectors.ensemble_list()
    for item in items:  # the independent check beside each Promote button
        item.independent = selectors.independent_row(ensemble=item, role=item.status)
    return render(request, "training/ensembles.html", {
        "ensembles": items, "active": next((e for e in items if e.status == Ensemble.Status.ACTIVE), None),
        "message": request.GET.get("message", "")})


@staff_only
def ensemble_detail(request: HttpRequest, ensemble_id: int) -> HttpResponse:
    ensemble = get_object_or_404(Ensemble.objects.select_related("snapshot"), pk=ensemble_id)
    metrics = ensemble.metrics or {}
    comparison = metrics.get("comparison", {})
    rows = []
    for key in ("candidate", "active"):
        entry = comparison.get(key)
        if isinstance(entry, dict) and "regression" in entry:
            overall = entry["regression"].get("all", {})
            rows.append({"role": key, "version": entry["version"], "rms": overall.get("rms"),
                         "mae": overall.get("mae"), "bias": overall.get("bias"), "n": overall.get("n"),
                         "reject": entry.get("reject", {})})
    return render(request, "training/ensemble.html", {
        "ensemble": ensemble, "plots": _ensemble_plots(ensemble), "comparison": rows,
        "comparison_error": comparison.get("error"), "test": metrics.get("test", {}),
        "reject": metrics.get("reject", {}), "members": ensemble.members.select_related("run").order_by("name"),
        "independent": selectors.independent_comparison(ensemble=ensemble),
    })


@staff_only
@require_GET
def ensemble_plot(request: HttpRequest, ensemble_id: int, name: str) -> FileResponse:
    ensemble = get_object_or_404(Ensemble, pk=ensemble_id)
    if name not in _ensemble_plots(ensemble):  # only files that are there: no path tricks
        raise Http404("No such plot.")
    return FileResponse((ensemble_folder(ensemble.folder) / "plots" / name).open("rb"),
                        content_type="image/png")


@staff_only
@require_POST
def ensemble_promote_view(request: HttpRequest, ensemble_id: int) -> HttpResponse:
    ensemble = get_object_or_404(Ensemble, pk=ensemble_id)
    if ensemble.status == Ensemble.Status.ACTIVE:
        return redirect(f"{reverse('training:ensembles')}?message={ensemble.version}+is+already+active")
    ensemble_activate(ensemble=ensemble)
    return redirect(f"{reverse('training:ensembles')}?message=Promoted+{ensemble.version}")


@staff_only
@require_POST
def ensemble_rollback_view(request: HttpRequest) -> HttpResponse:
    try:
        restored = ensemble_rollback_and_rescore()
    except RegistryError as exc:
        items = selectors.ensemble_list()
        for item in items:
            item.independent = selectors.independent_row(ensemble=item, role=item.status)
        return render(request, "training/ensembles.html", {"ensembles": items,
                                                           "active": selectors.ensemble_active(),
                                                           "message": str(exc)}, status=409)
    return redirect(f"{reverse('training:ensembles')}?message=Rolled+back+to+{restored.version}")
