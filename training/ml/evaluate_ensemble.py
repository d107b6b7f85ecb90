"""Evaluate a built ensemble folder on held-out synthetic galaxies: per member and ensemble, per band and
bin, the bias fits (kept only when they help on validation), the disagreement alarm, reject metrics per
reason, the axial-ratio baseline on the same images, a robustness set, and the plots.
"""
from __future__ import annotations

from collections.abc import Callable, Sequence
from pathlib import Path
from typing import Any

import numpy as np

from core.axial_ratio import axial_ratio_inclination

from . import evaluation as ev
from .augment import ImageSet, evaluation_views
from .ensemble import FusedEnsemble


def _images(galaxies: Sequence, ids: np.ndarray, labels: np.ndarray) -> ImageSet:
    chosen = [galaxies[k] for k in ids]
    return ImageSet(colour=np.stack([g.colour for g in chosen]), g=np.stack([g.g for g in chosen]),
                    r=np.stack([g.r for g in chosen]), i=np.stack([g.i for g in chosen]), labels=labels)


def _predict(ensemble: FusedEnsemble, images: np.ndarray, batch: int = 64) -> dict[str, np.ndarray]:
    """Per-member predictions (degrees or reject percent) for every image."""
    per_member: dict[str, list[float]] = {m.name: [] for m in ensemble.manifest.members}
    for start in range(0, len(images), batch):
        for prediction in ensemble.predict(images[start: start + batch]):
            for name, value in prediction.members.items():
                per_member[name].append(value.inclination if value.inclination is not None else value.reject_percent)
    return {name: np.array(values) for name, values in per_member.items()}


def _regression_block(ensemble: FusedEnsemble, galaxies: Sequence, ids: np.ndarray) -> dict[str, Any]:
    accepted = np.array([k for k in ids if galaxies[k].truth["accepted"]])
    truth = np.array([galaxies[k].truth["inclination"] for k in accepted])
    views, _, modes, labels = evaluation_views(_images(galaxies, accepted, truth))
    predictions = _predict(ensemble, views)
    names = [m.name for m in ensemble.manifest.regression]
    stacked = np.stack([predictions[n] for n in names])
    combined = ev.ensemble_combine(stacked)
    return {"truth": labels, "modes": modes, "members": {n: predictions[n] for n in names}, "combined": combined,
            "views": views, "galaxy_ids": accepted}


def evaluate_ensemble(folder: Path, *, test: tuple[Sequence, np.ndarray], validation: tuple[Sequence, np.ndarray],
                      robustness: Sequence | None = None, log: Callable[[str], None] = print) -> dict[str, Any]:
    ensemble = FusedEnsemble(folder)
    plots = folder / "plots"
    plots.mkdir(exist_ok=True)
    galaxies, test_ids = test
    val_galaxies, val_ids = validation
    metrics: dict[str, Any] = {"tta": ensemble.tta}

    test_block = _regression_block(ensemble, galaxies, test_ids)
    val_block = _regression_block(ensemble, val_galaxies, val_ids)
    metrics["bias_fits"] = _bias_fits(val_block)
    metrics["test"] = _test_metrics(test_block)
    metrics["alarm"] = _alarm(val_block, test_block)
    reject = _reject_metrics(ensemble, galaxies, test_ids, plots)
    if reject is not None:
        metrics["reject"] = reject
    if robustness:
        metrics["robustness"] = _robustness_metrics(ensemble, robustness)
    metrics["test"]["outliers"] = _plot(ensemble, test_block, plots)
    log(f"ensemble median RMS {metrics['test']['ensemble_median']['all']['rms']:.2f}°, axial-ratio baseline "
        f"{metrics['test']['axial_ratio_baseline_r']['rms']:.2f}° (r band)")
    return metrics


def _bias_fits(val_block: dict[str, Any]) -> dict[str, dict[str, float]]:
    """Bias fits per member on validation, kept only if they lower validation RMS."""
    fits = {}
    for name, values in val_block["members"].items():
        half = len(values) // 2
        fit = ev.choose_bias_correction(val_block["truth"][half:], values[half:],
                                        fit_measured=val_block["truth"][:half], fit_predicted=values[:half])
        if fit is not None:
            fits[name] = {"m": fit.m, "b": fit.b}
    return fits


def _test_metrics(test_block: dict[str, Any]) -> dict[str, Any]:
    """Members and ensemble on the test views, and the axial-ratio baseline on the same r-band images."""
    truth, modes = test_block["truth"], test_block["modes"]
    metrics: dict[str, Any] = {
        "members": {n: ev.regression_metrics(truth, v).to_dict() for n, v in test_block["members"].items()},
        "ensemble_median": {k: m.to_dict() for k, m in ev.metrics_by_group(truth, test_block["combined"]["median"], modes).items()},
        "ensemble_mean": {k: m.to_dict() for k, m in ev.metrics_by_group(truth, test_block["combined"]["mean"], modes).items()},
        "n_galaxies": int(len(test_block["galaxy_ids"])),
        "n_images": int(len(truth)),
    }
    # The classical baseline on exactly the same images (r band; grey images measure best).
    r_rows = modes == "r"
    baseline = np.array([axial_ratio_inclination(view) for view in test_block["views"][r_rows]])
    finite = np.isfinite(baseline)
    metrics["axial_ratio_baseline_r"] = ev.regression_metrics(truth[r_rows][finite], np.clip(baseline[finite], 0, 90)).to_dict()
    metrics["axial_ratio_baseline_r"]["failed"] = int((~finite).sum())
    metrics["ensemble_median_r"] = ev.regression_metrics(truth[r_rows], test_block["combined"]["median"][r_rows]).to_dict()
    return metrics


