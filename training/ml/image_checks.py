"""Physical reject checks, measured on the aligned model input the networks see, each with its reason.

The reject networks generalise poorly off their training family (issue 12: on the independent family the
calibrated shipped ensemble catches 0 % of bright stars on the disk and 10 % of cut-offs). Most reasons for
rejecting an image are directly measurable, so serving adds one check per reason and combines them with
the networks (the largest likelihood wins; ``combine``):

- ``face_on``: the axial-ratio inclination (``core.axial_ratio``), the largest over three isophotes (a bulge
  rounds the inner ones of an inclined disk), and never above 45° less the axial method's alarm margin;
- ``cut_off``: the galaxy's segment meets the edge of the data (the frame, or the flat sky-coloured padding
  that alignment adds beyond the original image) while still bright there, relative to its core;
- ``bright_star``: a compact source on the disk, over a median along the major axis, relative to the disk's peak,
  searched inside the isophote's ellipse without appendages (a star beside the disk joined to it by its halo);
- ``companion``: rotational asymmetry of the galaxy's light (CAS ``A``) — an overlapping galaxy;
- ``low_snr``: the smoothed core above the sky, in sky sigmas (and no galaxy found at all).

Each feature becomes a likelihood with a logistic a·f(x) + b whose parameters were chosen on validation
galaxies of the *training* family (``synthetic.domain_randomised_config``) seen through the serving path's
alignment, capped so each check alone rejects at most ~0.5 % of clean validation galaxies:
``python -m training.ml.reject_calibration --image-checks`` derives :data:`CALIBRATION`. Django-free.
"""
from __future__ import annotations

import math
import warnings
from collections.abc import Mapping, Sequence
from dataclasses import asdict, dataclass
from typing import Any

import numpy as np

from .orientation import grey_of

__all__ = ["CHECK_REASONS", "CALIBRATION", "ImageFeatures", "CheckResult", "measure_features", "run_checks",
           "combine", "feature_value"]

CHECK_REASONS: tuple[str, ...] = ("face_on", "cut_off", "bright_star", "companion", "low_snr")
DEFAULT_FEATURES: dict[str, str] = {"face_on": "face_on_inclination", "cut_off": "cut_fraction",
                                    "bright_star": "star_contrast", "companion": "asymmetry", "low_snr": "noise_snr"}
EDGE_WIDTH = 2  # px of the frame in which a galaxy counts as touching it
OUTSIDE_REACH = 5  # px from flat padding or masked data in which it counts as touching that edge
STRAIGHT_RATIO = 0.1  # a contact with flat data whose rim is straighter than this is a data edge, not clipped sky
CORE_BOX = 4  # half-width (px) of the central box whose smoothed maximum is the galaxy's core level
# Isophotes (fractions of the way from the sky to the core) at which ``face_on`` measures the axial ratio: a bulge or
# a lens rounds the inner ones of an inclined disk, so a disk counts as face-on only if every one of them is round.
FACE_ON_ISOPHOTES: tuple[float, ...] = (0.1, 0.2, 0.3)
# The bright-star search's ellipse comes from the isophote opened by a disk of this radius (px): a star beside the
# disk that its halo joins to the isophote by a neck would otherwise stretch the ellipse out to itself.
STAR_ELLIPSE_OPENING = 3

# Derived by ``python -m training.ml.reject_calibration --image-checks --n 1000`` (seed 7311; docs/ml.md, "Physical
# reject checks"): per check, the feature, its transform and the logistic's a and b (a·f(x) + b ≥ 0 is ≥ 50 %;
# the clean validation galaxies' median gets 5 %).
# Validation: 1,000 galaxies of ``domain_randomised_config`` (half of them rejects), never trained on, each turned
# by a random angle and aligned as served. Each check alone rejects ≤ 0.44 % of the 459 clean ones (face-on 0 %: its
# 50 % point is held at 45° − the axial method's 9.5° margin, ``reject_calibration.IMAGE_CHECK_BOUNDS``); together
# 1.3 %, catching face-on 53 %, cut-off 53 %, low S/N 67 %, bright star 16 % (companion: no feature caught ≥ 5 %, so
# no check). Checked, not fitted, on the 40 real spirals with i_cat ≥ 45° of ../shared/real-photos: one rejected
# beyond the networks' (NGC 3556, whose source photograph cuts both tips of the disk). Rerun whenever a feature changes.
CALIBRATION: dict[str, dict[str, Any]] = {
    "face_on": {"feature": "face_on_inclination", "transform": "", "a": -0.090994, "b": 3.230301},
    "cut_off": {"feature": "cut_fraction", "transform": "log", "a": 0.387331, "b": 0.567446},
    "bright_star": {"feature": "star_contrast", "transform": "log", "a": 2.380013, "b": 1.253263},
    "low_snr": {"feature": "noise_snr", "transform": "log", "a": -1.471379, "b": 3.386925},
}


