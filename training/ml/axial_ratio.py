"""The axial-ratio baseline: inclination from the outer isophote's shape, the classical method.

Second moments of the connected region above an outer isophote, with uniform weights (light-weighted
moments are dominated by the bulge), give the axial ratio q; then cos²i = (q² − q0²)/(1 − q0²) with
Holmberg's q0 = 0.2.
"""
from __future__ import annotations

import math

import numpy as np

HOLMBERG_Q0 = 0.2


def axial_ratio(image: np.ndarray, *, isophote_fraction: float = 0.25) -> float:
    """b/a of the region containing the centre above an outer isophote (``isophote_fraction`` of the
    range between the sky level and the central brightness)."""
    from scipy import ndimage

    grey = np.asarray(image, dtype=np.float64)
    if grey.ndim == 3:
        grey = grey.mean(axis=2)
    grey = ndimage.gaussian_filter(grey, 1.0)  # suppress pixel noise at the isophote
    sky = float(np.median(np.concatenate([grey[:4].ravel(), grey[-4:].ravel(), grey[:, :4].ravel(), grey[:, -4:].ravel()])))
    h, w = grey.shape
    centre_level = float(grey[h // 2 - 2: h // 2 + 3, w // 2 - 2: w // 2 + 3].mean())
    level = sky + isophote_fraction * (centre_level - sky)
    labels, _ = ndimage.label(grey > level)
    label = labels[h // 2, w // 2]
    if label == 0:
        return float("nan")
    ys, xs = np.nonzero(labels == label)
    if xs.size < 5:
        return float("nan")
    cov = np.cov(np.vstack([xs, ys]).astype(float))
    minor, major = np.sort(np.linalg.eigvalsh(cov))
    return float(math.sqrt(max(minor, 0.0) / major)) if major > 0 else float("nan")


def inclination_from_axial_ratio(q: float, *, q0: float = HOLMBERG_Q0) -> float:
    """Degrees from face-on; q at or below q0 is edge-on (90°)."""
    if not np.isfinite(q):
        return float("nan")
    cos2 = (q**2 - q0**2) / (1 - q0**2)
    return float(math.degrees(math.acos(math.sqrt(min(max(cos2, 0.0), 1.0)))))


def axial_ratio_inclination(image: np.ndarray, *, q0: float = HOLMBERG_Q0) -> float:
    return inclination_from_axial_ratio(axial_ratio(image), q0=q0)
