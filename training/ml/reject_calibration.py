"""Reject-model calibration: Platt scaling chosen on validation galaxies of the training family, seen
through the domain-randomisation augmentation (so the calibration expects the shifts it was trained for),
then, if needed, a shift towards accepting until at most ``max_clean_flagged`` of the clean validation
views are rejected at ≥ 50 %.

The calibration is baked into the reject network's softmax head (``fc_out_class``): with logits z, the
rejected-vs-accepted log-odds d = z₁ − z₀ becomes a·d + b when the kernel and bias are multiplied by a and
b is added to class 1's bias. Serving code needs nothing new; the parameters and the validation figures are
stored in the member's manifest metrics (``calibration``).

The physical image checks (``image_checks``) are calibrated here too, on their own validation galaxies of the
training family seen as served: ``python -m training.ml.reject_calibration --image-checks --n 1000`` prints
the thresholds to paste into ``image_checks.CALIBRATION`` and their validation figures.
"""
from __future__ import annotations

import math
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


# --- the physical image checks (``image_checks``) -----------------------------------------------

IMAGE_CHECK_SEED = 7311  # validation galaxies for the image checks: a seed no training profile uses
IMAGE_CHECK_CAP = 0.005  # each check alone may reject at most this share of clean validation galaxies
IMAGE_CHECK_MIN_RECALL = 0.05  # a check that catches fewer of its reason's validation rejects is left out
# The axial-ratio method's calibrated alarm margin (docs/ml.md, "axial check": 99th percentile 9.3° → 9.5°): the
# face-on check may only fire where the axial ratio puts a galaxy that far below the 45° the networks accept, so its
# 50 % point is at most 45° − 9.5°, whatever the training family's clean quantile allows.
AXIAL_MARGIN_DEG = 9.5
# Per check, the least extreme raw feature value at which it may fire (a bound on the threshold, in feature units).
IMAGE_CHECK_BOUNDS: dict[str, float] = {"face_on": 45.0 - AXIAL_MARGIN_DEG}
# Candidate features per check, with their sign (+1: larger means a reject) and transform; the calibration keeps,
# per check, the candidate that catches most of that reason's validation rejects at the cap.
IMAGE_CHECK_CANDIDATES: dict[str, tuple[tuple[str, float, str], ...]] = {
    "face_on": (("face_on_inclination", -1.0, ""),),
    "cut_off": (("cut_fraction", 1.0, "log"), ("edge_length", 1.0, "log"), ("edge_brightness", 1.0, "log")),
    "bright_star": (("star_contrast", 1.0, "log"),),
    "companion": (("asymmetry", 1.0, "log"),),
    "low_snr": (("noise_snr", -1.0, "log"), ("core_snr", -1.0, "log"), ("region_snr", -1.0, "log")),
}


def served_view(image: np.ndarray, *, turn_deg: float = 0.0) -> np.ndarray:
    """The model input serving builds from ``image`` turned by ``turn_deg`` within its own frame (as a
    photograph at another position angle): the measured-PA alignment of ``predictions.services.align_image``,
    without its refinement pass."""
    from catalog.imaging import normalise_inversion, prepare_model_input, rotate, sky_level, to_display_rgb

    from .orientation import measure_orientation

    rgb, _ = normalise_inversion(to_display_rgb(image))
    if turn_deg:
        rgb = rotate(rgb, turn_deg, fill=sky_level(rgb), expand=False)
    o = measure_orientation(rgb)
    if o.ok and o.pa_image_deg is not None:
        return prepare_model_input(rgb, angle_deg=o.pa_image_deg, centre=(o.x, o.y))
    if o.q is not None:
        return prepare_model_input(rgb, centre=(o.x, o.y))
    return prepare_model_input(rgb)


def image_check_views(n: int, *, seed: int = IMAGE_CHECK_SEED, workers: int = 2) -> tuple[np.ndarray, list[str]]:
    """``n`` validation galaxies of the training family (``domain_randomised_config``, half of them rejects, every
    reason equally often), each turned by a random angle within its frame and aligned as served: the model
    inputs (uint8) and their reasons ('' for accepted)."""
    from core.synthetic import REJECT_REASONS, domain_randomised_config, generate

    config = domain_randomised_config(reject_fraction=0.5, reject_mix={r: 1.0 for r in REJECT_REASONS})
    rng = np.random.default_rng(seed)
    views, reasons = [], []
    for galaxy in generate(config, n, seed=seed, workers=workers):
        views.append(served_view(galaxy.colour, turn_deg=float(rng.uniform(0, 180))))
        reasons.append(galaxy.reason or "")
    return np.stack(views), reasons


