"""Pixel scaling and the inclination ↔ tanh mapping are defined once and round-trip."""
from __future__ import annotations

import json

import numpy as np
import pytest

from training.ml import scaling


def test_pixel_scaling_round_trips_every_uint8_value() -> None:
    raw = np.arange(256, dtype=np.uint8)
    scaled = scaling.scale_pixels(raw)
    assert scaled.dtype == np.float32 and scaled[0] == 0.0 and scaled[-1] == pytest.approx(1.0)
    np.testing.assert_array_equal(scaling.unscale_pixels(scaled), raw)


def test_the_model_layer_applies_the_same_scaling() -> None:
    layer = scaling.rescaling_layer()
    raw = np.arange(256, dtype=np.float32).reshape(1, 16, 16, 1)
    np.testing.assert_allclose(np.asarray(layer(raw)), scaling.scale_pixels(raw), rtol=1e-6)


def test_target_mapping_round_trips() -> None:
    assert scaling.inclination_to_target(45.0) == -1.0
    assert scaling.inclination_to_target(90.0) == 1.0
    assert scaling.inclination_to_target(67.5) == 0.0
    degrees = np.linspace(45, 90, 91)
    np.testing.assert_allclose(scaling.target_to_inclination(scaling.inclination_to_target(degrees)), degrees)
    # The original's formula, y = 2 (i - 45) / 45 - 1, is the same line.
    np.testing.assert_allclose(scaling.inclination_to_target(degrees), 2 * (degrees - 45) / 45 - 1)


def test_clipped_inverse_stays_in_range() -> None:
    np.testing.assert_array_equal(scaling.target_to_inclination(np.array([-1.5, 1.5]), clip=True), [45.0, 90.0])


def test_preprocessing_spec_is_json_and_records_the_scale() -> None:
    spec = json.loads(json.dumps(scaling.PREPROCESSING_SPEC))
    assert spec["scaling"]["scale"] == scaling.PIXEL_SCALE and spec["scaling"]["offset"] == 0.0
    assert spec["input"]["range"] == [0, 255]
