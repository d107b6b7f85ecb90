"""The original networks have exactly the original parameter counts; scaling lives inside the model."""
import numpy as np
import pytest

from training.ml.architectures import build_model, inclination_to_target, target_to_inclination


@pytest.mark.parametrize(
    ("name", "binary", "count"),
    [("model4", False, 1_631_169), ("model5", False, 2_522_705), ("model6", False, 1_680_369),
     ("model4", True, 1_631_178), ("model5", True, 2_522_714), ("model6", True, 1_680_378)],
)
def test_parameter_counts_equal_the_originals(name: str, binary: bool, count: int) -> None:
    assert build_model(name, binary=binary).count_params() == count


def test_model4_non_trainable_matches_the_original() -> None:
    model = build_model("model4")
    non_trainable = sum(int(np.prod(w.shape)) for w in model.non_trainable_weights)
    assert non_trainable == 64


def test_pixel_scaling_is_inside_the_model() -> None:
    model = build_model("compact")
    assert model.get_layer("pixel_scaling").scale == pytest.approx(1 / 255)
    out = model(np.full((1, 128, 128, 3), 255.0, dtype=np.float32), training=False)
    assert out.shape == (1, 1) and -1.0 <= float(out[0, 0]) <= 1.0


def test_target_mapping_round_trips() -> None:
    assert inclination_to_target(45.0) == -1.0 and inclination_to_target(90.0) == 1.0
    assert target_to_inclination(inclination_to_target(63.0)) == pytest.approx(63.0)


def test_unknown_architecture() -> None:
    with pytest.raises(ValueError, match="Unknown architecture"):
        build_model("model7")
