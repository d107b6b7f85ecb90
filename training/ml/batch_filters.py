"""Batched image filters shared by the training augmentation and the domain randomisation: a per-image Gaussian
blur and unit noise fields drawn from a fixed bank (both stateless, so a seed replays them exactly)."""
from __future__ import annotations

import functools
import math

import numpy as np
import tensorflow as tf

BLUR_RADIUS = 3  # 7 taps: enough for sigma ≤ 1.2 px


def gaussian_blur(images: tf.Tensor, sigma: tf.Tensor, radius: int = BLUR_RADIUS) -> tf.Tensor:
    """Separable Gaussian blur with one sigma per image (sigma 0 leaves the image exactly unchanged).

    The batch is folded into the channel axis so one depthwise convolution applies every image's kernel.
    """
    shape = tf.shape(images)
    batch, height, width, channels = shape[0], shape[1], shape[2], shape[3]
    taps = tf.range(-radius, radius + 1, dtype=tf.float32)
    kernel = tf.exp(-0.5 * tf.square(taps[tf.newaxis] / tf.maximum(sigma, 1e-3)[:, tf.newaxis]))
    kernel = kernel / tf.reduce_sum(kernel, axis=1, keepdims=True)  # (B, T)
    per_channel = tf.transpose(tf.repeat(kernel, channels, axis=0))  # (T, B·C), column b·C + c
    folded = tf.reshape(tf.transpose(images, [1, 2, 0, 3]), [1, height, width, batch * channels])
    r = radius
    folded = tf.pad(folded, [[0, 0], [r, r], [r, r], [0, 0]], mode="REFLECT")
    folded = tf.nn.depthwise_conv2d(folded, per_channel[tf.newaxis, :, :, tf.newaxis], [1, 1, 1, 1], "VALID")
    folded = tf.nn.depthwise_conv2d(folded, per_channel[:, tf.newaxis, :, tf.newaxis], [1, 1, 1, 1], "VALID")
    return tf.transpose(tf.reshape(folded, [height, width, batch, channels]), [2, 0, 1, 3])



@functools.lru_cache(maxsize=8)
def _noise_bank(height: int, width: int, fields: int = 32, correlated: bool = False) -> tf.Tensor:
    """Fixed unit-Gaussian noise fields, (fields, H, W, 3). Drawing per-pixel Gaussians for every batch
    costs more than all other augmentations together; picking a field, a sign and a roll per batch does not.
    ``correlated``: each field smoothed by a Gaussian of about 1.2 px (periodic) and rescaled to unit sigma,
    like the resampled, co-added noise of survey images."""
    with tf.init_scope():  # an eager tensor even when first called while a dataset function is traced
        rng = np.random.default_rng(20260 + int(correlated))
        bank = rng.standard_normal((fields, height, width, 3), dtype=np.float32)
        if correlated:
            ky = np.fft.fftfreq(height)[:, None]
            kx = np.fft.rfftfreq(width)[None, :]
            kernel = np.exp(-2 * (math.pi * 1.2) ** 2 * (kx * kx + ky * ky))
            smooth = np.fft.irfft2(np.fft.rfft2(bank, axes=(1, 2)) * kernel[None, :, :, None], s=(height, width),
                                   axes=(1, 2))
            bank = (smooth / smooth.std()).astype(np.float32)
        return tf.constant(bank)


def noise_field(seed: tf.Tensor, height: int, width: int, column: tf.Tensor, *, correlated: bool = False) -> tf.Tensor:
    """(B, H, W, 3) unit noise: bank field chosen by ``column`` (uniform 0–1 per image), rolled per batch."""
    bank = _noise_bank(height, width, correlated=correlated)
    pick = tf.cast(column * tf.cast(tf.shape(bank)[0], tf.float32), tf.int32)
    noise = tf.gather(bank, tf.minimum(pick, tf.shape(bank)[0] - 1))
    shift = tf.random.stateless_uniform([2], seed=seed + tf.constant([0, 3], tf.int64), maxval=max(height, width),
                                        dtype=tf.int32)
    return tf.roll(noise, shift=[shift[0] % height, shift[1] % width], axis=[1, 2])
