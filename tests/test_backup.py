"""Backups (``scripts/backup.sh`` → ``manage.py backup``) and restores (``scripts/restore.sh``), on SQLite and
PostgreSQL: a round trip through a wiped site, damaged backups refused, and the point in time of the set.

The round trips run the scripts in subprocesses against a site of their own (a temporary ``VAR_DIR`` with a
SQLite file, or a scratch PostgreSQL database created and dropped here), with only ``DATABASE_URL`` and
``VAR_DIR`` set, so the defaults the scripts derive from the settings are what is tested.
"""
from __future__ import annotations

import hashlib
import io
import json
import os
import subprocess
import sys
import tarfile
import threading
import uuid
from collections.abc import Iterator
from pathlib import Path
from typing import Any

import dj_database_url
import psycopg
import pytest

REPO_ROOT = Path(__file__).resolve().parent.parent
ON_POSTGRES = os.environ.get("DATABASE_URL", "").startswith("postgres")
# What the round trip compares row by row (content digests); every other table by its row count.
COMPARED_TABLES = {"catalog_galaxy": "id", "labeling_measurement": "id", "labeling_consensus": "galaxy_id",
                   "auth_user": "id", "training_ensemble": "id", "training_datasetsnapshot": "id"}


# --- the site the round trip backs up ----------------------------------------------------------------------

def seed() -> None:
    """Run inside the site under test (a subprocess): a galaxy with a vote and its consensus, an active and
    a candidate ensemble with their folders, a dataset snapshot, a build still writing (no row), media."""
    from django.conf import settings
    from django.core.files.base import ContentFile
    from django.core.files.storage import default_storage

    from catalog.tests.factories import GalaxyFactory
    from labeling.consensus import consensus_recompute
    from labeling.tests.factories import ConsensusFactory, MeasurementFactory, UserFactory
    from training.models import DatasetSnapshot, Ensemble

    for value in (61.0, 74.0):
        galaxy = GalaxyFactory()
        consensus = ConsensusFactory(galaxy=galaxy)
        for k in range(2):
            MeasurementFactory(user=UserFactory(), galaxy=galaxy, inclination_raw=value + k, inclination=int(value + k))
        consensus_recompute(consensus=consensus, retire=True)
    store = Path(settings.MODEL_STORE)
    for version, status in (("v1", "active"), ("v2", "candidate")):
        folder = store / "ensembles" / version
        (folder / "plots").mkdir(parents=True)
        (folder / "model4.keras").write_bytes(os.urandom(4096))
        (folder / "plots" / "history.png").write_bytes(os.urandom(512))
        (folder / "manifest.json").write_text(json.dumps({"version": version, "members": [{"name": "model4"}]}))
        Ensemble.objects.create(version=version, folder=f"ensembles/{version}", status=status,
                                manifest={"version": version, "members": [{"name": "model4"}]})
    (store / "datasets" / "snap-1").mkdir(parents=True)
    (store / "datasets" / "snap-1" / "index.json").write_text('{"rows": 2}')
    DatasetSnapshot.objects.create(name="snap-1", content_hash="0" * 64, path="datasets/snap-1")
    (store / "ensembles" / "quick-9-building").mkdir(parents=True)  # a build still writing: no row yet
    (store / "ensembles" / "quick-9-building" / "checkpoint.keras").write_bytes(b"half")
    (store / "active.json").write_text('{"version": "v1", "folder": "ensembles/v1", "models": ["model4"]}')
    default_storage.save("galaxies/ngc-0001-colour.png", ContentFile(os.urandom(2048)))
    default_storage.save("exports/consensus.csv", ContentFile(b"galaxy,inc\n1,61\n"))
    (Path(settings.MEDIA_ROOT) / "uploads").mkdir(parents=True, exist_ok=True)
    (Path(settings.MEDIA_ROOT) / "uploads" / ".partial-abc").write_bytes(b"an upload being written")


def digest() -> None:
    """Print (inside the site under test) each table's row count and the compared tables' content digests."""
    from django.apps import apps
    from django.db import connection

    out: dict[str, Any] = {}
    with connection.cursor() as cursor:
        existing = set(connection.introspection.table_names(cursor))
        for table in sorted({m._meta.db_table for m in apps.get_models(include_auto_created=True)} & existing):
            cursor.execute(f"SELECT COUNT(*) FROM {connection.ops.quote_name(table)}")  # noqa: S608
            out[table] = [cursor.fetchone()[0]]
            if table in COMPARED_TABLES:
                cursor.execute(f"SELECT * FROM {table} ORDER BY {COMPARED_TABLES[table]}")  # noqa: S608
                out[table].append(hashlib.sha256(repr(cursor.fetchall()).encode()).hexdigest())
    print(json.dumps(out))