def choose_image_checks(features: list[Any], reasons: list[str], *,
                        cap: float = IMAGE_CHECK_CAP) -> tuple[dict[str, dict[str, Any]], dict[str, Any]]:
    """Per check, the candidate feature and threshold that catch most of that reason's validation rejects while
    the check alone rejects at most ``cap`` of the clean galaxies (and never beyond ``IMAGE_CHECK_BOUNDS``); the likelihood is a logistic in the
    (transformed) feature, 50 % at the threshold and 5 % at the clean galaxies' median. Returns the calibration
    and its validation figures (per check, and all checks together)."""
    from .image_checks import feature_value, run_checks

    reasons_array = np.asarray(reasons)
    clean = reasons_array == ""
    calibration: dict[str, dict[str, Any]] = {}
    figures: dict[str, Any] = {"n_clean": int(clean.sum()), "cap": cap, "checks": {}}
    for reason, candidates in IMAGE_CHECK_CANDIDATES.items():
        target = reasons_array == reason
        if not target.any():
            continue
        best: tuple[float, dict[str, Any], dict[str, Any]] | None = None
        for name, sign, transform in candidates:
            params = {"feature": name, "transform": transform, "a": sign, "b": 0.0}
            raw = np.array([feature_value(f, reason, params) for f in features])
            values = sign * (np.log(np.maximum(raw, 1e-4)) if transform == "log" else raw)
            threshold = float(np.quantile(values[clean], 1.0 - cap, method="higher"))
            if reason in IMAGE_CHECK_BOUNDS:
                bound = IMAGE_CHECK_BOUNDS[reason]
                threshold = max(threshold, sign * (math.log(max(bound, 1e-4)) if transform == "log" else bound))
            # The logistic's slope: the clean galaxies' median gets 5 % (z = −3).
            spread = max(threshold - float(np.median(values[clean])), 1e-3) / 3.0
            recall = float((values[target] > threshold).mean())
            params = {"feature": name, "transform": transform, "a": round(sign / spread, 6),
                      "b": round(-threshold / spread, 6)}
            info = {"feature": name, "recall": recall, "clean_flagged": float((values[clean] > threshold).mean()),
                    "n": int(target.sum())}
            if best is None or recall > best[0]:
                best = (recall, params, info)
        assert best is not None
        figures["checks"][reason] = best[2]
        if best[0] >= IMAGE_CHECK_MIN_RECALL:  # else the check would cost clean galaxies for nothing
            calibration[reason] = best[1]
    fired = np.array([max((c.likelihood for c in run_checks(f, calibration)), default=0.0) >= 50.0 for f in features])
    figures["all_checks"] = {
        "clean_flagged": float(fired[clean].mean()),
        "recall": float(fired[~clean].mean()),
        "recall_by_reason": {r: float(fired[reasons_array == r].mean()) for r in IMAGE_CHECK_CANDIDATES
                             if (reasons_array == r).any()},
    }
    return calibration, figures


def main(argv: list[str] | None = None) -> None:
    """``python -m training.ml.reject_calibration --image-checks [--n 2000]``: print the image checks'
    calibration (paste it into ``image_checks.CALIBRATION``) and its validation figures."""
    import argparse
    import json

    parser = argparse.ArgumentParser(description="Calibrate the physical image checks on the training family.")
    parser.add_argument("--image-checks", action="store_true", required=True)
    parser.add_argument("--n", type=int, default=2000)
    parser.add_argument("--seed", type=int, default=IMAGE_CHECK_SEED)
    parser.add_argument("--cap", type=float, default=IMAGE_CHECK_CAP)
    parser.add_argument("--workers", type=int, default=2)
    parser.add_argument("--views-out", type=Path, default=None, help="also keep the model inputs (.npz)")
    parser.add_argument("--features-out", type=Path, default=None, help="also write every galaxy's features (JSON)")
    parser.add_argument("--views-in", type=Path, default=None, help="model inputs kept by --views-out (skips rendering)")
    args = parser.parse_args(argv)
    from .image_checks import measure_features

    if args.views_in:
        kept = np.load(args.views_in)
        views, reasons = kept["views"], [str(r) for r in kept["reasons"]]
    else:
        views, reasons = image_check_views(args.n, seed=args.seed, workers=args.workers)
    if args.views_out:
        np.savez_compressed(args.views_out, views=views, reasons=np.array(reasons))
    features = [measure_features(view) for view in views]
    if args.features_out:
        args.features_out.write_text(json.dumps([{"reason": r, **f.to_dict()} for f, r in zip(features, reasons, strict=True)]))
    calibration, figures = choose_image_checks(features, reasons, cap=args.cap)
    print(json.dumps({"calibration": calibration, "validation": figures}, indent=1))


if __name__ == "__main__":
    main()
