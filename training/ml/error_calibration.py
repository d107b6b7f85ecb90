"""The calibrated 1-sigma error bar of a served inclination (issue 15): its model, fit and storage.

The served error is ``inflation · sqrt(a² + (b·stdev)² + (c·gap)²)`` degrees, where ``stdev`` is the
ensemble's spread (the response's ``inclinations.summary.stdev``) and ``gap`` the axial cross-check
``|median − axial_ratio_inclination|`` (``gap_missing_deg``, the validation median gap, when the image has
no measurable isophote). ``a`` is the floor every galaxy carries; ``b`` and ``c`` say how much the two
warnings add.

Fit (``fit_error_model``): maximum likelihood of the validation residuals under a normal law with that
sigma, then one factor so that exactly 68.27 % of the validation galaxies lie within ±sigma (the
residuals have heavier tails than a normal law, so the likelihood alone does not give the coverage).
``inflation`` is a second factor, chosen on a *held-out* slice of the training family (``choose_inflation``),
e.g. with random orientations, so the bar also covers what the validation set did not vary; never on the
independent family, which only measures the result.

Stored as JSON (``save``/``load``): in the ensemble's folder (``error_calibration.json``) or, for the
ensemble shipped in ``models/`` (whose archive is checksummed), ``models/error_calibration/<version>.json``.
Django-free.
"""
from __future__ import annotations

import json
import math
from dataclasses import asdict, dataclass, field
from pathlib import Path
from typing import Any

import numpy as np

CALIBRATION_FILE = "error_calibration.json"
ONE_SIGMA_COVERAGE = 0.6827
# Used when an ensemble carries no calibration: deliberately wide (the shipped robust ensemble's
# independent-family RMS is 4.5°), and reported as uncalibrated.
UNCALIBRATED = {"a": 4.5, "b": 1.0, "c": 0.5, "gap_missing_deg": 5.0}


@dataclass(frozen=True)
class ErrorModel:
    """``sigma(stdev, gap)`` in degrees; see the module docstring."""

    a: float
    b: float
    c: float
    gap_missing_deg: float
    inflation: float = 1.0
    calibrated: bool = True
    version: str = ""
    fit: dict[str, Any] = field(default_factory=dict)  # how it was fitted, and the coverage it reached

    def sigma(self, stdev: float | None, gap: float | None) -> float:
        s = float(stdev) if stdev is not None and math.isfinite(stdev) else 0.0
        g = float(gap) if gap is not None and math.isfinite(gap) else self.gap_missing_deg
        return float(self.inflation * math.sqrt(self.a**2 + (self.b * s) ** 2 + (self.c * g) ** 2))

    def sigmas(self, stdev: np.ndarray, gap: np.ndarray) -> np.ndarray:
        return np.array([self.sigma(s, g) for s, g in zip(np.asarray(stdev, float), np.asarray(gap, float))])

    def to_dict(self) -> dict[str, Any]:
        return asdict(self)

    @classmethod
    def from_dict(cls, data: dict[str, Any]) -> ErrorModel:
        known = {k: data[k] for k in ("a", "b", "c", "gap_missing_deg", "inflation", "calibrated", "version", "fit")
                 if k in data}
        return cls(**known)


def uncalibrated(version: str = "") -> ErrorModel:
    return ErrorModel(**UNCALIBRATED, calibrated=False, version=version)


def coverage(residual: np.ndarray, sigma: np.ndarray) -> float:
    """Share of finite residuals with |residual| ≤ sigma."""
    residual, sigma = np.asarray(residual, float), np.asarray(sigma, float)
    ok = np.isfinite(residual) & np.isfinite(sigma)
    return float(np.mean(np.abs(residual[ok]) <= sigma[ok])) if ok.any() else float("nan")


