"""Data safety: append-only measurements, consensus rebuilt from them, and migrations forwards and backwards.
Backups and restores are tested in ``tests/test_backup.py``.

The migration test works on a scratch database of its own (created and dropped here), so the test database
and other people's databases are never touched.
"""
from __future__ import annotations

import os
import subprocess
import sys
import uuid
from collections.abc import Iterator
from pathlib import Path

import psycopg
import pytest
from django.core.management import call_command
from django.db import connection

from catalog.tests.factories import GalaxyFactory
from labeling.models import AppendOnlyError, Consensus, Measurement
from labeling.consensus import consensus_rebuild, consensus_recompute
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
