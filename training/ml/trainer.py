"""The training loop: Keras ``fit`` one epoch at a time, with a checkpoint every epoch that resumes exactly.

The original rebuilt and recompiled the network for every batch file, resetting Adam each time. Here
the model (weights and optimizer state) is saved after every epoch together with a small JSON state
(epoch, history, best validation loss); a restarted run loads both and continues with the next epoch.
Augmentation is a pure function of (seed, epoch), so the resumed run sees exactly the batches the
uninterrupted run would have seen. Early stopping watches the validation loss.
"""
from __future__ import annotations

import json
import math
import time
from collections.abc import Callable
from dataclasses import asdict, dataclass, field
from pathlib import Path
from typing import Any

import numpy as np

from .augment import AugmentConfig, ImageSet, make_training_dataset

CHECKPOINT = "checkpoint.keras"
STATE = "state.json"
HISTORY = "history.json"
BEST = "best.keras"


@dataclass
class TrainConfig:
    architecture: str = "compact"
    kind: str = "regression"  # or "reject"
    flavour: int = 0
    epochs: int = 10
    images_per_epoch: int = 2048
    batch_size: int = 64
    learning_rate: float = 1e-3
    patience: int = 4
    seed: int = 0
    output_dir: str = "runs/run"
    augment: dict[str, Any] = field(default_factory=dict)

    @property
    def output(self) -> Path:
        return Path(self.output_dir)


@dataclass
class Progress:
    epoch: int
    epochs: int
    step: int
    steps: int
    loss: float
    eta_seconds: float


@dataclass
class TrainResult:
    model_path: Path
    history: dict[str, list[float]]
    epochs_run: int
    stopped_early: bool
    seconds: float


def flavour_splits(ids: np.ndarray, *, seed: int, test_fraction: float = 0.15) -> dict[str, np.ndarray]:
    """Flavour 0 = the whole training set, flavours 1–3 = overlapping 67% subsets of it; the test set is
    split off first, by galaxy, so no flavour ever sees a test galaxy (in any band)."""
    unique = np.unique(np.asarray(ids))
    rng = np.random.default_rng(seed)
    shuffled = rng.permutation(unique)
    n_test = int(round(test_fraction * unique.size))
    test, train = np.sort(shuffled[:n_test]), shuffled[n_test:]
    splits = {"test": test, "flavour0": np.sort(train)}
    for flavour in (1, 2, 3):
        subset_rng = np.random.default_rng(seed * 100 + flavour)
        splits[f"flavour{flavour}"] = np.sort(subset_rng.choice(train, size=(2 * train.size) // 3, replace=False))
    return splits


def _compile(model, config: TrainConfig) -> None:  # noqa: ANN001
    import keras

    optimizer = keras.optimizers.Adam(learning_rate=config.learning_rate)
    if config.kind == "regression":
        model.compile(optimizer=optimizer, loss="mse", metrics=["mae"])
    else:
        model.compile(optimizer=optimizer, loss="sparse_categorical_crossentropy", metrics=["accuracy"])


def _validation_arrays(images: ImageSet, kind: str) -> tuple[np.ndarray, np.ndarray]:
    """Colour and r-band views of every validation galaxy, unaugmented."""
    x = np.concatenate([images.colour, np.repeat(images.r[..., None], 3, -1)]).astype(np.float32)
    labels = np.concatenate([images.labels, images.labels])
    y = (labels - 67.5) / 22.5 if kind == "regression" else labels.astype(np.int32)
    return x, y.astype(np.float32 if kind == "regression" else np.int32)


def train(config: TrainConfig, train_images: ImageSet, val_images: ImageSet, *,
          progress: Callable[[Progress], None] | None = None) -> TrainResult:
    """Fit, or resume fitting, ``config.architecture`` in ``config.output``."""
    import keras

    from .architectures import build_model

    out = config.output
    out.mkdir(parents=True, exist_ok=True)
    state_path, checkpoint_path = out / STATE, out / CHECKPOINT
    if state_path.exists() and checkpoint_path.exists():
        state = json.loads(state_path.read_text())
        model = keras.saving.load_model(checkpoint_path)  # weights and optimizer state
    else:
        keras.utils.set_random_seed(config.seed)
        model = build_model(config.architecture, binary=config.kind != "regression")
        _compile(model, config)
        state = {"epoch": 0, "history": {}, "best_val_loss": math.inf, "bad_epochs": 0, "seconds": 0.0,
                 "config": asdict(config)}
    val_x, val_y = _validation_arrays(val_images, config.kind)
    augment = AugmentConfig(**config.augment)
    steps = int(math.ceil(config.images_per_epoch / config.batch_size))
    started = time.perf_counter()
    stopped_early = False

    class Reporter(keras.callbacks.Callback):
        def __init__(self, epoch: int) -> None:
            super().__init__()
            self.epoch_index = epoch
            self.t0 = time.perf_counter()

        def on_train_batch_end(self, batch: int, logs: dict | None = None) -> None:
            if progress is None:
                return
            done_steps = self.epoch_index * steps + batch + 1
            elapsed = state["seconds"] + time.perf_counter() - started
            per_step = elapsed / max(done_steps - 0, 1)
            remaining = (config.epochs * steps - done_steps) * per_step
            progress(Progress(epoch=self.epoch_index + 1, epochs=config.epochs, step=batch + 1, steps=steps,
                              loss=float((logs or {}).get("loss", math.nan)), eta_seconds=remaining))

    for epoch in range(state["epoch"], config.epochs):
        dataset = make_training_dataset(train_images, kind=config.kind, n_per_epoch=config.images_per_epoch,
                                        batch_size=config.batch_size, seed=config.seed, epoch=epoch, config=augment)
        logs = model.fit(dataset, epochs=1, verbose=0, shuffle=False, validation_data=(val_x, val_y),
                         validation_batch_size=128, callbacks=[Reporter(epoch)]).history
        for key, values in logs.items():
            state["history"].setdefault(key, []).append(float(values[-1]))
        val_loss = float(logs["val_loss"][-1])
        if val_loss < state["best_val_loss"]:
            state["best_val_loss"], state["bad_epochs"] = val_loss, 0
            model.save(out / BEST)
        else:
            state["bad_epochs"] += 1
        state["epoch"] = epoch + 1
        state["seconds"] += time.perf_counter() - started
        started = time.perf_counter()
        model.save(checkpoint_path)
        # State is written after the checkpoint: a crash in between replays one epoch, never skips one.
        tmp = out / f"{STATE}.tmp"
        tmp.write_text(json.dumps(state))
        tmp.replace(state_path)
        (out / HISTORY).write_text(json.dumps(state["history"], indent=1))
        if state["bad_epochs"] >= config.patience:
            stopped_early = True
            break
    return TrainResult(model_path=out / BEST, history=state["history"], epochs_run=state["epoch"],
                       stopped_early=stopped_early, seconds=state["seconds"])
