"""Benchmark: an ensemble on the independent family (never trained on), through the serving path.

Every image of a set written by ``benchmarks.independent_family.render`` (random position angle, its own
renderer and observation model) is sent as bytes to ``predictions.services.prediction_for_upload`` — the
upload path of the site and of ``/api/file``: load, inversion check, measured-PA alignment, the fused
ensemble with its test-time views, the axial-ratio cross-check. Reported:

- clean galaxies with truth 45–90°: RMS, MAE and bias of the ensemble median, and of the axial-ratio
  inclination of the same images (the response's ``axial_ratio_inclination``; before the serving path had
  it, ``training.ml.axial_ratio`` on the uploaded image), their ratio, and per 15° bin;
- the measured position angle against the truth (when the response has ``pa_measured``);
- rejection (median of the reject members ≥ 50 %): recall on rejects, overall and per reason; the share of
  clean galaxies rejected; the ROC AUC of the reject median, clean versus rejects;
- the ensemble's own in-family test RMS, from its manifest, when it has one;
- the error bar: the share of clean galaxies whose truth lies within median ± ``inclination_error`` (the
  response's calibrated 1-sigma bar; target 68 %), per 15° bin and for the verdict ``inclined`` alone;
- the real photographs of ``../shared/real-photos`` (when present): Spearman of the ensemble median and of
  the axial ratio against the catalogue inclination (i_cat ≥ 45°), and the share rejected.

    .venv/bin/python -m benchmarks.independent_family.render --n 600 --rejects 200 --seed 2026 --out var/independent
    .venv/bin/python -m benchmarks.independent_accuracy --images var/independent                  # the active ensemble
    .venv/bin/python -m benchmarks.independent_accuracy --ensemble var/bench/quick-1 --images var/independent
    .venv/bin/python -m benchmarks.independent_accuracy --ensemble model.tar.gz --markdown       # one row for docs

Other code calls ``evaluate_independent(ensemble, images_dir)`` (Django configured) and gets the dict that
is written as JSON.
"""
from __future__ import annotations

import argparse
import contextlib
import csv
import inspect
import io
import json
import math
import os
import tarfile
import tempfile
import time
from collections.abc import Callable, Iterator
from pathlib import Path
from typing import Any

import numpy as np

from benchmarks.independent_family import REJECT_REASONS

os.environ.setdefault("TF_CPP_MIN_LOG_LEVEL", "2")

REPO_ROOT = Path(__file__).resolve().parent.parent
REAL_PHOTOS = REPO_ROOT.parent / "shared" / "real-photos"
REJECT_THRESHOLD = 50.0  # percent, on the median of the reject members
REASONS = REJECT_REASONS


# --- statistics -----------------------------------------------------------------------------

def error_stats(predicted: np.ndarray, truth: np.ndarray) -> dict[str, Any]:
    """RMS / MAE / bias of predicted − truth over the finite predictions; ``failed`` counts the others."""
    predicted = np.asarray(predicted, dtype=np.float64)
    truth = np.asarray(truth, dtype=np.float64)
    ok = np.isfinite(predicted)
    d = predicted[ok] - truth[ok]
    if d.size == 0:
        return {"n": 0, "failed": int((~ok).sum()), "rms": None, "mae": None, "bias": None}
    return {"n": int(d.size), "failed": int((~ok).sum()), "rms": float(np.sqrt(np.mean(d * d))),
            "mae": float(np.mean(np.abs(d))), "bias": float(np.mean(d))}


def spearman(a: np.ndarray, b: np.ndarray) -> float | None:
    a, b = np.asarray(a, dtype=np.float64), np.asarray(b, dtype=np.float64)
    ok = np.isfinite(a) & np.isfinite(b)
    if ok.sum() < 3:
        return None
    from scipy.stats import spearmanr

    value = spearmanr(a[ok], b[ok]).statistic
    return None if not np.isfinite(value) else float(value)


