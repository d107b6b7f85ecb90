"""The original IncliNET networks, layer for layer (model4, model5, model6 and their binary variants),
plus a compact network of our own for the quick profile.

Pixel scaling is defined once, here, as a ``Rescaling(1/255)`` layer at the input of every model: it has
no weights (parameter counts equal the originals') and it travels inside the saved model, so training
and serving cannot disagree (the original fed raw 0–255 in research and /255 in production).
Regression heads end in ``Dense(1, tanh)`` mapping 45–90° to −1…+1; binary heads in ``Dense(2, softmax)``
with class 1 = rejected.
"""
from __future__ import annotations

from collections.abc import Callable

import keras
from keras import layers

INPUT_SHAPE = (128, 128, 3)
PIXEL_SCALE = 1.0 / 255.0
PREPROCESSING_SPEC = {
    "input": "uint8 RGB, 128x128, white-on-black (inverted images are normalised before)",
    "scaling": "Rescaling(1/255) inside the model",
    "target": "tanh: y = (inclination - 67.5) / 22.5",
}


def inclination_to_target(inclination: float | keras.KerasTensor) -> float:
    return (inclination - 67.5) / 22.5


def target_to_inclination(y: float) -> float:
    return 22.5 * y + 67.5


def _head(x: keras.KerasTensor, *, n_classes: int | None) -> keras.KerasTensor:
    if n_classes is None:
        return layers.Dense(1, activation="tanh", name="fc_out2")(x)
    return layers.Dense(n_classes, activation="softmax", name="fc_out_class")(x)


def _input(input_shape: tuple[int, int, int]) -> tuple[keras.KerasTensor, keras.KerasTensor]:
    inputs = keras.Input(shape=input_shape, name="image")
    return inputs, layers.Rescaling(PIXEL_SCALE, name="pixel_scaling")(inputs)


def _conv(x: keras.KerasTensor, filters: int, name: str) -> keras.KerasTensor:
    return layers.Conv2D(filters, 3, activation="relu", name=name)(x)


def model4(*, n_classes: int | None = None, input_shape: tuple[int, int, int] = INPUT_SHAPE) -> keras.Model:
    """The simplest: 2 double-conv blocks (16, 32), Dense 256-32-8. 1,631,169 parameters (regression)."""
    inputs, x = _input(input_shape)
    x = _conv(x, 16, "conv1")
    x = _conv(x, 16, "conv2")
    x = layers.MaxPooling2D(2)(x)
    x = layers.Dropout(0.25)(x)
    x = _conv(x, 32, "conv3")
    x = _conv(x, 32, "conv4")
    x = layers.BatchNormalization(axis=3, name="bn_2")(x)
    x = layers.MaxPooling2D(4)(x)
    x = layers.Dropout(0.25)(x)
    x = layers.Flatten()(x)
    x = layers.Dense(256, activation="relu", name="fc_2")(x)
    x = layers.Dense(32, activation="relu", name="fc_4")(x)
    x = layers.Dense(8, activation="relu", name="fc_5")(x)
    return keras.Model(inputs, _head(x, n_classes=n_classes), name="model4" if n_classes is None else "model4_binary")


def model5(*, n_classes: int | None = None, input_shape: tuple[int, int, int] = INPUT_SHAPE) -> keras.Model:
    """The most complex: 3 double-conv blocks (128, 256, 256), Dense 256-128-64-8. 2,522,705 parameters."""
    inputs, x = _input(input_shape)
    x = _conv(x, 128, "conv1")
    x = _conv(x, 128, "conv2")
    x = layers.MaxPooling2D(2)(x)
    x = layers.Dropout(0.25)(x)
    x = _conv(x, 256, "conv3")
    x = _conv(x, 256, "conv4")
    x = layers.BatchNormalization(axis=3, name="bn_2")(x)
    x = layers.MaxPooling2D(4)(x)
    x = layers.Dropout(0.25)(x)
    x = _conv(x, 256, "conv5")
    x = _conv(x, 256, "conv6")
    x = layers.BatchNormalization(axis=3, name="bn_3")(x)
    x = layers.MaxPooling2D(4)(x)
    x = layers.Flatten()(x)
    x = layers.Dense(256, activation="relu", name="fc_2")(x)
    x = layers.Dense(128, activation="relu", name="fc_3")(x)
    x = layers.Dense(64, activation="relu", name="fc_4")(x)
    x = layers.Dense(8, activation="relu", name="fc_5")(x)
    return keras.Model(inputs, _head(x, n_classes=n_classes), name="model5" if n_classes is None else "model5_binary")


def model6(*, n_classes: int | None = None, input_shape: tuple[int, int, int] = INPUT_SHAPE) -> keras.Model:
    """Like model4 with wider convolutions (32, 64), Dense 128-64-8. 1,680,369 parameters (regression)."""
    inputs, x = _input(input_shape)
    x = _conv(x, 32, "conv1")
    x = _conv(x, 32, "conv2")
    x = layers.MaxPooling2D(2)(x)
    x = layers.Dropout(0.25)(x)
    x = _conv(x, 64, "conv3")
    x = _conv(x, 64, "conv4")
    x = layers.BatchNormalization(axis=3, name="bn_2")(x)
    x = layers.MaxPooling2D(4)(x)
    x = layers.Dropout(0.25)(x)
    x = layers.Flatten()(x)
    x = layers.Dense(128, activation="relu", name="fc_3")(x)
    x = layers.Dense(64, activation="relu", name="fc_4")(x)
    x = layers.Dense(8, activation="relu", name="fc_5")(x)
    return keras.Model(inputs, _head(x, n_classes=n_classes), name="model6" if n_classes is None else "model6_binary")


def compact(*, n_classes: int | None = None, input_shape: tuple[int, int, int] = INPUT_SHAPE) -> keras.Model:
    """Our own small network for the quick profile: strided separable convolutions and global pooling,
    about 41 k parameters, so it trains in minutes on two CPU cores."""
    inputs, x = _input(input_shape)
    x = layers.Conv2D(24, 5, strides=2, padding="same", activation="relu", name="stem")(x)
    for index, filters in enumerate((32, 48, 64, 96)):
        x = layers.SeparableConv2D(filters, 3, padding="same", activation="relu", name=f"sep{index}a")(x)
        x = layers.BatchNormalization(name=f"bn{index}")(x)
        x = layers.SeparableConv2D(filters, 3, strides=2, padding="same", activation="relu", name=f"sep{index}b")(x)
    x = layers.GlobalAveragePooling2D()(x)
    x = layers.Dense(64, activation="relu", name="fc")(x)
    return keras.Model(inputs, _head(x, n_classes=n_classes), name="compact" if n_classes is None else "compact_binary")


ARCHITECTURES: dict[str, Callable[..., keras.Model]] = {
    "model4": model4, "model5": model5, "model6": model6, "compact": compact,
}


def build_model(name: str, *, binary: bool = False, input_shape: tuple[int, int, int] = INPUT_SHAPE) -> keras.Model:
    try:
        builder = ARCHITECTURES[name]
    except KeyError:
        raise ValueError(f"Unknown architecture {name!r}; choose from {', '.join(ARCHITECTURES)}.") from None
    return builder(n_classes=2 if binary else None, input_shape=input_shape)
