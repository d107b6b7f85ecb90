"""On-the-fly training augmentation and evaluation batches as ``tf.data`` pipelines.

Fixes over the original (imgaug, pre-rendered batch files):

- Geometry is rotation by any angle, horizontal/vertical flips, translation and ONE isotropic scale
  factor, all folded into a single affine resampling per image. The original drew x and y scales
  independently (0.8–1.2 each), which changes the apparent axial ratio and so corrupts the label.
- Uncovered corners are filled with the image's own sky level (the faintest border strip), not black or
  a random colour, so rotation leaves no artificial edges; inverted images get a bright sky, as they should.
- Photometry (blur, a gamma-like tone curve, gain, brightness, Gaussian noise) applies to colour AND grey
  images; colour images also get a per-channel colour jitter and per-channel noise. The original's
  training set skipped all of it through an ``isGray=True`` bug. Grey images keep three identical channels.
- Modes are balanced exactly per epoch: half colour, half grey; half of the grey inverted; g/r/i equal.
- Inclinations are balanced over the nine 5° bins (45–50, …, 85–90°); reject models see the two classes
  50/50, and within "rejected" every reject reason equally often (rare, subtle reasons such as a companion
  would otherwise be drowned out by the easy face-on rejects).

Inputs are an :class:`ImageSet` (or a dict ``{"colour": (N,H,W,3) uint8, "g"/"r"/"i": (N,H,W) uint8,
"label": (N,)}``): row k of every array is galaxy k, so all its bands travel together. Outputs are float32
batches of raw 0–255 pixel values (the models scale them, see ``scaling``) and network targets.

Every random choice is a stateless function of (seed, epoch, batch number): an epoch replays bit for bit,
which is what makes checkpoint resumption exact. Augmentation runs on whole batches with TF ops.
"""
from __future__ import annotations

import functools
import math
from collections.abc import Mapping, Sequence
from dataclasses import asdict, dataclass, field
from typing import Any

import numpy as np
import tensorflow as tf

from .scaling import inclination_to_target

EVAL_MODES = ("colour", "g", "r", "i", "inverted")  # "inverted" = 255 − r
BIN_EDGES = np.arange(45.0, 95.0, 5.0)
N_BINS = 9
KINDS = ("regression", "reject")
_BLUR_RADIUS = 3  # 7 taps: enough for sigma ≤ 1.2 px


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


@dataclass(frozen=True)
class AugmentConfig:
    """Ranges of the random augmentation. Rotation covers every angle by default (inclination does not depend on it);
    scale and shift stay mild because inputs are already centred and sized to the galaxy."""

    rotate: bool = True
    # Rotation angles are uniform in ±rotation_max_deg; 180 = any angle. Served images are aligned (major
    # axis horizontal), so a smaller range spends the network's capacity on what it will see; with the
    # flips it still covers both orientations of the axis.
    rotation_max_deg: float = 180.0
    flip: bool = True  # each axis with probability 1/2
    scale_range: tuple[float, float] = (0.9, 1.1)  # one factor for both axes, never independent x/y
    translate_fraction: float = 0.06  # of the image size, each axis
    blur_probability: float = 0.3
    blur_sigma_range: tuple[float, float] = (0.3, 1.0)  # pixels
    # Tone curve y = x + k·x·(1 − x) on 0–1 values: a cheap stand-in for gamma (k ±0.12 ≈ gamma 0.9–1.1)
    # that costs three multiply-adds instead of a pow per pixel.
    tone_range: tuple[float, float] = (-0.12, 0.12)
    gain_range: tuple[float, float] = (0.85, 1.15)  # contrast: multiply (the sky stays near 0)
    brightness_max: float = 5.0  # additive, 0–255 units
    colour_jitter: float = 0.08  # per-channel gain 1 ± this, colour images only
    noise_sigma_max: float = 4.0  # 0–255 units
    colour_fraction: float = 0.5
    inverted_fraction_of_grey: float = 0.5
    # Domain randomisation (``DomainConfig``): None keeps the recipe above exactly; a DomainConfig (or a
    # dict of its fields) adds a stage that redraws the display stretch, sky, PSF, noise, pixel size,
    # JPEG quality, colour balance and field stars of every training image (see ``domain_stage``).
    domain: DomainConfig | None = None

    def __post_init__(self) -> None:
        if isinstance(self.domain, Mapping):
            object.__setattr__(self, "domain", DomainConfig(**{k: tuple(v) if isinstance(v, list) else v
                                                              for k, v in self.domain.items()}))

    @classmethod
    def geometry_only(cls) -> AugmentConfig:
        """Rotation, flips, scale and translation without any photometric change (for tests)."""
        return cls(blur_probability=0.0, tone_range=(0.0, 0.0), gain_range=(1.0, 1.0), brightness_max=0.0,
                   colour_jitter=0.0, noise_sigma_max=0.0)