def roc_auc(scores_negative: np.ndarray, scores_positive: np.ndarray) -> float | None:
    """P(a positive scores above a negative), ties counted half (Mann–Whitney)."""
    neg, pos = np.asarray(scores_negative, float), np.asarray(scores_positive, float)
    if neg.size == 0 or pos.size == 0:
        return None
    from scipy.stats import rankdata

    ranks = rankdata(np.concatenate([neg, pos]))
    u = ranks[neg.size:].sum() - pos.size * (pos.size + 1) / 2
    return float(u / (neg.size * pos.size))


def pa_difference(a: float, b: float) -> float:
    d = abs(a - b) % 180.0
    return min(d, 180.0 - d)


# --- the ensemble under test ------------------------------------------------------------------

@contextlib.contextmanager
def serving(ensemble: str | Path | None) -> Iterator[dict[str, Any]]:
    """Django settings under which ``prediction_for_upload`` serves ``ensemble``.

    ``None`` or ``"active"``: the model store's active ensemble. A folder with a ``manifest.json``, or a
    ``.tar.gz`` archive of one (``manage.py ensemble_archive export``), is made the active one of a
    temporary model store. The cache is a dummy (no answer is cached, none is read from an earlier run) and
    model inputs are stored in a temporary media folder.
    """
    from django.test import override_settings

    with tempfile.TemporaryDirectory(prefix="independent-") as tmp:
        tmp_path = Path(tmp)
        overrides: dict[str, Any] = {
            "CACHES": {"default": {"BACKEND": "django.core.cache.backends.dummy.DummyCache"}},
            "MEDIA_ROOT": str(tmp_path / "media"),
        }
        info: dict[str, Any] = {}
        if ensemble in (None, "active"):
            from training.store import active_pointer_read, ensemble_folder

            pointer = active_pointer_read()
            if pointer is None:
                raise FileNotFoundError("no active ensemble (MODEL_STORE/active.json)")
            folder = ensemble_folder(pointer["folder"])
            info["source"] = "active"
        else:
            path = Path(ensemble)
            if path.is_file():
                extracted = tmp_path / "archive"
                with tarfile.open(path) as archive:
                    archive.extractall(extracted, filter="data")
                manifests = sorted(extracted.rglob("manifest.json"))
                if not manifests:
                    raise FileNotFoundError(f"{path} holds no manifest.json")
                folder = manifests[0].parent
            else:
                folder = path
            if not (folder / "manifest.json").exists():
                raise FileNotFoundError(f"{folder} has no manifest.json")
            store = tmp_path / "model_store"
            store.mkdir()
            manifest = json.loads((folder / "manifest.json").read_text())
            (store / "active.json").write_text(json.dumps({"version": manifest["version"],
                                                           "folder": str(folder.resolve())}))
            overrides["MODEL_STORE"] = str(store)
            info["source"] = str(path)
        info["folder"] = str(folder)
        info["manifest"] = json.loads((folder / "manifest.json").read_text())
        with override_settings(**overrides):
            yield info


def _serving_aligns() -> bool:
    """Whether the serving path measures the PA itself (``angle_deg=None``)."""
    from predictions.services import prediction_for_upload

    parameter = inspect.signature(prediction_for_upload).parameters.get("angle_deg")
    return parameter is not None and parameter.default is None


def _axial_fallback(data: bytes) -> float:
    from PIL import Image

    from core.axial_ratio import axial_ratio_inclination

    return axial_ratio_inclination(np.asarray(Image.open(io.BytesIO(data)).convert("RGB")))


