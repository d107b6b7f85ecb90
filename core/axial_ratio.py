"""The axial-ratio baseline: a galaxy's inclination from the shape of its outer isophote.

The classical method that IncliNET must beat. The region above an outer isophote is found on a
lightly smoothed image; the connected component containing the centre (holes such as dust lanes
filled) is measured with *uniform-weight* second moments, which for a filled ellipse give exactly
b/a. Light-weighted or adaptive moments are dominated by the bulge and fail badly (about 20° RMS),
so they are not used. The axial ratio q becomes an inclination with Hubble's oblate-disk formula
(``core.geometry.inclination_from_axial_ratio``, Holmberg's q0 = 0.2).

Works on uint8 grey images (asinh stretched, as the cut-outs are) or on linear images; a colour
image is averaged over its channels. Django-free. Serving reports this inclination next to the
ensemble's; ``training.ml.axial_ratio`` calibrates the alarm margin and measures the baseline's RMS.
"""
from __future__ import annotations

import math

import numpy as np

from core.geometry import HOLMBERG_Q0, inclination_from_axial_ratio

__all__ = ["DEFAULT_ISOPHOTE_FRACTION", "isophote_mask", "axial_ratio", "axial_ratio_inclination"]

# The isophote sits this fraction of the way from the sky to the central level. On the asinh
# stretched cut-outs (D25 near the noise) 0.2 lands close to the D25 isophote.
DEFAULT_ISOPHOTE_FRACTION = 0.2


def _border(a: np.ndarray, width: int) -> np.ndarray:
    return np.concatenate([a[:width].ravel(), a[-width:].ravel(), a[width:-width, :width].ravel(),
                           a[width:-width, -width:].ravel()])


def isophote_mask(image: np.ndarray, *, isophote_fraction: float = DEFAULT_ISOPHOTE_FRACTION, smooth: float = 1.0,
                  min_sigma: float = 3.0) -> np.ndarray:
    """Boolean mask of the connected region above the outer isophote that contains the centre.

    The isophote is ``isophote_fraction`` of the way from the sky (median of the border) to the
    central level (the brightest smoothed pixel near the centre), and at least ``min_sigma`` sky
    standard deviations (of the smoothed image) above the sky. The region is found on the image
    smoothed by a Gaussian of ``smooth`` pixels and trimmed to the unsmoothed pixels above the
    level; holes are filled.
    """
    from scipy import ndimage

    raw = np.asarray(image, dtype=np.float64)
    if raw.ndim == 3:
        raw = raw.mean(axis=2)
    grey = ndimage.gaussian_filter(raw, smooth) if smooth > 0 else raw
    h, w = grey.shape
    edge = _border(grey, max(2, min(h, w) // 20))
    sky = float(np.median(edge))
    sigma = 1.4826 * float(np.median(np.abs(edge - sky)))
    cy, cx = h // 2, w // 2
    box = max(2, min(h, w) // 16)
    centre_level = float(grey[cy - box: cy + box + 1, cx - box: cx + box + 1].max())
    level = sky + max(isophote_fraction * (centre_level - sky), min_sigma * sigma)
    above = grey > level
    labels, n = ndimage.label(above)
    if n == 0:
        return np.zeros_like(above)
    # The component(s) touching the central box (a dust lane can split the centre).
    central = np.unique(labels[cy - box: cy + box + 1, cx - box: cx + box + 1])
    central = central[central > 0]
    if central.size == 0:
        return np.zeros_like(above)
    mask = np.isin(labels, central)
    if central.size > 1:
        mask = ndimage.binary_closing(mask, structure=np.ones((3, 3)), iterations=2) | mask
    # Smoothing finds the region; the unsmoothed pixels draw its edge (smoothing would grow both
    # axes by about one kernel width and round thin disks). Holes (noise, dust lanes) are filled.
    return ndimage.binary_fill_holes(ndimage.binary_fill_holes(mask) & (raw > level))


def axial_ratio(image: np.ndarray, *, isophote_fraction: float = DEFAULT_ISOPHOTE_FRACTION, smooth: float = 1.0) -> float:
    """b/a from uniform-weight second moments of the outer isophote's region (nan if none)."""
    mask = isophote_mask(image, isophote_fraction=isophote_fraction, smooth=smooth)
    ys, xs = np.nonzero(mask)
    if xs.size < 6:
        return float("nan")
    cov = np.cov(np.vstack([xs, ys]).astype(np.float64))
    minor, major = np.linalg.eigvalsh(cov)
    if major <= 0:
        return float("nan")
    return float(math.sqrt(max(minor, 0.0) / major))


def axial_ratio_inclination(image: np.ndarray, *, q0: float = HOLMBERG_Q0,
                            isophote_fraction: float = DEFAULT_ISOPHOTE_FRACTION) -> float:
    """The baseline in one call: inclination (degrees) from the image's outer isophote."""
    return inclination_from_axial_ratio(axial_ratio(image, isophote_fraction=isophote_fraction), q0)
