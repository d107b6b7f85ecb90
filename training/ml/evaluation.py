"""Evaluation of inclination and reject models: RMS/MAE/bias overall, per band and per 5° bin, the
linear bias fit, outliers, ensemble mean/median, the disagreement alarm threshold, reject metrics with
ROC, and the plots of the seed's figures 9–16.

Conventions follow the original: Δi = i_m − i_p (measured minus predicted); the bias fit is
``m, b = polyfit(i_m, Δi, 1)`` on |Δi| < 10 and the corrected prediction is ``(i_p + b)/(1 − m)``.
"""
from __future__ import annotations

from collections.abc import Mapping, Sequence
from dataclasses import asdict, dataclass, field
from pathlib import Path
from typing import Any

import numpy as np

BIN_EDGES = np.arange(45.0, 95.0, 5.0)  # 45, 50, ..., 90
OUTLIER_DEG = 10.0


@dataclass
class RegressionMetrics:
    n: int
    rms: float
    mae: float
    bias: float  # mean of Δi = i_m − i_p
    rms_per_bin: dict[str, float] = field(default_factory=dict)
    count_per_bin: dict[str, int] = field(default_factory=dict)
    outlier_fraction: float = 0.0

    def to_dict(self) -> dict[str, Any]:
        return asdict(self)


def _bin_label(low: float) -> str:
    return f"{int(low)}-{int(low + 5)}"


def regression_metrics(measured: np.ndarray, predicted: np.ndarray) -> RegressionMetrics:
    measured, predicted = np.asarray(measured, float), np.asarray(predicted, float)
    delta = measured - predicted
    per_bin, counts = {}, {}
    # Bins as the original: [45,50], (50,55], ..., (85,90].
    bins = np.clip(np.ceil((measured - 45.0) / 5.0) - 1, 0, 8).astype(int)
    for index, low in enumerate(BIN_EDGES[:-1]):
        mask = bins == index
        counts[_bin_label(low)] = int(mask.sum())
        if mask.any():
            per_bin[_bin_label(low)] = float(np.sqrt(np.mean(delta[mask] ** 2)))
    return RegressionMetrics(
        n=int(delta.size),
        rms=float(np.sqrt(np.mean(delta**2))) if delta.size else float("nan"),
        mae=float(np.mean(np.abs(delta))) if delta.size else float("nan"),
        bias=float(np.mean(delta)) if delta.size else float("nan"),
        rms_per_bin=per_bin,
        count_per_bin=counts,
        outlier_fraction=float(np.mean(np.abs(delta) > OUTLIER_DEG)) if delta.size else 0.0,
    )


def metrics_by_group(measured: np.ndarray, predicted: np.ndarray, groups: Sequence[str]) -> dict[str, RegressionMetrics]:
    """Overall and per band/colour mode (colour, g, r, i, inverted — whatever labels ``groups`` holds)."""
    groups_arr = np.asarray(groups)
    result = {"all": regression_metrics(measured, predicted)}
    for name in sorted(set(groups_arr.tolist())):
        mask = groups_arr == name
        result[str(name)] = regression_metrics(np.asarray(measured)[mask], np.asarray(predicted)[mask])
    return result


@dataclass(frozen=True)
class BiasFit:
    m: float
    b: float

    def apply(self, predicted: np.ndarray) -> np.ndarray:
        return (np.asarray(predicted, float) + self.b) / (1.0 - self.m)


def fit_bias(measured: np.ndarray, predicted: np.ndarray, *, max_abs_delta: float = 10.0) -> BiasFit:
    measured, predicted = np.asarray(measured, float), np.asarray(predicted, float)
    delta = measured - predicted
    keep = np.abs(delta) < max_abs_delta
    if keep.sum() < 3:
        return BiasFit(0.0, 0.0)
    m, b = np.polyfit(measured[keep], delta[keep], 1)
    return BiasFit(float(m), float(b))


def choose_bias_correction(
    val_measured: np.ndarray, val_predicted: np.ndarray, *, fit_measured: np.ndarray, fit_predicted: np.ndarray
) -> BiasFit | None:
    """Fit on one split and keep the correction only if it lowers RMS on the validation split."""
    fit = fit_bias(fit_measured, fit_predicted)
    before = regression_metrics(val_measured, val_predicted).rms
    after = regression_metrics(val_measured, np.clip(fit.apply(val_predicted), 45, 90)).rms
    return fit if after < before else None


def ensemble_combine(member_predictions: np.ndarray) -> dict[str, np.ndarray]:
    """``member_predictions``: (n_members, n_images). Returns mean, median and stdev per image."""
    preds = np.asarray(member_predictions, float)
    return {"mean": preds.mean(axis=0), "median": np.median(preds, axis=0), "stdev": preds.std(axis=0)}


