"""The physical reject checks on constructed model inputs: a clean inclined disk passes every check; a star on
it, a cut at the edge, a face-on disk and a noisy one each fire their own check, with their reason."""
from __future__ import annotations

import math

import numpy as np
import pytest

from training.ml.image_checks import CALIBRATION, CHECK_REASONS, combine, measure_features, outside_mask, run_checks

SIZE = 128


def disk_image(*, q: float = 0.45, angle_deg: float = 0.0, a: float = 36.0, noise: float = 0.01,
               star: tuple[float, float, float] | None = None, shift: float = 0.0, seed: int = 0,
               soft: float = 0.01) -> np.ndarray:
    """An exponential disk (scale a/3.5 along the major axis, axis ratio q) with a small round bulge, asinh
    stretched to uint8 RGB like a survey cut-out. ``star``: (dx, dy, peak) of a Gaussian point source relative
    to the galaxy's centre. ``shift``: the galaxy moved right by this many pixels (a cut-off when large).
    ``soft``: the asinh softening (larger is closer to a linear display, where the outer disk is dark)."""
    rng = np.random.default_rng(seed)
    y, x = np.mgrid[0:SIZE, 0:SIZE] - (SIZE - 1) / 2
    x = x - shift
    t = math.radians(angle_deg)
    xr, yr = x * math.cos(t) + y * math.sin(t), -x * math.sin(t) + y * math.cos(t)
    m = np.hypot(xr, yr / q) / (a / 3.5)
    flux = np.exp(-m) + 0.6 * np.exp(-np.hypot(x, y) / 1.5)
    if star is not None:
        dx, dy, peak = star
        flux = flux + peak * np.exp(-((x - dx) ** 2 + (y - dy) ** 2) / (2 * 1.3**2))
    flux = flux + rng.normal(0.0, noise, flux.shape)
    grey = np.clip(np.arcsinh(flux / soft) / np.arcsinh(1.5 / soft) * 255, 0, 255)
    return np.repeat(grey.astype(np.uint8)[:, :, None], 3, axis=2)


def pad_left(image: np.ndarray, columns: int) -> np.ndarray:
    """Columns beyond the original image, as alignment pads them: one flat sky colour."""
    out = image.copy()
    out[:, :columns] = np.median(image[:, -10:].reshape(-1, 3), axis=0).astype(np.uint8)
    return out


def likelihoods(image: np.ndarray) -> dict[str, float]:
    return {c.reason: c.likelihood for c in run_checks(measure_features(image))}


def test_the_checks_that_work_on_validation_are_calibrated() -> None:
    assert {"face_on", "cut_off", "low_snr", "bright_star"} <= set(CALIBRATION) <= set(CHECK_REASONS)
    for params in CALIBRATION.values():
        assert math.isfinite(float(params["a"])) and math.isfinite(float(params["b"]))


def test_a_clean_inclined_disk_passes_every_check() -> None:
    for angle in (0.0, 8.0):
        scores = likelihoods(disk_image(angle_deg=angle))
        assert max(scores.values()) < 50.0, scores


def test_a_star_on_the_disk_fires_the_bright_star_check_only_there() -> None:
    # A display close to linear (the outer disk dark), where a saturated star on the disk stands out.
    clean = measure_features(disk_image(soft=0.3))
    starry = measure_features(disk_image(soft=0.3, star=(16.0, 4.0, 6.0)))
    assert starry.star_contrast > 4 * clean.star_contrast
    scores = {c.reason: c for c in run_checks(starry)}
    assert scores["bright_star"].likelihood >= 50.0
    assert "star" in scores["bright_star"].detail
    assert {c.reason: c.likelihood for c in run_checks(clean)}["bright_star"] < 50.0


def test_a_galaxy_cut_by_the_edge_of_the_data_fires_the_cut_off_check() -> None:
    # The galaxy runs past the left edge of the original image; alignment padded beyond it with flat sky.
    cut = pad_left(disk_image(), 40)
    assert outside_mask(cut)[:, :38].all() and not outside_mask(cut)[:, 45:].any()
    features = measure_features(cut)
    assert features.cut_fraction > 0.2 > measure_features(disk_image()).cut_fraction
    assert likelihoods(cut)["cut_off"] >= 50.0
    # Touching the frame alone (a big galaxy's faint outskirts) is not a cut.
    assert likelihoods(disk_image(a=40.0))["cut_off"] < 50.0


def test_a_sky_clipped_to_black_is_not_a_data_edge() -> None:
    # A high black point makes the sky one flat level, like padding, right up to the galaxy's rim.
    clipped = np.clip(disk_image().astype(int) - 90, 0, 255).astype(np.uint8) * 2
    assert outside_mask(clipped).mean() > 0.5
    assert measure_features(clipped).cut_fraction == 0.0
    assert likelihoods(clipped)["cut_off"] < 50.0


def test_a_face_on_disk_fires_the_face_on_check() -> None:
    features = measure_features(disk_image(q=0.97))
    assert features.axial_inclination < 25.0
    assert likelihoods(disk_image(q=0.97))["face_on"] >= 50.0
    assert likelihoods(disk_image(q=0.45))["face_on"] < 50.0


def test_a_noisy_image_fires_the_low_snr_check() -> None:
    noisy = disk_image(noise=0.6, seed=3)
    assert measure_features(noisy).noise_snr < measure_features(disk_image()).noise_snr / 5
    assert likelihoods(noisy)["low_snr"] >= 50.0


def test_a_blank_frame_is_low_snr_not_an_error() -> None:
    blank = np.full((SIZE, SIZE, 3), 12, dtype=np.uint8)
    features = measure_features(blank)
    assert not features.found
    assert likelihoods(blank)["low_snr"] >= 50.0


def test_combine_takes_the_largest_cause() -> None:
    checks = run_checks(measure_features(disk_image(soft=0.3, star=(16.0, 4.0, 6.0))))
    assert combine(10.0, checks) == pytest.approx(max(c.likelihood for c in checks))
    assert combine(99.0, checks) == 99.0
    assert combine(12.5, []) == 12.5
