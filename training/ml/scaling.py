"""The one definition of model-input pixel scaling and of the inclination ↔ network-target mapping.

Training, evaluation and serving all import from here, so they cannot drift apart (the original fed raw
0–255 pixels in its research notebooks and in deployment, but divided by 255 in its production script).

Pixels: models take uint8-valued float32 RGB in 0–255 (grey bands repeated in all three channels) and
scale them *inside the network* with a ``Rescaling(PIXEL_SCALE, PIXEL_OFFSET)`` layer named
``pixel_scaling`` (see :func:`rescaling_layer`). It has no weights, so the parameter counts equal the
originals', and because it is saved with the model, serving feeds raw 0–255 values and never rescales.

Targets: regression heads end in ``tanh``; 45° maps to −1 and 90° to +1, ``y = (inc − 67.5) / 22.5``,
as in the original (``y = 2·(inc−45)/45 − 1`` is the same line).

This module imports neither Django nor TensorFlow at import time (serving code may import it cheaply).
"""
from __future__ import annotations

from typing import TYPE_CHECKING, Any, TypeVar

import numpy as np

from core.geometry import MODEL_SIZE

if TYPE_CHECKING:  # pragma: no cover - typing only
    import keras

PIXEL_SCALE: float = 1.0 / 255.0
PIXEL_OFFSET: float = 0.0
PIXEL_SCALING_LAYER = "pixel_scaling"
INPUT_SHAPE: tuple[int, int, int] = (MODEL_SIZE, MODEL_SIZE, 3)

INCLINATION_MIN = 45.0
INCLINATION_MAX = 90.0
TARGET_CENTRE = (INCLINATION_MIN + INCLINATION_MAX) / 2  # 67.5°
TARGET_HALF_RANGE = (INCLINATION_MAX - INCLINATION_MIN) / 2  # 22.5°

# Stored verbatim in every model manifest so a reader can check what the weights expect.
PREPROCESSING_SPEC: dict[str, Any] = {
    "version": 1,
    "input": {
        "shape": list(INPUT_SHAPE),
        "dtype": "float32 holding uint8 values",
        "range": [0, 255],
        "channels": "RGB; a grey band (g, r or i) is repeated in all three channels",
        "orientation": "major axis horizontal, galaxy centred",
    },
    "scaling": {
        "formula": "x * scale + offset",
        "scale": PIXEL_SCALE,
        "offset": PIXEL_OFFSET,
        "where": f"keras Rescaling layer '{PIXEL_SCALING_LAYER}' inside each model; feed raw 0-255 values",
    },
    "target": {
        "regression": "tanh output y; inclination_deg = 22.5 * y + 67.5 (clipped to 45-90 when served)",
        "training": "y = (inclination_deg - 67.5) / 22.5",
        "reject": "softmax over 2 classes; class 1 = rejected; reject percent = 100 * p[1]",
    },
}

ArrayT = TypeVar("ArrayT")


def scale_pixels(images: np.ndarray) -> np.ndarray:
    """0–255 pixels → what the first convolution sees (float32). For checks and for models without the
    layer; the networks here apply this themselves through :func:`rescaling_layer`."""
    return np.asarray(images, dtype=np.float32) * np.float32(PIXEL_SCALE) + np.float32(PIXEL_OFFSET)


def unscale_pixels(scaled: np.ndarray) -> np.ndarray:
    """Inverse of :func:`scale_pixels`, rounded back to uint8."""
    raw = (np.asarray(scaled, dtype=np.float64) - PIXEL_OFFSET) / PIXEL_SCALE
    return np.clip(np.rint(raw), 0, 255).astype(np.uint8)


def rescaling_layer() -> keras.layers.Layer:
    """The scaling as a weightless Keras layer; every architecture starts with it."""
    from keras import layers

    return layers.Rescaling(PIXEL_SCALE, offset=PIXEL_OFFSET, name=PIXEL_SCALING_LAYER)


def check_model_scaling(model: keras.Model) -> None:
    """Raise ``ValueError`` unless ``model`` scales its input exactly as defined here (serving guard)."""
    try:
        layer = model.get_layer(PIXEL_SCALING_LAYER)
    except ValueError:
        raise ValueError(f"Model {model.name!r} has no '{PIXEL_SCALING_LAYER}' layer; it expects other input.") from None
    scale, offset = float(layer.scale), float(layer.offset)
    if not (np.isclose(scale, PIXEL_SCALE, rtol=1e-6, atol=0) and np.isclose(offset, PIXEL_OFFSET, atol=1e-9)):
        raise ValueError(f"Model {model.name!r} scales pixels by {scale} + {offset}, expected {PIXEL_SCALE} + {PIXEL_OFFSET}.")


def inclination_to_target(inclination: ArrayT) -> ArrayT:
    """Degrees → tanh target; works on floats, numpy arrays and tensors (45° → −1, 90° → +1)."""
    return (inclination - TARGET_CENTRE) / TARGET_HALF_RANGE  # type: ignore[operator,return-value]


def target_to_inclination(target: ArrayT, *, clip: bool = False) -> ArrayT:
    """tanh output → degrees. ``clip`` bounds the result to 45–90° (the original clipped only above 90)."""
    degrees = TARGET_HALF_RANGE * target + TARGET_CENTRE  # type: ignore[operator]
    if clip:
        return np.clip(degrees, INCLINATION_MIN, INCLINATION_MAX)  # type: ignore[return-value]
    return degrees  # type: ignore[no-any-return]
