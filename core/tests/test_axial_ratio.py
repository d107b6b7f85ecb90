"""The axial-ratio baseline: uniform-weight moments of the outer isophote and Hubble's formula."""
from __future__ import annotations

import math

import numpy as np
import pytest

from core.axial_ratio import axial_ratio, axial_ratio_inclination
from core.geometry import inclination_from_axial_ratio


def _ellipse_image(q: float, *, angle_deg: float = 0.0, a: float = 40.0, size: int = 128, profile: str = "flat",
                   bulge: float = 0.0, noise: float = 0.0, seed: int = 0) -> np.ndarray:
    y, x = np.mgrid[0:size, 0:size] - (size - 1) / 2
    t = math.radians(angle_deg)
    xr = x * math.cos(t) + y * math.sin(t)
    yr = -x * math.sin(t) + y * math.cos(t)
    m = np.hypot(xr / a, yr / (a * q))
    img = (m <= 1).astype(float) if profile == "flat" else np.exp(-4 * m)
    if bulge:
        img = img + bulge * np.exp(-np.hypot(x, y) / 3)  # a round bulge must not round the isophote
    if noise:
        img = img + np.random.default_rng(seed).normal(0, noise, img.shape)
    return img


@pytest.mark.parametrize("q", [0.25, 0.4, 0.7, 0.95])
@pytest.mark.parametrize("angle", [0.0, 30.0, 90.0])
def test_axial_ratio_of_a_drawn_ellipse(q: float, angle: float) -> None:
    assert axial_ratio(_ellipse_image(q, angle_deg=angle)) == pytest.approx(q, rel=0.03)


def test_axial_ratio_on_a_stretched_noisy_uint8_galaxy_with_a_bulge() -> None:
    img = _ellipse_image(0.5, angle_deg=10, profile="exp", bulge=3.0, noise=0.01)
    grey = np.clip(np.arcsinh(img / 0.02) / np.arcsinh(200) * 255, 0, 255).astype(np.uint8)
    assert axial_ratio(grey) == pytest.approx(0.5, rel=0.05)
    colour = np.repeat(grey[:, :, None], 3, axis=2)
    assert axial_ratio(colour) == pytest.approx(axial_ratio(grey))


@pytest.mark.parametrize("inclination", [0.0, 30.0, 45.0, 60.0, 75.0, 89.0])
def test_inclination_formula_round_trips(inclination: float) -> None:
    q0 = 0.2
    q = math.sqrt(math.cos(math.radians(inclination)) ** 2 * (1 - q0**2) + q0**2)
    assert inclination_from_axial_ratio(q) == pytest.approx(inclination, abs=1e-6)
    assert inclination_from_axial_ratio(q, 0.2) == pytest.approx(inclination, abs=1e-6)


def test_formula_clips_and_passes_nan() -> None:
    assert inclination_from_axial_ratio(0.1) == 90.0
    assert inclination_from_axial_ratio(0.2) == 90.0
    assert inclination_from_axial_ratio(1.0) == 0.0
    assert inclination_from_axial_ratio(1.2) == 0.0
    assert math.isnan(inclination_from_axial_ratio(float("nan")))
    # A thicker intrinsic disk (larger q0) reads the same q as more inclined.
    assert inclination_from_axial_ratio(0.4, 0.3) > inclination_from_axial_ratio(0.4, 0.2)


def test_axial_ratio_inclination_end_to_end() -> None:
    q = math.sqrt(math.cos(math.radians(60)) ** 2 * 0.96 + 0.04)
    assert axial_ratio_inclination(_ellipse_image(q, angle_deg=5)) == pytest.approx(60.0, abs=1.5)


def test_empty_image_gives_nan() -> None:
    assert math.isnan(axial_ratio(np.zeros((64, 64))))
