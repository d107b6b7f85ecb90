"""Augmentation keeps the axial ratio (isotropic scale only), balances bins, classes and modes exactly,
gives colour images the colour augmentation, and replays bit for bit."""
from __future__ import annotations

import math

import numpy as np
import pytest
import tensorflow as tf

from training.ml.augment import (
    AugmentConfig,
    ImageSet,
    _resample,
    augment_batch,
    balanced_indices,
    encode_labels,
    evaluation_views,
    inclination_bins,
    make_eval_dataset,
    make_training_dataset,
)
from training.ml.scaling import inclination_to_target


def ellipse_image(a: float, b: float, size: int = 128, supersample: int = 4) -> np.ndarray:
    """A white ellipse on black, anti-aliased (4x4 supersampling), major axis along x."""
    grid = (np.arange(size * supersample) + 0.5) / supersample - 0.5 - (size - 1) / 2
    y, x = np.meshgrid(grid, grid, indexing="ij")
    inside = ((x / a) ** 2 + (y / b) ** 2 <= 1).reshape(size, supersample, size, supersample).mean(axis=(1, 3))
    return np.repeat((inside * 255).astype(np.float32)[..., None], 3, axis=-1)


def shape_of(image: np.ndarray, threshold: float = 0.1) -> tuple[float, float, float]:
    """(axial ratio b/a, position angle in degrees, area) from the second moments of the region above
    ``threshold``, each pixel weighted by its coverage (value/255). Coverage weights make the moments
    sub-pixel exact; with 0/1 weights the pixel staircase alone moves b/a by 2–3% at some angles."""
    value = image[..., 0] / 255.0
    weight = np.where(value > threshold, value, 0.0)
    y, x = np.mgrid[: value.shape[0], : value.shape[1]]
    total = weight.sum()
    mx, my = (weight * x).sum() / total, (weight * y).sum() / total
    cxx = (weight * (x - mx) ** 2).sum() / total
    cyy = (weight * (y - my) ** 2).sum() / total
    cxy = (weight * (x - mx) * (y - my)).sum() / total
    minor, major = np.linalg.eigvalsh(np.array([[cxx, cxy], [cxy, cyy]]))
    return math.sqrt(minor / major), math.degrees(0.5 * math.atan2(2 * cxy, cxx - cyy)) % 180, total


def test_geometric_augmentation_preserves_the_axial_ratio_within_one_percent() -> None:
    original = ellipse_image(a=44, b=16)
    q0, _, area0 = shape_of(original)
    assert q0 == pytest.approx(16 / 44, rel=2e-3)
    n = 256
    out = augment_batch(np.repeat(original[None], n, 0), tf.constant([5, 1]), is_colour=tf.zeros(n, bool),
                        invert=tf.zeros(n, bool), config=AugmentConfig.geometry_only()).numpy()
    shapes = np.array([shape_of(image) for image in out])
    ratios, angles, areas = shapes[:, 0], shapes[:, 1], shapes[:, 2]
    assert np.max(np.abs(ratios / q0 - 1)) < 0.01, (ratios.min(), ratios.max())
    # ... while the geometry really changed: any orientation, isotropic scale 0.9–1.1 (area × 0.81–1.21).
    assert np.histogram(angles, bins=6, range=(0, 180))[0].min() > n / 12
    assert 0.78 < (areas / area0).min() < 0.9 and 1.1 < (areas / area0).max() < 1.24


def test_an_anisotropic_scale_would_be_caught() -> None:
    """The original's independent x/y scale (here 1.1 × 0.9) moves b/a far beyond the 1% tolerance."""
    original = ellipse_image(a=44, b=16)
    stretch = tf.constant([[1 / 1.1, 0, 63.5 - 63.5 / 1.1, 0, 1 / 0.9, 63.5 - 63.5 / 0.9, 0, 0]], tf.float32)
    stretched = _resample(tf.constant(original[None]), stretch).numpy()[0]
    assert abs(shape_of(stretched)[0] / shape_of(original)[0] - 1) > 0.15


def test_uncovered_corners_take_the_sky_level() -> None:
    sky = np.full((4, 64, 64, 3), 40.0, np.float32)
    config = AugmentConfig(scale_range=(0.9, 0.9), noise_sigma_max=0.0, brightness_max=0.0,
                           tone_range=(0.0, 0.0), gain_range=(1.0, 1.0), colour_jitter=0.0)
    out = augment_batch(sky, tf.constant([1, 1]), is_colour=tf.zeros(4, bool), invert=tf.constant([False, False, True, True]),
                        config=config).numpy()
    np.testing.assert_array_equal(out[:2], 40.0)  # no black corners after rotation and zoom-out
    np.testing.assert_array_equal(out[2:], 215.0)  # inverted: the sky is bright everywhere


def test_colour_images_get_colour_augmentation_and_grey_images_stay_grey() -> None:
    flat = np.full((8, 32, 32, 3), 100.0, np.float32)  # equal channels, so any channel difference is jitter/noise
    is_colour = tf.constant([True] * 4 + [False] * 4)
    out = augment_batch(flat, tf.constant([2, 3]), is_colour=is_colour, invert=tf.zeros(8, bool),
                        config=AugmentConfig()).numpy()
    channel_spread = np.abs(out[..., 0] - out[..., 1]).max(axis=(1, 2))
    assert np.all(channel_spread[:4] > 0) and np.all(channel_spread[4:] == 0)
    assert np.all(out.std(axis=(1, 2, 3)) > 0)  # noise reached grey images too


