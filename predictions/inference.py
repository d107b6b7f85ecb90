"""The process-wide ensemble: loaded once, reloaded when staff promote a new version.

``MODEL_STORE/active.json`` names the active ensemble (``{"version": ..., "folder": ...}``). Each call
reads that small file, so a promotion written by any process is picked up on the next request without
a restart.

Precision comes from ``PREDICTION_PRECISION`` (settings or environment, predictions/conf.py):
``auto`` (the default: bf16 where the CPU computes bf16 natively, else fp32), ``bf16`` or ``fp32``. bf16 is
about 3× faster on this project's CPUs and changes the inclinations by well under 0.1° RMS
(``benchmarks/predict.py`` measures both).

CPU-heavy prediction work (loading the ensemble, fetching and preparing images, the networks) runs through
``predictions.heavy.run_heavy``: in a niced prediction process or on a niced inference thread, so the web
threads keep answering cheap requests (Zoo tasks, cached predictions) while a prediction computes. The
ensemble is loaded where that work runs; TensorFlow's own threads inherit its priority.
"""
from __future__ import annotations

import logging
import threading
from pathlib import Path

from core.errors import Unavailable
from training.ml.ensemble import FusedEnsemble
from training.store import PointerUnreadable, active_pointer_read, ensemble_folder, ensemble_load

from .conf import prediction_setting
from .heavy import run_heavy

logger = logging.getLogger(__name__)
_lock = threading.Lock()
_loaded: FusedEnsemble | None = None
_loaded_key: tuple[str, str, str] | None = None


class NoActiveEnsemble(Unavailable):
    """No ensemble has been promoted yet, or its files are missing (503: retry once one is active)."""


def active_pointer() -> dict:
    """``active.json`` (``training.store``), written only after a promotion commits and reconciled with the
    database at start-up (``training.registry.ensemble_pointer_reconcile``)."""
    try:
        found = active_pointer_read()
    except PointerUnreadable as exc:
        raise NoActiveEnsemble(str(exc)) from None
    if found is None:
        raise NoActiveEnsemble("No model ensemble is active yet; train one (make model) and promote it.")
    return found


def prediction_precision() -> str:
    """The configured precision name, unresolved (``auto``, ``bf16`` or ``fp32``)."""
    return str(prediction_setting("PRECISION") or "auto")


def active_ensemble() -> FusedEnsemble:
    pointer = active_pointer()
    folder = ensemble_folder(pointer["folder"])
    key = (pointer["version"], str(folder), prediction_precision())
    if _loaded is not None and _loaded_key == key:
        return _loaded
    # Loaded on the inference thread, so that TensorFlow's threads inherit its lower priority; loading only
    # there also means the inference thread never waits for a lock that a request thread holds.
    return run_heavy(_load_active, pointer, folder, key)


def _load_active(pointer: dict, folder: Path, key: tuple[str, str, str]) -> FusedEnsemble:
    global _loaded, _loaded_key
    with _lock:
        if _loaded is None or _loaded_key != key:
            try:
                ensemble = ensemble_load(folder, tta=prediction_setting("TTA"), precision=key[2])
            except (FileNotFoundError, OSError, ValueError) as exc:
                logger.error("active ensemble failed to load", extra={"folder": str(folder), "error": str(exc)})
                raise NoActiveEnsemble(f"The active ensemble {pointer['version']} could not be loaded: {exc}") from None
            _loaded, _loaded_key = ensemble, key
            logger.info("ensemble loaded", extra={"version": ensemble.version, "members": len(ensemble.manifest.members),
                                                  "tta": ensemble.tta, "precision": ensemble.precision})
    return _loaded
