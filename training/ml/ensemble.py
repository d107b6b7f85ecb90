"""The serving form of an ensemble: its manifest, and one fused graph that runs every model at once.

The original called ``predict`` on each of its 15 models separately (about 47 ms of overhead per call on
this CPU). Here all regression and reject models share one input and run as a single compiled function
on a batch that already holds every test-time-augmentation view, so the whole ensemble costs one call.

Precision: ``fp32``, or ``bf16`` (every layer but the output heads computes in bfloat16 with float32
weights kept; oneDNN runs bf16 convolutions on AVX-512-BF16 / AMX, several times faster than fp32 on CPUs
that have them). ``auto`` picks bf16 only where the CPU has native bf16, since emulated bf16 is slower
than fp32. The bf16 ensemble's inclinations stay within ``BF16_RMS_BOUND_DEG`` of fp32 (tested, and
measured by ``benchmarks/predict.py``).
"""
from __future__ import annotations

import json
import math
from collections.abc import Sequence
from dataclasses import asdict, dataclass, field
from pathlib import Path
from typing import Any

import numpy as np

PRECISIONS = ("fp32", "bf16")
BF16_RMS_BOUND_DEG = 0.1  # accepted RMS change of the served inclinations versus fp32
MAX_VIEWS_PER_CALL = 16  # bounds activation memory (model5: ~8 MB per view after its second conv); larger chunks were no faster

INCLINATION_MIN = 45.0
INCLINATION_MAX = 90.0
MANIFEST_NAME = "manifest.json"

# Test-time views: (number of 90° rotations, horizontal flip). Inclination does not depend on either.
TTA_VIEWS: dict[str, tuple[tuple[int, bool], ...]] = {
    "1": ((0, False),),
    "2": ((0, False), (2, False)),  # the original's 0° and 180°
    "4": ((0, False), (1, False), (2, False), (3, False)),
    "8": tuple((k, flip) for flip in (False, True) for k in range(4)),
    # The major axis stays horizontal, as in served images: for networks trained with a limited rotation
    # range (the quick and long profiles), which never saw a vertical major axis.
    "aligned": ((0, False), (2, False), (0, True), (2, True)),
}


@dataclass(frozen=True)
class MemberSpec:
    """One network of the ensemble as written in its manifest."""

    name: str  # the public name, e.g. "model41" or "model5-binary"
    architecture: str  # "model4", "model5", "model6", ...
    flavour: int
    kind: str  # "regression" or "reject"
    file: str  # weights file relative to the ensemble folder (a whole Keras model)
    group: int = 0  # Group_<n> in the API response (one per architecture family)
    bias_m: float | None = None  # i_pc = (i_p + b) / (1 - m), only if it helped on validation
    bias_b: float | None = None
    metrics: dict[str, Any] = field(default_factory=dict)


@dataclass(frozen=True)
class EnsembleManifest:
    version: str
    members: tuple[MemberSpec, ...]
    preprocessing: dict[str, Any]
    alarm_stdev_deg: float = 3.0  # calibrated on validation: flagged galaxies hold most large errors
    tta: str = "8"
    created: str = ""
    metrics: dict[str, Any] = field(default_factory=dict)

    @property
    def regression(self) -> tuple[MemberSpec, ...]:
        return tuple(m for m in self.members if m.kind == "regression")

    @property
    def reject(self) -> tuple[MemberSpec, ...]:
        return tuple(m for m in self.members if m.kind == "reject")

    def to_json(self) -> str:
        return json.dumps(asdict(self), indent=2)

    @classmethod
    def from_dict(cls, data: dict[str, Any]) -> EnsembleManifest:
        members = tuple(MemberSpec(**member) for member in data["members"])
        return cls(**{**data, "members": members})

    @classmethod
    def load(cls, folder: Path) -> EnsembleManifest:
        return cls.from_dict(json.loads((folder / MANIFEST_NAME).read_text()))


def tanh_to_degrees(y: np.ndarray) -> np.ndarray:
    return 22.5 * y + 67.5


