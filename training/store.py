"""The model store's one owner: the active pointer ``MODEL_STORE/active.json`` and loading ensembles.

The pointer names the active ensemble (``{"version", "folder", "models"}``). It is written only here, after a
promotion commits, with ``os.replace`` (atomic on POSIX), so a reader sees the old pointer or the new one,
never half of one. Every reader (prediction serving, catalogue scoring, the staff pages, backups) goes
through ``active_pointer_read``; ensembles are loaded with ``ensemble_load``.
"""
from __future__ import annotations

import json
import os
from pathlib import Path
from typing import TYPE_CHECKING, Any

from django.conf import settings

if TYPE_CHECKING:
    from training.ml.ensemble import FusedEnsemble

    from .models import Ensemble

ACTIVE_POINTER = "active.json"


class PointerUnreadable(ValueError):
    """``active.json`` exists but names no ensemble (bad JSON, or no version and folder); says how to fix it."""


def store_root() -> Path:
    return Path(settings.MODEL_STORE)


def pointer_body(*, version: str, folder: str, models: list[str]) -> dict[str, Any]:
    """What ``active.json`` holds: the version, its folder under the store and the member names."""
    return {"version": version, "folder": folder, "models": models}


def ensemble_pointer_body(ensemble: Ensemble) -> dict[str, Any]:
    return pointer_body(version=ensemble.version, folder=ensemble.folder,
                        models=[member["name"] for member in ensemble.manifest.get("members", [])])


def active_pointer_write(ensemble: Ensemble | None) -> None:
    """Point ``active.json`` at ``ensemble`` (atomically), or remove it when None."""
    store = store_root()
    store.mkdir(parents=True, exist_ok=True)
    pointer = store / ACTIVE_POINTER
    if ensemble is None:
        pointer.unlink(missing_ok=True)
        return
    tmp = store / f".active.{os.getpid()}.tmp"
    tmp.write_text(json.dumps(ensemble_pointer_body(ensemble)))
    os.replace(tmp, pointer)


def active_pointer_read() -> dict[str, Any] | None:
    """``active.json`` as written by ``active_pointer_write``; None when there is none. Raises
    ``PointerUnreadable`` when it cannot be parsed or names no ensemble."""
    pointer = store_root() / ACTIVE_POINTER
    try:
        found = json.loads(pointer.read_text())
    except FileNotFoundError:
        return None
    except ValueError:
        raise PointerUnreadable(f"{pointer} is unreadable; `manage.py reconcile_active_model` rewrites it.") from None
    if not isinstance(found, dict) or not {"version", "folder"} <= found.keys():
        raise PointerUnreadable(f"{pointer} names no ensemble; `manage.py reconcile_active_model` rewrites it.")
    return found


def ensemble_folder(relative: str) -> Path:
    """An ensemble's folder from the relative one its row or the pointer names."""
    return store_root() / relative


def ensemble_load(folder: Path, *, tta: str | None, precision: str) -> FusedEnsemble:
    """The ensemble in ``folder`` ready to predict, with the given test-time augmentation and precision."""
    from training.ml.ensemble import FusedEnsemble

    return FusedEnsemble(folder, tta=tta, precision=precision)
