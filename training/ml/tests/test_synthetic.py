"""The synthetic generator: seeded, worker-independent, truth round-trips, physically sensible."""
import numpy as np
import pytest

from training.ml.axial_ratio import axial_ratio, inclination_from_axial_ratio
from training.ml.synthetic import REJECT_REASONS, GeneratorConfig, draw_parameters, generate, load_npz, render_galaxy, save_npz


def test_truth_round_trips_through_npz(tmp_path) -> None:
    galaxies = generate(GeneratorConfig(reject_fraction=0.5), 6, seed=3, workers=1)
    save_npz(tmp_path / "set.npz", galaxies)
    loaded = load_npz(tmp_path / "set.npz")
    assert [g.truth for g in loaded] == [g.truth for g in galaxies]
    for a, b in zip(galaxies, loaded, strict=True):
        np.testing.assert_array_equal(a.colour, b.colour)
        np.testing.assert_array_equal(a.i, b.i)


def test_same_seed_same_pixels_for_any_worker_count() -> None:
    one = generate(GeneratorConfig(), 8, seed=11, workers=1)
    two = generate(GeneratorConfig(), 8, seed=11, workers=2)
    for a, b in zip(one, two, strict=True):
        np.testing.assert_array_equal(a.colour, b.colour)
        assert a.truth == b.truth
    other = generate(GeneratorConfig(), 1, seed=12, workers=1)[0]
    assert not np.array_equal(other.r, one[0].r)


def test_ranges_and_reject_reasons() -> None:
    config = GeneratorConfig(reject_fraction=0.5)
    params = [draw_parameters(config, seed=5, index=k) for k in range(400)]
    accepted = [p for p in params if p["reason"] is None]
    rejects = [p for p in params if p["reason"] is not None]
    assert all(45 <= p["inclination"] <= 90 for p in accepted)
    assert {p["reason"] for p in rejects} == set(REJECT_REASONS)
    assert all(p["inclination"] < 45 for p in rejects if p["reason"] == "face_on")


def test_images_have_the_right_shapes() -> None:
    galaxy = generate(GeneratorConfig(), 1, seed=1, workers=1)[0]
    assert galaxy.colour.shape == (128, 128, 3) and galaxy.colour.dtype == np.uint8
    assert galaxy.g.shape == galaxy.r.shape == galaxy.i.shape == (128, 128)
    assert galaxy.truth["accepted"] is True


def test_an_edge_on_disk_is_flatter_than_a_50_degree_one() -> None:
    base = draw_parameters(GeneratorConfig(bar_probability=0.0, star_count_mean=0.0), seed=2, index=0)
    base.update(stars=0, bar=False, reason=None, snr=200.0, bulge_fraction=0.1, warp=0.0)
    q_edge = axial_ratio(render_galaxy({**base, "inclination": 88.0}).r)
    q_fifty = axial_ratio(render_galaxy({**base, "inclination": 50.0}).r)
    assert q_edge < 0.5 * q_fifty


@pytest.mark.parametrize("inclination", [45.0, 60.0, 75.0, 90.0])
def test_axial_ratio_formula_round_trips(inclination: float) -> None:
    q0 = 0.2
    cos2 = np.cos(np.radians(inclination)) ** 2
    q = np.sqrt(cos2 * (1 - q0**2) + q0**2)
    assert inclination_from_axial_ratio(q) == pytest.approx(inclination, abs=1e-6)


def test_axial_ratio_of_a_drawn_ellipse() -> None:
    y, x = np.mgrid[0:128, 0:128] - 63.5
    theta = np.radians(30)
    xr, yr = x * np.cos(theta) + y * np.sin(theta), -x * np.sin(theta) + y * np.cos(theta)
    image = np.exp(-np.hypot(xr / 40, yr / 16) * 3) * 255
    assert axial_ratio(image) == pytest.approx(0.4, rel=0.04)
