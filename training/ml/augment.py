"""On-the-fly augmentation as a ``tf.data`` pipeline, fixing the original's flaws.

- Geometry: rotation by any angle, flips, translation and an ISOTROPIC scale only. The original drew x
  and y scales independently (0.8–1.2 each), which changes the axial ratio and so corrupts the label.
- Photometry: noise, blur, gamma and contrast, and colour jitter for colour images too (the original's
  training set skipped it through an ``isGray=True`` bug).
- Modes: colour and grey 50/50, grey split 50/50 into white-on-black and inverted, g/r/i equally likely.
- Balance: every epoch draws the same number of galaxies from each 5° inclination bin (regression) or
  from each class (reject models).

Every random choice is a stateless function of (seed, epoch, position), so an epoch can be replayed
exactly, which is what makes checkpoint resumption exact.
"""
from __future__ import annotations

import math
from dataclasses import dataclass

import numpy as np
import tensorflow as tf

MODES = ("colour", "g", "r", "i")
BIN_EDGES = np.arange(45.0, 95.0, 5.0)


@dataclass(frozen=True)
class AugmentConfig:
    scale_range: tuple[float, float] = (0.9, 1.1)  # one factor for both axes
    translate_fraction: float = 0.06
    noise_sigma_max: float = 4.0  # in 0–255 units
    blur_probability: float = 0.3
    blur_sigma_max: float = 0.8
    gamma_range: tuple[float, float] = (0.9, 1.1)
    contrast_range: tuple[float, float] = (0.85, 1.15)
    colour_jitter: float = 0.08
    colour_fraction: float = 0.5
    inverted_fraction_of_grey: float = 0.5


@dataclass
class ImageSet:
    """Galaxy images in every mode, with labels; row k of every array is galaxy k."""

    colour: np.ndarray  # (N, H, W, 3) uint8
    g: np.ndarray  # (N, H, W) uint8
    r: np.ndarray
    i: np.ndarray
    labels: np.ndarray  # (N,) inclination in degrees (regression) or 0/1 (reject)

    def __len__(self) -> int:
        return int(self.labels.shape[0])

    def subset(self, index: np.ndarray) -> ImageSet:
        return ImageSet(self.colour[index], self.g[index], self.r[index], self.i[index], self.labels[index])


def inclination_bins(inclination: np.ndarray) -> np.ndarray:
    """Nine 5° bins as the original: [45,50], (50,55], ..., (85,90]."""
    return np.clip(np.ceil((np.asarray(inclination, float) - 45.0) / 5.0) - 1, 0, 8).astype(int)


def balanced_indices(labels: np.ndarray, *, n: int, seed: int, epoch: int, kind: str = "regression") -> np.ndarray:
    """``n`` galaxy indices with equal counts per inclination bin (or per class)."""
    rng = np.random.default_rng([seed, epoch, 7])
    groups = inclination_bins(labels) if kind == "regression" else np.asarray(labels, int)
    present = [g for g in np.unique(groups)]
    per_group = int(math.ceil(n / len(present)))
    picks = [rng.choice(np.flatnonzero(groups == g), size=per_group, replace=True) for g in present]
    chosen = np.concatenate(picks)
    rng.shuffle(chosen)
    return chosen[:n]


def _stateless_uniform(seed: tf.Tensor, salt: int, low: float = 0.0, high: float = 1.0) -> tf.Tensor:
    return tf.random.stateless_uniform([], seed=seed + tf.constant([0, salt], tf.int64), minval=low, maxval=high)