@dataclass
class ImageSet:
    """Galaxy images in every mode with their labels; row k of every array is galaxy k."""

    colour: np.ndarray  # (N, H, W, 3) uint8
    g: np.ndarray  # (N, H, W) uint8
    r: np.ndarray
    i: np.ndarray
    # (N,) inclination in degrees (regression); for reject models 0 = accepted and k ≥ 1 = rejected for
    # reason k (plain 1 when the reason is unknown): any k ≥ 1 is the class "rejected".
    labels: np.ndarray
    _tensors: dict[str, tf.Tensor] | None = field(default=None, init=False, repr=False, compare=False)

    def __post_init__(self) -> None:
        n = len(self.labels)
        for name in ("colour", "g", "r", "i"):
            array = getattr(self, name)
            if array.shape[0] != n:
                raise ValueError(f"{name} has {array.shape[0]} rows but there are {n} labels.")
        if self.colour.ndim != 4 or self.colour.shape[-1] != 3 or self.g.shape != self.colour.shape[:3]:
            raise ValueError(f"Expected colour (N,H,W,3) and bands (N,H,W); got {self.colour.shape}, {self.g.shape}.")
        if not self.r.shape == self.i.shape == self.g.shape:
            raise ValueError("The g, r and i bands must have the same shape.")

    def __len__(self) -> int:
        return int(self.labels.shape[0])

    @property
    def image_shape(self) -> tuple[int, int, int]:
        return tuple(int(s) for s in self.colour.shape[1:])  # type: ignore[return-value]

    @classmethod
    def from_arrays(cls, arrays: Mapping[str, np.ndarray]) -> ImageSet:
        """From a dict with keys colour, g, r, i and label (or labels)."""
        labels = arrays["label"] if "label" in arrays else arrays["labels"]
        return cls(colour=np.asarray(arrays["colour"]), g=np.asarray(arrays["g"]), r=np.asarray(arrays["r"]),
                   i=np.asarray(arrays["i"]), labels=np.asarray(labels))

    def subset(self, index: np.ndarray) -> ImageSet:
        return ImageSet(self.colour[index], self.g[index], self.r[index], self.i[index], self.labels[index])

    def tensors(self) -> dict[str, tf.Tensor]:
        """The pixels as one uint8 tensor (N, H, W, 6) = colour R, G, B then g, r, i, converted once and
        reused by every epoch's dataset (one gather per batch, then a channel selection)."""
        if self._tensors is None:
            stacked = np.concatenate([self.colour, np.stack([self.g, self.r, self.i], axis=-1)], axis=-1)
            self._tensors = {"pixels": tf.convert_to_tensor(stacked, tf.uint8)}
        return self._tensors


def as_image_set(data: ImageSet | Mapping[str, np.ndarray]) -> ImageSet:
    return data if isinstance(data, ImageSet) else ImageSet.from_arrays(data)


def inclination_bins(inclination: np.ndarray) -> np.ndarray:
    """Bin 0…8 as the original: [45,50], (50,55], …, (85,90]; values outside go to the end bins."""
    return np.clip(np.ceil((np.asarray(inclination, float) - 45.0) / 5.0) - 1, 0, N_BINS - 1).astype(int)


def encode_labels(labels: np.ndarray, kind: str) -> np.ndarray:
    """Network targets: tanh values (N, 1) float32 for regression, class ids (N,) int32 for reject models."""
    if kind == "regression":
        return np.clip(inclination_to_target(np.asarray(labels, np.float64)), -1.0, 1.0).astype(np.float32)[:, None]
    if kind == "reject":
        return (np.asarray(labels) > 0).astype(np.int32)
    raise ValueError(f"kind must be one of {KINDS}, not {kind!r}")


