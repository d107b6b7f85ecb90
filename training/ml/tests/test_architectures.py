"""The original networks have exactly the original parameter counts, and pixel scaling lives inside them."""
from __future__ import annotations

from collections.abc import Callable

import keras
import numpy as np
import pytest

from training.ml.architectures import ARCHITECTURES, build_model, model4, model5, model6
from training.ml.scaling import PIXEL_SCALE, PIXEL_SCALING_LAYER, check_model_scaling


@pytest.mark.parametrize(
    ("name", "binary", "count"),
    [("model4", False, 1_631_169), ("model5", False, 2_522_705), ("model6", False, 1_680_369),
     ("model4", True, 1_631_178), ("model5", True, 2_522_714), ("model6", True, 1_680_378)],
)
def test_parameter_counts_equal_the_originals(name: str, binary: bool, count: int) -> None:
    model = build_model(name, binary=binary)  # at the original 128x128x3 input
    assert model.input_shape == (None, 128, 128, 3)
    assert model.count_params() == count
    assert model.output_shape == ((None, 2) if binary else (None, 1))


@pytest.mark.parametrize(("builder", "non_trainable"), [(model4, 64), (model5, 1024), (model6, 128)])
def test_batch_norm_statistics_match_the_original_non_trainable_counts(builder: Callable[..., keras.Model],
                                                                       non_trainable: int) -> None:
    model = builder()
    assert sum(int(np.prod(w.shape)) for w in model.non_trainable_weights) == non_trainable


def test_pixel_scaling_is_the_first_layer_of_every_model() -> None:
    for name in ARCHITECTURES:
        model = build_model(name, input_shape=(96, 96, 3))  # model5 needs at least 76x76
        assert model.layers[1].name == PIXEL_SCALING_LAYER
        assert model.get_layer(PIXEL_SCALING_LAYER).scale == pytest.approx(PIXEL_SCALE)
        check_model_scaling(model)


def test_regression_output_is_bounded_and_binary_sums_to_one() -> None:
    x = np.full((2, 64, 64, 3), 255.0, dtype=np.float32)
    y = np.asarray(build_model("model6", input_shape=(64, 64, 3))(x, training=False))
    assert y.shape == (2, 1) and np.all(np.abs(y) <= 1.0)
    p = np.asarray(build_model("model4", binary=True, input_shape=(64, 64, 3))(x, training=False))
    np.testing.assert_allclose(p.sum(axis=1), 1.0, rtol=1e-6)


def test_unknown_architecture() -> None:
    with pytest.raises(ValueError, match="Unknown architecture"):
        build_model("model7")
