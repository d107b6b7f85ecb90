"""The training loop: Keras ``fit`` one epoch at a time, with a checkpoint after every epoch that resumes
exactly, early stopping on a validation split, a JSON metrics history, and a progress hook.

The original rebuilt and recompiled its network for every batch file, which reset Adam each time. Here,
after every epoch, the run folder receives (each write atomic, the state last):

- ``checkpoints/epoch-NNNN.keras``: weights and optimizer state (moments, iteration count);
- ``state.json``: epoch number, the checkpoint's name, history, early-stopping counters, and the dropout
  RNG states (Keras does not save those in ``.keras`` files; without them a resumed run draws other masks);
- ``history.json``: the metrics so far; ``best.keras``: the best network by validation loss, without
  optimizer, as served.

A run started on a folder that holds a state resumes from it. Augmentation is a pure function of
(seed, epoch), so the resumed run sees the very batches the uninterrupted run would have seen, and ends
with bit-identical weights and optimizer state. A crash mid-epoch loses only that epoch's progress.

Keras places the model on a GPU when TensorFlow sees one; nothing here is device-specific.
"""
from __future__ import annotations

import json
import math
import os
import time
from collections.abc import Callable, Mapping, Sequence
from dataclasses import asdict, dataclass, field
from pathlib import Path
from typing import TYPE_CHECKING, Any

import numpy as np

from .augment import KINDS, AugmentConfig, ImageSet, as_image_set, describe, make_eval_dataset, make_training_dataset
from .scaling import INPUT_SHAPE, PREPROCESSING_SPEC

if TYPE_CHECKING:  # pragma: no cover - typing only
    import keras

STATE = "state.json"
HISTORY = "history.json"
BEST = "best.keras"
CHECKPOINTS = "checkpoints"
# Settings that may change between a run and its resumption without invalidating the checkpoints.
RESUMABLE_CHANGES = frozenset({"epochs", "patience", "output_dir", "keep_checkpoints"})


@dataclass
class TrainConfig:
    """Everything that defines a training run; stored in ``state.json`` and checked on resume."""

    architecture: str = "compact"  # a key of architectures.ARCHITECTURES
    kind: str = "regression"  # or "reject" (binary, class 1 = rejected)
    flavour: int = 0  # 0 = full training set, 1–3 = 67% subsets: the caller passes flavour_splits' subset
    epochs: int = 10
    batch_size: int = 64
    learning_rate: float = 1e-3  # Adam; the original used Keras' default 0.001
    # "cosine": decay to min_lr_fraction × learning_rate over epochs × steps (the schedule is saved with
    # the optimizer, so a resumed run continues it); "constant": the original's fixed rate.
    lr_schedule: str = "constant"
    min_lr_fraction: float = 0.02
    patience: int = 4  # epochs without a lower validation loss before stopping
    seed: int = 0
    output_dir: str = "runs/run"
    steps_per_epoch: int | None = None  # batches per epoch; if None, images_per_epoch / batch_size
    images_per_epoch: int = 2048
    input_shape: tuple[int, int, int] = INPUT_SHAPE
    val_modes: tuple[str, ...] = ("colour", "r", "inverted")  # views of each validation galaxy
    augment: dict[str, Any] = field(default_factory=dict)  # AugmentConfig overrides
    keep_checkpoints: int = 2  # per-epoch checkpoints kept on disk (the newest ones)
    # A trained .keras network to start from: every layer whose name and weight shapes match is copied
    # (e.g. a reject model starts from a regression member's convolutions; only the head is new).
    init_weights: str | None = None

    def __post_init__(self) -> None:
        if self.kind not in KINDS:
            raise ValueError(f"kind must be one of {KINDS}, not {self.kind!r}")
        if self.flavour not in (0, 1, 2, 3):
            raise ValueError(f"flavour must be 0–3, not {self.flavour}")
        if self.lr_schedule not in ("constant", "cosine"):
            raise ValueError(f"lr_schedule must be 'constant' or 'cosine', not {self.lr_schedule!r}")
        if self.batch_size < 1 or self.epochs < 0 or self.keep_checkpoints < 1:
            raise ValueError("batch_size and keep_checkpoints must be ≥ 1 and epochs ≥ 0")
        self.input_shape = tuple(self.input_shape)  # type: ignore[assignment]
        self.val_modes = tuple(self.val_modes)

    @property
    def output(self) -> Path:
        return Path(self.output_dir)

    @property
    def steps(self) -> int:
        return int(self.steps_per_epoch or math.ceil(self.images_per_epoch / self.batch_size))

    def to_json(self) -> dict[str, Any]:
        return json.loads(json.dumps(asdict(self)))  # tuples → lists, as read back from state.json


