"""A galaxy's centre, position angle and axis ratio measured from its image, so any photograph can be aligned.

The networks have only seen galaxies whose major axis lies within ±25° of horizontal, so every image
without a trusted catalogue position angle is turned by the angle measured here before it is evaluated.

Steps (``measure_orientation``), on a grey copy at most ``WORK_SIZE`` pixels on its long side:

1. **Sky**: sigma-clipped median and standard deviation of a border strip (the galaxy sits in the
   middle of a 1.5 × D25 field), on a lightly smoothed image.
2. **Segmentation** (photutils ``detect_sources``) at 3σ above the sky. The galaxy is the brightest
   segment reaching the central box (else the brightest segment near the centre); every other segment
   (field stars, neighbours) is ignored.
3. **Stars on the disk**: the galaxy's segment is deblended (``deblend_sources``). The child holding the
   galaxy's peak and every large child (a dust lane cuts an edge-on disk into halves) are galaxy; small
   children are compact sources superposed on the disk (stars, or knots in the arms) and are masked.
4. **Outer isophote**: the region of the unmasked galaxy above ``isophote_fraction`` of the way from the
   sky to the peak (and at least 3σ), with holes (masked stars, dust lanes) filled.
5. **Moments**: uniform-weight second moments of that region give the centre (its centroid), the major
   axis angle and b/a. A filled ellipse gives exactly its b/a and angle this way; light-weighted moments
   would be dominated by the bulge, which is rounder than the disk (see ``axial_ratio``).

Conventions. Pixel coordinates are ``x`` to the right and ``y`` down, pixel ``(0, 0)``'s centre at
(0, 0). ``pa_image_deg`` is the major axis' angle **counter-clockwise from the +x axis as seen on screen**
(row 0 at the top), in [0°, 180°): the same convention as the generator's ``pa``. Turning an image
clockwise by ``pa_image_deg`` (``catalog.imaging.prepare_model_input(angle_deg=...)``) lays the major axis
horizontal. ``pa_astro_deg`` is the astronomical position angle, from the image's up direction towards its
left (north through east when north is up and east left, as in SDSS and Legacy Survey cut-outs):
``pa_astro = pa_image − 90 (mod 180)``, which is why catalogue targets are turned by PA + 90.

``ok`` is False when no galaxy is found (blank image, pure noise) or the galaxy is so round
(q > ``ROUND_Q``) that its position angle is undefined; ``reason`` says which. Django-free.
"""
from __future__ import annotations

import math
import warnings
from dataclasses import dataclass
from typing import Any

import numpy as np

__all__ = ["WORK_SIZE", "ROUND_Q", "Orientation", "measure_orientation", "region_moments", "astro_from_image"]

WORK_SIZE = 256  # measure on at most this many pixels per side: fast, and plenty for the outer isophote
ROUND_Q = 0.9  # rounder than this, the major axis is lost in the noise and the spiral arms
ISOPHOTE_FRACTION = 0.15  # lower than axial_ratio's 0.2: the PA is best defined by the outer disk
STAR_CHILD_FRACTION = 0.04  # deblended children smaller than this share of the galaxy are masked
MIN_REGION_PIXELS = 30
MIN_PEAK_SIGMA = 8.0  # a galaxy's smoothed peak above the sky, in sky sigmas: noise blobs stay below


@dataclass(frozen=True)
class Orientation:
    """What ``measure_orientation`` found. Angles in degrees; coordinates in the input image's pixels."""

    ok: bool
    x: float  # centre, pixels from the left (the image centre when nothing was found)
    y: float  # centre, pixels from the top
    pa_image_deg: float | None  # counter-clockwise from +x on screen, [0, 180); None when not measurable
    q: float | None  # minor/major axis ratio of the outer isophote
    reason: str = ""  # why ``ok`` is False (empty when it is True)
    area_fraction: float = 0.0  # the isophote region's share of the image
    masked_sources: int = 0  # compact sources masked on the disk

    @property
    def pa_astro_deg(self) -> float | None:
        return None if self.pa_image_deg is None else astro_from_image(self.pa_image_deg)


def astro_from_image(pa_image_deg: float) -> float:
    """Astronomical PA (up through left, [0, 180)) from the on-screen angle counter-clockwise from +x."""
    return float((pa_image_deg - 90.0) % 180.0)


def grey_of(image: np.ndarray) -> np.ndarray:
    """A float64 grey image (RGB channels averaged, NaN as 0) from a grey or RGB(A) array."""
    array = np.asarray(image, dtype=np.float64)
    if array.ndim == 3:
        array = array[:, :, :3].mean(axis=2)
    if array.ndim != 2:
        raise ValueError(f"expected a grey or RGB image, got shape {np.shape(image)}")
    return np.nan_to_num(array)


