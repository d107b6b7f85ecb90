"""The process-wide ensemble: loaded once, reloaded when staff promote a new version.

``MODEL_STORE/active.json`` names the active ensemble (``{"version": ..., "folder": ...}``). Each call
reads that small file, so a promotion written by any process is picked up on the next request without
a restart.

Precision comes from ``settings.PREDICTION_PRECISION`` or the ``PREDICTION_PRECISION`` environment variable:
``auto`` (the default: bf16 where the CPU computes bf16 natively, else fp32), ``bf16`` or ``fp32``. bf16 is
about 3× faster on this project's CPUs and changes the inclinations by well under 0.1° RMS
(``benchmarks/predict.py`` measures both).
"""
from __future__ import annotations

import json
import logging
import os
import threading
from pathlib import Path

from django.conf import settings

from training.ml.ensemble import FusedEnsemble

logger = logging.getLogger(__name__)
_lock = threading.Lock()
_loaded: FusedEnsemble | None = None
_loaded_key: tuple[str, str, str] | None = None


class NoActiveEnsemble(RuntimeError):
    """No ensemble has been promoted yet, or its files are missing."""


def active_pointer() -> dict:
    pointer = Path(settings.MODEL_STORE) / "active.json"
    try:
        return json.loads(pointer.read_text())
    except FileNotFoundError:
        raise NoActiveEnsemble("No model ensemble is active yet; train one (make model) and promote it.") from None


def prediction_precision() -> str:
    """The configured precision name, unresolved (``auto``, ``bf16`` or ``fp32``)."""
    return getattr(settings, "PREDICTION_PRECISION", None) or os.environ.get("PREDICTION_PRECISION", "auto")


def active_ensemble() -> FusedEnsemble:
    global _loaded, _loaded_key
    pointer = active_pointer()
    folder = Path(settings.MODEL_STORE) / pointer["folder"]
    key = (pointer["version"], str(folder), prediction_precision())
    if _loaded is not None and _loaded_key == key:
        return _loaded
    with _lock:
        if _loaded is None or _loaded_key != key:
            try:
                ensemble = FusedEnsemble(folder, tta=getattr(settings, "PREDICTION_TTA", None),
                                         precision=prediction_precision())
            except (FileNotFoundError, OSError, ValueError) as exc:
                logger.error("active ensemble failed to load", extra={"folder": str(folder), "error": str(exc)})
                raise NoActiveEnsemble(f"The active ensemble {pointer['version']} could not be loaded: {exc}") from None
            _loaded, _loaded_key = ensemble, key
            logger.info("ensemble loaded", extra={"version": ensemble.version, "members": len(ensemble.manifest.members),
                                                  "tta": ensemble.tta, "precision": ensemble.precision})
    return _loaded
