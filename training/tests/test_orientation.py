"""Position angle, centre and axis ratio measured on synthetic disks (``training.ml.orientation``).

Exponential disks with a bulge at known angles and axis ratios, with bright stars beside them and one on
the disk; then the inputs that have no galaxy (blank, noise, a lone star), which must not raise.
"""
from __future__ import annotations

import math

import numpy as np
import pytest

from training.ml.orientation import ROUND_Q, astro_from_image, measure_orientation, region_moments


def _pa_error(a: float, b: float) -> float:
    d = abs(a - b) % 180.0
    return min(d, 180.0 - d)


def disk_image(*, pa_deg: float, q: float, size: int = 256, centre: tuple[float, float] | None = None,
               stars: tuple[tuple[float, float, float], ...] = (), seed: int = 0) -> np.ndarray:
    """uint8 RGB: an exponential disk (scale length size/14, axis ratio ``q``, major axis ``pa_deg``
    counter-clockwise from +x on screen) plus a round bulge, Gaussian stars (x, y, peak) and sky noise,
    through an asinh stretch as survey cut-outs are."""
    rng = np.random.default_rng(seed)
    cx, cy = centre if centre is not None else ((size - 1) / 2, (size - 1) / 2)
    y, x = np.mgrid[0:size, 0:size].astype(np.float64)
    dx, dy = x - cx, y - cy
    t = math.radians(pa_deg)
    u = dx * math.cos(t) - dy * math.sin(t)  # along the major axis (y points down)
    v = dx * math.sin(t) + dy * math.cos(t)
    scale = size / 14
    light = np.exp(-np.hypot(u, v / q) / scale) + 1.5 * np.exp(-np.hypot(dx, dy) / (0.15 * scale))
    for sx, sy, peak in stars:
        light += peak * np.exp(-((x - sx) ** 2 + (y - sy) ** 2) / (2 * 1.5**2))
    light += rng.normal(0.0, 0.01, light.shape)
    grey = np.arcsinh(np.clip(light, 0, None) / 0.05) / np.arcsinh(3.0 / 0.05)
    grey = np.clip(grey * 255, 0, 255).astype(np.uint8)
    return np.repeat(grey[:, :, None], 3, axis=2)


def test_moments_of_a_filled_ellipse_give_its_angle_and_axis_ratio() -> None:
    y, x = np.mgrid[0:200, 0:200].astype(float)
    t = math.radians(30)
    u = (x - 90) * math.cos(t) - (y - 110) * math.sin(t)
    v = (x - 90) * math.sin(t) + (y - 110) * math.cos(t)
    x0, y0, pa, q = region_moments((u / 60) ** 2 + (v / 24) ** 2 <= 1)
    assert (x0, y0) == pytest.approx((90, 110), abs=0.1)
    assert pa == pytest.approx(30, abs=0.5) and q == pytest.approx(0.4, abs=0.01)


@pytest.mark.parametrize("q", [0.2, 0.4, 0.6])
@pytest.mark.parametrize("pa", [0, 15, 30, 45, 60, 75, 90, 105, 120, 135, 150, 165, 179])
def test_position_angle_of_disks_with_stars(pa: float, q: float) -> None:
    size = 256
    c = (size - 1) / 2
    t = math.radians(pa)
    # A bright star beside the disk (on its minor axis, off the disk), another in a corner, and one on the
    # disk half-way along the major axis.
    off_disk = (c + 70 * math.sin(t), c + 70 * math.cos(t), 6.0)
    corner = (30.0, 220.0, 20.0)
    on_disk = (c + 25 * math.cos(t), c - 25 * math.sin(t), 3.0)
    image = disk_image(pa_deg=pa, q=q, stars=(off_disk, corner, on_disk), seed=pa)
    o = measure_orientation(image)
    assert o.ok, o.reason
    assert _pa_error(o.pa_image_deg, pa) <= 3.0, (o.pa_image_deg, pa)
    assert o.q == pytest.approx(q, abs=0.08)
    assert math.hypot(o.x - c, o.y - c) < 4
    assert o.pa_astro_deg == pytest.approx(astro_from_image(o.pa_image_deg))


def test_off_centre_galaxy_centre_is_found() -> None:
    o = measure_orientation(disk_image(pa_deg=20, q=0.4, size=300, centre=(170.0, 140.0)))
    assert o.ok and math.hypot(o.x - 170, o.y - 140) < 2.5
    assert _pa_error(o.pa_image_deg, 20) <= 2.0


def test_large_image_is_measured_in_input_pixels() -> None:
    o = measure_orientation(disk_image(pa_deg=120, q=0.35, size=700, centre=(340.0, 360.0)))
    assert o.ok and math.hypot(o.x - 340, o.y - 360) < 4
    assert _pa_error(o.pa_image_deg, 120) <= 2.0


def test_astronomical_convention() -> None:
    # A major axis pointing up (north for north-up images) is PA 0; pointing to the upper left, PA 45.
    assert astro_from_image(90.0) == 0.0
    assert astro_from_image(135.0) == 45.0
    assert astro_from_image(0.0) == 90.0


def test_round_galaxy_has_no_position_angle() -> None:
    o = measure_orientation(disk_image(pa_deg=40, q=0.97))
    assert not o.ok and o.pa_image_deg is None and o.q is not None and o.q > ROUND_Q
    assert "round" in o.reason


@pytest.mark.parametrize("image", [
    np.zeros((128, 128, 3), dtype=np.uint8),  # blank
    np.full((64, 90, 3), 200, dtype=np.uint8),  # flat grey
    np.random.default_rng(1).integers(0, 256, (200, 200, 3), dtype=np.uint8),  # pure noise
    np.zeros((4, 4), dtype=np.uint8),  # too small
], ids=["blank", "flat", "noise", "tiny"])
def test_no_galaxy_gives_a_reason_not_an_exception(image: np.ndarray) -> None:
    o = measure_orientation(image)
    assert not o.ok and o.pa_image_deg is None and o.reason
    assert np.isfinite([o.x, o.y]).all()


def test_a_single_star_is_round() -> None:
    image = disk_image(pa_deg=0, q=0.5, stars=())
    star = np.zeros((128, 128), dtype=np.float64)
    y, x = np.mgrid[0:128, 0:128]
    star += 250 * np.exp(-((x - 64) ** 2 + (y - 63) ** 2) / (2 * 2.0**2))
    image = np.repeat(star.astype(np.uint8)[:, :, None], 3, axis=2)
    o = measure_orientation(image)
    assert not o.ok and o.pa_image_deg is None


@pytest.mark.parametrize("pa", [0, 37, 90, 128])
def test_alignment_is_idempotent(pa: float) -> None:
    """Turned by its measured angle about its measured centre, a galaxy measures horizontal and centred."""
    from catalog.imaging import prepare_model_input

    image = disk_image(pa_deg=pa, q=0.35, size=300, centre=(160.0, 135.0), seed=7)
    o = measure_orientation(image)
    aligned = prepare_model_input(image, angle_deg=o.pa_image_deg, centre=(o.x, o.y))
    again = measure_orientation(aligned)
    assert again.ok and _pa_error(again.pa_image_deg, 0.0) <= 1.5
    assert math.hypot(again.x - 63.5, again.y - 63.5) < 1.5
    twice = prepare_model_input(aligned, angle_deg=again.pa_image_deg, centre=(again.x, again.y))
    assert np.abs(twice.astype(float) - aligned.astype(float)).mean() < 3.0