def _env(site: dict[str, str]) -> dict[str, str]:
    env = {k: v for k, v in os.environ.items()
           if k not in ("MEDIA_ROOT", "MODEL_STORE", "SECRET_KEY_FILE", "DJANGO_SETTINGS_MODULE")}
    return {**env, "TF_CPP_MIN_LOG_LEVEL": "2", "DEBUG": "true", **site}


def _run(args: list[str], site: dict[str, str], ok: bool = True) -> subprocess.CompletedProcess[str]:
    done = subprocess.run(args, cwd=REPO_ROOT, env=_env(site), capture_output=True, text=True, timeout=300)
    if ok:
        assert done.returncode == 0, f"{' '.join(args)}\n{done.stdout[-3000:]}\n{done.stderr[-3000:]}"
    return done


def _in_site(function: str, site: dict[str, str]) -> str:
    code = ("import django, os; os.environ.setdefault('DJANGO_SETTINGS_MODULE', 'inclinet_site.settings'); "
            f"django.setup(); from tests.test_backup import {function}; {function}()")
    return _run([sys.executable, "-c", code], site).stdout


def _tree(folder: Path) -> dict[str, str]:
    return {p.relative_to(folder).as_posix(): hashlib.sha256(p.read_bytes()).hexdigest()
            for p in sorted(folder.rglob("*")) if p.is_file()}


def _admin(url: str) -> psycopg.Connection:
    db = dj_database_url.parse(url)
    return psycopg.connect(host=db["HOST"] or None, port=db["PORT"] or None, user=db["USER"] or None,
                           password=db["PASSWORD"] or None, dbname="postgres", autocommit=True)


@pytest.fixture(params=["sqlite", "postgresql"])
def site(request: pytest.FixtureRequest, tmp_path: Path) -> Iterator[dict[str, str]]:
    """A migrated, empty site of its own; yields its environment (plus WIPE: how to empty its database)."""
    var = tmp_path / "var"
    var.mkdir()
    if request.param == "sqlite":
        env = {"VAR_DIR": str(var), "DATABASE_URL": f"sqlite:///{var / 'inclinet.sqlite3'}"}
        _run([sys.executable, "manage.py", "migrate", "--noinput", "-v0", "--skip-checks"], env)
        yield env
        return
    if not ON_POSTGRES:
        pytest.skip("the PostgreSQL round trip needs DATABASE_URL=postgres://… (make test sets it)")
    name = f"inclinet_backup_{uuid.uuid4().hex[:10]}"
    url = os.environ["DATABASE_URL"].rsplit("/", 1)[0] + "/" + name
    with _admin(url) as admin:
        admin.execute(f'CREATE DATABASE "{name}"')
    try:
        env = {"VAR_DIR": str(var), "DATABASE_URL": url, "SECRET_KEY_FILE": str(var / "secret_key")}
        _run([sys.executable, "manage.py", "migrate", "--noinput", "-v0", "--skip-checks"], env)
        yield env
    finally:
        with _admin(url) as admin:
            admin.execute(f'DROP DATABASE IF EXISTS "{name}" WITH (FORCE)')


def _wipe(site: dict[str, str]) -> None:
    """Everything the backup covers is gone: the database (a new empty one), the model store, the media."""
    var = Path(site["VAR_DIR"])
    if site["DATABASE_URL"].startswith("sqlite"):
        Path(site["DATABASE_URL"].removeprefix("sqlite:///")).unlink()
    else:
        name = site["DATABASE_URL"].rsplit("/", 1)[1]
        with _admin(site["DATABASE_URL"]) as admin:
            admin.execute(f'DROP DATABASE "{name}" WITH (FORCE)')
            admin.execute(f'CREATE DATABASE "{name}"')
    for folder in ("model_store", "media"):
        subprocess.run(["rm", "-rf", str(var / folder)], check=True)


# --- round trip --------------------------------------------------------------------------------------------