def _predict(data: bytes, angle_deg: float | None) -> dict[str, Any]:
    from predictions.services import prediction_for_upload

    if angle_deg is None:
        body = prediction_for_upload(data=data)
    else:
        body = prediction_for_upload(data=data, angle_deg=angle_deg)
    median = body["inclinations"]["summary"]["median"]
    reject = body["rejection_likelihood"]["summary"]["median"]
    if "axial_ratio_inclination" in body:
        axial = body["axial_ratio_inclination"]
        axial_source = "response"
    else:
        axial = _axial_fallback(data)
        axial_source = "training.ml.axial_ratio on the uploaded image"
    pa = body.get("pa_measured")
    error = body.get("inclination_error")
    return {"median": float(median), "reject": float(reject), "stdev": float(body["inclinations"]["summary"]["stdev"]),
            "error_bar": float("nan") if error is None else float(error), "verdict_code": body.get("verdict_code"),
            "alarm": bool(body.get("alarm")),
            "axial": float("nan") if axial is None else float(axial), "axial_source": axial_source,
            "pa_measured": None if pa is None else float(pa), "pa_source": body.get("pa_source"),
            **_reject_causes(body)}


def _reject_causes(body: dict[str, Any]) -> dict[str, Any]:
    """The networks' own rejection (before the image checks were combined in) and the causes that fired."""
    summary = body["rejection_likelihood"]["summary"]
    return {"networks_reject": float(summary.get("networks_median", summary["median"])),
            "reject_reasons": [c["reason"] for c in body.get("reject_reasons") or []]}


# --- evaluation -----------------------------------------------------------------------------

def _read_truth(images_dir: Path) -> list[dict[str, Any]]:
    with (images_dir / "truth.csv").open(newline="") as handle:
        rows = list(csv.DictReader(handle))
    for row in rows:
        row["accepted"] = bool(int(row["accepted"]))
        row["inclination"] = float(row["inclination"])
        row["pa"] = float(row["pa"])
    return rows


def evaluate_independent(ensemble: str | Path | None, images_dir: str | Path, *, aligned_by_truth: bool = False,
                         limit: int | None = None, real_photos: str | Path | None = REAL_PHOTOS,
                         progress: Callable[[int, int], None] | None = None,
                         per_image: bool = False) -> dict[str, Any]:
    """Score ``ensemble`` (None / "active", a folder or an archive) on the set in ``images_dir``.

    Django must be configured. ``aligned_by_truth`` turns every image by its true PA instead of letting the
    serving path measure it (isolates the PA's share of the error). ``limit`` takes the first N images.
    ``real_photos``: a folder with ``truth.csv`` (``i_cat``) and JPEGs, or None to skip. ``per_image`` adds
    ``images``: per file its reason, truth, ensemble median, axial-ratio inclination and reject median.
    """
    images_dir = Path(images_dir)
    rows = _read_truth(images_dir)[:limit] if limit else _read_truth(images_dir)
    set_info = {}
    if (images_dir / "set.json").exists():
        set_info = json.loads((images_dir / "set.json").read_text())
    started = time.perf_counter()
    with serving(ensemble) as info:
        aligns = _serving_aligns()
        results = []
        for k, row in enumerate(rows):
            data = (images_dir / row["file"]).read_bytes()
            try:
                results.append(_predict(data, row["pa"] if aligned_by_truth else None))
            except Exception as exc:  # noqa: BLE001 - a refused image is a result too (counted as failed)
                results.append({"median": float("nan"), "reject": float("nan"), "stdev": float("nan"), "alarm": False,
                                "error_bar": float("nan"), "verdict_code": None,
                                "axial": float("nan"), "axial_source": "", "pa_measured": None, "pa_source": None,
                                "error": f"{type(exc).__name__}: {exc}"})
            if progress:
                progress(k + 1, len(rows))
        set_seconds = time.perf_counter() - started
        real = evaluate_real_photos(Path(real_photos)) if real_photos and Path(real_photos).exists() else None
    manifest = info["manifest"]
    report = summarise(rows, results)
    report.update({
        "ensemble": {"version": manifest["version"], "source": info["source"], "folder": info["folder"],
                     "tta": manifest.get("tta"),
                     "members": [m["name"] for m in manifest["members"]]},
        "set": {"folder": str(images_dir), **set_info, "n_images": len(rows)},
        "alignment": "truth PA" if aligned_by_truth else ("measured by the serving path" if aligns
                                                          else "none (this serving path does not align uploads)"),
        "axial_source": next((r["axial_source"] for r in results if r["axial_source"]), None),
        "errors": {rows[k]["file"]: r["error"] for k, r in enumerate(results) if "error" in r},
        "in_family": in_family(manifest),
        "real_photos": real,
        "seconds": {"independent_set": round(set_seconds, 1),
                    "per_image_ms": round(1000 * set_seconds / max(len(rows), 1), 1)},
    })
    if per_image:
        def finite(value: float) -> float | None:
            return round(float(value), 3) if math.isfinite(value) else None

        report["images"] = [{"file": row["file"], "reason": row["reason"], "accepted": row["accepted"],
                             "truth": row["inclination"], "median": finite(r["median"]), "axial": finite(r["axial"]),
                             "reject": finite(r["reject"])} for row, r in zip(rows, results)]
    return report