def balanced_indices(labels: np.ndarray, *, n: int, seed: int, epoch: int, kind: str = "regression") -> np.ndarray:
    """``n`` galaxy indices, equally many per inclination bin (regression), in random order.

    For reject models half are accepted and half rejected, the rejected half split equally over the reject
    reasons present (label k ≥ 1 = reason k). Within a group, galaxies are drawn from successive random
    permutations, so every galaxy is used as evenly as possible (a rare group repeats each galaxy, a rich
    one samples without repetition).
    """
    rng = np.random.default_rng([seed, epoch, 7])
    groups = inclination_bins(labels) if kind == "regression" else np.asarray(labels).astype(int)
    present = np.unique(groups)
    if present.size == 0:
        raise ValueError("No labelled galaxies to sample from.")
    if kind == "regression" or present.size <= 2:
        shares = {int(group): 1.0 / present.size for group in present}
    else:
        reasons = present[present > 0]
        has_accepted = bool((present == 0).any())
        shares = {int(r): (0.5 if has_accepted else 1.0) / reasons.size for r in reasons}
        if has_accepted:
            shares[0] = 0.5
    picks = []
    for group in present:
        members = np.flatnonzero(groups == group)
        wanted = int(math.ceil(n * shares[int(group)]))
        repeats = int(math.ceil(wanted / members.size))
        picks.append(np.concatenate([rng.permutation(members) for _ in range(repeats)])[:wanted])
    chosen = np.concatenate(picks)
    rng.shuffle(chosen)
    return chosen[:n]


def balanced_modes(n: int, *, rng: np.random.Generator, config: AugmentConfig) -> tuple[np.ndarray, np.ndarray, np.ndarray]:
    """Exact mode proportions for ``n`` samples: (is_colour, band 0/1/2 = g/r/i, inverted), shuffled."""
    n_colour = int(round(n * config.colour_fraction))
    n_grey = n - n_colour
    is_colour = np.zeros(n, bool)
    is_colour[:n_colour] = True
    grey_inverted = np.arange(n_grey) < int(round(n_grey * config.inverted_fraction_of_grey))
    grey_band = np.arange(n_grey) % 3
    order = rng.permutation(n_grey)
    band = np.zeros(n, np.int32)
    inverted = np.zeros(n, bool)
    band[n_colour:] = grey_band[order]
    inverted[n_colour:] = rng.permutation(grey_inverted)
    shuffle = rng.permutation(n)
    return is_colour[shuffle], band[shuffle], inverted[shuffle]


# --- batched TF augmentation -------------------------------------------------------------------------


def _sky_level(images: tf.Tensor, width: int = 4) -> tf.Tensor:
    """Per image and channel sky estimate, shape (B, 1, 1, C): the faintest of the four border strips'
    means, so a star on one edge does not raise it (a median would need a sort, ~10× slower)."""
    strips = [images[:, :width], images[:, -width:], tf.transpose(images[:, :, :width], [0, 2, 1, 3]),
              tf.transpose(images[:, :, -width:], [0, 2, 1, 3])]
    means = tf.stack([tf.reduce_mean(strip, axis=[1, 2]) for strip in strips], axis=0)  # (4, B, C)
    return tf.reduce_min(means, axis=0)[:, tf.newaxis, tf.newaxis, :]


def affine_transforms(angle: tf.Tensor, scale: tf.Tensor, tx: tf.Tensor, ty: tf.Tensor, flip_x: tf.Tensor,
                      flip_y: tf.Tensor, *, height: int, width: int) -> tf.Tensor:
    """(B, 8) projective transforms for ``ImageProjectiveTransformV3``: each maps an OUTPUT pixel to the
    input pixel it samples. The forward map is p' = c + t + s·R(angle)·F·(p − c), F = diag(±1, ±1),
    so the inverse is p = c + F·R(−angle)·(p' − c − t)/s. A single ``s`` keeps every axial ratio."""
    cx, cy = (width - 1) / 2.0, (height - 1) / 2.0
    cos, sin = tf.cos(angle) / scale, tf.sin(angle) / scale
    a0, a1 = flip_x * cos, flip_x * sin
    b0, b1 = -flip_y * sin, flip_y * cos
    a2 = cx - (a0 * (cx + tx) + a1 * (cy + ty))
    b2 = cy - (b0 * (cx + tx) + b1 * (cy + ty))
    zero = tf.zeros_like(a0)
    return tf.stack([a0, a1, a2, b0, b1, b2, zero, zero], axis=1)