@dataclass
class Progress:
    """One report to the progress hook: after every training batch, and once per epoch after validation."""

    epoch: int  # 1-based
    epochs: int
    step: int  # 1-based within the epoch
    steps: int
    loss: float  # running mean over the epoch so far
    eta_seconds: float
    phase: str = "train"  # "train" after a batch, "epoch_end" after validation
    metrics: dict[str, float] = field(default_factory=dict)  # epoch metrics, on "epoch_end"


@dataclass
class TrainResult:
    model_path: Path  # best.keras: best validation loss, no optimizer
    history: dict[str, list[float]]
    epochs_run: int
    stopped_early: bool
    seconds: float  # training time summed over all sessions of this run
    best_epoch: int
    best_val_loss: float
    checkpoint_path: Path | None
    device: str
    model: keras.Model | None = field(default=None, repr=False)  # the in-memory model after the last epoch


def flavour_splits(ids: Sequence[int] | np.ndarray, *, seed: int, test_fraction: float = 0.15,
                   subset_fraction: float = 2 / 3) -> dict[str, np.ndarray]:
    """Split galaxy ids into ``test`` and the training sets of the four flavours.

    ``flavour0`` is the whole training set; ``flavour1``–``flavour3`` are overlapping random subsets of
    it (⌊n·2/3⌋ each, as the original's ``N*2//3``). The test set is split off first and by galaxy id,
    so repeated ids (one row per band) never straddle the split and no flavour sees a test galaxy.
    The original used a 15% test split (its documentation said 10%).
    """
    unique = np.unique(np.asarray(ids))
    if unique.size < 2:
        raise ValueError("Need at least two galaxies to split.")
    rng = np.random.default_rng([seed, 0])
    shuffled = rng.permutation(unique)
    n_test = min(max(1, int(round(test_fraction * unique.size))), unique.size - 1)
    test, train = shuffled[:n_test], shuffled[n_test:]
    splits = {"test": np.sort(test), "flavour0": np.sort(train)}
    n_subset = int(train.size * subset_fraction + 1e-9)
    for flavour in (1, 2, 3):
        subset_rng = np.random.default_rng([seed, flavour])
        splits[f"flavour{flavour}"] = np.sort(subset_rng.choice(train, size=n_subset, replace=False))
    return splits


# --- helpers ---------------------------------------------------------------------------------------


def _write_atomic(path: Path, text: str) -> None:
    tmp = path.with_name(path.name + ".tmp")
    tmp.write_text(text)
    os.replace(tmp, path)


def _save_atomic(model: keras.Model, path: Path) -> None:
    tmp = path.with_name(path.stem + ".tmp.keras")  # Keras insists on the .keras suffix
    model.save(tmp)
    os.replace(tmp, path)


def _seed_generator_variables(model: keras.Model) -> list[Any]:
    # In model order; their names carry process-global counters, so position is the stable key.
    return [v for v in model.variables if "seed_generator_state" in v.path]


def _seed_generator_states(model: keras.Model) -> list[list[int]]:
    """Dropout RNG states (not stored in ``.keras`` files), in model order."""
    return [[int(x) for x in np.asarray(v)] for v in _seed_generator_variables(model)]


