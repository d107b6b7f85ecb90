"""Data safety: append-only measurements, consensus rebuilt from them, backup/restore round trip, and
migrations forwards and backwards.

The backup and migration tests work on scratch databases of their own (created and dropped here), so
the test database and other people's databases are never touched.
"""
from __future__ import annotations

import hashlib
import os
import subprocess
import sys
import uuid
from collections.abc import Iterator
from pathlib import Path
from typing import Any

import psycopg
import pytest
from django.core.management import call_command
from django.db import connection

from catalog.tests.factories import GalaxyFactory
from labeling.models import AppendOnlyError, Consensus, Measurement
from labeling.services import consensus_rebuild, consensus_recompute
from labeling.tests.factories import ConsensusFactory, MeasurementFactory, UserFactory

REPO_ROOT = Path(__file__).resolve().parent.parent
pytestmark = pytest.mark.skipif(not os.environ.get("DATABASE_URL", "").startswith("postgres"),
                                reason="needs PostgreSQL (DATABASE_URL)")


# --- append-only measurements ---------------------------------------------------------------------------

@pytest.mark.django_db
def test_measurements_cannot_be_changed_or_deleted() -> None:
    measurement = MeasurementFactory(note="first")
    measurement.note = "rewritten"
    with pytest.raises(AppendOnlyError):
        measurement.save()
    with pytest.raises(AppendOnlyError):
        measurement.delete()
    with pytest.raises(AppendOnlyError):
        Measurement.objects.filter(pk=measurement.pk).update(inclination=10)
    with pytest.raises(AppendOnlyError):
        Measurement.objects.filter(pk=measurement.pk).delete()
    stored = Measurement.objects.get(pk=measurement.pk)
    assert (stored.note, stored.inclination) == ("first", 60)


@pytest.mark.django_db
def test_admin_offers_no_change_or_delete_of_measurements() -> None:
    from django.test import Client

    measurement = MeasurementFactory(note="audit")
    client = Client()
    client.force_login(UserFactory(is_staff=True, is_superuser=True))
    assert client.get(f"/admin/labeling/measurement/{measurement.pk}/delete/").status_code == 403
    posted = client.post(f"/admin/labeling/measurement/{measurement.pk}/change/", {"note": "edited"})
    assert posted.status_code == 403
    assert Measurement.objects.get(pk=measurement.pk).note == "audit"


@pytest.mark.django_db
def test_deleting_a_volunteer_or_galaxy_with_measurements_is_refused() -> None:
    from django.db.models import ProtectedError

    measurement = MeasurementFactory()
    with pytest.raises(ProtectedError):
        measurement.user.delete()
    with pytest.raises(ProtectedError):
        measurement.galaxy.delete()


# --- consensus rebuilt from measurements ----------------------------------------------------------------

def _crowd(n_galaxies: int = 6) -> list[Consensus]:
    """Galaxies with votes, their consensus computed the way a submit computes it."""
    volunteers = [UserFactory() for _ in range(5)]
    rows = []
    for g in range(n_galaxies):
        galaxy = GalaxyFactory()
        consensus = ConsensusFactory(galaxy=galaxy)
        for k, user in enumerate(volunteers[: 3 + g % 3]):
            kind = (g + k) % 5
            MeasurementFactory(user=user, galaxy=galaxy, inclination_raw=50.0 + 3 * g + k * 0.7,
                               inclination=int(50 + 3 * g + k), face_on=kind == 4 and g % 2 == 0,
                               rejected=kind == 3 and g % 3 == 0)
        rows.append(consensus_recompute(consensus=consensus, retire=True))
    return rows


def _values(row: Consensus) -> tuple:
    return (row.n_votes, row.n_face_on, row.n_reject, row.inc, row.inc_e, row.status, row.retired)


@pytest.mark.django_db
def test_consensus_rebuild_matches_the_stored_consensus_and_repairs_damage() -> None:
    stored = {row.galaxy_id: _values(row) for row in _crowd()}
    assert any(v[3] is not None for v in stored.values()) and any(v[0] >= 3 for v in stored.values())
    report = consensus_rebuild(apply=False)
    assert report.checked == len(stored) and report.differing == []
    # Damage two rows (as a bad restore or a bug might), then check and rebuild.
    first, second = sorted(stored)[:2]
    Consensus.objects.filter(pk=first).update(inc=1.0, status="J")
    Consensus.objects.filter(pk=second).update(n_votes=99)
    assert sorted(consensus_rebuild(apply=False).differing) == [first, second]
    with pytest.raises(Exception, match="do not match"):
        call_command("consensus_rebuild", "--check")
    call_command("consensus_rebuild")
    assert {row.galaxy_id: _values(row) for row in Consensus.objects.all()} == stored
    call_command("consensus_rebuild", "--check")  # clean again: no exception


# --- scratch databases ----------------------------------------------------------------------------------

def _admin() -> psycopg.Connection:
    params = connection.get_connection_params()
    keep = {k: v for k, v in params.items() if k in ("host", "port", "user", "password")}
    return psycopg.connect(**keep, dbname="postgres", autocommit=True)


