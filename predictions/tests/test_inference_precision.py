"""The bf16 inference path: it really computes in bf16, it matches fp32 within the accepted bound on the
real architectures, and the serving singleton honours the precision setting."""
from __future__ import annotations

from pathlib import Path
from typing import Any

import numpy as np
import pytest

from training.ml import ensemble as ensemble_module
from training.ml.ensemble import BF16_RMS_BOUND_DEG, FusedEnsemble, resolve_precision
from tests.ensembles import random_galaxy_images, write_full_ensemble


@pytest.fixture(scope="module")
def full_architectures(tmp_path_factory: pytest.TempPathFactory) -> Path:
    """model4, model5 and model6 (one regression and one reject network each) with random weights."""
    folder = tmp_path_factory.mktemp("full") / "ensemble"
    write_full_ensemble(folder, flavours=1)
    return folder


def member_values(predictions: list[Any], name: str) -> np.ndarray:  # noqa: ANN401
    values = [p.members[name].inclination if p.members[name].inclination is not None else p.members[name].reject_percent
              for p in predictions]
    return np.array(values, dtype=np.float64)


def test_precision_names_resolve(monkeypatch: pytest.MonkeyPatch) -> None:
    assert resolve_precision("fp32") == "fp32" and resolve_precision(" BF16 ") == "bf16"
    monkeypatch.setattr(ensemble_module, "cpu_has_native_bf16", lambda: True)
    assert resolve_precision("auto") == "bf16" and resolve_precision(None) == "bf16"
    monkeypatch.setattr(ensemble_module, "cpu_has_native_bf16", lambda: False)
    assert resolve_precision("auto") == "fp32"
    with pytest.raises(ValueError, match="Unknown precision"):
        resolve_precision("int4")


def test_bf16_matches_fp32_on_the_real_architectures(full_architectures: Path) -> None:
    images = random_galaxy_images(6, seed=3)
    fp32 = FusedEnsemble(full_architectures, tta="2", precision="fp32")
    bf16 = FusedEnsemble(full_architectures, tta="2", precision="bf16")
    convolutions = [layer for member in bf16.model.layers[1:] for layer in member.layers if "conv" in layer.name]
    assert convolutions and all(layer.compute_dtype == "bfloat16" for layer in convolutions)
    assert all(member.layers[-1].compute_dtype == "float32" for member in bf16.model.layers[1:])  # the heads
    reference, reduced = fp32.predict(images), bf16.predict(images)
    for spec in fp32.manifest.members:
        a, b = member_values(reference, spec.name), member_values(reduced, spec.name)
        rms = float(np.sqrt(np.mean((a - b) ** 2)))
        # Inclinations in degrees; reject likelihoods in percent, held to the same number.
        assert rms <= BF16_RMS_BOUND_DEG, (spec.name, rms)
    medians = np.array([p.inclination_median for p in reference]) - np.array([p.inclination_median for p in reduced])
    assert float(np.sqrt(np.mean(medians ** 2))) <= BF16_RMS_BOUND_DEG


def test_views_beyond_one_call_are_chunked(full_architectures: Path, monkeypatch: pytest.MonkeyPatch) -> None:
    ensemble = FusedEnsemble(full_architectures, tta="2", precision="fp32")
    images = random_galaxy_images(3, seed=5)
    whole = ensemble.predict(images)
    monkeypatch.setattr(ensemble_module, "MAX_VIEWS_PER_CALL", 4)  # 6 views → calls of 4 and 2
    chunked = ensemble.predict(images)
    for spec in ensemble.manifest.members:
        np.testing.assert_allclose(member_values(whole, spec.name), member_values(chunked, spec.name), atol=1e-3)


@pytest.mark.django_db
def test_serving_follows_the_precision_setting(settings: Any, active_tiny_ensemble: Any) -> None:  # noqa: ANN401
    from predictions.inference import NoActiveEnsemble, active_ensemble

    settings.PREDICTION_PRECISION = "fp32"
    assert active_ensemble().precision == "fp32"
    settings.PREDICTION_PRECISION = "bf16"
    assert active_ensemble().precision == "bf16"  # reloaded, not the cached fp32 one
    settings.PREDICTION_PRECISION = "fp16"
    with pytest.raises(NoActiveEnsemble, match="Unknown precision"):
        active_ensemble()
