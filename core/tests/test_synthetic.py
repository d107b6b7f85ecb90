"""The synthetic generator: seeded, worker-independent, truth round-trips, physically sensible."""
from __future__ import annotations

from dataclasses import replace
from pathlib import Path

import numpy as np
import pytest

from core.axial_ratio import axial_ratio, isophote_mask
from core.synthetic import (
    REJECT_REASONS,
    GalaxyParams,
    GeneratorConfig,
    draw_params,
    generate,
    load_npz,
    render_galaxy,
    robustness_config,
    sample_range,
    save_npz,
)

MIXED = GeneratorConfig(reject_fraction=0.5)


def _quiet(p: GalaxyParams, **changes: object) -> GalaxyParams:
    """The same galaxy without stars, neighbours or background galaxies, at low noise."""
    quiet: dict[str, object] = dict(star_density=0.0, bright_star_off_disk=False, background_galaxies=0.0, neighbour=None,
                                    companion=None, bright_star=None, mask=None, accepted=True, reason=None, noise=0.03,
                                    centre_offset=(0.0, 0.0), warp_amplitude=0.0)
    return replace(p, **{**quiet, **changes})


def test_truth_and_pixels_round_trip_through_npz(tmp_path: Path) -> None:
    galaxies = list(generate(MIXED, 6, seed=3, workers=1))
    path = tmp_path / "set.npz"
    save_npz(path, galaxies, config=MIXED)
    loaded = load_npz(path)
    assert [g.truth for g in loaded] == [g.truth for g in galaxies]
    for a, b in zip(galaxies, loaded, strict=True):
        for band in ("colour", "g", "r", "i"):
            np.testing.assert_array_equal(a.band(band), b.band(band))
    with np.load(path, allow_pickle=False) as z:
        np.testing.assert_allclose(z["inclination"], [g.inclination for g in galaxies], rtol=1e-6)
        assert list(z["reason"]) == [g.reason or "" for g in galaxies]
        assert z["colour"].shape == (6, 128, 128, 3) and z["colour"].dtype == np.uint8
    # The truth rebuilds the parameters, which render the same pixels again.
    again = render_galaxy(GalaxyParams.from_truth(loaded[0].truth))
    np.testing.assert_array_equal(again.colour, galaxies[0].colour)


def test_same_seed_same_pixels_for_any_worker_count() -> None:
    one = list(generate(MIXED, 4, seed=11, workers=1))
    two = list(generate(MIXED, 4, seed=11, workers=2, chunksize=1))
    for a, b in zip(one, two, strict=True):
        assert a.truth == b.truth
        for band in ("colour", "g", "r", "i"):
            np.testing.assert_array_equal(a.band(band), b.band(band))
    # Index-seeded: a window of the set equals the same indices of the full set.
    window = list(generate(MIXED, 2, seed=11, workers=1, start=2))
    np.testing.assert_array_equal(window[0].r, one[2].r)
    other = next(generate(MIXED, 1, seed=12, workers=1))
    assert not np.array_equal(other.r, one[0].r)


def test_accepted_inclinations_stay_in_range_and_rejects_carry_a_reason() -> None:
    params = [draw_params(MIXED, seed=5, index=k) for k in range(600)]
    accepted = [p for p in params if p.accepted]
    rejects = [p for p in params if not p.accepted]
    assert accepted and rejects
    assert all(45.0 <= p.inclination <= 90.0 and p.reason is None for p in accepted)
    assert all(p.reason in REJECT_REASONS for p in rejects)
    assert {p.reason for p in rejects} == set(REJECT_REASONS)
    assert all(p.inclination < 45.0 for p in rejects if p.reason == "face_on")
    assert all(45.0 <= p.inclination <= 90.0 for p in rejects if p.reason != "face_on")
    assert all(p.bright_star for p in rejects if p.reason == "bright_star")
    assert all(p.companion for p in rejects if p.reason == "companion")
    assert all(p.mask and p.mask["mode"] in ("edge", "zoom", "mask") for p in rejects if p.reason == "cut_off")
    truth = accepted[0].truth()
    for key in ("inclination", "pa", "position_angle", "accepted", "reason", "colour_mode", "bands", "morphology"):
        assert key in truth