def test_balanced_indices_equalise_bins_and_classes() -> None:
    rng = np.random.default_rng(0)
    skewed = np.concatenate([rng.uniform(45.1, 50, 20), rng.uniform(85.1, 90, 500), rng.uniform(60.1, 65, 80)])
    picks = balanced_indices(skewed, n=900, seed=1, epoch=0)
    assert np.bincount(inclination_bins(skewed[picks]), minlength=9).tolist() == [300, 0, 0, 300, 0, 0, 0, 0, 300]
    rare = np.bincount(picks[inclination_bins(skewed[picks]) == 0])
    assert set(rare[rare > 0].tolist()) == {15}  # the 20 rare galaxies each used 15 times, evenly
    rich = picks[inclination_bins(skewed[picks]) == 8]
    assert len(set(rich.tolist())) == 300  # a rich bin is sampled without repetition
    assert not np.array_equal(picks, balanced_indices(skewed, n=900, seed=1, epoch=1))
    classes = np.array([0] * 90 + [1] * 10)
    chosen = balanced_indices(classes, n=200, seed=1, epoch=0, kind="reject")
    assert np.bincount(classes[chosen]).tolist() == [100, 100]


def test_reject_sampling_gives_every_reason_an_equal_share_of_the_rejected_half() -> None:
    # 0 = accepted; 1 = face-on (common), 2–3 = rare reasons.
    reasons = np.array([0] * 500 + [1] * 300 + [2] * 20 + [3] * 10)
    chosen = balanced_indices(reasons, n=600, seed=2, epoch=0, kind="reject")
    assert np.bincount(reasons[chosen]).tolist() == [300, 100, 100, 100]
    assert encode_labels(reasons, "reject").tolist() == [0] * 500 + [1] * 330


def test_inclination_bins_follow_the_original_edges() -> None:
    assert inclination_bins(np.array([45, 50, 50.01, 55, 85, 85.5, 90, 30, 95])).tolist() == [0, 0, 1, 1, 7, 8, 8, 0, 8]


def small_set(n: int = 18, size: int = 48) -> ImageSet:
    rng = np.random.default_rng(3)
    return ImageSet(
        colour=rng.integers(0, 60, (n, size, size, 3), dtype=np.uint8),
        g=rng.integers(0, 60, (n, size, size), dtype=np.uint8),
        r=rng.integers(0, 60, (n, size, size), dtype=np.uint8),
        i=rng.integers(0, 60, (n, size, size), dtype=np.uint8),
        labels=np.linspace(45, 90, n),
    )


def test_epochs_replay_exactly_and_differ_between_epochs() -> None:
    images = small_set()

    def epoch(number: int) -> list[np.ndarray]:
        dataset = make_training_dataset(images, n_per_epoch=24, batch_size=8, seed=4, epoch=number)
        return [x.numpy() for x, _ in dataset]

    first, again, other = epoch(2), epoch(2), epoch(3)
    assert len(first) == 3 and all(np.array_equal(a, b) for a, b in zip(first, again, strict=True))
    assert not np.array_equal(first[0], other[0])


def test_modes_are_balanced_exactly_and_targets_match_the_labels() -> None:
    """Half colour; of the grey half, half inverted (the dark sky turns bright)."""
    images = small_set()
    x, y = next(iter(make_training_dataset(images, n_per_epoch=400, batch_size=400, seed=9, epoch=0)))
    x = x.numpy()
    grey = np.all(x[..., 0] == x[..., 1], axis=(1, 2)) & np.all(x[..., 1] == x[..., 2], axis=(1, 2))
    inverted = x.mean(axis=(1, 2, 3)) > 127
    assert grey.sum() == 200 and inverted[grey].sum() == 100 and not inverted[~grey].any()
    assert x.min() >= 0 and x.max() <= 255 and np.array_equal(x, np.round(x))
    expected = encode_labels(images.labels, "regression")[balanced_indices(images.labels, n=400, seed=9, epoch=0)]
    np.testing.assert_array_equal(y.numpy(), expected)
    assert expected.shape == (400, 1) and np.allclose(expected[:, 0], inclination_to_target(
        images.labels[balanced_indices(images.labels, n=400, seed=9, epoch=0)]))


def test_reject_targets_are_class_ids_and_dict_inputs_work() -> None:
    images = small_set(10)
    arrays = {"colour": images.colour, "g": images.g, "r": images.r, "i": images.i, "label": np.array([0, 1] * 5)}
    x, y = next(iter(make_training_dataset(arrays, kind="reject", steps=1, batch_size=20, seed=0)))
    assert x.shape == (20, 48, 48, 3) and y.dtype == tf.int32 and sorted(np.bincount(y.numpy()).tolist()) == [10, 10]


def test_eval_dataset_matches_the_numpy_views() -> None:
    images = small_set(5)
    views, index, modes, labels = evaluation_views(images)
    batches = list(make_eval_dataset(images, batch_size=7))
    x = np.concatenate([b[0].numpy() for b in batches])
    y = np.concatenate([b[1].numpy() for b in batches])
    np.testing.assert_array_equal(x, views.astype(np.float32))
    assert modes[:5].tolist() == ["colour", "g", "r", "i", "inverted"] and index[:5].tolist() == [0] * 5
    np.testing.assert_array_equal(views[4], 255 - np.repeat(images.r[0][..., None], 3, -1))
    np.testing.assert_allclose(y[:, 0], inclination_to_target(labels), rtol=1e-6)
