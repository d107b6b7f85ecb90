"""Training resumes bit-identically (weights, optimizer state, dropout RNG, history); early stopping,
progress and history work; flavour splits never leak test galaxies.

Tiny 32x32 images keep each fit short; most of the cost is Keras tracing the train step once per run,
so the runs are shared by the tests through a module fixture.
"""
from __future__ import annotations

import json
import math
import shutil
from dataclasses import dataclass
from pathlib import Path
from typing import TYPE_CHECKING

import numpy as np
import pytest

from training.ml.augment import ImageSet
from training.ml.trainer import (
    Progress,
    TrainConfig,
    TrainResult,
    flavour_splits,
    load_state,
    train,
    update_early_stopping,
)

if TYPE_CHECKING:
    import keras

SHAPE = (32, 32, 3)


def tiny_images(n: int = 24, seed: int = 0) -> ImageSet:
    rng = np.random.default_rng(seed)
    return ImageSet(
        colour=rng.integers(0, 80, (n, *SHAPE), dtype=np.uint8),
        g=rng.integers(0, 80, (n, *SHAPE[:2]), dtype=np.uint8),
        r=rng.integers(0, 80, (n, *SHAPE[:2]), dtype=np.uint8),
        i=rng.integers(0, 80, (n, *SHAPE[:2]), dtype=np.uint8),
        labels=np.linspace(45, 90, n),
    )


def make_config(folder: Path, epochs: int, **overrides: object) -> TrainConfig:
    # model4 has dropout and batch norm: both must resume exactly.
    settings = dict(architecture="model4", epochs=epochs, steps_per_epoch=2, batch_size=8, patience=10, seed=3,
                    input_shape=SHAPE, output_dir=str(folder))
    return TrainConfig(**{**settings, **overrides})  # type: ignore[arg-type]


@dataclass
class Runs:
    folder: Path
    straight: TrainResult
    straight_progress: list[Progress]
    first_epoch: TrainResult
    resumed: TrainResult


@pytest.fixture(scope="module")
def runs(tmp_path_factory: pytest.TempPathFactory) -> Runs:
    folder = tmp_path_factory.mktemp("runs")
    data = tiny_images(), tiny_images(6, seed=1)
    seen: list[Progress] = []
    straight = train(make_config(folder / "straight", 3), *data, progress_callback=seen.append)

    first_epoch = train(make_config(folder / "resumed", 1), *data)  # stops after epoch 1
    # Keep epoch 1's files: the resumed run prunes old checkpoints later.
    (folder / "epoch1").mkdir()
    shutil.copy(folder / "resumed" / "checkpoints" / "epoch-0001.keras", folder / "epoch1")
    shutil.copy(folder / "resumed" / "state.json", folder / "epoch1")

    def crash_in_epoch_2(p: Progress) -> None:
        if p.epoch == 2 and p.step == 1:
            raise KeyboardInterrupt  # a killed worker mid-epoch: that epoch's work is lost, nothing else
    with pytest.raises(KeyboardInterrupt):
        train(make_config(folder / "resumed", 3), *data, progress_callback=crash_in_epoch_2)
    assert load_state(folder / "resumed")["epoch"] == 1

    resumed = train(make_config(folder / "resumed", 3), *data)
    return Runs(folder, straight, seen, first_epoch, resumed)


def full_state(model: keras.Model) -> list[np.ndarray]:
    """Every optimizer variable (iterations, learning rate, Adam moments) and every model variable
    (weights, batch-norm statistics, dropout RNG states)."""
    return [np.asarray(v) for v in model.optimizer.variables] + [np.asarray(v) for v in model.variables]


def assert_identical(a: list[np.ndarray], b: list[np.ndarray]) -> None:
    assert len(a) == len(b)
    for x, y in zip(a, b, strict=True):
        np.testing.assert_array_equal(x, y)


