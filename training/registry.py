"""The model registry: register ensemble folders, promote, roll back and reconcile the active pointer.

Promotion is atomic: the database row flips inside one transaction and, once that has committed, the
active pointer follows (``training.store.active_pointer_write``), which every prediction process reads on
each request. A pointer that disagrees with the database anyway (a crash between the two) is put right at
start-up by ``ensemble_pointer_reconcile``: the database's active ensemble wins. Every promotion through
``ensemble_activate`` re-scores the catalogue, so labeling follows the new model.
"""
from __future__ import annotations

import json
import logging
from collections.abc import Callable
from pathlib import Path

from django.db import transaction
from django.utils import timezone

from core.errors import Conflict
from training.ml.ensemble import EnsembleManifest

from .dispatch import catalogue_rescore_on_commit
from .models import Ensemble, ModelVersion
from .store import PointerUnreadable, active_pointer_read, active_pointer_write, ensemble_pointer_body, store_root

logger = logging.getLogger(__name__)


class RegistryError(Conflict, RuntimeError):
    """A registry operation that cannot proceed; the message says why."""


def _after_commit(func: Callable[[], None]) -> None:
    """``func`` once the enclosing transaction commits, at once when there is none. A test case's wrapping
    transaction (pytest-django's ``db``) never commits and does not count, as for Django's durable blocks."""
    connection = transaction.get_connection()
    if connection.in_atomic_block and not all(getattr(block, "_from_testcase", False)
                                              for block in connection.atomic_blocks):
        transaction.on_commit(func)
    else:
        func()


def ensemble_register(*, folder: Path) -> Ensemble:
    """Register an ensemble folder (``manifest.json`` plus weights) under MODEL_STORE as a candidate."""
    store = store_root().resolve()
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
    """Make ``ensemble`` the active one (atomically); the old one retires. ``active.json`` follows once the
    change has committed: a transaction that rolls back leaves it as it was. See ``ensemble_activate``."""
    with transaction.atomic():
        current = Ensemble.objects.select_for_update().filter(status=Ensemble.Status.ACTIVE).first()
        if current and current.pk == ensemble.pk:
            _after_commit(lambda: active_pointer_write(ensemble))  # put right a pointer that lags behind
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
    # Only a committed promotion moves the pointer that every prediction process follows.
    _after_commit(lambda: active_pointer_write(ensemble))
    return ensemble


def ensemble_pointer_reconcile() -> str | None:
    """Make ``active.json`` name the database's active ensemble (or remove it when none is active); run at
    start-up. Returns what was put right, or None when the two agreed."""
    active = Ensemble.objects.filter(status=Ensemble.Status.ACTIVE).first()
    try:
        current = active_pointer_read()
    except PointerUnreadable:
        current = {"version": "(unreadable)"}
    if active is None:
        if current is None:
            return None
        active_pointer_write(None)
        fixed = f"active.json named {current.get('version')!r} but no ensemble is active in the database: removed"
    else:
        wanted = ensemble_pointer_body(active)
        if current is not None and all(current.get(key) == wanted[key] for key in ("version", "folder")):
            return None
        active_pointer_write(active)
        before = "was missing" if current is None else f"named {current.get('version')!r}"
        fixed = f"active.json {before}; the database's active ensemble is {active.version}: rewritten"
    logger.warning("model pointer reconciled: %s", fixed)
    return fixed


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


def ensemble_activate(*, ensemble: Ensemble) -> Ensemble:
    """Promote ``ensemble`` and, once committed, queue ``predict_catalogue`` so labeling follows the new model.
    (No transaction of its own: the promotion commits, or joins the caller's transaction, and the pointer and
    the re-scoring follow that commit.)"""
    promoted = ensemble_promote(ensemble=ensemble)
    catalogue_rescore_on_commit()
    return promoted


def ensemble_rollback_and_rescore() -> Ensemble:
    """Roll back to the previous ensemble and re-score the catalogue with it."""
    with transaction.atomic():
        restored = ensemble_rollback()
        catalogue_rescore_on_commit()
    return restored
