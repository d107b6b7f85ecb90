"""Domain randomisation of training batches: the display stretch, field stars, colour balance, PSF, pixel size,
sky, noise and JPEG quality of every image redrawn from ranges far wider than one generator's (``DomainConfig``),
so another renderer's images, or a survey's, look like one more sample. Label-preserving: nothing here changes a
galaxy's shape. Every draw is a stateless function of the batch seed.
"""
from __future__ import annotations

import math
from dataclasses import dataclass

import numpy as np
import tensorflow as tf

from .batch_filters import gaussian_blur, noise_field


@dataclass(frozen=True)
class DomainConfig:
    """Ranges of the domain-randomisation stage: the world the networks see is drawn far wider than one
    generator's, so that another renderer's images, or a survey's, look like one more sample of it.

    All intensities are 0–1 display units. Probabilities are per image unless stated (pixel size is per batch).
    """

    # Re-stretch: undo the generator's asinh approximately (sinh(v·A)/sinh(A), A drawn from ``linearise_range``),
    # then map the linear flux again with a random law (weights: asinh, log, sqrt, power, linear) and a white point
    # that is a random multiple of the galaxy's central brightness (so cores saturate, or faint disks vanish).
    restretch_probability: float = 0.75
    linearise_range: tuple[float, float] = (5.0, 8.0)
    stretch_weights: tuple[float, float, float, float, float] = (0.3, 0.25, 0.2, 0.15, 0.1)
    white_point_range: tuple[float, float] = (0.25, 2.0)  # × the mean of the central 12×12 pixels
    asinh_softening_range: tuple[float, float] = (3.0, 300.0)  # log-uniform, for asinh and log laws
    gamma_range: tuple[float, float] = (0.3, 0.9)  # power law exponent
    # Sky: a pedestal and a linear gradient in display units.
    sky_probability: float = 0.5
    sky_level_max: float = 0.15
    sky_gradient_max: float = 0.10  # change across the field
    # PSF: a Gaussian blur up to ``blur_sigma_max`` pixels (in place of AugmentConfig's mild blur).
    blur_probability: float = 0.6
    blur_sigma_max: float = 2.0
    # Pixel size: each batch is, with this probability, shrunk to a random side in ``resample_range`` (× size)
    # and brought back: coarser pixels at the same field.
    resample_probability: float = 0.35
    resample_range: tuple[float, float] = (0.4, 0.9)
    # Noise: sigma up to ``noise_sigma_max``; a share of images get spatially correlated noise.
    noise_sigma_max: float = 0.06
    correlated_noise_fraction: float = 0.4
    # Colour (colour images only): per-channel balance, and saturation (0 = grey, 1 = unchanged).
    colour_balance: float = 0.3
    saturation_range: tuple[float, float] = (0.2, 1.8)
    # Field stars: up to this many point sources per image, peak up to ``star_peak_max``.
    star_count_max: int = 6
    star_peak_max: float = 1.0
    # JPEG: a share of images re-encoded at a quality in the range.
    jpeg_probability: float = 0.7
    jpeg_quality_range: tuple[int, int] = (40, 100)


class _Draws:
    """One batch's per-image uniform draws (column k = one random parameter) and the helpers that shape them."""

    def __init__(self, seed: tf.Tensor, batch: tf.Tensor) -> None:
        self.u = tf.random.stateless_uniform([batch, 24], seed=seed + tf.constant([0, 5], tf.int64))
        self.per_image = (batch, 1, 1, 1)

    def between(self, column: int, low: float, high: float) -> tf.Tensor:
        return low + (high - low) * self.u[:, column]

    def log_between(self, column: int, low: float, high: float) -> tf.Tensor:
        return tf.exp(self.between(column, math.log(low), math.log(high)))

    def image(self, values: tf.Tensor) -> tf.Tensor:
        """Per-image values shaped to broadcast over (B, H, W, C)."""
        return tf.reshape(values, self.per_image)


