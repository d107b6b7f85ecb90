"""Volunteer calibration against the database: read the counted votes and the standards, fit each volunteer's
``i_adj = a·i + b`` (the numbers are in ``calibration_math``, Django-free), write ``VolunteerCalibration`` in
bulk and refresh every galaxy's consensus with the new coefficients.
"""
from __future__ import annotations

from dataclasses import dataclass, field

from django.utils import timezone

from .calibration_math import CalibrationFit, FitSettings, VolunteerFit, calibrate, votes_from_rows
from .conf import zoo_setting
from .consensus import consensus_recompute_all
from .models import Measurement, Standard, VolunteerCalibration
from .transactions import write_transaction


@dataclass
class CalibrationReport:
    iterations: int = 0
    converged: bool = False
    calibrated: int = 0
    identity: int = 0
    coefficients: dict[int, tuple[float, float, float | None, int]] = field(default_factory=dict)


def calibration_fit(*, max_iter: int | None = None, tol: float = 0.2) -> CalibrationReport:
    """Fit every volunteer's calibration, iterating against the consensus and the gold standards, store it and
    recompute the consensus. Stops when no volunteer's adjusted value moves by ``tol`` degrees at 50° or 85°
    (0.2°: below the votes' half-degree resolution), or after ``max_iter`` passes."""
    settings = FitSettings(max_iter=max_iter or zoo_setting("CALIBRATION_MAX_ITER"),
                           min_n=zoo_setting("CALIBRATION_MIN_N"), default_scatter=zoo_setting("DEFAULT_SCATTER"),
                           tol=tol)
    rows = (Measurement.objects.filter(counted=True, rejected=False, face_on=False, inclination_raw__isnull=False)
            .values_list("user_id", "galaxy_id", "inclination_raw", "is_gold"))
    gold_truth = dict(Standard.objects.values_list("galaxy_id", "inclination"))
    fit = calibrate(votes_from_rows(list(rows), gold_truth), settings)
    _store(fit.volunteers)
    consensus_recompute_all()
    return _report(fit)


def _store(volunteers: dict[int, VolunteerFit]) -> None:
    """Create or update each volunteer's ``VolunteerCalibration`` (two bulk statements)."""
    with write_transaction():
        existing = set(VolunteerCalibration.objects.filter(user_id__in=list(volunteers))
                       .values_list("user_id", flat=True))
        rows_new, rows_old = [], []
        for user_id, v in volunteers.items():
            obj = VolunteerCalibration(user_id=user_id, a=v.a, b=v.b, scatter=v.scatter, weight=v.weight, n=v.n,
                                       n_gold=v.n_gold, gold_rms=v.gold_rms, updated_at=timezone.now())
            (rows_old if user_id in existing else rows_new).append(obj)
        VolunteerCalibration.objects.bulk_create(rows_new)
        VolunteerCalibration.objects.bulk_update(rows_old, ["a", "b", "scatter", "weight", "n", "n_gold",
                                                            "gold_rms", "updated_at"])


def _report(fit: CalibrationFit) -> CalibrationReport:
    return CalibrationReport(
        iterations=fit.iterations, converged=fit.converged, calibrated=fit.calibrated, identity=fit.identity,
        coefficients={u: (v.a, v.b, v.scatter, v.n) for u, v in fit.volunteers.items()},
    )