@dataclass(frozen=True)
class ImageFeatures:
    """What ``measure_features`` found on one model input. Brightness ratios are in display units above the
    sky, relative to the galaxy's core."""

    found: bool  # a galaxy segment reaches the centre
    sky: float
    sigma: float  # the smoothed sky's standard deviation (grey levels)
    core_snr: float  # smoothed core above sky / sigma
    axial_inclination: float  # degrees from the outer isophote (nan when none)
    face_on_inclination: float  # the largest axial-ratio inclination over ``FACE_ON_ISOPHOTES`` (nan when none)
    edge_brightness: float  # 90th percentile of the galaxy's pixels on the data edge / core (0: not touching)
    edge_pixels: int  # galaxy pixels on the data edge
    star_contrast: float  # brightest compact source inside the disk's ellipse, over its surroundings / the peak
    asymmetry: float  # Σ|I − I₁₈₀| / 2Σ|I| over the galaxy's region
    cut_fraction: float  # length of data edge the galaxy's bright region meets / that region's radius
    region_snr: float  # the outer isophote region's summed signal / (unsmoothed sky sigma × √pixels)
    edge_length: float  # data edge the galaxy meets above 8σ and a tenth of its peak, in its segment's radii
    noise_snr: float  # the core smoothed over 2 px above the sky / the pixel-to-pixel noise (grey − its 3×3 median)

    def to_dict(self) -> dict[str, Any]:
        return asdict(self)


@dataclass(frozen=True)
class CheckResult:
    reason: str
    likelihood: float  # percent
    value: float  # the feature, as calibrated
    detail: str  # a sentence for the alarm


def outside_mask(image: np.ndarray, *, min_pixels: int = 16) -> np.ndarray:
    """Pixels beyond the original image: flat (every channel constant over 3×3) regions touching the frame,
    as ``catalog.imaging`` pads with one sky colour. A sky clipped to black is flat too; the checks allow for
    it by asking for brightness, not just contact."""
    from scipy import ndimage

    array = np.asarray(image)
    channels = array[..., None] if array.ndim == 2 else array[..., :3]
    flat = np.ones(array.shape[:2], dtype=bool)
    for c in range(channels.shape[2]):
        band = channels[..., c].astype(np.int16)
        flat &= ndimage.maximum_filter(band, 3) == ndimage.minimum_filter(band, 3)
    labels, n = ndimage.label(flat)
    if n == 0:
        return flat
    touching = np.unique(np.concatenate([labels[0], labels[-1], labels[:, 0], labels[:, -1]]))
    sizes = ndimage.sum_labels(np.ones_like(labels), labels, index=np.arange(n + 1))
    keep = [int(k) for k in touching if k > 0 and sizes[k] >= min_pixels]
    return np.isin(labels, keep)