def test_round_trip_through_a_wiped_site(site: dict[str, str], tmp_path: Path) -> None:
    """Back up, wipe database + model store + media, restore into the default paths: the same rows and files."""
    var = Path(site["VAR_DIR"])
    _in_site("seed", site)
    rows_before = json.loads(_in_site("digest", site))
    assert rows_before["labeling_measurement"][0] == 4 and rows_before["training_ensemble"][0] == 2
    store_before, media_before = _tree(var / "model_store"), _tree(var / "media")

    done = _run(["bash", "scripts/backup.sh"], site)  # the default folder: VAR_DIR/backups/<UTC time>
    (backup,) = (var / "backups").iterdir()
    assert str(backup) in done.stdout and not backup.name.endswith(".partial")
    assert backup.stat().st_mode & 0o777 == 0o700  # the whole database, password hashes included
    vendor_file = "db.sqlite3" if site["DATABASE_URL"].startswith("sqlite") else "db.dump"
    assert {p.name for p in backup.iterdir()} == {vendor_file, "model_store.tar.gz", "media.tar.gz",
                                                   "manifest.json", "SHA256SUMS"}
    check = subprocess.run(["sha256sum", "--check", "--quiet", "SHA256SUMS"], cwd=backup, capture_output=True)
    assert check.returncode == 0, check.stdout
    manifest = json.loads((backup / "manifest.json").read_text())
    assert manifest["database"]["tables"]["labeling_measurement"] == 4
    assert manifest["model_store"]["active"] == "v1"

    _wipe(site)
    assert not (var / "model_store").exists() and not (var / "media").exists()
    (var / "media").mkdir()
    (var / "media" / "written-after-the-wipe.txt").write_text("kept aside, not deleted")
    restored = _run(["bash", "scripts/restore.sh", str(backup)], site)
    assert "counts checked" in restored.stdout
    (kept,) = var.glob("media.old-*")
    assert _tree(kept) == {"written-after-the-wipe.txt": hashlib.sha256(b"kept aside, not deleted").hexdigest()}

    assert json.loads(_in_site("digest", site)) == rows_before
    assert _tree(var / "media") == {k: v for k, v in media_before.items() if ".partial-" not in k}
    # The folders the database names, and the active pointer; not the build that had no row yet.
    expected_store = {k: v for k, v in store_before.items() if not k.startswith("ensembles/quick-9-building/")}
    assert _tree(var / "model_store") == expected_store
    listed = {**manifest["model_store"]["files"], **manifest["media"]["files"]}
    assert {k: v["sha256"] for k, v in manifest["media"]["files"].items()} == _tree(var / "media")
    assert len(listed) == len(expected_store) + len(_tree(var / "media"))
    _run([sys.executable, "manage.py", "consensus_rebuild", "--check", "--skip-checks"], site)


# --- damaged backups ---------------------------------------------------------------------------------------

def _sqlite_site(tmp_path: Path) -> dict[str, str]:
    var = tmp_path / "var"
    var.mkdir()
    env = {"VAR_DIR": str(var), "DATABASE_URL": f"sqlite:///{var / 'inclinet.sqlite3'}"}
    _run([sys.executable, "manage.py", "migrate", "--noinput", "-v0", "--skip-checks"], env)
    _in_site("seed", env)
    return env


def _rewrite_sums(backup: Path) -> None:
    names = sorted(p.name for p in backup.iterdir() if p.name != "SHA256SUMS")
    (backup / "SHA256SUMS").write_text(
        "".join(f"{hashlib.sha256((backup / n).read_bytes()).hexdigest()}  {n}\n" for n in names))