def in_family(manifest: dict[str, Any]) -> dict[str, Any] | None:
    """The manifest's own held-out test figure (the generator it trained on), if it was evaluated."""
    test = (manifest.get("metrics") or {}).get("test") or {}
    median = (test.get("ensemble_median") or {}).get("all")
    if not median:
        return None
    return {"rms": median.get("rms"), "mae": median.get("mae"), "bias": median.get("bias"),
            "n_galaxies": test.get("n_galaxies")}


def error_bar_coverage(truth: np.ndarray, median: np.ndarray, error: np.ndarray, clean: np.ndarray,
                       verdicts: list[Any]) -> dict[str, Any] | None:
    """Share of clean galaxies whose truth lies within median ± inclination_error (target 68 %), overall, per
    15° bin and among those the verdict calls ``inclined``; None when the responses carry no error bar."""
    ok = clean & np.isfinite(error) & np.isfinite(median)
    if not ok.any():
        return None
    inside = np.abs(median - truth) <= error
    inclined = ok & (np.array([v == "inclined" for v in verdicts]))
    per_bin = {}
    for lo in (45, 60, 75):
        sel = ok & (truth >= lo) & (truth < lo + 15 if lo < 75 else truth <= 90)
        per_bin[f"{lo}-{lo + 15}"] = float(inside[sel].mean()) if sel.any() else None
    codes = sorted({str(v) for k, v in enumerate(verdicts) if ok[k]})
    return {"n": int(ok.sum()), "coverage": float(inside[ok].mean()), "median_error": float(np.median(error[ok])),
            "per_bin": per_bin,
            "inclined_n": int(inclined.sum()),
            "inclined_coverage": float(inside[inclined].mean()) if inclined.any() else None,
            "verdicts": {c: int(sum(1 for k, v in enumerate(verdicts) if ok[k] and str(v) == c)) for c in codes}}


