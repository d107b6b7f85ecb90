"""Reads from the training domain: the active ensemble in the model store."""
from __future__ import annotations

import json
from typing import Any

from django.conf import settings


def active_ensemble_summary() -> dict[str, Any] | None:
    """The manifest summary of the ensemble marked active in ``MODEL_STORE``, or None."""
    pointer = settings.MODEL_STORE / "active.json"
    if not pointer.exists():
        return None
    manifest = json.loads(pointer.read_text())
    return {"version": manifest.get("version"), "models": len(manifest.get("models", []))}