def test_a_saved_checkpoint_reloads_bit_identically(runs: Runs) -> None:
    import keras

    from training.ml.trainer import _restore_seed_generators

    model = runs.first_epoch.model  # in memory after one epoch
    assert model is not None and runs.first_epoch.checkpoint_path.name == "epoch-0001.keras"
    reloaded = keras.saving.load_model(runs.folder / "epoch1" / "epoch-0001.keras")
    _restore_seed_generators(reloaded, load_state(runs.folder / "epoch1")["rng"])
    assert int(np.asarray(reloaded.optimizer.iterations)) == 2
    filled = sum(np.asarray(v).size for v in reloaded.optimizer.variables if np.any(np.asarray(v) != 0))
    assert filled > 10_000  # Adam moments are really there, not a fresh optimizer
    assert_identical(full_state(model), full_state(reloaded))


def test_an_interrupted_run_resumes_bit_identically(runs: Runs) -> None:
    assert runs.resumed.epochs_run == runs.straight.epochs_run == 3
    assert_identical(full_state(runs.straight.model), full_state(runs.resumed.model))
    assert runs.resumed.history == runs.straight.history
    assert json.loads((runs.folder / "resumed" / "history.json").read_text()) == runs.straight.history
    # Only the newest checkpoints stay; the dropout RNG states are in the state file.
    assert sorted(p.name for p in (runs.folder / "resumed" / "checkpoints").iterdir()) == [
        "epoch-0002.keras", "epoch-0003.keras"]
    assert len(load_state(runs.folder / "resumed")["rng"]) == 2  # model4's two dropout layers


def test_progress_and_history(runs: Runs) -> None:
    train_reports = [p for p in runs.straight_progress if p.phase == "train"]
    assert [(p.epoch, p.step) for p in train_reports] == [(e, s) for e in (1, 2, 3) for s in (1, 2)]
    assert all(p.eta_seconds >= 0 and math.isfinite(p.loss) and p.steps == 2 for p in runs.straight_progress)
    assert train_reports[-1].eta_seconds < train_reports[0].eta_seconds or train_reports[0].eta_seconds == 0
    ends = [p for p in runs.straight_progress if p.phase == "epoch_end"]
    assert [p.epoch for p in ends] == [1, 2, 3] and {"loss", "mae", "val_loss", "val_mae"} <= set(ends[0].metrics)
    history = json.loads((runs.folder / "straight" / "history.json").read_text())
    assert all(len(values) == 3 for values in history.values())
    assert (runs.folder / "straight" / "best.keras").exists()
    assert 1 <= runs.straight.best_epoch <= 3
    assert runs.straight.best_val_loss == min(history["val_loss"])


def test_a_finished_run_is_not_trained_again_and_other_settings_are_refused(runs: Runs) -> None:
    data = tiny_images(), tiny_images(6, seed=1)
    again = train(make_config(runs.folder / "straight", 3), *data)
    assert again.epochs_run == 3 and again.history == runs.straight.history
    with pytest.raises(ValueError, match="other settings"):
        train(make_config(runs.folder / "straight", 4, learning_rate=0.01), *data)


def test_early_stopping_counts_epochs_without_improvement() -> None:
    state = {"best_val_loss": math.inf, "best_epoch": 0, "bad_epochs": 0, "stopped_early": False}
    decisions = [update_early_stopping(state, loss, epoch=e, patience=2)
                 for e, loss in enumerate([1.0, 0.8, 0.9, 0.7, 0.7, float("nan")], start=1)]
    assert decisions == [True, True, False, True, False, False]
    assert state["best_epoch"] == 4 and state["best_val_loss"] == 0.7 and state["stopped_early"]


def test_reject_models_train_on_classes(tmp_path: Path) -> None:
    images = tiny_images(12)
    images.labels = np.array([0, 1] * 6, dtype=float)
    result = train(make_config(tmp_path / "reject", 1, kind="reject", architecture="compact"), images, images)
    assert "val_accuracy" in result.history and result.model.output_shape == (None, 2)