def _restore_seed_generators(model: keras.Model, states: Sequence[Sequence[int]]) -> None:
    variables = _seed_generator_variables(model)
    if len(variables) != len(states):
        raise ValueError("The checkpoint's RNG states do not match the model's dropout layers.")
    for variable, value in zip(variables, states, strict=True):
        variable.assign(np.asarray(value, dtype=np.asarray(variable).dtype))


def copy_matching_weights(source: keras.Model, target: keras.Model) -> list[str]:
    """Copy every layer's weights from ``source`` into the same-named ``target`` layer when all shapes match;
    returns the names copied."""
    copied = []
    for layer in target.layers:
        try:
            origin = source.get_layer(layer.name)
        except ValueError:
            continue
        weights = origin.get_weights()
        if weights and [w.shape for w in weights] == [tuple(v.shape) for v in layer.weights]:
            layer.set_weights(weights)
            copied.append(layer.name)
    return copied


def _compile(model: keras.Model, config: TrainConfig) -> None:
    import keras

    rate: float | keras.optimizers.schedules.LearningRateSchedule = config.learning_rate
    if config.lr_schedule == "cosine":
        rate = keras.optimizers.schedules.CosineDecay(config.learning_rate, decay_steps=max(1, config.epochs * config.steps),
                                                      alpha=config.min_lr_fraction)
    optimizer = keras.optimizers.Adam(learning_rate=rate)
    if config.kind == "regression":
        model.compile(optimizer=optimizer, loss="mse", metrics=["mae"])
    else:
        model.compile(optimizer=optimizer, loss="sparse_categorical_crossentropy", metrics=["accuracy"])


def _serving_copy(model: keras.Model) -> keras.Model:
    """The same network and weights without optimizer state (a third of the size), for ``best.keras``."""
    import keras

    copy = keras.models.clone_model(model)
    copy.set_weights(model.get_weights())
    return copy


def _device() -> str:
    import tensorflow as tf

    gpus = tf.config.list_physical_devices("GPU")
    return f"GPU ({len(gpus)})" if gpus else "CPU"


def _check_resumable(saved: Mapping[str, Any], config: TrainConfig) -> None:
    current = config.to_json()
    # A cosine schedule's length is epochs × steps and is saved with the optimizer: other epochs, other run.
    resumable = RESUMABLE_CHANGES - {"epochs"} if config.lr_schedule == "cosine" else RESUMABLE_CHANGES
    changed = sorted(k for k in current if k not in resumable and saved.get(k, _DEFAULTS.get(k)) != current[k])
    if changed:
        raise ValueError(f"{config.output} holds a run with other settings ({', '.join(changed)}); "
                         "use another output_dir or delete it.")


_DEFAULTS = TrainConfig().to_json()  # for state files written before a setting existed


def update_early_stopping(state: dict[str, Any], val_loss: float, *, epoch: int, patience: int) -> bool:
    """Record one epoch's validation loss in ``state``; True if it is the best so far (strictly lower).
    Sets ``state["stopped_early"]`` once ``patience`` epochs in a row brought no improvement."""
    improved = bool(val_loss < state["best_val_loss"])  # NaN never improves
    if improved:
        state["best_val_loss"], state["best_epoch"], state["bad_epochs"] = val_loss, epoch, 0
    else:
        state["bad_epochs"] += 1
    state["stopped_early"] = state["bad_epochs"] >= patience
    return improved


def load_state(output_dir: str | Path) -> dict[str, Any] | None:
    """The saved state of a run folder, or None if it has not finished an epoch yet."""
    path = Path(output_dir) / STATE
    return json.loads(path.read_text()) if path.exists() else None


# --- training --------------------------------------------------------------------------------------


