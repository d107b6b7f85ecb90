"""Augmentation keeps the axial ratio, balances bins and modes, and replays exactly."""
import numpy as np
import pytest
import tensorflow as tf

from training.ml.augment import AugmentConfig, ImageSet, augment_image, balanced_indices, inclination_bins, make_training_dataset


def ellipse_image(a: float = 36, b: float = 12) -> np.ndarray:
    y, x = np.mgrid[0:128, 0:128] - 63.5
    return np.repeat(((x / a) ** 2 + (y / b) ** 2 <= 1).astype(np.float32)[..., None] * 255, 3, -1)


def axial_ratio(image: np.ndarray) -> float:
    ys, xs = np.nonzero(image[..., 0] > 127)
    minor, major = np.sort(np.linalg.eigvalsh(np.cov(np.vstack([xs, ys]).astype(float))))
    return float(np.sqrt(minor / major))


def test_geometric_augmentation_preserves_the_axial_ratio() -> None:
    config = AugmentConfig(noise_sigma_max=0.0, blur_probability=0.0, gamma_range=(1, 1), contrast_range=(1, 1),
                           colour_jitter=0.0)
    original = ellipse_image(a=45, b=15)
    image = tf.constant(original)
    ratios = []
    for k in range(40):
        out = augment_image(image, tf.constant([5, k], tf.int64), is_colour=tf.constant(False),
                            invert=tf.constant(False), config=config).numpy()
        ratios.append(axial_ratio(out))
    assert np.allclose(ratios, axial_ratio(original), rtol=0.01), (min(ratios), max(ratios))


def test_an_anisotropic_scale_would_have_been_caught() -> None:
    """The test above can fail: stretching x by 1.2 (the original's bug) moves b/a by far more than 1%."""
    stretched = ellipse_image(a=36 * 1.2, b=12)
    assert abs(axial_ratio(stretched) - 12 / 36) / (12 / 36) > 0.1


def test_balanced_indices_equalise_bins_and_classes() -> None:
    rng = np.random.default_rng(0)
    skewed = np.concatenate([rng.uniform(45, 50, 20), rng.uniform(85, 90, 500), rng.uniform(60, 65, 80)])
    picks = balanced_indices(skewed, n=900, seed=1, epoch=0)
    counts = np.bincount(inclination_bins(skewed[picks]), minlength=9)
    assert counts[0] == counts[3] == counts[8] == 300
    classes = balanced_indices(np.array([0] * 90 + [1] * 10), n=200, seed=1, epoch=0, kind="reject")
    assert np.bincount(np.array([0] * 90 + [1] * 10)[classes]).tolist() == [100, 100]


def small_set(n: int = 18) -> ImageSet:
    rng = np.random.default_rng(3)
    return ImageSet(
        colour=rng.integers(0, 60, (n, 128, 128, 3), dtype=np.uint8),
        g=rng.integers(0, 60, (n, 128, 128), dtype=np.uint8),
        r=rng.integers(0, 60, (n, 128, 128), dtype=np.uint8),
        i=rng.integers(0, 60, (n, 128, 128), dtype=np.uint8),
        labels=np.linspace(45, 90, n),
    )


def test_epochs_replay_exactly_and_differ_between_epochs() -> None:
    images = small_set()
    first = [x.numpy() for x, _ in make_training_dataset(images, kind="regression", n_per_epoch=16, batch_size=8, seed=4, epoch=2)]
    again = [x.numpy() for x, _ in make_training_dataset(images, kind="regression", n_per_epoch=16, batch_size=8, seed=4, epoch=2)]
    other = [x.numpy() for x, _ in make_training_dataset(images, kind="regression", n_per_epoch=16, batch_size=8, seed=4, epoch=3)]
    assert all(np.array_equal(a, b) for a, b in zip(first, again, strict=True))
    assert not np.array_equal(first[0], other[0])


def test_modes_are_balanced() -> None:
    """Half colour; of the grey half, half inverted (the dark sky becomes bright)."""
    images = small_set()
    batches = make_training_dataset(images, kind="regression", n_per_epoch=400, batch_size=400, seed=9, epoch=0)
    x = next(iter(batches))[0].numpy()
    grey = np.all(x[..., 0] == x[..., 1], axis=(1, 2)) & np.all(x[..., 1] == x[..., 2], axis=(1, 2))
    inverted = x.mean(axis=(1, 2, 3)) > 127
    assert 0.4 < 1 - grey.mean() < 0.6
    assert 0.4 < inverted[grey].mean() < 0.6
    labels = next(iter(batches))[1].numpy()
    assert labels.min() >= -1.0 and labels.max() <= 1.0