def test_flavour_splits_are_disjoint_from_test_and_the_right_sizes() -> None:
    ids = np.arange(1000, 3000)
    splits = flavour_splits(np.repeat(ids, 4), seed=5)  # one row per band: four rows per galaxy
    test, full = set(splits["test"].tolist()), set(splits["flavour0"].tolist())
    assert len(test) == 300 and len(full) == 1700
    assert not test & full and test | full == set(ids.tolist())
    subsets = [set(splits[f"flavour{k}"].tolist()) for k in (1, 2, 3)]
    for subset in subsets:
        assert len(subset) == 1700 * 2 // 3 and not subset & test and subset <= full
    assert subsets[0] != subsets[1] != subsets[2] and subsets[0] & subsets[1]  # different but overlapping
    again = flavour_splits(np.repeat(ids, 4), seed=5)
    assert all(np.array_equal(splits[k], again[k]) for k in splits)
    assert not np.array_equal(flavour_splits(ids, seed=6)["test"], splits["test"])


def test_a_cosine_schedule_decays_and_resumes_bit_identically(tmp_path: Path) -> None:
    data = tiny_images(), tiny_images(6, seed=1)
    cosine = dict(lr_schedule="cosine", learning_rate=2e-3, min_lr_fraction=0.1)
    straight = train(make_config(tmp_path / "straight", 2, **cosine), *data)

    def crash_in_epoch_2(p: Progress) -> None:
        if p.epoch == 2 and p.step == 1:
            raise KeyboardInterrupt
    with pytest.raises(KeyboardInterrupt):
        train(make_config(tmp_path / "resumed", 2, **cosine), *data, progress_callback=crash_in_epoch_2)
    resumed = train(make_config(tmp_path / "resumed", 2, **cosine), *data)
    assert_identical(full_state(straight.model), full_state(resumed.model))
    # 2 epochs × 2 steps: the rate after the last step is the schedule's floor, not the starting rate.
    optimizer = straight.model.optimizer
    assert float(np.asarray(optimizer.learning_rate)) == pytest.approx(2e-4, rel=1e-5)
    # The schedule's length is part of the run: a cosine run cannot be stretched to more epochs.
    with pytest.raises(ValueError, match="epochs"):
        train(make_config(tmp_path / "resumed", 3, **cosine), *data)


def test_unknown_schedules_are_refused() -> None:
    with pytest.raises(ValueError, match="lr_schedule"):
        TrainConfig(lr_schedule="step")


def test_a_reject_model_can_start_from_a_regression_network(tmp_path: Path) -> None:
    from training.ml.architectures import build_model
    from training.ml.trainer import copy_matching_weights

    regression = build_model("compact", input_shape=SHAPE)
    reject = build_model("compact", binary=True, input_shape=SHAPE)
    copied = copy_matching_weights(regression, reject)
    assert "stem" in copied and "sep3b" in copied and "fc_out_class" not in copied
    assert "fc" not in copied  # the binary head pools twice as many features: other shape, left fresh
    np.testing.assert_array_equal(reject.get_layer("stem").get_weights()[0], regression.get_layer("stem").get_weights()[0])

    regression.save(tmp_path / "regression.keras")
    images = tiny_images(12)
    images.labels = np.array([0, 1, 2, 3] * 3, dtype=float)  # reason codes: every k ≥ 1 is "rejected"
    # Zero epochs: the network as it starts, which must carry the regression network's convolutions.
    start = train(make_config(tmp_path / "reject", 0, kind="reject", architecture="compact",
                              init_weights=str(tmp_path / "regression.keras")), images, images)
    assert start.model.output_shape == (None, 2)
    for name in ("stem", "sep2a", "bn3"):
        for a, b in zip(start.model.get_layer(name).get_weights(), regression.get_layer(name).get_weights(), strict=True):
            np.testing.assert_array_equal(a, b)