def _transform(image: tf.Tensor, *, angle: tf.Tensor, scale: tf.Tensor, tx: tf.Tensor, ty: tf.Tensor) -> tf.Tensor:
    """Rotate, scale (isotropically) and translate about the centre in one resampling."""
    height = tf.cast(tf.shape(image)[0], tf.float32)
    width = tf.cast(tf.shape(image)[1], tf.float32)
    cx, cy = (width - 1) / 2, (height - 1) / 2
    cos, sin = tf.cos(angle) / scale, tf.sin(angle) / scale
    # Output pixel (x, y) samples input R(-angle)/scale · (p - c - t) + c.
    a0, a1, b0, b1 = cos, sin, -sin, cos
    a2 = cx - (a0 * (cx + tx) + a1 * (cy + ty))
    b2 = cy - (b0 * (cx + tx) + b1 * (cy + ty))
    transform = tf.stack([a0, a1, a2, b0, b1, b2, 0.0, 0.0])[tf.newaxis]
    out = tf.raw_ops.ImageProjectiveTransformV3(
        images=image[tf.newaxis], transforms=transform, output_shape=tf.shape(image)[:2],
        fill_value=0.0, interpolation="BILINEAR", fill_mode="CONSTANT",
    )
    return out[0]


def _blur(image: tf.Tensor, sigma: tf.Tensor) -> tf.Tensor:
    taps = tf.range(-2.0, 3.0)
    kernel = tf.exp(-0.5 * tf.square(taps / tf.maximum(sigma, 1e-3)))
    kernel = kernel / tf.reduce_sum(kernel)
    channels = tf.shape(image)[-1]
    horizontal = tf.tile(tf.reshape(kernel, [1, 5, 1, 1]), [1, 1, channels, 1])
    vertical = tf.tile(tf.reshape(kernel, [5, 1, 1, 1]), [1, 1, channels, 1])
    out = tf.nn.depthwise_conv2d(image[tf.newaxis], horizontal, [1, 1, 1, 1], "SAME")
    return tf.nn.depthwise_conv2d(out, vertical, [1, 1, 1, 1], "SAME")[0]


def augment_image(image: tf.Tensor, seed: tf.Tensor, *, is_colour: tf.Tensor, invert: tf.Tensor,
                  config: AugmentConfig) -> tf.Tensor:
    """One image (H, W, 3) float32 in 0–255 → augmented float32 in 0–255."""
    size = tf.cast(tf.shape(image)[0], tf.float32)
    if_flip_lr = _stateless_uniform(seed, 1) < 0.5
    if_flip_ud = _stateless_uniform(seed, 2) < 0.5
    image = tf.cond(if_flip_lr, lambda: tf.image.flip_left_right(image), lambda: image)
    image = tf.cond(if_flip_ud, lambda: tf.image.flip_up_down(image), lambda: image)
    image = _transform(
        image,
        angle=_stateless_uniform(seed, 3, 0.0, 2 * math.pi),
        scale=_stateless_uniform(seed, 4, *config.scale_range),
        tx=_stateless_uniform(seed, 5, -config.translate_fraction, config.translate_fraction) * size,
        ty=_stateless_uniform(seed, 6, -config.translate_fraction, config.translate_fraction) * size,
    )
    blur = _stateless_uniform(seed, 7) < config.blur_probability
    image = tf.cond(blur, lambda: _blur(image, _stateless_uniform(seed, 8, 0.3, config.blur_sigma_max)), lambda: image)
    # Gamma and contrast on 0–1, then colour jitter (colour images only), then noise.
    unit = tf.clip_by_value(image / 255.0, 0.0, 1.0)
    unit = tf.pow(unit, _stateless_uniform(seed, 9, *config.gamma_range))
    mean = tf.reduce_mean(unit)
    unit = (unit - mean) * _stateless_uniform(seed, 10, *config.contrast_range) + mean
    jitter = 1.0 + tf.random.stateless_uniform([3], seed=seed + tf.constant([0, 11], tf.int64),
                                               minval=-config.colour_jitter, maxval=config.colour_jitter)
    unit = tf.where(is_colour, unit * jitter, unit)
    noise = tf.random.stateless_normal(tf.shape(unit), seed=seed + tf.constant([0, 12], tf.int64))
    noise_sigma = _stateless_uniform(seed, 13, 0.0, config.noise_sigma_max) / 255.0
    # Grey images keep identical channels: one noise plane for all three.
    noise = tf.where(is_colour, noise, tf.repeat(noise[..., :1], 3, axis=-1))
    unit = tf.clip_by_value(unit + noise * noise_sigma, 0.0, 1.0)
    unit = tf.where(invert, 1.0 - unit, unit)
    return unit * 255.0


