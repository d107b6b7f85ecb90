"""The physical reject checks on constructed model inputs: a clean inclined disk passes every check; a star on
it, a cut at the edge, a face-on disk and a noisy one each fire their own check, with their reason; an inclined
disk with a big round bulge, and a bright star beside the disk, do not."""
from __future__ import annotations

import math

import numpy as np
import pytest

from dataclasses import replace

from core.axial_ratio import isophote_mask
from training.ml.image_checks import CALIBRATION, CHECK_REASONS, combine, measure_features, outside_mask, run_checks
from training.ml.reject_calibration import AXIAL_MARGIN_DEG, choose_image_checks

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


def bulge_and_disk(*, q: float = 0.25, bulge: float = 5.0, bulge_sigma: float = 7.0, a: float = 48.0,
                   soft: float = 0.3) -> np.ndarray:
    """An inclined exponential disk (axis ratio ``q``) with a big round Gaussian bulge (a lens, as in an S0/Sa)
    ``bulge`` times the disk's central level, asinh stretched."""
    rng = np.random.default_rng(0)
    y, x = np.mgrid[0:SIZE, 0:SIZE] - (SIZE - 1) / 2
    flux = np.exp(-np.hypot(x, y / q) / (a / 3.5)) + bulge * np.exp(-0.5 * (np.hypot(x, y) / bulge_sigma) ** 2)
    flux = flux + rng.normal(0.0, 0.01, flux.shape)
    grey = np.clip(np.arcsinh(flux / soft) / np.arcsinh((1 + bulge) / soft) * 255, 0, 255)
    return np.repeat(grey.astype(np.uint8)[:, :, None], 3, axis=2)


def test_a_big_round_bulge_on_an_inclined_disk_is_not_face_on() -> None:
    # The bulge rounds the default isophote (as for NGC 2655, an S0-a at 60°), but the fainter one reaches the disk.
    image = bulge_and_disk()
    features = measure_features(image)
    assert features.axial_inclination < 45.0 - AXIAL_MARGIN_DEG
    assert features.face_on_inclination > 45.0
    assert likelihoods(image)["face_on"] < 50.0
    # A round disk with the same bulge is still face-on at every isophote.
    assert likelihoods(bulge_and_disk(q=0.97))["face_on"] >= 50.0


def test_a_bright_star_beside_the_disk_is_not_a_star_on_it() -> None:
    # A saturated star just beyond the disk's rim (as beside NGC 691): its halo joins the isophote by a neck, which
    # must not stretch the search's ellipse out over the star's wing.
    y, x = np.mgrid[0:SIZE, 0:SIZE] - (SIZE - 1) / 2
    dx, dy = 44 * math.cos(math.radians(30)), 44 * math.sin(math.radians(30))
    flux = np.exp(-np.hypot(x, y / 0.6) / (36 / 3.5)) + 0.6 * np.exp(-np.hypot(x, y) / 1.5)
    flux = flux + 3000.0 * np.exp(-0.5 * (np.hypot(x - dx, y - dy) / 2.0) ** 2)
    flux = flux + np.random.default_rng(0).normal(0.0, 0.01, flux.shape)
    grey = np.clip(np.arcsinh(flux / 0.02) / np.arcsinh(1.5 / 0.02) * 255, 0, 255).astype(np.uint8)
    image = np.repeat(grey[:, :, None], 3, axis=2)
    star_at = round((SIZE - 1) / 2 + dy), round((SIZE - 1) / 2 + dx)
    assert isophote_mask(image)[star_at]  # the star is part of the isophote's region
    assert measure_features(image).star_contrast < 0.15
    assert likelihoods(image)["bright_star"] < 20.0


def test_the_face_on_check_never_fires_within_the_axial_margin_of_45_degrees() -> None:
    # Clean validation galaxies that are never below 40°: the clean quantile alone would put the threshold there.
    base = measure_features(disk_image())
    clean = [replace(base, face_on_inclination=float(v)) for v in np.linspace(40.0, 90.0, 400)]
    face_on = [replace(base, face_on_inclination=float(v)) for v in np.linspace(5.0, 44.0, 100)]
    calibration, _ = choose_image_checks(clean + face_on, [""] * 400 + ["face_on"] * 100)
    params = calibration["face_on"]
    assert -params["b"] / params["a"] == pytest.approx(45.0 - AXIAL_MARGIN_DEG, abs=1e-3)


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
