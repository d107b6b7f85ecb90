"""Issue 16, finding 6: ``active.json`` moves only after the promotion commits, and a pointer that disagrees
with the database is put right at start-up (the database's active ensemble wins)."""
from __future__ import annotations

import json
from io import StringIO
from pathlib import Path

import pytest
from django.core.management import call_command
from django.db import transaction

from tests.ensembles import write_tiny_ensemble
from training.models import Ensemble
from training.registry import ensemble_activate, ensemble_promote, ensemble_register

REPO_ROOT = Path(__file__).resolve().parent.parent


@pytest.fixture
def two_ensembles(settings):  # noqa: ANN001, ANN201
    store = settings.MODEL_STORE
    write_tiny_ensemble(store / "ensembles" / "p1", version="p1", families=1, flavours=1)
    write_tiny_ensemble(store / "ensembles" / "p2", version="p2", families=1, flavours=1)
    return ensemble_register(folder=store / "ensembles" / "p1"), ensemble_register(folder=store / "ensembles" / "p2")


def _pointer(settings) -> dict | None:  # noqa: ANN001
    path = settings.MODEL_STORE / "active.json"
    return json.loads(path.read_text()) if path.exists() else None


@pytest.mark.django_db(transaction=True)
def test_a_promotion_that_does_not_commit_leaves_active_json_untouched(two_ensembles, settings) -> None:
    p1, p2 = two_ensembles
    ensemble_promote(ensemble=p1)
    assert _pointer(settings)["version"] == "p1"
    before = (settings.MODEL_STORE / "active.json").read_bytes()

    with pytest.raises(RuntimeError, match="commit fails"), transaction.atomic():
        ensemble_activate(ensemble=p2)
        assert _pointer(settings)["version"] == "p1"  # not before the commit
        raise RuntimeError("commit fails")

    assert (settings.MODEL_STORE / "active.json").read_bytes() == before
    assert Ensemble.objects.get(status="active").version == "p1"


@pytest.mark.django_db(transaction=True)
def test_active_json_follows_the_commit(two_ensembles, settings) -> None:
    p1, p2 = two_ensembles
    ensemble_promote(ensemble=p1)
    with transaction.atomic():
        ensemble_activate(ensemble=p2)
        assert _pointer(settings)["version"] == "p1"
    assert _pointer(settings)["version"] == "p2"


@pytest.mark.django_db
@pytest.mark.parametrize("damage", ["other version", "missing", "unreadable"])
def test_a_mismatched_pointer_is_reconciled_at_start_up(damage, two_ensembles, settings) -> None:
    p1, p2 = two_ensembles
    ensemble_promote(ensemble=p1)
    pointer = settings.MODEL_STORE / "active.json"
    if damage == "other version":
        pointer.write_text(json.dumps({"version": "p2", "folder": p2.folder, "models": []}))
    elif damage == "missing":
        pointer.unlink()
    else:
        pointer.write_text("{not json")
    out = StringIO()
    call_command("reconcile_active_model", stdout=out)
    assert "p1" in out.getvalue() and "rewritten" in out.getvalue()
    assert _pointer(settings)["version"] == "p1" and _pointer(settings)["folder"] == p1.folder
    out = StringIO()
    call_command("reconcile_active_model", stdout=out)
    assert "agrees" in out.getvalue()


@pytest.mark.django_db
def test_a_pointer_without_an_active_ensemble_is_removed(two_ensembles, settings) -> None:
    p1, _ = two_ensembles
    settings.MODEL_STORE.mkdir(parents=True, exist_ok=True)
    (settings.MODEL_STORE / "active.json").write_text(json.dumps({"version": "p1", "folder": p1.folder}))
    out = StringIO()
    call_command("reconcile_active_model", stdout=out)
    assert "removed" in out.getvalue() and _pointer(settings) is None


def test_start_up_scripts_reconcile_the_pointer() -> None:
    for script in ("scripts/run.sh", "docker/init.sh"):
        assert "manage.py reconcile_active_model" in (REPO_ROOT / script).read_text(), script


def test_an_unreadable_pointer_is_no_active_ensemble_not_a_crash(settings) -> None:
    from predictions.inference import NoActiveEnsemble, active_pointer

    settings.MODEL_STORE.mkdir(parents=True, exist_ok=True)
    (settings.MODEL_STORE / "active.json").write_text("{half-writ")
    with pytest.raises(NoActiveEnsemble, match="reconcile_active_model"):
        active_pointer()