def choose_alarm_threshold(
    stdev: np.ndarray, abs_error: np.ndarray, *, large_error_deg: float = 6.0, min_caught_fraction: float = 2 / 3,
    max_flag_fraction: float = 0.1,
) -> dict[str, float]:
    """The disagreement threshold (ensemble stdev) that flags as few images as it can while catching at least
    ``min_caught_fraction`` of the large errors (|error| > ``large_error_deg``), never flagging more than
    ``max_flag_fraction``. Returns the threshold and what it achieves on these images."""
    stdev, abs_error = np.asarray(stdev, float), np.asarray(abs_error, float)
    large = abs_error > large_error_deg
    if not stdev.size:
        threshold = 0.0
    else:
        order = np.argsort(-stdev, kind="stable")
        ranked = stdev[order]
        cap = int(np.floor(max_flag_fraction * stdev.size))
        if large.any():
            caught = np.cumsum(large[order]) / large.sum()  # caught[k - 1]: share caught by the top k
            enough = np.flatnonzero(caught >= min_caught_fraction - 1e-12)
            wanted = int(enough[0]) + 1 if enough.size else stdev.size
        else:
            wanted = cap
        flag = min(wanted, cap)
        if 0 < flag < stdev.size and ranked[flag] == ranked[flag - 1]:
            # A tie across the boundary: flag the whole tied group if the cap allows, else none of it.
            end = int(np.searchsorted(-ranked, -ranked[flag - 1], side="right"))
            flag = end if end <= cap else int(np.searchsorted(-ranked, -ranked[flag - 1], side="left"))
        # "stdev > threshold" flags exactly the top ``flag`` images.
        if flag == 0:
            threshold = float(ranked[0])
        elif flag < stdev.size:
            threshold = float(ranked[flag])
        else:
            threshold = float(np.nextafter(ranked[-1], -np.inf))
    flagged = stdev > threshold
    return {
        "threshold_deg": threshold,
        "flagged_fraction": float(flagged.mean()) if stdev.size else 0.0,
        "large_errors": int(large.sum()),
        "large_errors_caught_fraction": float((flagged & large).sum() / large.sum()) if large.any() else 1.0,
        "rms_flagged": float(np.sqrt(np.mean(abs_error[flagged] ** 2))) if flagged.any() else 0.0,
        "rms_unflagged": float(np.sqrt(np.mean(abs_error[~flagged] ** 2))) if (~flagged).any() else 0.0,
    }


def roc_curve(labels: np.ndarray, scores: np.ndarray) -> tuple[np.ndarray, np.ndarray, float]:
    """False and true positive rates over every threshold, and the area under the curve."""
    labels, scores = np.asarray(labels, int), np.asarray(scores, float)
    order = np.argsort(-scores, kind="mergesort")
    labels_sorted = labels[order]
    positives, negatives = labels.sum(), (1 - labels).sum()
    if positives == 0 or negatives == 0:
        return np.array([0.0, 1.0]), np.array([0.0, 1.0]), float("nan")
    tpr = np.concatenate([[0.0], np.cumsum(labels_sorted) / positives])
    fpr = np.concatenate([[0.0], np.cumsum(1 - labels_sorted) / negatives])
    return fpr, tpr, float(np.trapezoid(tpr, fpr))


def reject_metrics(labels: np.ndarray, probability: np.ndarray, *, threshold: float = 0.5) -> dict[str, float]:
    """Rejected (1) is the positive class, as in the original. ``probability`` is P(reject)."""
    labels, probability = np.asarray(labels, int), np.asarray(probability, float)
    predicted = probability > threshold
    tp = int(np.sum(predicted & (labels == 1)))
    fp = int(np.sum(predicted & (labels == 0)))
    fn = int(np.sum(~predicted & (labels == 1)))
    tn = int(np.sum(~predicted & (labels == 0)))
    _, _, auc = roc_curve(labels, probability)
    return {
        "n": int(labels.size),
        "precision": tp / (tp + fp) if tp + fp else 0.0,
        "recall": tp / (tp + fn) if tp + fn else 0.0,
        "accuracy": (tp + tn) / labels.size if labels.size else 0.0,
        "roc_auc": auc,
    }


def reject_metrics_by_reason(
    labels: np.ndarray, probability: np.ndarray, reasons: Sequence[str]
) -> dict[str, dict[str, float]]:
    """Recall per reject reason (each reason's rejects against all accepted images)."""
    labels, probability, reasons_arr = np.asarray(labels, int), np.asarray(probability, float), np.asarray(reasons)
    result = {"all": reject_metrics(labels, probability)}
    for reason in sorted({r for r in reasons_arr.tolist() if r}):
        mask = (reasons_arr == reason) | (labels == 0)
        result[reason] = reject_metrics(labels[mask], probability[mask])
    return result


# --- plots ----------------------------------------------------------------------------------