def apply_bias_correction(inclination: np.ndarray, m: float | None, b: float | None) -> np.ndarray:
    if m is None or b is None:
        return inclination
    return (inclination + b) / (1.0 - m)


def tta_views(images: np.ndarray, views: Sequence[tuple[int, bool]]) -> np.ndarray:
    """Stack the views view-major: (V*N, H, W, C), so view v of image n sits at v*N + n."""
    stacked = []
    for quarter_turns, flip in views:
        view = np.rot90(images, k=quarter_turns, axes=(1, 2))
        stacked.append(view[:, :, ::-1] if flip else view)
    return np.ascontiguousarray(np.concatenate(stacked, axis=0))


@dataclass(frozen=True)
class MemberPrediction:
    inclination: float | None = None  # degrees, clipped to 45–90
    reject_percent: float | None = None


@dataclass(frozen=True)
class EnsemblePrediction:
    """Per-image result: every member's value and the summaries the API reports."""

    members: dict[str, MemberPrediction]
    inclination_mean: float
    inclination_median: float
    inclination_stdev: float
    reject_mean: float
    reject_median: float
    reject_stdev: float
    alarm: bool
    alarm_reason: str


def cpu_has_native_bf16() -> bool:
    """AVX-512-BF16 or AMX-BF16 on this CPU (Linux ``/proc/cpuinfo`` flags; False where unreadable)."""
    try:
        text = Path("/proc/cpuinfo").read_text()
    except OSError:
        return False
    flags = next((line.split(":", 1)[1].split() for line in text.splitlines() if line.startswith("flags")), [])
    return "avx512_bf16" in flags or "amx_bf16" in flags


def resolve_precision(precision: str | None) -> str:
    """``fp32``/``bf16`` as given; ``auto`` (or None) → bf16 where the CPU has it natively, else fp32."""
    choice = (precision or "auto").strip().lower()
    if choice == "auto":
        return "bf16" if cpu_has_native_bf16() else "fp32"
    if choice not in PRECISIONS:
        raise ValueError(f"Unknown precision {precision!r}; choose auto, {', '.join(PRECISIONS)}.")
    return choice


def with_precision(model: Any, precision: str) -> Any:  # noqa: ANN401 - keras.Model, imported lazily
    """A copy of ``model`` computing in ``precision``, with the same (float32) weights.

    For bf16, every layer computes in bfloat16 except the output head, whose tanh/softmax stay float32 so
    the 45–90° mapping and the reject percent are not rounded to bf16's 8-bit mantissa.
    """
    if precision == "fp32":
        return model
    import keras

    head = model.layers[-1].name

    def clone_layer(layer: Any) -> Any:  # noqa: ANN401
        config = layer.get_config()
        if layer.name != head and "dtype" in config:
            config["dtype"] = "mixed_bfloat16"
        return layer.__class__.from_config(config)

    clone = keras.models.clone_model(model, clone_function=clone_layer)
    clone.set_weights(model.get_weights())
    return clone