def summarise(rows: list[dict[str, Any]], results: list[dict[str, Any]]) -> dict[str, Any]:
    truth = np.array([r["inclination"] for r in rows])
    accepted = np.array([r["accepted"] for r in rows], dtype=bool)
    reasons = np.array([r["reason"] for r in rows])
    median = np.array([r["median"] for r in results])
    axial = np.array([r["axial"] for r in results])
    reject = np.array([r["reject"] for r in results])
    rejected = reject >= REJECT_THRESHOLD
    clean = accepted & (truth >= 45.0) & (truth <= 90.0)
    ens = error_stats(median[clean], truth[clean])
    ax = error_stats(axial[clean], truth[clean])
    both = clean & np.isfinite(axial)
    ens_same = error_stats(median[both], truth[both])
    per_bin = {}
    for lo in (45, 60, 75):
        sel = clean & (truth >= lo) & (truth < lo + 15 if lo < 75 else truth <= 90)
        per_bin[f"{lo}-{lo + 15}"] = {"n": int(sel.sum()), "ensemble_rms": error_stats(median[sel], truth[sel])["rms"],
                                      "axial_rms": error_stats(axial[sel], truth[sel])["rms"]}
    out: dict[str, Any] = {
        "clean": {
            "n": int(clean.sum()),
            "ensemble": ens,
            "axial_ratio": ax,
            "ensemble_where_axial_measured": ens_same,
            "axial_over_ensemble_rms": (ax["rms"] / ens_same["rms"]) if ax["rms"] and ens_same["rms"] else None,
            "per_bin": per_bin,
            "rejected_fraction": float(rejected[clean].mean()) if clean.any() else None,
            "alarm_fraction": float(np.mean([results[k]["alarm"] for k in np.nonzero(clean)[0]])) if clean.any() else None,
            "axial_below_45_fraction": float(np.mean(np.nan_to_num(axial[clean], nan=90.0) < 45.0)) if clean.any() else None,
        },
    }
    is_reject = ~accepted
    by_reason = {}
    for reason in REASONS:
        sel = reasons == reason
        if sel.any():
            by_reason[reason] = {"n": int(sel.sum()), "recall": float(rejected[sel].mean()),
                                 "reject_median_mean": float(reject[sel].mean())}
    face = reasons == "face_on"
    out["error_bar"] = error_bar_coverage(truth, median, np.array([r.get("error_bar", math.nan) for r in results], float),
                                          clean, [r.get("verdict_code") for r in results])
    out["reject_sources"] = reject_sources(reasons, accepted, clean, results)
    out["rejects"] = {
        "n": int(is_reject.sum()),
        "recall": float(rejected[is_reject].mean()) if is_reject.any() else None,
        "by_reason": by_reason,
        "roc_auc": roc_auc(reject[clean], reject[is_reject]),
        "axial_face_on_recall": float(np.mean(np.nan_to_num(axial[face], nan=0.0) < 45.0)) if face.any() else None,
    }
    pa_errors = [pa_difference((results[k]["pa_measured"] + 90.0) % 180.0, rows[k]["pa"])
                 for k in np.nonzero(clean)[0] if results[k]["pa_measured"] is not None]
    if pa_errors:
        e = np.array(pa_errors)
        out["pa"] = {"n_measured": int(e.size), "n_clean": int(clean.sum()), "median_error": float(np.median(e)),
                     "p90_error": float(np.percentile(e, 90)), "over_10_fraction": float(np.mean(e > 10.0))}
    else:
        out["pa"] = None
    return out


def reject_sources(reasons: np.ndarray, accepted: np.ndarray, clean: np.ndarray,
                   results: list[dict[str, Any]]) -> dict[str, Any]:
    """Rejection by the networks alone against networks + image checks (the served figure), overall and per
    reason, and how often each cause fired on each kind of image."""
    networks = np.array([r.get("networks_reject", r["reject"]) for r in results], dtype=float) >= REJECT_THRESHOLD
    served = np.array([r["reject"] for r in results], dtype=float) >= REJECT_THRESHOLD
    is_reject = ~accepted
    kinds = {"clean": clean, **{reason: reasons == reason for reason in REASONS}}
    causes = sorted({c for r in results for c in r.get("reject_reasons", [])})
    out: dict[str, Any] = {"causes": causes, "by_kind": {}}
    for kind, sel in kinds.items():
        if not sel.any():
            continue
        out["by_kind"][kind] = {
            "n": int(sel.sum()), "networks": float(networks[sel].mean()), "served": float(served[sel].mean()),
            "fired": {c: float(np.mean([c in results[k].get("reject_reasons", []) for k in np.nonzero(sel)[0]]))
                      for c in causes},
        }
    out["recall"] = {"networks": float(networks[is_reject].mean()) if is_reject.any() else None,
                     "served": float(served[is_reject].mean()) if is_reject.any() else None}
    return out