def test_restore_refuses_damaged_backups_before_touching_anything(tmp_path: Path) -> None:
    site = _sqlite_site(tmp_path)
    var = Path(site["VAR_DIR"])
    backup = tmp_path / "backup"
    _run(["bash", "scripts/backup.sh", str(backup)], site)
    before = {"store": _tree(var / "model_store"), "media": _tree(var / "media"),
              "db": hashlib.sha256((var / "inclinet.sqlite3").read_bytes()).hexdigest()}

    def unchanged() -> bool:
        return before == {"store": _tree(var / "model_store"), "media": _tree(var / "media"),
                          "db": hashlib.sha256((var / "inclinet.sqlite3").read_bytes()).hexdigest()}

    # 1. An archive changed after the backup: its SHA256SUMS line no longer matches.
    damaged = tmp_path / "damaged"
    subprocess.run(["cp", "-a", str(backup), str(damaged)], check=True)
    data = bytearray((damaged / "media.tar.gz").read_bytes())
    data[len(data) // 2] ^= 0xFF
    (damaged / "media.tar.gz").write_bytes(bytes(data))
    done = _run(["bash", "scripts/restore.sh", str(damaged)], site, ok=False)
    assert done.returncode != 0 and "media.tar.gz does not match its checksum" in done.stderr, done.stderr
    assert unchanged()

    # 2. A file swapped inside an archive and SHA256SUMS made to agree: the manifest's per-file checksum catches it.
    forged = tmp_path / "forged"
    subprocess.run(["cp", "-a", str(backup), str(forged)], check=True)
    with tarfile.open(backup / "model_store.tar.gz") as source, \
            tarfile.open(forged / "model_store.tar.gz", "w:gz") as out:
        for member in source:
            content = source.extractfile(member).read() if member.isfile() else None  # type: ignore[union-attr]
            if member.name == "ensembles/v1/model4.keras":
                content = b"x" * len(content)
            out.addfile(member, io.BytesIO(content) if content is not None else None)
    _rewrite_sums(forged)
    done = _run(["bash", "scripts/restore.sh", str(forged)], site, ok=False)
    assert done.returncode != 0 and "ensembles/v1/model4.keras" in done.stderr, done.stderr
    assert unchanged() and not list(var.glob(".*restore-*"))  # staging folders cleaned up

    # 3. An unfinished backup (no SHA256SUMS) and a backup of the other database kind are refused too.
    (damaged / "SHA256SUMS").unlink()
    assert "unfinished" in _run(["bash", "scripts/restore.sh", str(damaged)], site, ok=False).stderr
    if ON_POSTGRES:
        other = {**site, "DATABASE_URL": os.environ["DATABASE_URL"]}
        done = _run(["bash", "scripts/restore.sh", str(backup)], other, ok=False)
        assert done.returncode != 0 and "holds a sqlite database" in done.stderr, done.stderr
    assert unchanged()

    # 4. A manifest whose row counts disagree with the database it came with: restored, then reported.
    miscounted = tmp_path / "miscounted"
    subprocess.run(["cp", "-a", str(backup), str(miscounted)], check=True)
    manifest = json.loads((miscounted / "manifest.json").read_text())
    manifest["database"]["tables"]["labeling_measurement"] += 1
    (miscounted / "manifest.json").write_text(json.dumps(manifest))
    _rewrite_sums(miscounted)
    done = _run(["bash", "scripts/restore.sh", str(miscounted)], site, ok=False)
    assert done.returncode != 0 and "row counts differ" in done.stderr and "labeling_measurement" in done.stderr


def test_a_failed_backup_leaves_no_folder(tmp_path: Path) -> None:
    var = tmp_path / "var"
    var.mkdir()
    site = {"VAR_DIR": str(var), "DATABASE_URL": f"sqlite:///{var / 'never-created.sqlite3'}"}
    done = _run(["bash", "scripts/backup.sh", str(tmp_path / "backup")], site, ok=False)
    assert done.returncode != 0 and "does not exist" in done.stderr, done.stderr
    assert not (tmp_path / "backup").exists() and not (tmp_path / "backup.partial").exists()


# --- one point in time -------------------------------------------------------------------------------------

@pytest.mark.django_db(transaction=True)
def test_an_ensemble_registered_during_the_backup_is_not_in_it(settings: Any, tmp_path: Path,
                                                               monkeypatch: pytest.MonkeyPatch) -> None:
    """The database snapshot and the model store agree. Another connection registers an ensemble once the
    backup's snapshot is fixed (PostgreSQL: exported, before pg_dump runs; SQLite: the copy is made, before
    its rows are read); the ensemble is neither in the dump, nor in the manifest, nor copied."""
    from django.db import connection

    from inclinet_site import backup as backup_module
    from training.models import Ensemble

    store = Path(settings.MODEL_STORE)
    for version in ("v1", "late"):
        (store / "ensembles" / version).mkdir(parents=True)
        (store / "ensembles" / version / "model4.keras").write_bytes(os.urandom(1024))
    Ensemble.objects.create(version="v1", folder="ensembles/v1", status="active",
                            manifest={"members": [{"name": "model4"}]})

    def register_late() -> None:
        def register() -> None:
            try:
                Ensemble.objects.create(version="late", folder="ensembles/late", manifest={})
            finally:
                connection.close()
        thread = threading.Thread(target=register)
        thread.start()
        thread.join(timeout=30)
        assert not thread.is_alive()

    hooked = "_run" if connection.vendor == "postgresql" else "_read_snapshot"
    real = getattr(backup_module, hooked)

    def register_late_first(*args: Any) -> Any:
        register_late()
        return real(*args)

    monkeypatch.setattr(backup_module, hooked, register_late_first)
    folder = backup_module.backup_create(out_dir=tmp_path / "backup", media=False)
    assert Ensemble.objects.filter(version="late").exists()  # committed while the backup ran
    manifest = json.loads((folder / "manifest.json").read_text())
    assert [e["version"] for e in manifest["model_store"]["ensembles"]] == ["v1"]
    assert manifest["database"]["tables"]["training_ensemble"] == 1
    with tarfile.open(folder / "model_store.tar.gz") as archive:
        assert sorted(archive.getnames()) == ["active.json", "ensembles/v1/model4.keras"]
    assert manifest["media"] is None
    if connection.vendor == "postgresql":
        rows = subprocess.run(["pg_restore", "--data-only", "--table=training_ensemble", "--file=-",
                               str(folder / "db.dump")], capture_output=True, text=True, check=True).stdout
        assert "\tv1\t" in rows and "late" not in rows
    else:
        import sqlite3

        with sqlite3.connect(folder / "db.sqlite3") as copy:
            assert [r[0] for r in copy.execute("SELECT version FROM training_ensemble")] == ["v1"]