def _alarm(val_block: dict[str, Any], test_block: dict[str, Any]) -> dict[str, Any]:
    """The disagreement-alarm threshold chosen on validation, reported on test."""
    val_error = np.abs(val_block["truth"] - val_block["combined"]["median"])
    # Flag the fewest images that hold two thirds of the validation errors above 5°, at most a quarter.
    alarm = ev.choose_alarm_threshold(val_block["combined"]["stdev"], val_error, large_error_deg=5.0,
                                      min_caught_fraction=2 / 3, max_flag_fraction=0.25)
    test_error = np.abs(test_block["truth"] - test_block["combined"]["median"])
    flagged = test_block["combined"]["stdev"] > alarm["threshold_deg"]
    large = test_error > 5.0
    alarm["test_flagged_fraction"] = float(flagged.mean())
    alarm["test_large_errors_caught_fraction"] = float((flagged & large).sum() / large.sum()) if large.any() else 1.0
    return alarm


def _reject_metrics(ensemble: FusedEnsemble, galaxies: Sequence, test_ids: np.ndarray,
                    plots: Path) -> dict[str, Any] | None:
    """Reject models on the colour and r views of every test galaxy (None without reject models), ROC plot."""
    all_images = _images(galaxies, test_ids, np.zeros(len(test_ids)))
    reject_views = np.concatenate([all_images.colour, np.repeat(all_images.r[..., None], 3, -1)])
    labels = np.tile(np.array([0 if galaxies[k].truth["accepted"] else 1 for k in test_ids]), 2)
    reasons = np.tile(np.array([galaxies[k].truth["reason"] or "" for k in test_ids]), 2)
    reject_predictions = _predict(ensemble, reject_views)
    reject_names = [m.name for m in ensemble.manifest.reject]
    if not reject_names:
        return None
    probability = np.median(np.stack([reject_predictions[n] for n in reject_names]), axis=0) / 100.0
    ev.plot_roc({n: ev.roc_curve(labels, reject_predictions[n] / 100.0) for n in reject_names}
                | {"ensemble median": ev.roc_curve(labels, probability)}, plots / "reject_roc.png", title="Reject models")
    return {
        "ensemble": ev.reject_metrics_by_reason(labels, probability, reasons),
        "members": {n: ev.reject_metrics(labels, reject_predictions[n] / 100.0) for n in reject_names},
    }


def _robustness_metrics(ensemble: FusedEnsemble, robustness: Sequence) -> dict[str, Any]:
    """Ensemble and axial-ratio baseline on the robustness galaxies."""
    rob_block = _regression_block(ensemble, robustness, np.arange(len(robustness)))
    rob_r = rob_block["modes"] == "r"
    rob_baseline = np.array([axial_ratio_inclination(v) for v in rob_block["views"][rob_r]])
    ok = np.isfinite(rob_baseline)
    return {
        "ensemble_median": {k: m.to_dict() for k, m in ev.metrics_by_group(
            rob_block["truth"], rob_block["combined"]["median"], rob_block["modes"]).items()},
        "axial_ratio_baseline_r": ev.regression_metrics(rob_block["truth"][rob_r][ok], rob_baseline[ok]).to_dict(),
    }


def _plot(ensemble: FusedEnsemble, test_block: dict[str, Any], plots: Path) -> int:
    """Plots in the spirit of the seed's figures 9–16; returns the number of test outliers."""
    truth, modes = test_block["truth"], test_block["modes"]
    median = test_block["combined"]["median"]
    ev.plot_prediction_scatter(truth, median, plots / "ensemble_scatter.png", title=f"{ensemble.version} median")
    ev.plot_rms_per_bin({k: ev.regression_metrics(truth[modes == k], median[modes == k]) for k in np.unique(modes)},
                        plots / "rms_per_bin.png", title="Ensemble median RMS per bin and band")
    for member in ensemble.manifest.members:
        history = member.metrics.get("history")
        if history:
            ev.plot_history(history, plots / f"history_{member.name}.png", title=member.name)
    outliers = np.flatnonzero(np.abs(truth - median) > ev.OUTLIER_DEG)[:40]
    if outliers.size:
        ev.contact_sheet(test_block["views"][outliers],
                         [f"{truth[k]:.0f} vs {median[k]:.0f} {modes[k]}" for k in outliers], plots / "outliers.png")
    return int((np.abs(truth - median) > ev.OUTLIER_DEG).sum())