def reject_sources_markdown(report: dict[str, Any]) -> list[str]:
    """Rows: networks alone vs served (networks + image checks), per kind, and the causes reported."""
    sources = report.get("reject_sources")
    if not sources:
        return []
    causes = sources["causes"]
    lines = ["", "| rejected (≥ 50 %) | n | networks alone | networks + image checks | "
             + " | ".join(f"fired: {c}" for c in causes) + " |", "|---|---|---|---|" + "---|" * len(causes)]
    for kind, row in sources["by_kind"].items():
        lines.append(f"| {kind} | {row['n']} | {_pct(row['networks'])} | {_pct(row['served'])} | "
                     + " | ".join(_pct(row["fired"][c]) for c in causes) + " |")
    lines.append(f"| all rejects: recall | | {_pct(sources['recall']['networks'])} | {_pct(sources['recall']['served'])} |"
                 + " |" * len(causes))
    return lines


def evaluate_real_photos(folder: Path) -> dict[str, Any]:
    """The real photographs with i_cat ≥ 45°: Spearman against i_cat, share rejected, beside the axial ratio."""
    with (folder / "truth.csv").open(newline="") as handle:
        rows = [r for r in csv.DictReader(handle) if float(r["i_cat"]) >= 45.0]
    results = [_predict((folder / r["file"]).read_bytes(), None) for r in rows]
    i_cat = np.array([float(r["i_cat"]) for r in rows])
    median = np.array([r["median"] for r in results])
    axial = np.array([r["axial"] for r in results])
    reject = np.array([r["reject"] for r in results])
    spiral = np.array([r["hubble"].startswith("S") for r in rows])
    return {
        "n": len(rows),
        "n_spirals": int(spiral.sum()),
        "ensemble_spearman": spearman(median, i_cat),
        "axial_spearman": spearman(axial, i_cat),
        "ensemble_spearman_spirals": spearman(median[spiral], i_cat[spiral]),
        "axial_spearman_spirals": spearman(axial[spiral], i_cat[spiral]),
        "rejected_fraction": float(np.mean(reject >= REJECT_THRESHOLD)) if rows else None,
        "rejected_fraction_spirals": float(np.mean(reject[spiral] >= REJECT_THRESHOLD)) if spiral.any() else None,
        "networks_rejected_fraction_spirals": float(np.mean(np.array([r.get("networks_reject", r["reject"]) for r in results])[spiral]
                                                             >= REJECT_THRESHOLD)) if spiral.any() else None,
        "reject_causes_spirals": {c: int(sum(c in r.get("reject_reasons", []) for r, s in zip(results, spiral) if s))
                                  for c in sorted({c for r in results for c in r.get("reject_reasons", [])})},
        "axial_below_45_fraction": float(np.mean(np.nan_to_num(axial, nan=90.0) < 45.0)) if rows else None,
        "ensemble_minus_cat_rms": error_stats(median, i_cat)["rms"],
        "axial_minus_cat_rms": error_stats(axial, i_cat)["rms"],
    }


# --- output ---------------------------------------------------------------------------------

def _f(value: float | None, fmt: str = ".2f", unit: str = "°") -> str:
    return "–" if value is None else f"{value:{fmt}}{unit}"


def _pct(value: float | None) -> str:
    return "–" if value is None else f"{100 * value:.0f}%"


