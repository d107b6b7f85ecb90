"""Small, Django-free numerics: weighted median, random rounding, robust line fits."""
from __future__ import annotations

import math
import random
from collections.abc import Sequence


def weighted_median(values: Sequence[float], weights: Sequence[float] | None = None) -> float | None:
    """The value where the cumulative weight first reaches half; the mean of the two middles on an exact tie.

    With equal weights this is ``numpy.median``, as the original used (it replicated each value w times).
    """
    if not values:
        return None
    if weights is None:
        weights = [1.0] * len(values)
    pairs = sorted((v, w) for v, w in zip(values, weights, strict=True) if w > 0)
    if not pairs:
        return None
    total = sum(w for _, w in pairs)
    half = total / 2.0
    cumulative = 0.0
    for index, (value, weight) in enumerate(pairs):
        cumulative += weight
        if math.isclose(cumulative, half, rel_tol=1e-12, abs_tol=1e-12) and index + 1 < len(pairs):
            return (value + pairs[index + 1][0]) / 2.0
        if cumulative > half:
            return value
    return pairs[-1][0]


def scatter(values: Sequence[float]) -> float | None:
    """Sample standard deviation (the catalogue's ``inc_e``); None for fewer than two values."""
    if len(values) < 2:
        return None
    mean = sum(values) / len(values)
    return math.sqrt(sum((v - mean) ** 2 for v in values) / (len(values) - 1))


def round_random(value: float, rng: random.Random) -> int:
    """Half-integers go up or down at random, as the published catalogue did; others round normally."""
    floor = math.floor(value)
    if math.isclose(value - floor, 0.5, abs_tol=1e-9):
        return int(floor + (1 if rng.random() < 0.5 else 0))
    return int(round(value))


def fit_line(x: Sequence[float], y: Sequence[float], w: Sequence[float]) -> tuple[float, float] | None:
    """Weighted least squares ``y = slope·x + intercept``; None when x has no spread."""
    sw = sum(w)
    if sw <= 0 or len(x) < 2:
        return None
    mx = sum(wi * xi for xi, wi in zip(x, w, strict=True)) / sw
    my = sum(wi * yi for yi, wi in zip(y, w, strict=True)) / sw
    sxx = sum(wi * (xi - mx) ** 2 for xi, wi in zip(x, w, strict=True))
    if sxx <= 1e-9:
        return None
    sxy = sum(wi * (xi - mx) * (yi - my) for xi, yi, wi in zip(x, y, w, strict=True))
    slope = sxy / sxx
    return slope, my - slope * mx


def fit_line_se(x: Sequence[float], y: Sequence[float],
                w: Sequence[float]) -> tuple[float, float, float, float, float] | None:
    """Like ``fit_line`` but returns ``(slope, slope variance, x̄, ȳ, intercept)`` (weighted means)."""
    line = fit_line(x, y, w)
    if line is None or len(x) < 3:
        return None
    slope, intercept = line
    sw = sum(w)
    mx = sum(wi * xi for xi, wi in zip(x, w, strict=True)) / sw
    my = sum(wi * yi for yi, wi in zip(y, w, strict=True)) / sw
    sxx = sum(wi * (xi - mx) ** 2 for xi, wi in zip(x, w, strict=True))
    resid = sum(wi * (yi - slope * xi - intercept) ** 2 for xi, yi, wi in zip(x, y, w, strict=True))
    sigma2 = resid / sw * len(x) / (len(x) - 2)  # per unit weight
    return slope, sigma2 / sxx * (sw / len(x)), mx, my, intercept


def rms(values: Sequence[float]) -> float | None:
    return math.sqrt(sum(v * v for v in values) / len(values)) if values else None