class FusedEnsemble:
    """Loads every member once and runs them as one compiled graph."""

    def __init__(self, folder: Path, *, tta: str | None = None, precision: str | None = "fp32") -> None:
        """``precision``: fp32 by default, so evaluation and tests get exact float32 outputs; serving passes
        its setting (``auto`` → bf16 where the CPU has it, see ``predictions.inference``)."""
        self.folder = folder
        self.manifest = EnsembleManifest.load(folder)
        self.tta = tta or self.manifest.tta
        if self.tta not in TTA_VIEWS:
            raise ValueError(f"Unknown TTA setting {self.tta!r}; choose one of {sorted(TTA_VIEWS)}.")
        if self.manifest.tta == "aligned" and any(turns % 2 for turns, _ in TTA_VIEWS[self.tta]):
            self.tta = "aligned"  # quarter turns would show these networks a vertical major axis
        self.precision = resolve_precision(precision)
        self._build([with_precision(member, self.precision) for member in self._load_members()])

    def _load_members(self) -> list[Any]:
        import keras

        members = [keras.saving.load_model(self.folder / spec.file, compile=False) for spec in self.manifest.members]
        for index, member in enumerate(members):
            member.name = f"member{index}"  # flavours of one architecture share a layer name otherwise
        return members

    def _build(self, members: list[Any]) -> None:
        import keras
        import tensorflow as tf

        inputs = keras.Input(shape=members[0].input_shape[1:], name="image")
        outputs = [member(inputs, training=False) for member in members]
        self.model = keras.Model(inputs, outputs, name="fused_ensemble")
        self._call = tf.function(lambda batch: self.model(batch, training=False), reduce_retracing=True)

    @property
    def version(self) -> str:
        return self.manifest.version

    def raw_outputs(self, images: np.ndarray) -> list[np.ndarray]:
        """One call for every member on a float32 batch (pixels as the models expect them); batches of more
        than ``MAX_VIEWS_PER_CALL`` views run in chunks of that size."""
        import tensorflow as tf

        def call(batch: np.ndarray) -> list[np.ndarray]:
            outs = self._call(tf.convert_to_tensor(batch, dtype=tf.float32))
            # A one-member graph returns its tensor bare, not in a list.
            outs = outs if isinstance(outs, list | tuple) else [outs]
            return [np.asarray(out, dtype=np.float32) for out in outs]

        chunks = [call(images[i:i + MAX_VIEWS_PER_CALL]) for i in range(0, len(images), MAX_VIEWS_PER_CALL)]
        return [np.concatenate(parts, axis=0) for parts in zip(*chunks, strict=True)]

    def predict(self, images: np.ndarray) -> list[EnsemblePrediction]:
        """``images``: uint8 (N, 128, 128, 3) model inputs, already aligned and cropped."""
        if images.ndim != 4 or images.shape[-1] != 3:
            raise ValueError(f"Expected (N, H, W, 3) images, got {images.shape}.")
        n = images.shape[0]
        views = TTA_VIEWS[self.tta]
        # Pixel scaling lives inside each saved model, so serving feeds raw 0–255 values.
        outputs = self.raw_outputs(tta_views(images, views).astype(np.float32))
        per_member: dict[str, np.ndarray] = {}
        for spec, out in zip(self.manifest.members, outputs, strict=True):
            by_view = out.reshape(len(views), n, -1)
            if spec.kind == "regression":
                degrees = tanh_to_degrees(np.median(by_view[..., 0], axis=0))
                degrees = apply_bias_correction(degrees, spec.bias_m, spec.bias_b)
                per_member[spec.name] = np.clip(degrees, INCLINATION_MIN, INCLINATION_MAX)
            else:
                per_member[spec.name] = 100.0 * np.median(by_view[..., 1], axis=0)
        return [self._summarise(per_member, index) for index in range(n)]

    def _summarise(self, per_member: dict[str, np.ndarray], index: int) -> EnsemblePrediction:
        regression = np.array([float(per_member[m.name][index]) for m in self.manifest.regression])
        reject = np.array([float(per_member[m.name][index]) for m in self.manifest.reject])
        members = {
            m.name: MemberPrediction(inclination=float(per_member[m.name][index])) for m in self.manifest.regression
        } | {m.name: MemberPrediction(reject_percent=float(per_member[m.name][index])) for m in self.manifest.reject}
        stdev = float(np.std(regression)) if regression.size else math.nan
        reject_stdev = float(np.std(reject)) if reject.size else 0.0
        reasons = []
        if stdev > self.manifest.alarm_stdev_deg:
            reasons.append(
                f"the inclination models disagree (stdev {stdev:.1f}° > {self.manifest.alarm_stdev_deg:.1f}°)"
            )
        if reject.size and (np.median(reject) > 50.0) != (np.mean(reject) > 50.0):
            reasons.append("the reject models disagree about this image")
        return EnsemblePrediction(
            members=members,
            inclination_mean=float(np.mean(regression)),
            inclination_median=float(np.median(regression)),
            inclination_stdev=stdev,
            reject_mean=float(np.mean(reject)) if reject.size else 0.0,
            reject_median=float(np.median(reject)) if reject.size else 0.0,
            reject_stdev=reject_stdev,
            alarm=bool(reasons),
            alarm_reason="; ".join(reasons),
        )