def domain_stage(unit: tf.Tensor, seed: tf.Tensor, *, is_colour: tf.Tensor, config: DomainConfig,
                 size: tuple[int, int]) -> tf.Tensor:
    """Domain randomisation of a batch of display images, (B, H, W, 3) float32 in 0–1 → the same, clipped.

    In order: a new display stretch from approximately linear flux, with field stars (or stars added to the
    old stretch); colour balance and saturation; a Gaussian PSF; coarser pixels (per batch); a sky pedestal
    and gradient; white or correlated noise. Label-preserving: nothing changes the galaxy's shape.
    """
    batch = tf.shape(unit)[0]
    height, width = int(size[0]), int(size[1])
    unit = tf.ensure_shape(unit, [None, height, width, 3])
    draws = _Draws(seed, batch)
    colour_mask = draws.image(tf.cast(is_colour, tf.float32))
    stars = _field_stars(unit, seed, draws, colour_mask, config, size=(height, width))
    unit = _restretch(unit, stars, draws, config, size=(height, width))
    if config.colour_balance > 0:
        unit = _colour_balance(unit, seed, draws, colour_mask, config)
    if config.blur_probability > 0 and config.blur_sigma_max > 0:
        sigma = tf.where(draws.u[:, 8] < config.blur_probability, draws.between(9, 0.3, config.blur_sigma_max), 0.0)
        unit = gaussian_blur(unit, sigma, radius=int(math.ceil(3 * config.blur_sigma_max)))
    if config.resample_probability > 0:
        unit = _coarser_pixels(unit, seed, config, size=(height, width))
    if config.sky_probability > 0:
        unit = _sky(unit, draws, config, size=(height, width))
    if config.noise_sigma_max > 0:
        unit = _survey_noise(unit, seed, draws, colour_mask, config, size=(height, width))
    return tf.clip_by_value(unit, 0.0, 1.0)


def _field_stars(unit: tf.Tensor, seed: tf.Tensor, draws: _Draws, colour_mask: tf.Tensor, config: DomainConfig, *,
                 size: tuple[int, int]) -> tf.Tensor:
    """Field stars: Gaussian points, (B, K, H, W) summed over K; a random number per image (zero when off)."""
    if config.star_count_max <= 0:
        return tf.zeros_like(unit)
    height, width = size
    k = config.star_count_max
    su = tf.random.stateless_uniform([tf.shape(unit)[0], k, 6], seed=seed + tf.constant([0, 6], tf.int64))
    count = tf.floor(draws.u[:, 0] * (k + 1))
    on = tf.cast(tf.range(k, dtype=tf.float32)[tf.newaxis] < count[:, tf.newaxis], tf.float32)
    sx, sy = su[..., 0] * (width - 1), su[..., 1] * (height - 1)
    sigma = 0.6 + 1.0 * su[..., 2]
    peak = on * tf.exp(math.log(0.05) + (math.log(max(config.star_peak_max, 0.051)) - math.log(0.05)) * su[..., 3])
    yy = tf.range(height, dtype=tf.float32)[tf.newaxis, tf.newaxis, :, tf.newaxis]
    xx = tf.range(width, dtype=tf.float32)[tf.newaxis, tf.newaxis, tf.newaxis, :]
    r2 = tf.square(xx - sx[..., tf.newaxis, tf.newaxis]) + tf.square(yy - sy[..., tf.newaxis, tf.newaxis])
    profile = peak[..., tf.newaxis, tf.newaxis] * tf.exp(-0.5 * r2 / tf.square(sigma)[..., tf.newaxis, tf.newaxis])
    tint = 1.0 + 0.3 * (su[..., 4:5] - 0.5) * tf.constant([[[1.0, 0.0, -1.0]]])  # (B, K, 3): red or blue
    stars = tf.einsum("bkhw,bkc->bhwc", profile, tint)
    return colour_mask * stars + (1.0 - colour_mask) * stars[..., :1]


def _restretch(unit: tf.Tensor, stars: tf.Tensor, draws: _Draws, config: DomainConfig, *,
               size: tuple[int, int]) -> tf.Tensor:
    """A new display stretch from approximately linear flux (with the stars), or the stars on the old one."""
    image, between = draws.image, draws.between
    height, width = size
    a_lin = image(between(1, *config.linearise_range))
    linear = tf.sinh(unit * a_lin) / tf.sinh(a_lin)
    cy, cx = height // 2, width // 2
    centre = tf.reduce_mean(linear[:, cy - 6:cy + 6, cx - 6:cx + 6, :], axis=[1, 2, 3])
    white = image(tf.maximum(centre, 1e-3) * between(2, *config.white_point_range))
    z = tf.maximum(linear + stars * white, 0.0) / white
    soft = image(draws.log_between(3, *config.asinh_softening_range))
    laws = tf.stack([
        tf.asinh(soft * z) / tf.asinh(soft),
        tf.math.log1p(soft * z) / tf.math.log1p(soft),
        tf.sqrt(z),
        tf.pow(z + 1e-6, image(between(4, *config.gamma_range))),
        z,
    ], axis=0)
    weights = np.asarray(config.stretch_weights, np.float64)
    edges = tf.constant(np.cumsum(weights / weights.sum())[:-1], tf.float32)
    law = tf.reduce_sum(tf.cast(draws.u[:, 5:6] >= edges[tf.newaxis], tf.int32), axis=1)  # (B,)
    restretched = tf.gather(tf.transpose(laws, [1, 0, 2, 3, 4]), law, batch_dims=1)
    chosen = image(tf.cast(draws.u[:, 6] < config.restretch_probability, tf.float32))
    return chosen * tf.clip_by_value(restretched, 0.0, 1.0) + (1.0 - chosen) * (unit + stars)


