"""Reject-model calibration: Platt scaling chosen on validation galaxies of the training family, seen
through the domain-randomisation augmentation (so the calibration expects the shifts it was trained for),
then, if needed, a shift towards accepting until at most ``max_clean_flagged`` of the clean validation
views are rejected at ≥ 50 %.

The calibration is baked into the reject network's softmax head (``fc_out_class``): with logits z, the
rejected-vs-accepted log-odds d = z₁ − z₀ becomes a·d + b when the kernel and bias are multiplied by a and
b is added to class 1's bias. Serving code needs nothing new; the parameters and the validation figures are
stored in the member's manifest metrics (``calibration``).
"""
from __future__ import annotations

from dataclasses import dataclass
from pathlib import Path
from typing import Any

import numpy as np

from .augment import AugmentConfig, ImageSet, make_training_dataset
from .ensemble import TTA_VIEWS, tta_views

HEAD = "fc_out_class"


@dataclass(frozen=True)
class Calibration:
    a: float
    b: float
    platt_b: float
    clean_flagged: float  # share of clean validation views rejected at ≥ 50 % after calibration
    recall: float  # share of reject validation views rejected at ≥ 50 % after calibration
    clean_flagged_before: float
    recall_before: float
    n_views: int

    def to_dict(self) -> dict[str, Any]:
        return {k: float(v) if isinstance(v, float) else v for k, v in self.__dict__.items()}


def reject_logits(model: Any, images: np.ndarray, *, tta: str = "aligned", batch: int = 256) -> np.ndarray:  # noqa: ANN401
    """Log-odds of 'rejected' per image: the median of the TTA views' probabilities, as served."""
    views = TTA_VIEWS[tta]
    out = []
    for start in range(0, len(images), batch):
        chunk = images[start:start + batch]
        probs = model.predict_on_batch(tta_views(chunk, views).astype(np.float32))[:, 1]
        out.append(np.median(np.asarray(probs).reshape(len(views), len(chunk)), axis=0))
    p = np.clip(np.concatenate(out), 1e-6, 1 - 1e-6)
    return np.log(p / (1 - p))


def fit_platt(d: np.ndarray, y: np.ndarray, *, iterations: int = 50) -> tuple[float, float]:
    """a, b minimising the logistic loss of sigmoid(a·d + b) against y (Newton's method, mildly damped)."""
    a, b = 1.0, 0.0
    x = np.stack([d, np.ones_like(d)], axis=1)
    for _ in range(iterations):
        p = 1 / (1 + np.exp(-(a * d + b)))
        grad = x.T @ (p - y)
        hess = (x * (p * (1 - p))[:, None]).T @ x + 1e-6 * np.eye(2)
        step = np.linalg.solve(hess, grad)
        a, b = a - step[0], b - step[1]
        if np.abs(step).max() < 1e-8:
            break
    return float(max(a, 1e-3)), float(b)


def choose(d: np.ndarray, y: np.ndarray, *, max_clean_flagged: float) -> Calibration:
    a, platt_b = fit_platt(d, y)
    clean, rejects = a * d[y == 0], a * d[y == 1]
    # Largest b (most rejects caught) that keeps the clean views' rejection rate at or below the cap.
    b_cap = -float(np.quantile(clean, 1.0 - max_clean_flagged)) if clean.size else platt_b
    b = min(platt_b, b_cap)
    return Calibration(a=a, b=b, platt_b=platt_b, clean_flagged=float((clean + b >= 0).mean()),
                       recall=float((rejects + b >= 0).mean()), clean_flagged_before=float((d[y == 0] >= 0).mean()),
                       recall_before=float((d[y == 1] >= 0).mean()), n_views=int(d.size))


def validation_views(images: ImageSet, *, augment: dict[str, Any], seed: int, n_augmented: int) -> tuple[np.ndarray, np.ndarray]:
    """Unaugmented colour and r views of every validation galaxy, plus ``n_augmented`` balanced (accepted vs
    each reason) augmented views: uint8 images and 0/1 labels."""
    plain = np.concatenate([images.colour, np.repeat(images.r[..., None], 3, -1)])
    labels = np.tile((np.asarray(images.labels) > 0).astype(int), 2)
    if n_augmented:
        config = AugmentConfig(**{**augment, "inverted_fraction_of_grey": 0.0})
        batches = list(make_training_dataset(images, kind="reject", batch_size=64, seed=seed, epoch=0,
                                             n_per_epoch=n_augmented, config=config))
        aug = np.concatenate([x.numpy() for x, _ in batches]).astype(np.uint8)
        aug_labels = np.concatenate([y.numpy() for _, y in batches]).astype(int)
        plain, labels = np.concatenate([plain, aug]), np.concatenate([labels, aug_labels])
    return plain, labels


def calibrate_member(path: Path, images: ImageSet, *, augment: dict[str, Any], seed: int, max_clean_flagged: float,
                     n_augmented: int = 2048, tta: str = "aligned") -> Calibration:
    """Calibrate the reject network saved at ``path`` in place; returns what was chosen."""
    import keras

    model = keras.saving.load_model(path, compile=False)
    views, labels = validation_views(images, augment=augment, seed=seed, n_augmented=n_augmented)
    d = reject_logits(model, views, tta=tta)
    calibration = choose(d, labels, max_clean_flagged=max_clean_flagged)
    apply_to_head(model, calibration.a, calibration.b)
    tmp = path.with_name(path.stem + ".calibrating.keras")
    model.save(tmp)
    tmp.replace(path)
    return calibration


def apply_to_head(model: Any, a: float, b: float) -> None:  # noqa: ANN401
    head = model.get_layer(HEAD)
    kernel, bias = head.get_weights()
    bias = a * bias
    bias[1] += b
    head.set_weights([a * kernel, bias])
