"""Writes to the training domain: registering an ensemble folder, promotion and rollback.

Promotion is atomic: the database row flips inside one transaction and ``MODEL_STORE/active.json`` is
replaced with ``os.replace`` (atomic on POSIX), which every prediction process reads on each request.
"""
from __future__ import annotations

import json
import os
from pathlib import Path

from django.conf import settings
from django.db import transaction
from django.utils import timezone

from training.ml.ensemble import EnsembleManifest

from .models import Ensemble, ModelVersion


class RegistryError(RuntimeError):
    """A registry operation that cannot proceed; the message says why."""


def _write_active_pointer(ensemble: Ensemble | None) -> None:
    store = Path(settings.MODEL_STORE)
    store.mkdir(parents=True, exist_ok=True)
    pointer = store / "active.json"
    if ensemble is None:
        pointer.unlink(missing_ok=True)
        return
    tmp = store / f".active.{os.getpid()}.tmp"
    tmp.write_text(json.dumps({
        "version": ensemble.version, "folder": ensemble.folder,
        "models": [member["name"] for member in ensemble.manifest.get("members", [])],
    }))
    os.replace(tmp, pointer)


def ensemble_register(*, folder: Path) -> Ensemble:
    """Register an ensemble folder (``manifest.json`` plus weights) under MODEL_STORE as a candidate."""
    store = Path(settings.MODEL_STORE).resolve()
    folder = folder.resolve()
    if store not in folder.parents:
        raise RegistryError(f"{folder} is not inside the model store {store}.")
    manifest = EnsembleManifest.load(folder)
    missing = [m.file for m in manifest.members if not (folder / m.file).exists()]
    if missing:
        raise RegistryError(f"The ensemble {manifest.version} lacks weight files: {', '.join(missing)}.")
    raw = json.loads((folder / "manifest.json").read_text())
    with transaction.atomic():
        ensemble, _ = Ensemble.objects.update_or_create(
            version=manifest.version,
            defaults={"folder": str(folder.relative_to(store)), "manifest": raw, "metrics": manifest.metrics},
        )
        ensemble.members.all().delete()
        ModelVersion.objects.bulk_create([
            ModelVersion(ensemble=ensemble, name=m.name, architecture=m.architecture, flavour=m.flavour, kind=m.kind,
                         weights=m.file, metrics=m.metrics)
            for m in manifest.members
        ])
    return ensemble


def ensemble_promote(*, ensemble: Ensemble) -> Ensemble:
    with transaction.atomic():
        current = Ensemble.objects.select_for_update().filter(status=Ensemble.Status.ACTIVE).first()
        if current and current.pk == ensemble.pk:
            return ensemble
        if current:
            current.status = Ensemble.Status.RETIRED
            current.save(update_fields=["status"])
            current.members.update(status=ModelVersion.Status.RETIRED)
        ensemble.status = Ensemble.Status.ACTIVE
        ensemble.previous = current
        ensemble.promoted_at = timezone.now()
        ensemble.save(update_fields=["status", "previous", "promoted_at"])
        ensemble.members.update(status=ModelVersion.Status.ACTIVE)
        # Written last, inside the transaction: if this fails the database change rolls back too.
        _write_active_pointer(ensemble)
    return ensemble


def ensemble_rollback() -> Ensemble:
    """Make the previously active ensemble active again."""
    current = Ensemble.objects.filter(status=Ensemble.Status.ACTIVE).first()
    if current is None or current.previous is None:
        raise RegistryError("There is no previous ensemble to roll back to.")
    previous = current.previous
    promoted = ensemble_promote(ensemble=previous)
    promoted.previous = None  # rolling back again should not bounce between the two
    promoted.save(update_fields=["previous"])
    return promoted