def _pyplot():  # noqa: ANN202
    import matplotlib

    matplotlib.use("Agg")
    import matplotlib.pyplot as plt

    return plt


def plot_history(history: Mapping[str, Sequence[float]], path: Path, *, title: str) -> Path:
    """Loss and metric curves against epochs (seed figures 9–10)."""
    plt = _pyplot()
    keys = [k for k in history if not k.startswith("val_") and f"val_{k}" in history] or list(history)
    fig, axes = plt.subplots(1, len(keys), figsize=(4.2 * len(keys), 3.4), squeeze=False)
    for axis, key in zip(axes[0], keys, strict=True):
        axis.plot(history[key], label="training")
        if f"val_{key}" in history:
            axis.plot(history[f"val_{key}"], label="validation")
        axis.set_xlabel("epoch")
        axis.set_ylabel(key)
        axis.legend()
    fig.suptitle(title)
    fig.tight_layout()
    fig.savefig(path, dpi=110)
    plt.close(fig)
    return path


def plot_prediction_scatter(measured: np.ndarray, predicted: np.ndarray, path: Path, *, title: str) -> Path:
    """Predicted vs measured, and Δi vs measured with the bias line (seed figures 11–12)."""
    plt = _pyplot()
    measured, predicted = np.asarray(measured, float), np.asarray(predicted, float)
    delta = measured - predicted
    metrics = regression_metrics(measured, predicted)
    fit = fit_bias(measured, predicted)
    fig, (left, right) = plt.subplots(1, 2, figsize=(10, 4.2))
    left.scatter(measured, predicted, s=4, alpha=0.4)
    left.plot([45, 90], [45, 90], "k--", lw=1)
    left.set_xlabel("measured i [deg]")
    left.set_ylabel("predicted i [deg]")
    right.scatter(measured, delta, s=4, alpha=0.4)
    xs = np.array([45.0, 90.0])
    right.plot(xs, fit.m * xs + fit.b, "r-", lw=1.5, label=f"m={fit.m:.3f}, b={fit.b:.2f}")
    right.axhline(0, color="k", lw=1)
    right.set_ylim(-20, 20)
    right.set_xlabel("measured i [deg]")
    right.set_ylabel("Δi = i_m − i_p [deg]")
    right.legend(loc="lower left")
    fig.suptitle(f"{title}: RMS {metrics.rms:.2f}°, MAE {metrics.mae:.2f}°")
    fig.tight_layout()
    fig.savefig(path, dpi=110)
    plt.close(fig)
    return path


def plot_rms_per_bin(results: Mapping[str, RegressionMetrics], path: Path, *, title: str) -> Path:
    plt = _pyplot()
    fig, axis = plt.subplots(figsize=(6.5, 3.8))
    for name, metrics in results.items():
        labels = list(metrics.rms_per_bin)
        axis.plot(labels, [metrics.rms_per_bin[k] for k in labels], marker="o", label=f"{name} ({metrics.rms:.2f}°)")
    axis.set_xlabel("measured inclination bin [deg]")
    axis.set_ylabel("RMS [deg]")
    axis.legend(fontsize=8)
    axis.set_title(title)
    fig.tight_layout()
    fig.savefig(path, dpi=110)
    plt.close(fig)
    return path


def plot_roc(curves: Mapping[str, tuple[np.ndarray, np.ndarray, float]], path: Path, *, title: str) -> Path:
    """ROC of the reject models (seed figures 15–16 show precision/recall/accuracy; ROC adds thresholds)."""
    plt = _pyplot()
    fig, axis = plt.subplots(figsize=(4.6, 4.4))
    for name, (fpr, tpr, auc) in curves.items():
        axis.plot(fpr, tpr, label=f"{name} (AUC {auc:.3f})")
    axis.plot([0, 1], [0, 1], "k:", lw=1)
    axis.set_xlabel("false positive rate")
    axis.set_ylabel("true positive rate")
    axis.legend(fontsize=8, loc="lower right")
    axis.set_title(title)
    fig.tight_layout()
    fig.savefig(path, dpi=110)
    plt.close(fig)
    return path


def contact_sheet(images: np.ndarray, captions: Sequence[str], path: Path, *, columns: int = 8) -> Path:
    """Outlier galaxies (|Δi| > 10°) with their measured/predicted values, as one PNG."""
    plt = _pyplot()
    n = max(1, len(images))
    rows = int(np.ceil(n / columns))
    fig, axes = plt.subplots(rows, columns, figsize=(columns * 1.6, rows * 1.8), squeeze=False)
    for axis in axes.ravel():
        axis.axis("off")
    for axis, image, caption in zip(axes.ravel(), images, captions, strict=False):
        axis.imshow(image.astype(np.uint8))
        axis.set_title(caption, fontsize=7)
    fig.tight_layout()
    fig.savefig(path, dpi=100)
    plt.close(fig)
    return path
