"""The original IncliNET networks, layer for layer (model4, model5, model6, each as a regression or a
binary reject model), plus ``compact``, a much cheaper network of our own for quick CPU ensembles.

Every model starts with the weightless ``pixel_scaling`` layer from :mod:`training.ml.scaling`, so it takes
raw 0–255 float32 pixels and the parameter counts equal the originals' exactly:

======== ============ ==========
network  regression   binary
======== ============ ==========
model4   1,631,169    1,631,178
model5   2,522,705    2,522,714
model6   1,680,369    1,680,378
======== ============ ==========

Regression heads end in ``Dense(1, tanh)`` named ``fc_out2`` (45–90° ↔ −1…+1, see ``scaling``); binary heads
in ``Dense(2, softmax)`` with class 1 = rejected. Convolutions are 3×3, ReLU, stride 1, ``valid`` padding.
"""
from __future__ import annotations

from collections.abc import Callable

import keras
from keras import layers

from .scaling import INPUT_SHAPE, rescaling_layer

Shape = tuple[int, int, int]


def _input(input_shape: Shape) -> tuple[keras.KerasTensor, keras.KerasTensor]:
    inputs = keras.Input(shape=input_shape, name="image")
    return inputs, rescaling_layer()(inputs)


def _conv(x: keras.KerasTensor, filters: int, name: str) -> keras.KerasTensor:
    return layers.Conv2D(filters, 3, activation="relu", name=name)(x)


def _head(x: keras.KerasTensor, *, n_classes: int | None) -> keras.KerasTensor:
    if n_classes is None:
        return layers.Dense(1, activation="tanh", name="fc_out2")(x)
    return layers.Dense(n_classes, activation="softmax", name="fc_out_class")(x)


def _name(base: str, n_classes: int | None) -> str:
    return base if n_classes is None else f"{base}_binary"


def _first_two_blocks(x: keras.KerasTensor, first: int, second: int) -> keras.KerasTensor:
    """The stem model4, model5 and model6 share: conv-conv, pool 2, dropout; conv-conv + BN, pool 4, dropout.
    The layer names are the originals' (conv1…conv4, pool1, drop1, bn_2, pool2, drop2): saved weights load by them."""
    x = _conv(x, first, "conv1")
    x = _conv(x, first, "conv2")
    x = layers.MaxPooling2D(2, name="pool1")(x)
    x = layers.Dropout(0.25, name="drop1")(x)
    x = _conv(x, second, "conv3")
    x = _conv(x, second, "conv4")
    x = layers.BatchNormalization(axis=3, name="bn_2")(x)
    x = layers.MaxPooling2D(4, name="pool2")(x)
    return layers.Dropout(0.25, name="drop2")(x)


def _flatten_dense(x: keras.KerasTensor, *widths_and_names: tuple[int, str]) -> keras.KerasTensor:
    """Flatten, then ReLU Dense layers of the originals' widths and names, in order."""
    x = layers.Flatten(name="flatten")(x)
    for width, name in widths_and_names:
        x = layers.Dense(width, activation="relu", name=name)(x)
    return x


def model4(*, n_classes: int | None = None, input_shape: Shape = INPUT_SHAPE) -> keras.Model:
    """The simplest: conv 16-16, pool 2, conv 32-32 + BN, pool 4, Dense 256-32-8 (1,631,169 parameters)."""
    inputs, x = _input(input_shape)
    x = _first_two_blocks(x, 16, 32)
    x = _flatten_dense(x, (256, "fc_2"), (32, "fc_4"), (8, "fc_5"))
    return keras.Model(inputs, _head(x, n_classes=n_classes), name=_name("model4", n_classes))


def model5(*, n_classes: int | None = None, input_shape: Shape = INPUT_SHAPE) -> keras.Model:
    """The most complex: conv 128-128, 256-256 + BN, 256-256 + BN, Dense 256-128-64-8 (2,522,705).

    No dropout after the third block, as in the original; about 60× the FLOPs of model4.
    """
    inputs, x = _input(input_shape)
    x = _first_two_blocks(x, 128, 256)
    x = _conv(x, 256, "conv5")
    x = _conv(x, 256, "conv6")
    x = layers.BatchNormalization(axis=3, name="bn_3")(x)
    x = layers.MaxPooling2D(4, name="pool3")(x)
    x = _flatten_dense(x, (256, "fc_2"), (128, "fc_3"), (64, "fc_4"), (8, "fc_5"))
    return keras.Model(inputs, _head(x, n_classes=n_classes), name=_name("model5", n_classes))


def model6(*, n_classes: int | None = None, input_shape: Shape = INPUT_SHAPE) -> keras.Model:
    """model4 with wider convolutions: conv 32-32, 64-64 + BN, Dense 128-64-8 (1,680,369 parameters)."""
    inputs, x = _input(input_shape)
    x = _first_two_blocks(x, 32, 64)
    x = _flatten_dense(x, (128, "fc_3"), (64, "fc_4"), (8, "fc_5"))
    return keras.Model(inputs, _head(x, n_classes=n_classes), name=_name("model6", n_classes))


def compact(*, n_classes: int | None = None, input_shape: Shape = INPUT_SHAPE) -> keras.Model:
    """Our own network for quick CPU ensembles: a strided stem, four separable-convolution stages and
    global average pooling (about 41 k parameters, a few times cheaper than model4 per image).

    Global pooling instead of a 1.6 M-weight Flatten→Dense keeps it small; its receptive field still
    spans the galaxy because every stage halves the resolution. The binary variant pools by average and
    by maximum.
    """
    inputs, x = _input(input_shape)
    x = layers.Conv2D(24, 5, strides=2, padding="same", activation="relu", name="stem")(x)
    for index, filters in enumerate((32, 48, 64, 96)):
        x = layers.SeparableConv2D(filters, 3, padding="same", activation="relu", name=f"sep{index}a")(x)
        # Momentum 0.9: short quick-profile runs leave 0.99-momentum moving statistics near their init.
        x = layers.BatchNormalization(momentum=0.9, name=f"bn{index}")(x)
        x = layers.SeparableConv2D(filters, 3, strides=2, padding="same", activation="relu", name=f"sep{index}b")(x)
    pooled = layers.GlobalAveragePooling2D(name="gap")(x)
    if n_classes is not None:
        # A reject is usually one local thing (a star on the disk, a companion, a cut edge): max pooling
        # keeps it at full strength where the average dilutes it over the whole field.
        pooled = layers.Concatenate(name="gap_gmp")([pooled, layers.GlobalMaxPooling2D(name="gmp")(x)])
    x = layers.Dense(64, activation="relu", name="fc")(pooled)
    return keras.Model(inputs, _head(x, n_classes=n_classes), name=_name("compact", n_classes))


ARCHITECTURES: dict[str, Callable[..., keras.Model]] = {
    "model4": model4, "model5": model5, "model6": model6, "compact": compact,
}


def build_model(name: str, *, binary: bool = False, input_shape: Shape = INPUT_SHAPE) -> keras.Model:
    """A fresh, uncompiled network by registry name; ``binary`` gives the 2-class reject variant."""
    try:
        builder = ARCHITECTURES[name]
    except KeyError:
        raise ValueError(f"Unknown architecture {name!r}; choose from {', '.join(ARCHITECTURES)}.") from None
    return builder(n_classes=2 if binary else None, input_shape=input_shape)