def _resample(images: tf.Tensor, transforms: tf.Tensor) -> tf.Tensor:
    """Bilinear affine resampling; uncovered pixels take the image's sky level (subtract, fill 0, add)."""
    sky = _sky_level(images)
    out = tf.raw_ops.ImageProjectiveTransformV3(
        images=images - sky, transforms=transforms, output_shape=tf.shape(images)[1:3],
        fill_value=0.0, interpolation="BILINEAR", fill_mode="CONSTANT",
    )
    return out + sky


def _blur(images: tf.Tensor, sigma: tf.Tensor, radius: int = _BLUR_RADIUS) -> tf.Tensor:
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


def _noise(seed: tf.Tensor, height: int, width: int, column: tf.Tensor, *, correlated: bool = False) -> tf.Tensor:
    """(B, H, W, 3) unit noise: bank field chosen by ``column`` (uniform 0–1 per image), rolled per batch."""
    bank = _noise_bank(height, width, correlated=correlated)
    pick = tf.cast(column * tf.cast(tf.shape(bank)[0], tf.float32), tf.int32)
    noise = tf.gather(bank, tf.minimum(pick, tf.shape(bank)[0] - 1))
    shift = tf.random.stateless_uniform([2], seed=seed + tf.constant([0, 3], tf.int64), maxval=max(height, width),
                                        dtype=tf.int32)
    return tf.roll(noise, shift=[shift[0] % height, shift[1] % width], axis=[1, 2])


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
    u = tf.random.stateless_uniform([batch, 24], seed=seed + tf.constant([0, 5], tf.int64))
    per_image = (batch, 1, 1, 1)

    def between(column: int, low: float, high: float) -> tf.Tensor:
        return low + (high - low) * u[:, column]

    def log_between(column: int, low: float, high: float) -> tf.Tensor:
        return tf.exp(between(column, math.log(low), math.log(high)))

    def image(values: tf.Tensor) -> tf.Tensor:
        return tf.reshape(values, per_image)

    colour_mask = image(tf.cast(is_colour, tf.float32))

    # Field stars: Gaussian points, (B, K, H, W) summed over K; a random number per image.
    stars = tf.zeros_like(unit)
    if config.star_count_max > 0:
        k = config.star_count_max
        su = tf.random.stateless_uniform([batch, k, 6], seed=seed + tf.constant([0, 6], tf.int64))
        count = tf.floor(u[:, 0] * (k + 1))
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
        stars = colour_mask * stars + (1.0 - colour_mask) * stars[..., :1]

    # Re-stretch from approximately linear flux.
    a_lin = image(between(1, *config.linearise_range))
    linear = tf.sinh(unit * a_lin) / tf.sinh(a_lin)
    cy, cx = height // 2, width // 2
    centre = tf.reduce_mean(linear[:, cy - 6:cy + 6, cx - 6:cx + 6, :], axis=[1, 2, 3])
    white = image(tf.maximum(centre, 1e-3) * between(2, *config.white_point_range))
    z = tf.maximum(linear + stars * white, 0.0) / white
    soft = image(log_between(3, *config.asinh_softening_range))
    laws = tf.stack([
        tf.asinh(soft * z) / tf.asinh(soft),
        tf.math.log1p(soft * z) / tf.math.log1p(soft),
        tf.sqrt(z),
        tf.pow(z + 1e-6, image(between(4, *config.gamma_range))),
        z,
    ], axis=0)
    weights = np.asarray(config.stretch_weights, np.float64)
    edges = tf.constant(np.cumsum(weights / weights.sum())[:-1], tf.float32)
    law = tf.reduce_sum(tf.cast(u[:, 5:6] >= edges[tf.newaxis], tf.int32), axis=1)  # (B,)
    restretched = tf.gather(tf.transpose(laws, [1, 0, 2, 3, 4]), law, batch_dims=1)
    chosen = image(tf.cast(u[:, 6] < config.restretch_probability, tf.float32))
    unit = chosen * tf.clip_by_value(restretched, 0.0, 1.0) + (1.0 - chosen) * (unit + stars)

    # Colour balance and saturation (colour images only; grey images keep equal channels).
    if config.colour_balance > 0:
        gains = 1.0 + config.colour_balance * (2.0 * tf.random.stateless_uniform(
            [batch, 1, 1, 3], seed=seed + tf.constant([0, 7], tf.int64)) - 1.0)
        grey = tf.reduce_mean(unit, axis=-1, keepdims=True)
        saturated = grey + image(between(7, *config.saturation_range)) * (unit - grey)
        unit = colour_mask * saturated * gains + (1.0 - colour_mask) * unit

    # PSF.
    if config.blur_probability > 0 and config.blur_sigma_max > 0:
        sigma = tf.where(u[:, 8] < config.blur_probability, between(9, 0.3, config.blur_sigma_max), 0.0)
        unit = _blur(unit, sigma, radius=int(math.ceil(3 * config.blur_sigma_max)))

    # Pixel size, one per batch.
    if config.resample_probability > 0:
        bu = tf.random.stateless_uniform([2], seed=seed + tf.constant([0, 8], tf.int64))
        side = tf.cast(tf.round(height * (config.resample_range[0] + (config.resample_range[1] - config.resample_range[0])
                                          * bu[1])), tf.int32)

        def coarse() -> tf.Tensor:
            small = tf.image.resize(unit, tf.stack([side, side]), method="area")
            return tf.image.resize(small, [height, width], method="bilinear")

        unit = tf.cond(bu[0] < config.resample_probability, coarse, lambda: unit)

    # Sky pedestal and gradient (display units).
    if config.sky_probability > 0:
        has_sky = image(tf.cast(u[:, 10] < config.sky_probability, tf.float32))
        angle = between(11, 0.0, 2 * math.pi)
        ramp_x = tf.linspace(-0.5, 0.5, width)[tf.newaxis, tf.newaxis, :, tf.newaxis]
        ramp_y = tf.linspace(-0.5, 0.5, height)[tf.newaxis, :, tf.newaxis, tf.newaxis]
        gradient = image(between(12, 0.0, config.sky_gradient_max)) * (
            image(tf.cos(angle)) * ramp_x + image(tf.sin(angle)) * ramp_y)
        unit = unit + has_sky * (image(between(13, 0.0, config.sky_level_max)) + gradient)

    # Noise, white or correlated.
    if config.noise_sigma_max > 0:
        white_noise = _noise(seed + tf.constant([0, 9], tf.int64), height, width, u[:, 14])
        correlated = _noise(seed + tf.constant([0, 10], tf.int64), height, width, u[:, 15], correlated=True)
        use_corr = image(tf.cast(u[:, 16] < config.correlated_noise_fraction, tf.float32))
        noise = use_corr * correlated + (1.0 - use_corr) * white_noise
        noise = colour_mask * noise + (1.0 - colour_mask) * noise[..., :1]
        unit = unit + noise * image(between(17, 0.0, config.noise_sigma_max))
    return tf.clip_by_value(unit, 0.0, 1.0)


