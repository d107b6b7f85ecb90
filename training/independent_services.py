"""Writes for the independent check at promotion: a registered ensemble judged on the independent evaluation
family (``benchmarks/independent_family``: its own renderer and observation model, never trained on), at
random orientation, through the real serving path, beside the axial-ratio method on the same images.

- **The set** is rendered once per (family version, seed, size) into ``TRAINING_INDEPENDENT_DIR`` (default
  ``VAR_DIR/independent-promotion``) by a separate ``python -m benchmarks.independent_family.render`` process:
  a fresh process may start its own render pool even inside a Celery prefork child (daemonic processes may
  not), and nothing is forked from a process holding TensorFlow. It is written to a temporary folder and
  renamed into place, so a half-rendered set is never used and two concurrent renders cannot mix.
- **The evaluation** is ``benchmarks.independent_accuracy.evaluate_independent`` (the benchmark's own code:
  the same numbers as ``docs/benchmarks.md``) on the ensemble's folder, served from a temporary model store,
  so a candidate is judged without being made active. Its summary, with per-image results, is stored in
  ``Ensemble.independent_evaluation``; ``selectors.independent_comparison`` puts it beside the in-family
  figures and the active ensemble's.
- **A failed check does not block a promotion**: the error is stored and shown instead of the figures.

Why this module, and only this one under ``training/``, may import ``benchmarks``: it evaluates a finished
ensemble, it never trains. The training core (``training/ml``) and the training pipeline never read these
images; ``tests/test_independent_family.py`` allows exactly this file.
"""
from __future__ import annotations

import logging
import math
import os
import shutil
import subprocess
import sys
import time
from collections.abc import Callable
from pathlib import Path
from typing import Any

from django.conf import settings
from django.utils import timezone

from .conf import training_setting
from .models import Ensemble
from .store import ensemble_folder

logger = logging.getLogger(__name__)

RENDER_TIMEOUT_S = 3600


class IndependentCheckError(RuntimeError):
    """The independent set could not be rendered or the ensemble could not be evaluated on it."""


def independent_spec(*, n: int | None = None, rejects: int | None = None, seed: int | None = None) -> dict[str, int]:
    """The set used at promotion: explicit values, else ``TRAINING_INDEPENDENT_N`` / ``_REJECTS`` / ``_SEED``."""
    return {"n": int(training_setting("INDEPENDENT_N") if n is None else n),
            "rejects": int(training_setting("INDEPENDENT_REJECTS") if rejects is None else rejects),
            "seed": int(training_setting("INDEPENDENT_SEED") if seed is None else seed)}


def _root() -> Path:
    configured = training_setting("INDEPENDENT_DIR")
    return Path(configured) if configured else Path(settings.VAR_DIR) / "independent-promotion"


def independent_set_ensure(*, n: int, rejects: int, seed: int,
                           log: Callable[[str], None] | None = None) -> tuple[Path, float]:
    """The rendered set's folder (rendered now if missing) and the seconds spent rendering (0 when cached)."""
    from benchmarks.independent_family.render import FAMILY_VERSION

    root = _root()
    folder = root / f"v{FAMILY_VERSION}-seed{seed}-n{n}-r{rejects}"
    if (folder / "truth.csv").exists():
        return folder, 0.0
    root.mkdir(parents=True, exist_ok=True)
    tmp = root / f".{folder.name}.{os.getpid()}.tmp"
    shutil.rmtree(tmp, ignore_errors=True)
    (log or logger.info)(f"rendering the independent set ({n} clean + {rejects} rejects, seed {seed})")
    started = time.perf_counter()
    command = [sys.executable, "-m", "benchmarks.independent_family.render", "--n", str(n), "--rejects", str(rejects),
               "--seed", str(seed), "--out", str(tmp), "--workers", str(min(2, os.cpu_count() or 1))]
    try:
        subprocess.run(command, cwd=settings.BASE_DIR, check=True, capture_output=True, text=True,
                       timeout=RENDER_TIMEOUT_S)
    except subprocess.CalledProcessError as exc:
        shutil.rmtree(tmp, ignore_errors=True)
        raise IndependentCheckError(f"rendering the independent set failed: {exc.stderr.strip()[-500:]}") from None
    except BaseException:
        shutil.rmtree(tmp, ignore_errors=True)
        raise
    seconds = time.perf_counter() - started
    try:
        os.rename(tmp, folder)
    except OSError:  # another process renamed its identical render into place first
        shutil.rmtree(tmp, ignore_errors=True)
        if not (folder / "truth.csv").exists():
            raise
    return folder, seconds