def _url(name: str) -> str:
    return os.environ["DATABASE_URL"].rsplit("/", 1)[0] + "/" + name


@pytest.fixture
def scratch_db() -> Iterator[str]:
    name = f"inclinet_scratch_{uuid.uuid4().hex[:10]}"
    with _admin() as admin:
        admin.execute(f'CREATE DATABASE "{name}"')
    try:
        yield name
    finally:
        with _admin() as admin:
            admin.execute(f'DROP DATABASE IF EXISTS "{name}" WITH (FORCE)')


def _run(args: list[str], **env: str) -> subprocess.CompletedProcess[str]:
    done = subprocess.run(args, cwd=REPO_ROOT, env={**os.environ, "TF_CPP_MIN_LOG_LEVEL": "2", **env},
                          capture_output=True, text=True, timeout=300)
    assert done.returncode == 0, f"{' '.join(args)}\n{done.stdout[-3000:]}\n{done.stderr[-3000:]}"
    return done


def _table_digest(dbname: str, table: str, order: str) -> tuple[int, str]:
    params = connection.get_connection_params()
    keep = {k: v for k, v in params.items() if k in ("host", "port", "user", "password")}
    with psycopg.connect(**keep, dbname=dbname) as conn:
        rows = conn.execute(f"SELECT * FROM {table} ORDER BY {order}").fetchall()  # noqa: S608 - fixed names
    return len(rows), hashlib.sha256(repr(rows).encode()).hexdigest()


def _tree_digest(folder: Path) -> dict[str, str]:
    return {str(p.relative_to(folder)): hashlib.sha256(p.read_bytes()).hexdigest()
            for p in sorted(folder.rglob("*")) if p.is_file()}


@pytest.mark.django_db(transaction=True)
def test_backup_and_restore_round_trip(scratch_db: str, tmp_path: Path, settings: Any) -> None:
    """pg_dump -Fc + tar of the model store, restored into a scratch database and folder: identical."""
    _crowd(4)
    store = Path(settings.MODEL_STORE)
    (store / "ensembles" / "v1").mkdir(parents=True)
    (store / "ensembles" / "v1" / "model4.keras").write_bytes(os.urandom(4096))
    (store / "active.json").write_text('{"version": "v1", "folder": "ensembles/v1"}')
    source_db = connection.settings_dict["NAME"]
    backup = tmp_path / "backup"
    _run(["bash", "scripts/backup.sh", str(backup)], DATABASE_URL=_url(source_db), MODEL_STORE=str(store))
    assert {p.name for p in backup.iterdir()} == {"db.dump", "model_store.tar.gz", "SHA256SUMS"}
    restored_store = tmp_path / "restored" / "model_store"
    restored_store.parent.mkdir()
    _run(["bash", "scripts/restore.sh", str(backup)], DATABASE_URL=_url(scratch_db), MODEL_STORE=str(restored_store))
    for table, order in [("labeling_measurement", "id"), ("labeling_consensus", "galaxy_id"),
                         ("catalog_galaxy", "id"), ("auth_user", "id")]:
        original = _table_digest(source_db, table, order)
        assert original[0] > 0 or table == "auth_user"
        assert _table_digest(scratch_db, table, order) == original, table
    assert _tree_digest(restored_store) == _tree_digest(store)
    # The restored copy is consistent: its consensus matches its measurements.
    _run([sys.executable, "manage.py", "consensus_rebuild", "--check"], DATABASE_URL=_url(scratch_db))


def test_restore_refuses_a_damaged_backup(tmp_path: Path) -> None:
    backup = tmp_path / "backup"
    backup.mkdir()
    (backup / "db.dump").write_bytes(b"not really")
    (backup / "model_store.tar.gz").write_bytes(b"")
    (backup / "SHA256SUMS").write_text(f"{'0' * 64}  db.dump\n")
    done = subprocess.run(["bash", "scripts/restore.sh", str(backup)], cwd=REPO_ROOT, capture_output=True, text=True,
                          env={**os.environ, "DATABASE_URL": _url("nonexistent_never_created"),
                               "MODEL_STORE": str(tmp_path / "store")}, timeout=60)
    assert done.returncode != 0 and not (tmp_path / "store").exists()


# --- migrations -----------------------------------------------------------------------------------------

def test_migrations_forwards_backwards_and_forwards_again(scratch_db: str) -> None:
    """On a scratch database: every app's migrations apply, unapply to zero, and apply again; and the
    models match the migrations (no missing makemigrations)."""
    env = {"DATABASE_URL": _url(scratch_db)}
    manage = [sys.executable, "manage.py"]
    _run([*manage, "migrate", "--noinput", "-v0"], **env)
    # Unapplying catalog takes every app that depends on it (labeling, training, predictions) down first.
    _run([*manage, "migrate", "catalog", "zero", "--noinput", "-v0"], **env)
    shown = _run([*manage, "showmigrations", "catalog", "labeling"], **env).stdout
    assert "[X]" not in shown, shown
    _run([*manage, "migrate", "--noinput", "-v0"], **env)
    assert "[ ]" not in _run([*manage, "showmigrations"], **env).stdout
    _run([*manage, "makemigrations", "--check", "--dry-run"], **env)