def _jpeg_batch(unit: tf.Tensor, seed: tf.Tensor, config: DomainConfig) -> tf.Tensor:
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


def augment_batch(images: tf.Tensor, seed: tf.Tensor, *, is_colour: tf.Tensor, invert: tf.Tensor,
                  config: AugmentConfig) -> tf.Tensor:
    """Augment a batch: (B, H, W, 3) float32 in 0–255 → same shape, integer-valued float32 in 0–255.

    ``seed`` is a stateless-RNG seed, shape (2,) int; the same seed gives the same output.
    """
    images = tf.convert_to_tensor(images, tf.float32)
    seed = tf.cast(seed, tf.int64)
    batch = tf.shape(images)[0]
    height, width = int(images.shape[1]), int(images.shape[2])
    u = tf.random.stateless_uniform([batch, 13], seed=seed)  # one column per random parameter

    def between(column: int, low: float, high: float) -> tf.Tensor:
        return low + (high - low) * u[:, column]

    ones = tf.ones([batch])
    max_angle = math.radians(config.rotation_max_deg)
    angle = between(0, -max_angle, max_angle) if config.rotate else 0.0 * ones
    flip_x = tf.where(u[:, 1] < 0.5, -ones, ones) if config.flip else ones
    flip_y = tf.where(u[:, 2] < 0.5, -ones, ones) if config.flip else ones
    scale = between(3, *config.scale_range)
    shift = config.translate_fraction
    tx, ty = between(4, -shift, shift) * width, between(5, -shift, shift) * height
    images = _resample(images, affine_transforms(angle, scale, tx, ty, flip_x, flip_y, height=height, width=width))

    if config.blur_probability > 0 and config.domain is None:
        sigma = tf.where(u[:, 6] < config.blur_probability, between(7, *config.blur_sigma_range), 0.0)
        images = _blur(images, sigma)

    # Photometry on 0–1 values: tone curve, gain, brightness, colour jitter, noise; then inversion.
    per_image = (batch, 1, 1, 1)
    unit = tf.clip_by_value(images * (1.0 / 255.0), 0.0, 1.0)
    if config.domain is not None:
        unit = domain_stage(unit, seed, is_colour=is_colour, config=config.domain, size=(height, width))
    unit = unit + tf.reshape(between(8, *config.tone_range), per_image) * unit * (1.0 - unit)
    unit = unit * tf.reshape(between(9, *config.gain_range), per_image)
    unit = unit + tf.reshape(between(10, -config.brightness_max, config.brightness_max), per_image) / 255.0
    colour_mask = tf.reshape(tf.cast(is_colour, tf.bool), per_image)
    if config.colour_jitter > 0:
        gains = tf.random.stateless_uniform([batch, 1, 1, 3], seed=seed + tf.constant([0, 1], tf.int64),
                                            minval=1 - config.colour_jitter, maxval=1 + config.colour_jitter)
        unit = unit * tf.where(colour_mask, gains, 1.0)
    if config.noise_sigma_max > 0:
        noise = _noise(seed, height, width, u[:, 12])
        noise = tf.where(colour_mask, noise, noise[..., :1])  # grey: one noise plane for all channels
        sigma_noise = tf.reshape(between(11, -config.noise_sigma_max, config.noise_sigma_max), per_image) / 255.0
        unit = unit + noise * sigma_noise  # a negative sigma flips the field's sign: twice the variety
    unit = tf.clip_by_value(unit, 0.0, 1.0)
    if config.domain is not None and config.domain.jpeg_probability > 0:
        unit = tf.ensure_shape(unit, [None, height, width, 3])
        unit = _jpeg_batch(unit, seed, config.domain)
    unit = tf.where(tf.reshape(tf.cast(invert, tf.bool), per_image), 1.0 - unit, unit)
    return tf.round(unit * 255.0)  # what a uint8 image would hold, as at serving time


