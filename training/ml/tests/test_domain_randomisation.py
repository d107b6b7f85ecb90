"""Domain randomisation: the augmentation stage, the widened generator preset, reject calibration, profiles."""
from __future__ import annotations

import dataclasses

import numpy as np
import pytest

from core.synthetic import (GeneratorConfig, domain_randomised_config, draw_params, render_galaxy)
from training.ml.augment import AugmentConfig, augment_batch, describe
from training.ml.domain_randomisation import DomainConfig
from training.ml.pipeline import PROFILES, augment_overrides, generator_config
from training.ml.reject_calibration import apply_to_head, choose, fit_platt


def _batch(n: int = 8) -> np.ndarray:
    rng = np.random.default_rng(0)
    yy, xx = np.mgrid[0:128, 0:128]
    disk = 200 * np.exp(-np.hypot((xx - 63.5) / 30, (yy - 63.5) / 10))
    images = np.repeat(disk[None, ..., None], n, 0).repeat(3, -1) + rng.normal(0, 2, (n, 128, 128, 3))
    return np.clip(images, 0, 255).astype(np.float32)


def test_domain_stage_is_deterministic_and_in_range() -> None:
    import tensorflow as tf

    config = AugmentConfig(rotation_max_deg=25.0, domain=DomainConfig())
    images = _batch()
    colour = tf.constant([True, False] * 4)
    invert = tf.zeros([8], tf.bool)
    one = augment_batch(images, tf.constant([3, 4]), is_colour=colour, invert=invert, config=config).numpy()
    two = augment_batch(images, tf.constant([3, 4]), is_colour=colour, invert=invert, config=config).numpy()
    other = augment_batch(images, tf.constant([3, 5]), is_colour=colour, invert=invert, config=config).numpy()
    assert one.shape == images.shape
    assert np.array_equal(one, two) and not np.array_equal(one, other)
    assert one.min() >= 0 and one.max() <= 255 and np.array_equal(one, np.round(one))
    grey = one[1::2]
    assert np.abs(grey[..., 0] - grey[..., 1]).mean() < 1.0  # grey stays grey (JPEG rounding aside)


def test_domain_config_round_trips_through_json_overrides() -> None:
    import json

    overrides = json.loads(json.dumps(augment_overrides(PROFILES["robust"], "regression")))
    config = AugmentConfig(**overrides)
    assert isinstance(config.domain, DomainConfig) and config.domain == DomainConfig()
    assert tuple(describe(config)["domain"]["jpeg_quality_range"]) == (40, 100)
    reject = AugmentConfig(**augment_overrides(PROFILES["robust"], "reject"))
    assert reject.domain.star_peak_max < 0.2 and reject.inverted_fraction_of_grey == 0.0


def test_old_recipe_profiles_are_unchanged() -> None:
    for name in ("quick", "long", "full", "tiny"):
        profile = PROFILES[name]
        assert not profile.domain_randomisation and profile.reject_max_clean_flagged is None
        assert augment_overrides(profile, "regression") == profile.augment
        assert generator_config(profile) == GeneratorConfig(reject_fraction=profile.reject_fraction)
    assert PROFILES["robust"].domain_augment and PROFILES["robust"].domain_generator


def test_default_generator_draws_are_unchanged_by_the_new_fields() -> None:
    params = draw_params(GeneratorConfig(), seed=11, index=3)
    assert params.stretch_mode == "asinh"
    widened = draw_params(dataclasses.replace(GeneratorConfig(), stretch_modes={"asinh": 1.0}), seed=11, index=3)
    assert params == widened


@pytest.mark.parametrize("mode", ["log", "sqrt", "linear", "power"])
def test_every_stretch_law_renders(mode: str) -> None:
    config = domain_randomised_config(stretch_modes={mode: 1.0})
    galaxy = render_galaxy(draw_params(config, seed=2, index=1))
    assert galaxy.truth["stretch_mode"] == mode
    assert galaxy.colour.shape == (128, 128, 3) and galaxy.colour.max() > 60 and galaxy.r.max() > 60


def test_platt_fit_and_clean_cap() -> None:
    rng = np.random.default_rng(1)
    y = np.r_[np.zeros(2000), np.ones(2000)]
    d = np.r_[rng.normal(-1, 1, 2000), rng.normal(2, 1, 2000)] * 3.0
    a, b = fit_platt(d, y)
    assert a > 0
    assert (1 / (1 + np.exp(-(a * d + b))) >= 0.5).mean() == pytest.approx(0.5, abs=0.1)
    calibration = choose(d, y, max_clean_flagged=0.02)
    assert calibration.clean_flagged <= 0.021
    assert calibration.b <= calibration.platt_b


def test_head_calibration_changes_log_odds_exactly() -> None:
    from training.ml.architectures import build_model

    model = build_model("compact", binary=True)
    x = np.random.default_rng(0).uniform(0, 255, (4, 128, 128, 3)).astype(np.float32)
    before = np.asarray(model.predict_on_batch(x))
    apply_to_head(model, 0.5, -1.0)
    after = np.asarray(model.predict_on_batch(x))
    d0 = np.log(before[:, 1] / before[:, 0])
    d1 = np.log(after[:, 1] / after[:, 0])
    np.testing.assert_allclose(d1, 0.5 * d0 - 1.0, atol=1e-4)
