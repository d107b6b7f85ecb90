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

import math
from collections.abc import Mapping, Sequence
from dataclasses import asdict, dataclass, field
from typing import Any

import numpy as np
import tensorflow as tf

from .batch_filters import gaussian_blur, noise_field
from .domain_randomisation import DomainConfig, domain_stage, jpeg_batch
from .scaling import inclination_to_target

EVAL_MODES = ("colour", "g", "r", "i", "inverted")  # "inverted" = 255 − r
BIN_EDGES = np.arange(45.0, 95.0, 5.0)
N_BINS = 9
KINDS = ("regression", "reject")


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
        images = gaussian_blur(images, sigma)

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
        noise = noise_field(seed, height, width, u[:, 12])
        noise = tf.where(colour_mask, noise, noise[..., :1])  # grey: one noise plane for all channels
        sigma_noise = tf.reshape(between(11, -config.noise_sigma_max, config.noise_sigma_max), per_image) / 255.0
        unit = unit + noise * sigma_noise  # a negative sigma flips the field's sign: twice the variety
    unit = tf.clip_by_value(unit, 0.0, 1.0)
    if config.domain is not None and config.domain.jpeg_probability > 0:
        unit = tf.ensure_shape(unit, [None, height, width, 3])
        unit = jpeg_batch(unit, seed, config.domain)
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