# Channel selections from the 6-channel pixels: colour keeps R, G, B; a band goes to all three channels.
_SELECT = np.zeros((4, 6, 3), np.float32)
_SELECT[0, [0, 1, 2], [0, 1, 2]] = 1.0
for _band in range(3):
    _SELECT[1 + _band, 3 + _band, :] = 1.0


def _gather_views(tensors: dict[str, tf.Tensor], index: tf.Tensor, is_colour: tf.Tensor, band: tf.Tensor,
                  invert: tf.Tensor) -> tf.Tensor:
    """(B, H, W, 3) float32 of galaxy ``index`` in the chosen modes, inversion applied.

    Mode selection and inversion are one per-image 6→3 linear map (x·S, or 255 − x·S), applied as a
    batched matrix product: about 5× faster than gathering colour and bands separately and choosing.
    """
    pixels = tf.cast(tf.gather(tensors["pixels"], index), tf.float32)  # (B, H, W, 6)
    mode = tf.where(tf.cast(is_colour, tf.bool), 0, tf.cast(band, tf.int32) + 1)
    sign = tf.where(tf.cast(invert, tf.bool), -1.0, 1.0)
    select = tf.gather(tf.constant(_SELECT), mode) * sign[:, tf.newaxis, tf.newaxis]
    offset = tf.where(tf.cast(invert, tf.bool), 255.0, 0.0)[:, tf.newaxis, tf.newaxis, tf.newaxis]
    return tf.einsum("bhwc,bcd->bhwd", pixels, select) + offset