def test_images_have_the_documented_shapes_and_types() -> None:
    galaxy = render_galaxy(draw_params(GeneratorConfig(), seed=1, index=0))
    assert galaxy.colour.shape == (128, 128, 3) and galaxy.colour.dtype == np.uint8
    assert galaxy.g.shape == galaxy.r.shape == galaxy.i.shape == (128, 128)
    assert galaxy.r.dtype == np.uint8 and galaxy.truth["accepted"] is True
    # The galaxy is in the middle and the sky is dark.
    assert galaxy.r[54:74, 54:74].mean() > 3 * galaxy.r[:10].mean()
    small = render_galaxy(draw_params(GeneratorConfig(size=64, oversample=2), seed=1, index=0))
    assert small.colour.shape == (64, 64, 3)


def test_an_edge_on_disk_is_flatter_than_a_50_degree_one() -> None:
    base = _quiet(draw_params(GeneratorConfig(morphology_mix={"Sb": 1.0}), seed=2, index=0))
    q_edge = axial_ratio(render_galaxy(replace(base, inclination=88.0)).r)
    q_fifty = axial_ratio(render_galaxy(replace(base, inclination=50.0)).r)
    assert q_edge < 0.45 < 0.55 < q_fifty


@pytest.mark.parametrize("pa", [0.0, 35.0, -60.0])
def test_the_position_angle_truth_is_the_major_axis_in_the_image(pa: float) -> None:
    p = _quiet(draw_params(GeneratorConfig(), seed=1, index=0), inclination=85.0, pa=pa)
    ys, xs = np.nonzero(isophote_mask(render_galaxy(p).r))
    _, vectors = np.linalg.eigh(np.cov(np.vstack([xs, -ys])))  # y up: counter-clockwise as displayed
    angle = np.degrees(np.arctan2(vectors[1, 1], vectors[0, 1]))
    assert (angle - pa + 90) % 180 - 90 == pytest.approx(0.0, abs=2.0)


def test_rejects_look_like_their_reason() -> None:
    by_reason: dict[str, GalaxyParams] = {}
    for k in range(400):
        p = draw_params(MIXED, seed=8, index=k)
        if p.reason == "cut_off" and p.mask and p.mask["mode"] == "mask":
            by_reason.setdefault("mask", p)
        elif p.reason in ("bright_star", "low_snr"):
            by_reason.setdefault(p.reason, p)
    masked = render_galaxy(by_reason["mask"])
    assert (masked.r == 0).mean() > 0.05  # missing data is black
    noisy = render_galaxy(by_reason["low_snr"])
    clean = render_galaxy(_quiet(by_reason["low_snr"], noise=0.05))
    assert noisy.r[:16].std() > 3 * clean.r[:16].std()
    star = by_reason["bright_star"]
    with_star = render_galaxy(star).r.astype(int)
    without = render_galaxy(replace(star, bright_star=None)).r.astype(int)
    assert (with_star - without).max() > 60


def test_robustness_preset_uses_ranges_the_training_set_does_not() -> None:
    train, robust = GeneratorConfig(), robustness_config()
    rng = np.random.default_rng(0)
    for name in ("psf_fwhm_range", "noise_range", "fill_range", "jpeg_quality_range", "h_over_r_range"):
        lo, hi = getattr(train, name)
        draws = [sample_range(rng, getattr(robust, name)) for _ in range(200)]
        assert all(d <= lo or d >= hi for d in draws), name
    assert not set(robust.morphology_mix) & set(train.morphology_mix)
    p = draw_params(robust, seed=1, index=0)
    assert p.morphology in ("S0a", "Sm") and p.colour_mode == "panstarrs"


@pytest.mark.parametrize("spec", [(1.0, 2.0), ((0.0, 1.0), (3.0, 5.0))])
def test_sample_range_stays_inside_its_intervals(spec: tuple) -> None:
    rng = np.random.default_rng(1)
    draws = np.array([sample_range(rng, spec) for _ in range(500)])
    intervals = spec if isinstance(spec[0], tuple) else (spec,)
    assert all(any(a <= d <= b for a, b in intervals) for d in draws)