def _finite(value: Any) -> Any:
    """JSON for the database: NaN and infinities become null (PostgreSQL's jsonb refuses them)."""
    if isinstance(value, float):
        return value if math.isfinite(value) else None
    if isinstance(value, dict):
        return {str(k): _finite(v) for k, v in value.items()}
    if isinstance(value, (list, tuple)):
        return [_finite(v) for v in value]
    return value


def ensemble_evaluate_independent(*, ensemble: Ensemble, n: int | None = None, rejects: int | None = None,
                                  seed: int | None = None, log: Callable[[str], None] | None = None,
                                  progress: Callable[[int, int], None] | None = None) -> dict[str, Any]:
    """Evaluate ``ensemble`` on the independent set, store the summary on it and return it. Raises on failure."""
    from benchmarks.independent_accuracy import evaluate_independent

    spec = independent_spec(n=n, rejects=rejects, seed=seed)
    images, render_seconds = independent_set_ensure(**spec, log=log)
    (log or logger.info)(f"independent check of {ensemble.version} on {images.name}")
    report = evaluate_independent(ensemble_folder(ensemble.folder), images, real_photos=None,
                                  per_image=True, progress=progress)
    clean, rejects_report = report["clean"], report["rejects"]
    summary = {
        "version": report["ensemble"]["version"],
        "evaluated_at": timezone.now().isoformat(),
        "set": {"seed": spec["seed"], "n_clean": spec["n"], "n_rejects": spec["rejects"],
                "n_images": report["set"]["n_images"], "family_version": report["set"].get("version"),
                "folder": str(images)},
        "clean": {"n": clean["n"], "ensemble": clean["ensemble"], "axial_ratio": clean["axial_ratio"],
                  "ensemble_where_axial_measured": clean["ensemble_where_axial_measured"],
                  "axial_over_ensemble_rms": clean["axial_over_ensemble_rms"], "per_bin": clean["per_bin"],
                  # share of clean galaxies (truth 45–90°) whose reject median is ≥ 50 %
                  "flagged_fraction": clean["rejected_fraction"], "alarm_fraction": clean["alarm_fraction"]},
        "rejects": {"n": rejects_report["n"], "recall": rejects_report["recall"],
                    "by_reason": {k: {"n": v["n"], "recall": v["recall"]}
                                  for k, v in rejects_report["by_reason"].items()},
                    "roc_auc": rejects_report["roc_auc"]},
        "pa": report["pa"],
        "in_family": report["in_family"],
        "alignment": report["alignment"],
        "axial_source": report["axial_source"],
        "errors": report["errors"],
        "seconds": {"render": round(render_seconds, 1), "evaluate": report["seconds"]["independent_set"],
                    "per_image_ms": report["seconds"]["per_image_ms"]},
        "images": report["images"],
    }
    summary = _finite(summary)
    Ensemble.objects.filter(pk=ensemble.pk).update(independent_evaluation=summary)
    ensemble.independent_evaluation = summary
    return summary


def independent_check(*, ensemble: Ensemble, log: Callable[[str], None] | None = None,
                      progress: Callable[[int, int], None] | None = None, force: bool = False) -> dict[str, Any]:
    """The check at promotion (builds, retrain jobs): evaluate unless this set was already evaluated; a failure
    is stored as ``{"error": ...}`` and logged, never raised, so it cannot block the promotion."""
    spec = independent_spec()
    done = ensemble.independent_evaluation or {}
    same_set = (done.get("set") or {}).get("seed") == spec["seed"] and (done.get("set") or {}).get("n_clean") == \
        spec["n"] and (done.get("set") or {}).get("n_rejects") == spec["rejects"]
    if not force and same_set and not done.get("error"):
        return done  # a resumed build: already evaluated on this set
    try:
        return ensemble_evaluate_independent(ensemble=ensemble, log=log, progress=progress)
    except Exception as exc:  # noqa: BLE001 - recorded on the ensemble and shown on the staff page
        logger.exception("independent check failed", extra={"ensemble": ensemble.version})
        failed = {"error": f"{type(exc).__name__}: {exc}"[:1000], "evaluated_at": timezone.now().isoformat(),
                  "set": {"seed": spec["seed"], "n_clean": spec["n"], "n_rejects": spec["rejects"]}}
        Ensemble.objects.filter(pk=ensemble.pk).update(independent_evaluation=failed)
        ensemble.independent_evaluation = failed
        (log or logger.warning)(f"independent check failed: {failed['error']}")
        return failed