def markdown_report(report: dict[str, Any]) -> list[str]:
    clean, rej, pa = report["clean"], report["rejects"], report["pa"]
    ens, ax = clean["ensemble"], clean["axial_ratio"]
    fam = report.get("in_family")
    lines = [
        f"ensemble {report['ensemble']['version']} ({report['ensemble']['source']}), TTA {report['ensemble']['tta']}; "
        f"set {report['set']['folder']} (seed {report['set'].get('seed')}, {report['set']['n_images']} images); "
        f"alignment: {report['alignment']}; axial ratio from {report['axial_source']}",
        "",
        "| measure | ensemble median | axial ratio (q0 = 0.2) |",
        "|---|---|---|",
        f"| clean, truth 45–90° (n = {clean['n']}): RMS | {_f(ens['rms'])} | {_f(ax['rms'])} "
        f"({ax['failed']} not measured) |",
        f"| MAE | {_f(ens['mae'])} | {_f(ax['mae'])} |",
        f"| bias (predicted − true) | {_f(ens['bias'], '+.2f')} | {_f(ax['bias'], '+.2f')} |",
        f"| axial RMS / ensemble RMS, same images | {_f(clean['axial_over_ensemble_rms'], '.2f', '×')} | |",
    ]
    for name, b in clean["per_bin"].items():
        lines.append(f"| RMS, truth {name}° (n = {b['n']}) | {_f(b['ensemble_rms'])} | {_f(b['axial_rms'])} |")
    lines += [
        f"| clean galaxies rejected (≥ {REJECT_THRESHOLD:.0f}%) / put below 45° | {_pct(clean['rejected_fraction'])} "
        f"| {_pct(clean['axial_below_45_fraction'])} |",
        f"| clean galaxies with an alarm | {_pct(clean['alarm_fraction'])} | |",
        f"| rejects caught (n = {rej['n']}) | {_pct(rej['recall'])} | face-on below 45°: "
        f"{_pct(rej['axial_face_on_recall'])} |",
        "| caught per reason | " + ", ".join(f"{k} {_pct(v['recall'])}" for k, v in rej["by_reason"].items()) + " | |",
        f"| reject ROC AUC, clean vs rejects | {_f(rej['roc_auc'], '.3f', '')} | |",
    ]
    if pa:
        lines.append(f"| measured PA − truth, clean (measured {pa['n_measured']}/{pa['n_clean']}): median / 90th pct "
                     f"/ > 10° | {pa['median_error']:.1f}° / {pa['p90_error']:.1f}° / {_pct(pa['over_10_fraction'])} | |")
    if fam:
        lines.append(f"| in family (its own generator's test set): RMS / MAE | {_f(fam['rms'])} / {_f(fam['mae'])} | |")
    real = report.get("real_photos")
    if real:
        lines += [
            f"| real photographs, i_cat ≥ 45° (n = {real['n']}, {real['n_spirals']} spirals): Spearman vs i_cat | "
            f"{_f(real['ensemble_spearman'], '.2f', '')} (spirals {_f(real['ensemble_spearman_spirals'], '.2f', '')}) | "
            f"{_f(real['axial_spearman'], '.2f', '')} (spirals {_f(real['axial_spearman_spirals'], '.2f', '')}) |",
            f"| real photographs rejected (≥ {REJECT_THRESHOLD:.0f}%) / put below 45° | {_pct(real['rejected_fraction'])} "
            f"(spirals {_pct(real['rejected_fraction_spirals'])}) | {_pct(real['axial_below_45_fraction'])} |",
        ]
    bar = report.get("error_bar")
    if bar:
        lines.append(f"| clean galaxies with the truth within ± inclination_error (n = {bar['n']}; target 68%) | "
                     f"{100 * bar['coverage']:.1f}% (median error bar {bar['median_error']:.1f}°; per bin "
                     + ", ".join(f"{k}° {_pct(v)}" for k, v in bar["per_bin"].items())
                     + f"; verdict 'inclined' only: {_pct(bar['inclined_coverage'])} of {bar['inclined_n']}) | |")
    if report.get("errors"):
        lines.append(f"| images the serving path refused (counted as failed) | {len(report['errors'])} | |")
    lines += reject_sources_markdown(report)
    if real and real.get("networks_rejected_fraction_spirals") is not None:
        lines.append(f"\nreal photographs, spirals with i_cat ≥ 45° rejected: networks alone "
                     f"{_pct(real['networks_rejected_fraction_spirals'])}, served {_pct(real['rejected_fraction_spirals'])}; "
                     f"causes {real['reject_causes_spirals']}")
    lines += ["", f"time: {report['seconds']['independent_set']:.0f} s for the set "
                  f"({report['seconds']['per_image_ms']:.0f} ms per image through the serving path)"]
    return lines