def make_training_dataset(images: ImageSet | Mapping[str, np.ndarray], *, kind: str = "regression",
                          batch_size: int = 64, seed: int = 0, epoch: int = 0, n_per_epoch: int | None = None,
                          steps: int | None = None, config: AugmentConfig | None = None) -> tf.data.Dataset:
    """One epoch of balanced, augmented ``(images, targets)`` batches.

    Give ``steps`` (batches) or ``n_per_epoch`` (images; default: as many as galaxies). The same
    (seed, epoch, batch_size) always yields identical batches, so a resumed run sees what an
    uninterrupted one would have. Inversion is decided per sample and applied after the photometry.
    """
    images = as_image_set(images)
    config = config or AugmentConfig()
    if steps is not None:
        n_per_epoch = steps * batch_size
    n = int(n_per_epoch or len(images))
    indices = balanced_indices(images.labels, n=n, seed=seed, epoch=epoch, kind=kind)
    is_colour, band, invert = balanced_modes(n, rng=np.random.default_rng([seed, epoch, 11]), config=config)
    targets = encode_labels(images.labels, kind)[indices]
    tensors = images.tensors()
    base_seed = tf.constant([seed, epoch], tf.int64) * tf.constant([1_000_003, 1], tf.int64)

    def make_batch(batch_index: tf.Tensor, sample: dict[str, tf.Tensor]) -> tuple[tf.Tensor, tf.Tensor]:
        raw = _gather_views(tensors, sample["index"], sample["is_colour"], sample["band"],
                            tf.zeros_like(sample["invert"]))
        batch_seed = base_seed + tf.stack([tf.constant(0, tf.int64), 4 * batch_index])
        out = augment_batch(raw, batch_seed, is_colour=sample["is_colour"], invert=sample["invert"], config=config)
        return out, sample["target"]

    slices = {"index": indices.astype(np.int64), "is_colour": is_colour, "band": band, "invert": invert,
              "target": targets}
    dataset = tf.data.Dataset.from_tensor_slices(slices).batch(batch_size).enumerate()
    dataset = dataset.map(make_batch, num_parallel_calls=tf.data.AUTOTUNE, deterministic=True)
    return dataset.prefetch(tf.data.AUTOTUNE)


def _eval_plan(n_galaxies: int, modes: Sequence[str]) -> tuple[np.ndarray, np.ndarray]:
    """Galaxy-major rows: for each galaxy, one row per mode."""
    unknown = set(modes) - set(EVAL_MODES)
    if unknown:
        raise ValueError(f"Unknown evaluation modes {sorted(unknown)}; choose from {EVAL_MODES}.")
    index = np.repeat(np.arange(n_galaxies), len(modes))
    mode = np.tile(np.array(list(modes)), n_galaxies)
    return index, mode


def make_eval_dataset(images: ImageSet | Mapping[str, np.ndarray], *, kind: str = "regression",
                      batch_size: int = 128, modes: Sequence[str] = EVAL_MODES) -> tf.data.Dataset:
    """Every galaxy in every requested mode, unaugmented and in a fixed order: ``(images, targets)``."""
    images = as_image_set(images)
    index, mode = _eval_plan(len(images), modes)
    band = np.select([mode == "g", mode == "i"], [0, 2], default=1).astype(np.int32)  # r for r and inverted
    slices = {"index": index.astype(np.int64), "is_colour": mode == "colour", "band": band,
              "invert": mode == "inverted", "target": encode_labels(images.labels, kind)[index]}
    tensors = images.tensors()

    def make_batch(sample: dict[str, tf.Tensor]) -> tuple[tf.Tensor, tf.Tensor]:
        return _gather_views(tensors, sample["index"], sample["is_colour"], sample["band"], sample["invert"]), \
            sample["target"]

    dataset = tf.data.Dataset.from_tensor_slices(slices).batch(batch_size)
    return dataset.map(make_batch, num_parallel_calls=tf.data.AUTOTUNE, deterministic=True).prefetch(tf.data.AUTOTUNE)


def evaluation_views(images: ImageSet | Mapping[str, np.ndarray], modes: Sequence[str] = EVAL_MODES,
                     ) -> tuple[np.ndarray, np.ndarray, np.ndarray, np.ndarray]:
    """The rows of :func:`make_eval_dataset` as numpy: images (M, H, W, 3) uint8, galaxy index, mode name
    and label (degrees or class) per row. The inverted view goes to the models as it is (they are
    trained on inverted images too)."""
    images = as_image_set(images)
    index, mode = _eval_plan(len(images), modes)
    grey = {"g": images.g, "r": images.r, "i": images.i, "inverted": 255 - images.r}
    views = np.empty((index.size, *images.image_shape), np.uint8)
    for name in modes:
        rows = mode == name
        source = images.colour if name == "colour" else np.repeat(grey[name][..., np.newaxis], 3, axis=-1)
        views[rows] = source[index[rows]]
    return views, index, mode, images.labels[index]


def describe(config: AugmentConfig) -> dict[str, Any]:
    """The augmentation settings as a JSON-ready dict (for run manifests)."""
    return {key: list(value) if isinstance(value, tuple) else value for key, value in asdict(config).items()}