def _scale_for_coverage(residual: np.ndarray, sigma: np.ndarray, target: float = ONE_SIGMA_COVERAGE) -> float:
    """The factor k for which |residual| ≤ k·sigma holds for ``target`` of the galaxies."""
    ratio = np.abs(residual) / np.maximum(sigma, 1e-6)
    return float(np.quantile(ratio[np.isfinite(ratio)], target))


def fit_error_model(residual: np.ndarray, stdev: np.ndarray, gap: np.ndarray, *, version: str = "",
                    target: float = ONE_SIGMA_COVERAGE) -> ErrorModel:
    """Fit a, b, c on validation residuals (prediction − truth), the ensemble spreads and the axial gaps."""
    from scipy.optimize import minimize

    residual, stdev, gap = (np.asarray(x, float) for x in (residual, stdev, gap))
    ok = np.isfinite(residual) & np.isfinite(stdev)
    residual, stdev, gap = residual[ok], stdev[ok], gap[ok]
    measured = np.isfinite(gap)
    gap_missing = float(np.median(gap[measured])) if measured.any() else UNCALIBRATED["gap_missing_deg"]
    gap = np.where(measured, gap, gap_missing)

    def negative_log_likelihood(log_params: np.ndarray) -> float:
        a, b, c = np.exp(log_params)
        var = a * a + (b * stdev) ** 2 + (c * gap) ** 2
        return float(np.sum(0.5 * np.log(var) + 0.5 * residual**2 / var))

    start = np.log([max(float(np.std(residual)), 0.5), 0.5, 0.3])
    result = minimize(negative_log_likelihood, start, method="Nelder-Mead",
                      options={"xatol": 1e-4, "fatol": 1e-6, "maxiter": 4000})
    a, b, c = (float(v) for v in np.exp(result.x))
    raw = ErrorModel(a=a, b=b, c=c, gap_missing_deg=gap_missing, version=version)
    k = _scale_for_coverage(residual, raw.sigmas(stdev, gap), target)
    model = ErrorModel(a=a * k, b=b * k, c=c * k, gap_missing_deg=gap_missing, version=version)
    return ErrorModel(**{**model.to_dict(), "fit": {
        "n": int(residual.size), "rms": float(np.sqrt(np.mean(residual**2))), "scale_for_coverage": k,
        "coverage": coverage(residual, model.sigmas(stdev, gap)), "target": target,
        "median_sigma": float(np.median(model.sigmas(stdev, gap))),
    }})


def choose_inflation(model: ErrorModel, residual: np.ndarray, stdev: np.ndarray, gap: np.ndarray, *,
                     target: float = ONE_SIGMA_COVERAGE, what: str = "") -> ErrorModel:
    """The same model with ``inflation`` set so that a held-out slice reaches ``target`` coverage (never
    below 1: a slice that happens to be easier does not shrink the validation bar)."""
    residual, stdev, gap = (np.asarray(x, float) for x in (residual, stdev, gap))
    base = ErrorModel(**{**model.to_dict(), "inflation": 1.0})
    before = coverage(residual, base.sigmas(stdev, gap))
    factor = max(1.0, _scale_for_coverage(residual, base.sigmas(stdev, gap), target))
    inflated = ErrorModel(**{**base.to_dict(), "inflation": factor})
    fit = {**model.fit, "held_out": {"what": what, "n": int(np.isfinite(residual).sum()), "coverage_before": before,
                                     "coverage_after": coverage(residual, inflated.sigmas(stdev, gap))}}
    return ErrorModel(**{**inflated.to_dict(), "fit": fit})


def save(model: ErrorModel, path: Path) -> None:
    path.parent.mkdir(parents=True, exist_ok=True)
    path.write_text(json.dumps(model.to_dict(), indent=1) + "\n")


def load(path: Path) -> ErrorModel | None:
    """The model stored at ``path``; None when there is none or it cannot be read."""
    try:
        return ErrorModel.from_dict(json.loads(Path(path).read_text()))
    except (OSError, ValueError, TypeError, KeyError):
        return None