MARKDOWN_HEADER = ("| ensemble | alignment | clean n | RMS / MAE / bias | axial RMS | axial ÷ ensemble | rejects caught "
                   "(face-on / star / companion / low S/N / cut-off) | clean rejected | real: Spearman ens / axial, "
                   "rejected |\n|---|---|---|---|---|---|---|---|---|")


def markdown_row(report: dict[str, Any]) -> str:
    clean, rej = report["clean"], report["rejects"]
    ens = clean["ensemble"]
    per = " / ".join(_pct(rej["by_reason"].get(r, {}).get("recall")) for r in REASONS)
    real = report.get("real_photos")
    real_text = (f"{_f(real['ensemble_spearman'], '.2f', '')} / {_f(real['axial_spearman'], '.2f', '')}, "
                 f"{_pct(real['rejected_fraction'])}") if real else "–"
    return (f"| {report['ensemble']['version']} | {report['alignment'].split(' (')[0]} | {clean['n']} | "
            f"{_f(ens['rms'])} / {_f(ens['mae'])} / {_f(ens['bias'], '+.2f')} | {_f(clean['axial_ratio']['rms'])} | "
            f"{_f(clean['axial_over_ensemble_rms'], '.2f', '×')} | {_pct(rej['recall'])} ({per}) | "
            f"{_pct(clean['rejected_fraction'])} | {real_text} |")


def main(argv: list[str] | None = None) -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--ensemble", default="active",
                        help="'active' (the model store's), an ensemble folder, or a .tar.gz archive")
    parser.add_argument("--images", type=Path, default=Path("var/independent"),
                        help="a set written by benchmarks.independent_family.render")
    parser.add_argument("--json", type=Path, default=None, help="where to write the report (default var/bench/independent/<version>.json)")
    parser.add_argument("--limit", type=int, default=None, help="only the first N images")
    parser.add_argument("--aligned-by-truth", action="store_true", help="turn images by their true PA, not the measured one")
    parser.add_argument("--no-real", action="store_true", help="skip the real photographs")
    parser.add_argument("--markdown", action="store_true", help="also print one row for docs/benchmarks.md")
    parser.add_argument("--per-image", action="store_true",
                        help="keep every image's truth, median, axial ratio and rejection in the report")
    args = parser.parse_args(argv)
    if not (args.images / "truth.csv").exists():
        parser.error(f"{args.images} has no truth.csv; render it first: python -m benchmarks.independent_family.render "
                     f"--n 600 --rejects 200 --seed 2026 --out {args.images}")
    os.environ.setdefault("DJANGO_SETTINGS_MODULE", "inclinet_site.settings")
    import django

    django.setup()

    def progress(done: int, total: int) -> None:
        if done % 100 == 0 or done == total:
            print(f"  {done}/{total}", flush=True)

    report = evaluate_independent(None if args.ensemble == "active" else args.ensemble, args.images,
                                  aligned_by_truth=args.aligned_by_truth, limit=args.limit,
                                  real_photos=None if args.no_real else REAL_PHOTOS, progress=progress,
                                  per_image=args.per_image)
    out = args.json or Path("var/bench/independent") / f"{report['ensemble']['version']}{'-truth-pa' if args.aligned_by_truth else ''}.json"
    out.parent.mkdir(parents=True, exist_ok=True)
    out.write_text(json.dumps(report, indent=1))
    print("\n".join(markdown_report(report)))
    print(f"\nreport: {out}")
    if args.markdown:
        print("\n" + MARKDOWN_HEADER + "\n" + markdown_row(report))


if __name__ == "__main__":
    main()