def train(config: TrainConfig, train_arrays: ImageSet | Mapping[str, np.ndarray],
          val_arrays: ImageSet | Mapping[str, np.ndarray], *,
          progress_callback: Callable[[Progress], None] | None = None,
          progress: Callable[[Progress], None] | None = None) -> TrainResult:
    """Fit ``config.architecture`` in ``config.output_dir``, or resume the run saved there.

    ``train_arrays``/``val_arrays``: :class:`ImageSet` or dicts (see ``augment``); labels in degrees for
    regression, 0/1 for reject models. ``progress`` is an alias of ``progress_callback``.
    Returns when ``config.epochs`` epochs are done or validation loss stopped improving.
    """
    import keras

    report = progress_callback or progress
    train_set, val_set = as_image_set(train_arrays), as_image_set(val_arrays)
    if train_set.image_shape != config.input_shape or val_set.image_shape != config.input_shape:
        raise ValueError(f"Images are {train_set.image_shape}/{val_set.image_shape}, config says {config.input_shape}.")
    out = config.output
    (out / CHECKPOINTS).mkdir(parents=True, exist_ok=True)
    model, state = _start_or_resume(config, out)
    state["config"] = config.to_json()
    state["preprocessing"] = PREPROCESSING_SPEC

    augment = AugmentConfig(**config.augment)
    state["augment"] = describe(augment)
    steps = config.steps
    val_data = make_eval_dataset(val_set, kind=config.kind, batch_size=max(config.batch_size, 128),
                                 modes=config.val_modes)
    timing = _SessionTiming(epochs=config.epochs, steps=steps)
    reporter = _reporter_class(timing, report)

    epoch = state["epoch"]
    while epoch < config.epochs and not state["stopped_early"]:
        # Re-seeding per epoch makes any global-RNG use independent of where a session started.
        keras.utils.set_random_seed(config.seed * 100_003 + epoch)
        epoch_start = time.perf_counter()
        dataset = make_training_dataset(train_set, kind=config.kind, batch_size=config.batch_size, seed=config.seed,
                                        epoch=epoch, steps=steps, config=augment)
        logs = model.fit(dataset, epochs=1, verbose=0, shuffle=False, validation_data=val_data,
                         callbacks=[reporter(epoch)]).history
        epoch = _end_epoch(model, state, logs, config, epoch=epoch, started=epoch_start)
        if report is not None:
            epoch_metrics = {key: values[-1] for key, values in state["history"].items()}
            report(Progress(epoch=epoch, epochs=config.epochs, step=steps, steps=steps,
                            loss=epoch_metrics.get("loss", math.nan), eta_seconds=timing.eta(epoch - 1, steps),
                            phase="epoch_end", metrics=epoch_metrics))

    if not (out / BEST).exists():  # e.g. zero epochs, or a validation loss that was never finite
        _save_atomic(_serving_copy(model), out / BEST)
    return TrainResult(
        model_path=out / BEST, history=state["history"], epochs_run=state["epoch"],
        stopped_early=state["stopped_early"], seconds=state["seconds"], best_epoch=state["best_epoch"],
        best_val_loss=state["best_val_loss"],
        checkpoint_path=out / CHECKPOINTS / state["checkpoint"] if state["checkpoint"] else None,
        device=_device(), model=model,
    )


def _start_or_resume(config: TrainConfig, out: Path) -> tuple[keras.Model, dict[str, Any]]:
    """The run saved in ``out`` (weights, optimizer and dropout-seed state) with its state, or a fresh model
    (seeded, optionally started from ``config.init_weights``) with an empty state."""
    import keras

    from .architectures import build_model

    state = load_state(out)
    if state is not None:
        _check_resumable(state["config"], config)
        model = keras.saving.load_model(out / CHECKPOINTS / state["checkpoint"])  # weights + optimizer state
        _restore_seed_generators(model, state["rng"])
        return model, state
    keras.utils.set_random_seed(config.seed)  # initial weights and dropout seeds
    model = build_model(config.architecture, binary=config.kind == "reject", input_shape=config.input_shape)
    if config.init_weights:
        copy_matching_weights(keras.saving.load_model(config.init_weights, compile=False), model)
    _compile(model, config)
    state = {"epoch": 0, "checkpoint": None, "history": {}, "best_val_loss": math.inf, "best_epoch": 0,
             "bad_epochs": 0, "stopped_early": False, "seconds": 0.0, "rng": []}
    return model, state