def _colour_balance(unit: tf.Tensor, seed: tf.Tensor, draws: _Draws, colour_mask: tf.Tensor,
                    config: DomainConfig) -> tf.Tensor:
    """Per-channel gains and saturation, colour images only (grey images keep equal channels)."""
    gains = 1.0 + config.colour_balance * (2.0 * tf.random.stateless_uniform(
        [tf.shape(unit)[0], 1, 1, 3], seed=seed + tf.constant([0, 7], tf.int64)) - 1.0)
    grey = tf.reduce_mean(unit, axis=-1, keepdims=True)
    saturated = grey + draws.image(draws.between(7, *config.saturation_range)) * (unit - grey)
    return colour_mask * saturated * gains + (1.0 - colour_mask) * unit


def _coarser_pixels(unit: tf.Tensor, seed: tf.Tensor, config: DomainConfig, *, size: tuple[int, int]) -> tf.Tensor:
    """With ``resample_probability``, the whole batch shrunk to a random side and brought back."""
    height, width = size
    bu = tf.random.stateless_uniform([2], seed=seed + tf.constant([0, 8], tf.int64))
    low, high = config.resample_range
    side = tf.cast(tf.round(height * (low + (high - low) * bu[1])), tf.int32)

    def coarse() -> tf.Tensor:
        small = tf.image.resize(unit, tf.stack([side, side]), method="area")
        return tf.image.resize(small, [height, width], method="bilinear")

    return tf.cond(bu[0] < config.resample_probability, coarse, lambda: unit)


def _sky(unit: tf.Tensor, draws: _Draws, config: DomainConfig, *, size: tuple[int, int]) -> tf.Tensor:
    """A sky pedestal and a linear gradient in a random direction (display units)."""
    image, between = draws.image, draws.between
    height, width = size
    has_sky = image(tf.cast(draws.u[:, 10] < config.sky_probability, tf.float32))
    angle = between(11, 0.0, 2 * math.pi)
    ramp_x = tf.linspace(-0.5, 0.5, width)[tf.newaxis, tf.newaxis, :, tf.newaxis]
    ramp_y = tf.linspace(-0.5, 0.5, height)[tf.newaxis, :, tf.newaxis, tf.newaxis]
    gradient = image(between(12, 0.0, config.sky_gradient_max)) * (
        image(tf.cos(angle)) * ramp_x + image(tf.sin(angle)) * ramp_y)
    return unit + has_sky * (image(between(13, 0.0, config.sky_level_max)) + gradient)


def _survey_noise(unit: tf.Tensor, seed: tf.Tensor, draws: _Draws, colour_mask: tf.Tensor, config: DomainConfig, *,
                  size: tuple[int, int]) -> tf.Tensor:
    """White or spatially correlated noise; grey images get one plane for all channels."""
    height, width = size
    u = draws.u
    white_noise = noise_field(seed + tf.constant([0, 9], tf.int64), height, width, u[:, 14])
    correlated = noise_field(seed + tf.constant([0, 10], tf.int64), height, width, u[:, 15], correlated=True)
    use_corr = draws.image(tf.cast(u[:, 16] < config.correlated_noise_fraction, tf.float32))
    noise = use_corr * correlated + (1.0 - use_corr) * white_noise
    noise = colour_mask * noise + (1.0 - colour_mask) * noise[..., :1]
    return unit + noise * draws.image(draws.between(17, 0.0, config.noise_sigma_max))


def jpeg_batch(unit: tf.Tensor, seed: tf.Tensor, config: DomainConfig) -> tf.Tensor:
    """Re-encode a share of the batch as JPEG at a random quality (0–1 in, 0–1 out)."""
    batch = tf.shape(unit)[0]
    u = tf.random.stateless_uniform([batch, 2], seed=seed + tf.constant([0, 11], tf.int64))
    low, high = config.jpeg_quality_range
    quality = tf.cast(tf.round(low + (high - low) * u[:, 1]), tf.int32)
    pixels = tf.cast(tf.round(tf.clip_by_value(unit, 0.0, 1.0) * 255.0), tf.uint8)
    encoded = tf.map_fn(lambda args: tf.image.adjust_jpeg_quality(args[0], args[1]), (pixels, quality),
                        fn_output_signature=tf.uint8)
    encoded = tf.ensure_shape(encoded, [None, *unit.shape[1:]])
    chosen = tf.reshape(u[:, 0] < config.jpeg_probability, (batch, 1, 1, 1))
    return tf.where(chosen, tf.cast(encoded, tf.float32) / 255.0, unit)