def _shrink(grey: np.ndarray, work_size: int) -> tuple[np.ndarray, float]:
    """Area-average down so the long side is at most ``work_size``; returns the image and input px per work px."""
    h, w = grey.shape
    factor = max(h, w) / work_size
    if factor <= 1:
        return grey, 1.0
    from PIL import Image

    size = (max(1, round(w / factor)), max(1, round(h / factor)))
    small = np.asarray(Image.fromarray(grey.astype(np.float32), mode="F").resize(size, Image.Resampling.BOX),
                       dtype=np.float64)
    return small, w / size[0]


def _sky(smooth: np.ndarray) -> tuple[float, float]:
    from astropy.stats import sigma_clipped_stats

    h, w = smooth.shape
    width = max(2, min(h, w) // 10)
    border = np.concatenate([smooth[:width].ravel(), smooth[-width:].ravel(), smooth[width:-width, :width].ravel(),
                             smooth[width:-width, -width:].ravel()])
    _, median, std = sigma_clipped_stats(border, sigma=3.0, maxiters=10)
    # JPEG skies are often clipped to one level (std 0): keep a floor of half a grey level.
    return float(median), max(float(std), 0.5)


def region_moments(mask: np.ndarray) -> tuple[float, float, float, float] | None:
    """Uniform-weight moments of a boolean region: (x, y, pa_image_deg, q), or None if under 6 pixels."""
    ys, xs = np.nonzero(mask)
    if xs.size < 6:
        return None
    x0, y0 = float(xs.mean()), float(ys.mean())
    dx, dy = xs - x0, ys - y0
    cxx, cyy, cxy = float(np.mean(dx * dx)), float(np.mean(dy * dy)), float(np.mean(dx * dy))
    # Eigenvalues of [[cxx, cxy], [cxy, cyy]] and the major axis angle, with y pointing down.
    half_trace, diff = (cxx + cyy) / 2, math.hypot((cxx - cyy) / 2, cxy)
    major, minor = half_trace + diff, max(half_trace - diff, 0.0)
    if major <= 0:
        return None
    theta_down = 0.5 * math.atan2(2 * cxy, cxx - cyy)  # from +x towards +y (down)
    pa_image = math.degrees(-theta_down) % 180.0  # counter-clockwise on screen
    return x0, y0, pa_image, math.sqrt(minor / major)


def _not_found(shape: tuple[int, ...], reason: str) -> Orientation:
    h, w = shape[:2]
    return Orientation(ok=False, x=(w - 1) / 2, y=(h - 1) / 2, pa_image_deg=None, q=None, reason=reason)


def measure_orientation(image: np.ndarray, *, isophote_fraction: float = ISOPHOTE_FRACTION,
                        work_size: int = WORK_SIZE) -> Orientation:
    """Centre, position angle and axis ratio of the galaxy nearest the centre of ``image``.

    ``image``: uint8 or float, grey (H, W) or RGB (H, W, 3), white-on-black (``catalog.imaging`` turns
    black-on-white images around before calling this). Never raises on odd content: a blank frame, pure
    noise or a lone star give ``ok=False`` and a reason.
    """
    from photutils.segmentation import detect_sources
    from photutils.utils.exceptions import NoDetectionsWarning
    from scipy import ndimage

    array = np.asarray(image)
    if array.ndim < 2 or min(array.shape[:2]) < 8:
        return _not_found(array.shape if array.ndim >= 2 else (1, 1), "the image is too small to measure")
    full_shape = array.shape[:2]
    grey = _work_grey(array, work_size)
    h, w = grey.shape
    factor = full_shape[1] / w  # input pixels per work pixel
    smooth = ndimage.gaussian_filter(grey, 1.0)
    sky, sigma = _sky(smooth)
    data = smooth - sky
    npixels = max(5, (h * w) // 4000)
    with warnings.catch_warnings():
        warnings.simplefilter("ignore", NoDetectionsWarning)  # an empty frame is answered below, not warned about
        segm = detect_sources(data, 3.0 * sigma, n_pixels=npixels)
    if segm is None:
        return _not_found(full_shape, "no source stands out from the sky")
    galaxy = _galaxy_label(segm, data)
    if galaxy is None:
        return _not_found(full_shape, "no galaxy near the centre of the image")
    galaxy_mask = segm.data == galaxy
    peak_index = np.unravel_index(np.argmax(np.where(galaxy_mask, data, -np.inf)), data.shape)
    peak = float(data[peak_index])
    if peak < MIN_PEAK_SIGMA * sigma:
        return _not_found(full_shape, "no source stands out from the sky")
    star_mask, masked = _compact_sources(data, galaxy_mask, peak_index, npixels)
    region = _isophote_region(data, galaxy_mask, star_mask, peak_index,
                              level=max(isophote_fraction * peak, 3.0 * sigma))
    if region is None:
        return _not_found(full_shape, "the galaxy is too faint to measure")
    moments = region_moments(region)
    if moments is None or region.sum() < MIN_REGION_PIXELS:
        return _not_found(full_shape, "the galaxy is too small or too faint to measure")
    x_work, y_work, pa_image, q = moments
    # Back to input pixels (pixel centres: work pixel j covers input [j·f, (j+1)·f)).
    x = (x_work + 0.5) * factor - 0.5
    y = (y_work + 0.5) * (full_shape[0] / h) - 0.5
    area_fraction = float(region.sum()) / (h * w)
    if q > ROUND_Q:
        return Orientation(ok=False, x=x, y=y, pa_image_deg=None, q=q, area_fraction=area_fraction,
                           masked_sources=masked, reason=f"the galaxy is nearly round (b/a = {q:.2f})")
    return Orientation(ok=True, x=x, y=y, pa_image_deg=pa_image, q=q, area_fraction=area_fraction,
                       masked_sources=masked)


def _work_grey(array: np.ndarray, work_size: int) -> np.ndarray:
    """A grey float copy at most ``work_size`` pixels on its long side."""
    full_shape = array.shape[:2]
    if array.dtype == np.uint8 and array.ndim == 3 and max(full_shape) > work_size:
        # Shrink the 8-bit image first: a 25-megapixel upload never becomes a float64 copy.
        from PIL import Image

        factor0 = max(full_shape) / work_size
        size = (max(1, round(full_shape[1] / factor0)), max(1, round(full_shape[0] / factor0)))
        array = np.asarray(Image.fromarray(np.ascontiguousarray(array[:, :, :3])).resize(size, Image.Resampling.BOX))
    return _shrink(grey_of(array), work_size)[0]


def _galaxy_label(segm: Any, data: np.ndarray) -> int | None:
    """The galaxy's segment: the brightest reaching the central box, else the brightest whose centroid is within
    a third of the field; None when there is none."""
    from scipy import ndimage

    labels = segm.data
    h, w = data.shape
    box = max(2, min(h, w) // 6)
    cy, cx = h // 2, w // 2
    central = np.unique(labels[cy - box: cy + box + 1, cx - box: cx + box + 1])
    central = central[central > 0]
    flux = ndimage.sum_labels(data, labels, index=segm.labels)
    flux_by_label = dict(zip(segm.labels.tolist(), flux.tolist(), strict=True))
    if central.size:
        return max(central.tolist(), key=lambda label: flux_by_label[label])
    centres = ndimage.center_of_mass(np.ones_like(labels), labels, segm.labels)
    near = [label for label, (yy, xx) in zip(segm.labels.tolist(), centres, strict=True)
            if math.hypot(xx - cx, yy - cy) < min(h, w) / 3]
    return max(near, key=lambda label: flux_by_label[label]) if near else None


def _compact_sources(data: np.ndarray, galaxy_mask: np.ndarray, peak_index: tuple[Any, ...],
                     npixels: int) -> tuple[np.ndarray, int]:
    """Compact sources on the disk: the galaxy's segment deblended and its small children masked (dilated by
    one pixel); returns the mask and how many sources it holds."""
    from photutils.segmentation import SegmentationImage, deblend_sources
    from scipy import ndimage

    galaxy_area = int(galaxy_mask.sum())
    star_mask = np.zeros_like(galaxy_mask)
    masked = 0
    try:
        children = deblend_sources(data, SegmentationImage(np.where(galaxy_mask, 1, 0).astype(np.int32)),
                                   n_pixels=npixels, n_levels=32, contrast=0.001, progress_bar=False).data
    except Exception:  # noqa: BLE001 - photutils raises on degenerate segments; then nothing is masked
        children = np.where(galaxy_mask, 1, 0)
    core = children[peak_index]
    for child in np.unique(children[galaxy_mask]):
        if child == 0 or child == core:
            continue
        piece = children == child
        if int(piece.sum()) < STAR_CHILD_FRACTION * galaxy_area:
            star_mask |= ndimage.binary_dilation(piece, iterations=1)
            masked += 1
    return star_mask, masked


def _isophote_region(data: np.ndarray, galaxy_mask: np.ndarray, star_mask: np.ndarray,
                     peak_index: tuple[Any, ...], *, level: float) -> np.ndarray | None:
    """The outer isophote: the unmasked galaxy above ``level``, the part holding the peak and every part at least
    a tenth of the largest (both halves of a dust lane), holes filled; None when nothing is above the level."""
    from scipy import ndimage

    above = ndimage.binary_fill_holes(galaxy_mask) & (data > level) & ~star_mask
    parts, n = ndimage.label(above)
    if n == 0:
        return None
    sizes = ndimage.sum_labels(np.ones_like(parts), parts, index=np.arange(1, n + 1))
    keep = {int(i + 1) for i, size in enumerate(sizes) if size >= 0.1 * sizes.max()}
    if parts[peak_index]:
        keep.add(int(parts[peak_index]))
    region = np.isin(parts, sorted(keep))
    if len(keep) > 1:
        region |= ndimage.binary_closing(region, structure=np.ones((3, 3)), iterations=2)
    return ndimage.binary_fill_holes(region)