def _pick_mode(seed: tf.Tensor, config: AugmentConfig) -> tuple[tf.Tensor, tf.Tensor]:
    """(mode index into MODES, inverted?) with colour/grey 50/50, grey inverted 50/50, g/r/i equal."""
    is_colour = _stateless_uniform(seed, 20) < config.colour_fraction
    band = tf.cast(tf.floor(_stateless_uniform(seed, 21, 0.0, 3.0 - 1e-6)), tf.int32) + 1
    mode = tf.where(is_colour, 0, band)
    invert = tf.logical_and(tf.logical_not(is_colour), _stateless_uniform(seed, 22) < config.inverted_fraction_of_grey)
    return mode, invert


def make_training_dataset(images: ImageSet, *, kind: str, n_per_epoch: int, batch_size: int, seed: int, epoch: int,
                          config: AugmentConfig | None = None) -> tf.data.Dataset:
    """One epoch of balanced, augmented batches; the same (seed, epoch) always gives the same batches."""
    config = config or AugmentConfig()
    indices = balanced_indices(images.labels, n=n_per_epoch, seed=seed, epoch=epoch, kind=kind)
    colour, g, r, i = (tf.constant(a) for a in (images.colour, images.g, images.r, images.i))
    labels = tf.constant(images.labels.astype(np.float32 if kind == "regression" else np.int32))
    seeds = np.stack([np.full(len(indices), seed * 100_003 + epoch, np.int64), np.arange(len(indices), dtype=np.int64)], 1)

    def load(index: tf.Tensor, sample_seed: tf.Tensor) -> tuple[tf.Tensor, tf.Tensor]:
        mode, invert = _pick_mode(sample_seed, config)
        image = tf.switch_case(
            mode,
            [lambda: colour[index], lambda: tf.repeat(g[index][..., None], 3, -1),
             lambda: tf.repeat(r[index][..., None], 3, -1), lambda: tf.repeat(i[index][..., None], 3, -1)],
        )
        image = augment_image(tf.cast(image, tf.float32), sample_seed, is_colour=tf.equal(mode, 0), invert=invert,
                              config=config)
        label = labels[index]
        if kind == "regression":
            label = (label - 67.5) / 22.5
        return image, label

    dataset = tf.data.Dataset.from_tensor_slices((indices.astype(np.int64), seeds))
    return dataset.map(load, num_parallel_calls=tf.data.AUTOTUNE, deterministic=True).batch(batch_size).prefetch(2)


def evaluation_views(images: ImageSet) -> tuple[np.ndarray, np.ndarray, np.ndarray, np.ndarray]:
    """Every galaxy in every mode without random augmentation: colour, g, r, i and inverted r.

    Returns images (5N, H, W, 3) uint8, galaxy index, mode name and label per row. The inverted view is
    given to the models as it is (they were trained on inverted images too).
    """
    rows, index, modes = [], [], []
    for k in range(len(images)):
        views = {
            "colour": images.colour[k],
            "g": np.repeat(images.g[k][..., None], 3, -1),
            "r": np.repeat(images.r[k][..., None], 3, -1),
            "i": np.repeat(images.i[k][..., None], 3, -1),
        }
        views["inverted"] = 255 - views["r"]
        for mode, view in views.items():
            rows.append(view)
            index.append(k)
            modes.append(mode)
    index_arr = np.array(index)
    return np.stack(rows), index_arr, np.array(modes), images.labels[index_arr]