def _end_epoch(model: keras.Model, state: dict[str, Any], logs: Mapping[str, Sequence[float]], config: TrainConfig,
               *, epoch: int, started: float) -> int:
    """Record epoch ``epoch``'s logs, keep the best model, checkpoint and write the state; the next epoch index."""
    out = config.output
    for key, values in logs.items():
        state["history"].setdefault(key, []).append(float(values[-1]))
    if update_early_stopping(state, float(logs["val_loss"][-1]), epoch=epoch + 1, patience=config.patience):
        _save_atomic(_serving_copy(model), out / BEST)
    epoch += 1
    name = f"epoch-{epoch:04d}.keras"
    _save_atomic(model, out / CHECKPOINTS / name)
    state.update(epoch=epoch, checkpoint=name, rng=_seed_generator_states(model))
    state["seconds"] += time.perf_counter() - started
    # The state names its checkpoint and is written last: a crash before this line leaves the previous
    # (state, checkpoint) pair intact, so the epoch is redone, never skipped nor applied twice.
    _write_atomic(out / STATE, json.dumps(state, indent=1))
    _write_atomic(out / HISTORY, json.dumps(state["history"], indent=1))
    _prune_checkpoints(out / CHECKPOINTS, keep=config.keep_checkpoints, current=name)
    return epoch


class _SessionTiming:
    """Batch and validation seconds of this session (not of a resumed run's earlier ones), for the ETA."""

    def __init__(self, *, epochs: int, steps: int) -> None:
        self.epochs, self.steps = epochs, steps
        self.train_steps, self.train_seconds = 0, 0.0
        self.val_seconds: list[float] = []

    def eta(self, epoch: int, step: int) -> float:
        per_step = self.train_seconds / max(self.train_steps, 1)
        per_val = float(np.mean(self.val_seconds)) if self.val_seconds else 0.0
        remaining_epochs = self.epochs - epoch - 1
        return max(0.0, (self.steps - step + remaining_epochs * self.steps) * per_step + (remaining_epochs + 1) * per_val)


def _reporter_class(timing: _SessionTiming, report: Callable[[Progress], None] | None) -> type:
    """A Keras callback class (keras is imported lazily) that times batches and validation into ``timing`` and
    reports progress after every batch; instantiate it with the epoch index."""
    import keras

    class Reporter(keras.callbacks.Callback):
        """Progress after every batch; also splits batch time from validation time for the ETA."""

        def __init__(self, epoch: int) -> None:
            super().__init__()
            self.epoch_index = epoch
            self.last = time.perf_counter()

        def on_train_batch_end(self, batch: int, logs: dict[str, Any] | None = None) -> None:
            now = time.perf_counter()
            timing.train_seconds += now - self.last
            timing.train_steps += 1
            self.last = now
            if report is not None:
                report(Progress(epoch=self.epoch_index + 1, epochs=timing.epochs, step=batch + 1, steps=timing.steps,
                                loss=float((logs or {}).get("loss", math.nan)),
                                eta_seconds=timing.eta(self.epoch_index, batch + 1)))

        def on_test_begin(self, logs: dict[str, Any] | None = None) -> None:
            self.val_start = time.perf_counter()

        def on_test_end(self, logs: dict[str, Any] | None = None) -> None:
            timing.val_seconds.append(time.perf_counter() - self.val_start)

    return Reporter


def _prune_checkpoints(folder: Path, *, keep: int, current: str) -> None:
    """Delete all but the newest ``keep`` epoch checkpoints (never the one the state names)."""
    saved = sorted(p for p in folder.glob("epoch-*.keras") if not p.name.endswith(".tmp.keras"))
    for path in saved[:-keep]:
        if path.name != current:
            path.unlink(missing_ok=True)
