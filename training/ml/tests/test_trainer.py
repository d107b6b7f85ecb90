"""Training resumes exactly (optimizer state included); flavour splits never leak test galaxies."""
import json

import numpy as np

from training.ml.augment import ImageSet
from training.ml.trainer import TrainConfig, flavour_splits, train


def tiny_images(n: int = 16, seed: int = 0) -> ImageSet:
    rng = np.random.default_rng(seed)
    return ImageSet(
        colour=rng.integers(0, 80, (n, 128, 128, 3), dtype=np.uint8),
        g=rng.integers(0, 80, (n, 128, 128), dtype=np.uint8),
        r=rng.integers(0, 80, (n, 128, 128), dtype=np.uint8),
        i=rng.integers(0, 80, (n, 128, 128), dtype=np.uint8),
        labels=np.linspace(45, 90, n),
    )


def config(tmp_path, name: str, epochs: int) -> TrainConfig:
    return TrainConfig(architecture="compact", epochs=epochs, images_per_epoch=32, batch_size=16, patience=10,
                       seed=3, output_dir=str(tmp_path / name))


def optimizer_state(path) -> list[np.ndarray]:  # noqa: ANN001
    import keras

    model = keras.saving.load_model(path)
    return [np.asarray(v) for v in model.optimizer.variables] + [np.asarray(w) for w in model.weights]


def test_interrupted_run_resumes_bit_identically(tmp_path) -> None:
    images, val = tiny_images(), tiny_images(8, seed=1)
    straight = train(config(tmp_path, "straight", 2), images, val)
    train(config(tmp_path, "resumed", 1), images, val)  # "crash" after epoch 1
    state = json.loads((tmp_path / "resumed" / "state.json").read_text())
    assert state["epoch"] == 1
    resumed = train(config(tmp_path, "resumed", 2), images, val)
    assert resumed.epochs_run == straight.epochs_run == 2
    a = optimizer_state(tmp_path / "straight" / "checkpoint.keras")
    b = optimizer_state(tmp_path / "resumed" / "checkpoint.keras")
    assert len(a) == len(b) and any(v.size > 1 for v in a)
    for x, y in zip(a, b, strict=True):
        np.testing.assert_array_equal(x, y)
    assert resumed.history["loss"] == straight.history["loss"]
    assert json.loads((tmp_path / "resumed" / "history.json").read_text())["val_loss"] == straight.history["val_loss"]


def test_progress_is_reported(tmp_path) -> None:
    seen = []
    train(config(tmp_path, "progress", 1), tiny_images(), tiny_images(8, seed=1), progress=seen.append)
    assert [p.step for p in seen] == [1, 2] and seen[-1].epoch == 1 and seen[-1].eta_seconds >= 0


def test_flavour_splits() -> None:
    ids = np.arange(1000)
    splits = flavour_splits(np.repeat(ids, 4), seed=5)  # four bands per galaxy
    test = set(splits["test"])
    assert len(test) == 150 and len(splits["flavour0"]) == 850
    for flavour in (1, 2, 3):
        subset = set(splits[f"flavour{flavour}"])
        assert len(subset) == 566 and not subset & test and subset <= set(splits["flavour0"])
    assert set(splits["flavour1"]) != set(splits["flavour2"])