def _sky(smooth: np.ndarray, valid: np.ndarray) -> tuple[float, float]:
    """Sky level and sigma from the darkest side of the frame (a cut-off or a big galaxy brightens the others)."""
    from astropy.stats import sigma_clipped_stats

    h, w = smooth.shape
    width = max(2, min(h, w) // 10)
    sides = [(smooth[:width], valid[:width]), (smooth[-width:], valid[-width:]),
             (smooth[:, :width], valid[:, :width]), (smooth[:, -width:], valid[:, -width:])]
    stats = []
    for values, ok in sides:
        pixels = values[ok]
        if pixels.size >= 20:
            _, median, std = sigma_clipped_stats(pixels, sigma=3.0, maxiters=10)
            stats.append((float(median), float(std)))
    if not stats:
        # The frame is all flat (a sky clipped to one level, or padding): that level is the sky.
        pixels = np.concatenate([values.ravel() for values, _ in sides])
        _, median, std = sigma_clipped_stats(pixels, sigma=3.0, maxiters=10)
        stats.append((float(median), float(std)))
    median, std = min(stats)
    return median, max(std, 0.5)  # JPEG skies can be one flat level: keep half a grey level


def measure_features(image: np.ndarray) -> ImageFeatures:
    """The checks' measurements on a model input (uint8 RGB or grey, white-on-black, galaxy centred)."""
    from scipy import ndimage

    from core.axial_ratio import axial_ratio, isophote_mask
    from core.geometry import inclination_from_axial_ratio

    array = np.asarray(image)
    grey = grey_of(array)
    h, w = grey.shape
    outside = outside_mask(array)
    valid = ~outside
    smooth = ndimage.gaussian_filter(grey, 1.0)
    sky, sigma = _sky(smooth, valid)
    data = np.where(valid, smooth - sky, 0.0)
    cy, cx = (h - 1) / 2, (w - 1) / 2
    box = slice(int(cy) - CORE_BOX, int(cy) + CORE_BOX + 2), slice(int(cx) - CORE_BOX, int(cx) + CORE_BOX + 2)
    core = float(data[box].max())
    core_snr = core / sigma
    axial = inclination_from_axial_ratio(axial_ratio(array))
    face_on = _largest_inclination([inclination_from_axial_ratio(axial_ratio(array, isophote_fraction=fraction))
                                    for fraction in FACE_ON_ISOPHOTES])
    galaxy = _central_segment(data, sigma, box)
    if not galaxy.any() or core <= 0:
        return ImageFeatures(found=False, sky=sky, sigma=sigma, core_snr=core_snr, axial_inclination=axial,
                             face_on_inclination=face_on,
                             edge_brightness=0.0, edge_pixels=0, star_contrast=0.0, asymmetry=0.0,
                             cut_fraction=0.0, region_snr=0.0, edge_length=0.0, noise_snr=0.0)
    edge_pixels, edge_brightness, cut_fraction, edge_length = _edge_contact(data, galaxy, outside, sigma, core, box)
    isophote = isophote_mask(array) & valid
    star_contrast = _point_excess(grey, sky, valid, _without_appendages(isophote), data, (cy, cx))
    asymmetry = _asymmetry(data, valid, galaxy, box)
    noise_snr, region_snr = _signal_to_noise(grey, valid, sky, isophote if isophote.any() else galaxy, (cy, cx))
    return ImageFeatures(found=True, sky=sky, sigma=sigma, core_snr=core_snr, axial_inclination=axial,
                         face_on_inclination=face_on,
                         edge_brightness=edge_brightness, edge_pixels=edge_pixels, star_contrast=star_contrast,
                         asymmetry=asymmetry, cut_fraction=cut_fraction, region_snr=region_snr,
                         edge_length=edge_length, noise_snr=noise_snr)


def _central_segment(data: np.ndarray, sigma: float, box: tuple[slice, slice]) -> np.ndarray:
    """The galaxy: the brightest 3σ segment that crosses the core box (or, if none does, centred within a third
    of the frame); all False when there is none."""
    from photutils.segmentation import detect_sources
    from photutils.utils.exceptions import NoDetectionsWarning
    from scipy import ndimage

    h, w = data.shape
    cy, cx = (h - 1) / 2, (w - 1) / 2
    with warnings.catch_warnings():
        warnings.simplefilter("ignore", NoDetectionsWarning)
        segm = detect_sources(data, 3.0 * sigma, n_pixels=5)
    galaxy = np.zeros((h, w), dtype=bool)
    if segm is not None:
        central = np.unique(segm.data[box])
        central = central[central > 0]
        if central.size == 0:
            # Nothing crosses the centre (a galaxy cut off and not recentred): segments centred within a third.
            centres = ndimage.center_of_mass(np.ones_like(segm.data), segm.data, segm.labels)
            central = np.array([label for label, (yy0, xx0) in zip(segm.labels.tolist(), centres, strict=True)
                                if math.hypot(xx0 - cx, yy0 - cy) < min(h, w) / 3], dtype=int)
        if central.size:
            flux = ndimage.sum_labels(data, segm.data, index=central)
            galaxy = segm.data == int(central[int(np.argmax(flux))])
    return galaxy


def _edge_contact(data: np.ndarray, galaxy: np.ndarray, outside: np.ndarray, sigma: float, core: float,
                  box: tuple[slice, slice]) -> tuple[int, float, float, float]:
    """Where the galaxy meets the data edge (the frame and the padding's boundary): edge pixels, their
    brightness relative to the core, the cut fraction and the bright edge length."""
    from scipy import ndimage

    h, w = data.shape
    valid = ~outside
    frame = np.zeros((h, w), dtype=bool)
    frame[:EDGE_WIDTH], frame[-EDGE_WIDTH:], frame[:, :EDGE_WIDTH], frame[:, -EDGE_WIDTH:] = True, True, True, True
    # JPEG rings for a few pixels along a masked region's edge (it was compressed after masking): reach past it.
    edge = (frame | ndimage.binary_dilation(outside, iterations=OUTSIDE_REACH)) & valid
    on_edge = galaxy & edge
    edge_pixels = int(on_edge.sum())
    edge_brightness = float(np.percentile(data[on_edge], 90)) / core if edge_pixels >= 4 else 0.0
    # How long a stretch of the data edge the galaxy meets while still bright (above a fifth of its peak, as
    # the axial ratio's isophote), in units of that bright region's radius: 0 for a galaxy that fits.
    top = float(data[galaxy].max())
    bright_parts, _ = ndimage.label(galaxy & (data >= max(0.2 * top, 5.0 * sigma)))
    peak_at = np.unravel_index(np.argmax(np.where(_box_mask(h, w, box), data, -np.inf)), data.shape)
    # Only the bright body around the core: a bright star or neighbour at the frame is not a cut.
    bright = bright_parts == bright_parts[peak_at] if bright_parts[peak_at] else np.zeros_like(galaxy)
    # The frame always ends the data; flat regions only when the galaxy meets them along a straight line (padding,
    # a survey's mask): a sky clipped to black is flat too, but there the contact follows the galaxy's own rim.
    frame_edge = frame & valid
    flat_edge = ndimage.binary_dilation(outside, iterations=OUTSIDE_REACH) & valid & ~frame_edge
    if not _straight_contact(outside, ndimage.binary_dilation(bright & flat_edge, iterations=OUTSIDE_REACH)):
        flat_edge = np.zeros_like(flat_edge)
    cut_fraction = (float((bright & (frame_edge | flat_edge)).sum()) / EDGE_WIDTH) / max(
        math.sqrt(float(bright.sum()) / math.pi), 1.0)
    radius_px = max(math.sqrt(float(galaxy.sum()) / math.pi), 1.0)
    # A sky clipped to black is flat like padding: the galaxy's faint rim meets it, so ask for a tenth of the peak.
    edge_length = float((on_edge & (data > max(8.0 * sigma, 0.1 * top))).sum()) / EDGE_WIDTH / radius_px
    return edge_pixels, edge_brightness, cut_fraction, edge_length


def _asymmetry(data: np.ndarray, valid: np.ndarray, galaxy: np.ndarray, box: tuple[slice, slice]) -> float:
    """Rotational asymmetry about the core's peak (the model input is centred on the measured galaxy centre)."""
    from scipy import ndimage

    h, w = data.shape
    py, px = (int(v) for v in np.unravel_index(np.argmax(np.where(_box_mask(h, w, box), data, -np.inf)), data.shape))
    mirrored, mirror_ok = _point_mirror(data, py, px)
    both = valid & mirror_ok & _point_mirror(valid.astype(float), py, px)[0].astype(bool)
    residual = np.where(both, data - mirrored, 0.0)
    region = ndimage.binary_dilation(galaxy, iterations=2) & both
    positive = np.clip(data, 0.0, None)
    total = float(positive[region].sum())
    return float(np.abs(residual[region]).sum() / (2 * total)) if total > 0 else 0.0


def _signal_to_noise(grey: np.ndarray, valid: np.ndarray, sky: float, inside: np.ndarray,
                     centre: tuple[float, float]) -> tuple[float, float]:
    """The core (smoothed over 2 px) against the pixel-to-pixel noise, which a sky gradient or a big galaxy at
    the border cannot raise; and the integrated S/N of ``inside`` (the outer isophote's region) against the
    unsmoothed sky noise."""
    from scipy import ndimage

    cy, cx = centre
    raw_sigma = _raw_sigma(grey, valid)
    pixel_noise = max(1.4826 * float(np.median(np.abs((grey - ndimage.median_filter(grey, 3))[valid]))), 0.3)
    wide = slice(int(cy) - 6, int(cy) + 8), slice(int(cx) - 6, int(cx) + 8)
    noise_snr = (float(ndimage.gaussian_filter(grey, 2.0)[wide].max()) - sky) / pixel_noise
    region_snr = float((grey[inside] - sky).sum()) / (raw_sigma * math.sqrt(int(inside.sum())))
    return noise_snr, region_snr


def _largest_inclination(values: Sequence[float]) -> float:
    finite = [v for v in values if math.isfinite(v)]
    return max(finite) if finite else float("nan")


def _without_appendages(isophote: np.ndarray, *, radius: int = STAR_ELLIPSE_OPENING) -> np.ndarray:
    """The isophote's central body: opened by a disk of ``radius`` px (cutting necks, such as a neighbouring star's
    halo, narrower than its diameter), keeping the parts that reach the centre; unchanged if nothing does."""
    from scipy import ndimage

    if not isophote.any():
        return isophote
    yy, xx = np.mgrid[-radius:radius + 1, -radius:radius + 1]
    opened = ndimage.binary_opening(isophote, structure=(xx * xx + yy * yy) <= radius * radius)
    labels, _ = ndimage.label(opened)
    h, w = isophote.shape
    central = np.unique(labels[h // 2 - CORE_BOX: h // 2 + CORE_BOX + 1, w // 2 - CORE_BOX: w // 2 + CORE_BOX + 1])
    central = central[central > 0]
    return np.isin(labels, central) if central.size else isophote


def _box_mask(h: int, w: int, box: tuple[slice, slice]) -> np.ndarray:
    mask = np.zeros((h, w), dtype=bool)
    mask[box] = True
    return mask


def _point_excess(grey: np.ndarray, sky: float, valid: np.ndarray, isophote: np.ndarray, data: np.ndarray,
                  centre: tuple[float, float]) -> float:
    """A compact source on the disk: the largest excess over a 3 × 21 px median (along the aligned major axis,
    so a thin disk is its own background) inside 0.85 × the ellipse of the outer isophote's moments and over
    4 px from the centre (the core), relative to the brightest point in that ellipse."""
    from scipy import ndimage

    from .orientation import region_moments

    moments = region_moments(isophote)
    if moments is None:
        return 0.0
    x0, y0, pa, q = moments
    h, w = grey.shape
    a = math.sqrt(float(isophote.sum()) / (math.pi * max(q, 0.05)))
    b = max(a * q, 2.0)
    yy, xx = np.mgrid[0:h, 0:w]
    t = math.radians(-pa)
    u = (xx - x0) * math.cos(t) + (yy - y0) * math.sin(t)
    v = -(xx - x0) * math.sin(t) + (yy - y0) * math.cos(t)
    ellipse = ((u / (0.85 * a)) ** 2 + (v / (0.85 * b)) ** 2 <= 1.0) & valid
    if not ellipse.any():
        return 0.0
    light = np.where(valid, ndimage.gaussian_filter(grey, 0.7) - sky, 0.0)
    excess = light - ndimage.median_filter(light, size=(3, 21))
    away = np.hypot(yy - centre[0], xx - centre[1]) >= 4.0
    top = max(float(light[ellipse].max()), 1.0)
    return float(np.where(ellipse & away, excess, 0.0).max()) / top


def _straight_contact(outside: np.ndarray, near: np.ndarray, *, max_ratio: float = STRAIGHT_RATIO) -> bool:
    """Whether the flat region's rim pixels within ``near`` lie along one straight line (their minor / major
    standard deviation at most ``max_ratio``)."""
    from scipy import ndimage

    rim = outside & ~ndimage.binary_erosion(outside, border_value=1) & near
    ys, xs = np.nonzero(rim)
    if ys.size < 6:
        return False
    minor, major = np.linalg.eigvalsh(np.cov(np.vstack([xs, ys]).astype(np.float64)))
    return major > 0 and math.sqrt(max(minor, 0.0) / major) <= max_ratio


def _raw_sigma(grey: np.ndarray, valid: np.ndarray) -> float:
    """Pixel noise of the unsmoothed sky: MAD of the frame's valid pixels (a floor of half a grey level)."""
    h, w = grey.shape
    width = max(2, min(h, w) // 10)
    frame = np.zeros((h, w), dtype=bool)
    frame[:width], frame[-width:], frame[:, :width], frame[:, -width:] = True, True, True, True
    values = grey[frame & valid]
    if values.size < 20:
        values = grey[valid] if valid.any() else grey.ravel()
    return max(1.4826 * float(np.median(np.abs(values - np.median(values)))), 0.5)


def _point_mirror(data: np.ndarray, py: int, px: int) -> tuple[np.ndarray, np.ndarray]:
    """``data`` reflected through pixel (py, px), and where the reflection falls inside the image."""
    h, w = data.shape
    yy, xx = np.mgrid[0:h, 0:w]
    my, mx = 2 * py - yy, 2 * px - xx
    inside = (my >= 0) & (my < h) & (mx >= 0) & (mx < w)
    out = np.zeros_like(data)
    out[inside] = data[my[inside], mx[inside]]
    return out, inside


# --- likelihoods ----------------------------------------------------------------------------

def _transform(value: float, transform: str) -> float:
    if transform == "log":
        return math.log(max(value, 1e-4))
    return value


def feature_value(features: ImageFeatures, reason: str, params: Mapping[str, Any] | None = None) -> float:
    """The feature a check is calibrated on (``params["feature"]``, an ``ImageFeatures`` field), with the
    conventions for an image where no galaxy was found: round for ``face_on``, no signal for ``low_snr``."""
    name = str((params or CALIBRATION.get(reason) or {}).get("feature", DEFAULT_FEATURES[reason]))
    value = float(getattr(features, name))
    if name in ("axial_inclination", "face_on_inclination") and not math.isfinite(value):
        return 90.0  # no isophote: not evidence of a face-on disk
    if reason == "low_snr" and not features.found:
        return 0.0
    return value


def _detail(reason: str, features: ImageFeatures) -> str:
    if reason == "face_on":
        return (f"every isophote looks nearly face-on (axial-ratio inclination at most "
                f"{features.face_on_inclination:.0f}°)")
    if reason == "cut_off":
        return (f"the galaxy runs off the edge of the image while still bright there (over "
                f"{features.cut_fraction:.1f} of its radius)")
    if reason == "bright_star":
        return (f"a compact source on the disk ({100 * features.star_contrast:.0f} % of the galaxy's peak above its "
                f"surroundings) looks like a star")
    if reason == "companion":
        return f"the light is asymmetric (A = {features.asymmetry:.2f}): an overlapping companion or disturbance"
    if not features.found:
        return "no galaxy stands out from the sky"
    return f"the signal is low (the core is {features.noise_snr:.0f}× the pixel noise)"


def run_checks(features: ImageFeatures, calibration: Mapping[str, Mapping[str, Any]] | None = None) -> list[CheckResult]:
    """Every calibrated check's likelihood (percent), in ``CHECK_REASONS`` order."""
    calibration = CALIBRATION if calibration is None else calibration
    out = []
    for reason in CHECK_REASONS:
        params = calibration.get(reason)
        if not params:
            continue
        value = feature_value(features, reason, params)
        z = float(params["a"]) * _transform(value, str(params.get("transform", ""))) + float(params["b"])
        likelihood = 100.0 / (1.0 + math.exp(-max(min(z, 50.0), -50.0)))
        out.append(CheckResult(reason=reason, likelihood=likelihood, value=value, detail=_detail(reason, features)))
    return out


def combine(network_percent: float, checks: Sequence[CheckResult]) -> float:
    """The rejection likelihood: the largest of the networks' and the checks' (each sees a different cause)."""
    return max([float(network_percent)] + [c.likelihood for c in checks])
