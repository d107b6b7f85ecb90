"""Backups of a whole site as one consistent set, and their restore: the database, the model store, the media.

A backup is one folder, by default ``VAR_DIR/backups/<UTC stamp>`` (written as ``<name>.partial`` and renamed
when complete, so a folder without the suffix is whole):

- ``db.dump`` (PostgreSQL, ``pg_dump --format=custom``) or ``db.sqlite3`` (SQLite, through sqlite3's online
  backup API: a consistent copy of a live database, which a plain file copy is not);
- ``model_store.tar.gz``: the ensemble and dataset folders that the database snapshot's ``Ensemble`` and
  ``DatasetSnapshot`` rows name, and ``active.json`` written from the snapshot's active ensemble;
- ``media.tar.gz``: ``MEDIA_ROOT`` (images, uploads, model inputs, exports);
- ``manifest.json``: the database vendor, the row count of every table in the snapshot, and every archived
  file with its size and SHA-256;
- ``SHA256SUMS``: the files above, in ``sha256sum --check`` form.

Consistency: the database snapshot comes first, then only the folders its rows name are copied. An ensemble
folder is complete before its row is committed (``ensemble_register`` runs after the weights are written)
and registered folders are never rewritten, so every folder the snapshot names is whole when it is copied;
a build still writing has no row yet and is left out, as are training checkpoints (``runs/``) and the daily
consensus CSVs (``exports/``, made again from the database). On PostgreSQL the rows are read in the very
snapshot ``pg_dump`` dumps (``pg_export_snapshot``); on SQLite they are read from the copy itself. Holding
the one-running-build lock instead would stop builds for the length of the copy and still not cover
retraining jobs. Media is copied after the snapshot: a file added meanwhile is a harmless extra.
"""
from __future__ import annotations

import hashlib
import json
import os
import shutil
import sqlite3
import subprocess
import tarfile
from collections.abc import Iterable, Iterator
from dataclasses import dataclass, field
from datetime import datetime, timezone
from pathlib import Path, PurePosixPath
from typing import Any, BinaryIO

from django.apps import apps
from django.conf import settings
from django.db import connection, transaction

FORMAT = 1
MANIFEST = "manifest.json"
SUMS = "SHA256SUMS"
DB_FILES = {"postgresql": "db.dump", "sqlite": "db.sqlite3"}
STORE_ARCHIVE = "model_store.tar.gz"
MEDIA_ARCHIVE = "media.tar.gz"
ACTIVE_POINTER = "active.json"
# Written whole by the storage under a temporary name and linked into place: never part of a backup.
TEMPORARY_PREFIXES = (".partial-", ".active.")
CHUNK = 1024 * 1024


class BackupError(RuntimeError):
    """A backup or restore that cannot proceed; the message says why. Nothing was replaced."""


def _stamp() -> str:
    return datetime.now(timezone.utc).strftime("%Y%m%dT%H%M%SZ")


def sha256_file(path: Path) -> str:
    digest = hashlib.sha256()
    with path.open("rb") as handle:
        for chunk in iter(lambda: handle.read(CHUNK), b""):
            digest.update(chunk)
    return digest.hexdigest()


# --------------------------------------------------------------------------------------------------
# The database snapshot
# --------------------------------------------------------------------------------------------------


@dataclass
class Snapshot:
    """What the database snapshot holds, as far as the backup needs to know."""

    vendor: str
    file: str
    tables: dict[str, int]  # table -> rows
    ensembles: list[dict[str, Any]]  # version, folder, status, member names
    dataset_paths: list[str]


def _tables() -> list[str]:
    return sorted({m._meta.db_table for m in apps.get_models(include_auto_created=True) if m._meta.managed})


def _column(model_label: str, name: str) -> tuple[str, str]:
    model = apps.get_model(model_label)
    return model._meta.db_table, model._meta.get_field(name).column


def _read_snapshot(cursor: Any, existing: set[str], quote: Any) -> tuple[dict[str, int], list[dict], list[str]]:
    """Row counts, ensembles and dataset folders through ``cursor`` (a DB-API cursor inside the snapshot)."""
    tables = {}
    for table in _tables():
        if table in existing:
            cursor.execute(f"SELECT COUNT(*) FROM {quote(table)}")  # noqa: S608 - names from the models
            tables[table] = int(cursor.fetchone()[0])
    ensembles: list[dict] = []
    table, _ = _column("training.Ensemble", "version")
    if table in existing:
        columns = [_column("training.Ensemble", name)[1] for name in ("version", "folder", "status", "manifest")]
        cursor.execute(f"SELECT {', '.join(quote(c) for c in columns)} FROM {quote(table)}")  # noqa: S608
        for version, folder, status, manifest in cursor.fetchall():
            manifest = json.loads(manifest) if isinstance(manifest, str | bytes) else (manifest or {})
            ensembles.append({"version": version, "folder": folder, "status": status,
                              "models": [m["name"] for m in manifest.get("members", [])]})
    paths: list[str] = []
    table, column = _column("training.DatasetSnapshot", "path")
    if table in existing:
        cursor.execute(f"SELECT {quote(column)} FROM {quote(table)}")  # noqa: S608
        paths = [row[0] for row in cursor.fetchall() if row[0]]
    return tables, ensembles, paths


def _pg_env() -> dict[str, str]:
    """libpq's environment for the configured database (the password stays off the command line)."""
    db = connection.settings_dict
    env = {**os.environ, "PGDATABASE": db["NAME"]}
    for key, name in (("PGHOST", "HOST"), ("PGPORT", "PORT"), ("PGUSER", "USER"), ("PGPASSWORD", "PASSWORD")):
        if db.get(name):
            env[key] = str(db[name])
    if db.get("OPTIONS", {}).get("sslmode"):
        env["PGSSLMODE"] = db["OPTIONS"]["sslmode"]
    return env


def _run(args: list[str], env: dict[str, str]) -> None:
    try:
        done = subprocess.run(args, env=env, capture_output=True, text=True)
    except FileNotFoundError as exc:
        raise BackupError(f"{args[0]} is not installed (PostgreSQL's client tools are needed): {exc}") from exc
    if done.returncode != 0:
        raise BackupError(f"{args[0]} failed ({done.returncode}): {done.stderr.strip()[-2000:]}")


def _snapshot_postgresql(folder: Path) -> Snapshot:
    if connection.in_atomic_block:
        raise BackupError("A backup takes its own snapshot transaction; call it outside transaction.atomic().")
    target = folder / DB_FILES["postgresql"]
    with transaction.atomic(), connection.cursor() as cursor:
        # pg_dump dumps the snapshot this transaction exports, and the rows below are read in it too.
        cursor.execute("SET TRANSACTION ISOLATION LEVEL REPEATABLE READ, READ ONLY")
        cursor.execute("SELECT pg_export_snapshot()")
        snapshot_id = cursor.fetchone()[0]
        _run(["pg_dump", "--format=custom", "--no-owner", f"--snapshot={snapshot_id}",
              f"--file={target}"], _pg_env())
        existing = set(connection.introspection.table_names(cursor))
        tables, ensembles, paths = _read_snapshot(cursor, existing, connection.ops.quote_name)
    return Snapshot("postgresql", target.name, tables, ensembles, paths)


def _sqlite_copy(source: Path | str, target: Path) -> None:
    """sqlite3's online backup: a consistent copy while other connections keep writing."""
    src = sqlite3.connect(source, timeout=30)
    dst = sqlite3.connect(target)
    try:
        with dst:
            src.backup(dst)  # all pages in one step: one consistent snapshot
    finally:
        dst.close()
        src.close()


def _sqlite_existing(cursor: Any) -> set[str]:
    cursor.execute("SELECT name FROM sqlite_master WHERE type = 'table'")
    return {row[0] for row in cursor.fetchall()}


def _snapshot_sqlite(folder: Path) -> Snapshot:
    source = connection.settings_dict["NAME"]
    if not Path(source).is_file():
        raise BackupError(f"The SQLite database {source} does not exist.")
    target = folder / DB_FILES["sqlite"]
    _sqlite_copy(source, target)
    copy = sqlite3.connect(target)
    try:
        cursor = copy.cursor()
        tables, ensembles, paths = _read_snapshot(cursor, _sqlite_existing(cursor), connection.ops.quote_name)
    finally:
        copy.close()
    return Snapshot("sqlite", target.name, tables, ensembles, paths)


def _snapshot(folder: Path) -> Snapshot:
    if connection.vendor == "postgresql":
        return _snapshot_postgresql(folder)
    if connection.vendor == "sqlite":
        return _snapshot_sqlite(folder)
    raise BackupError(f"Backups support PostgreSQL and SQLite, not {connection.vendor}.")


# --------------------------------------------------------------------------------------------------
# Archives with a checksum per file
# --------------------------------------------------------------------------------------------------


class _HashingReader:
    """Hashes what tarfile reads, so each file is read once and its checksum is of the archived bytes."""

    def __init__(self, handle: BinaryIO) -> None:
        self.handle, self.digest = handle, hashlib.sha256()

    def read(self, size: int = -1) -> bytes:
        data = self.handle.read(size)
        self.digest.update(data)
        return data


def _safe_relative(name: str) -> PurePosixPath:
    path = PurePosixPath(name)
    if not name or path.is_absolute() or ".." in path.parts:
        raise BackupError(f"Refusing the path {name!r}: it would leave its folder.")
    return path


def _files_under(root: Path, relative: PurePosixPath, skip: Path | None = None) -> Iterator[tuple[Path, str]]:
    base = root / relative
    candidates = [base] if base.is_file() else sorted(p for p in base.rglob("*") if p.is_file())
    for path in candidates:
        if path.is_symlink() or path.name.startswith(TEMPORARY_PREFIXES):
            continue
        if skip is not None and (path == skip or skip in path.parents):
            continue
        yield path, path.relative_to(root).as_posix()


def _write_archive(target: Path, files: Iterable[tuple[Path, str]], extra: dict[str, bytes]) -> dict[str, dict]:
    """A tar.gz of ``files`` (path, name inside) and ``extra`` (name -> bytes); returns name -> size, sha256.
    A file that vanished since it was listed (an expired upload) is left out."""
    listed: dict[str, dict] = {}
    with tarfile.open(target, "w:gz", compresslevel=1) as archive:  # images and weights barely compress
        for path, name in files:
            try:
                handle = path.open("rb")
            except FileNotFoundError:
                continue
            with handle:
                info = archive.gettarinfo(fileobj=handle, arcname=name)
                reader = _HashingReader(handle)
                archive.addfile(info, reader)  # type: ignore[arg-type]
            listed[name] = {"size": info.size, "sha256": reader.digest.hexdigest()}
        for name, data in extra.items():
            info = tarfile.TarInfo(name)
            info.size, info.mtime, info.mode = len(data), int(datetime.now().timestamp()), 0o644
            archive.addfile(info, _BytesReader(data))  # type: ignore[arg-type]
            listed[name] = {"size": len(data), "sha256": hashlib.sha256(data).hexdigest()}
    return listed


class _BytesReader:
    def __init__(self, data: bytes) -> None:
        self.data, self.offset = data, 0

    def read(self, size: int = -1) -> bytes:
        end = len(self.data) if size < 0 else self.offset + size
        chunk, self.offset = self.data[self.offset:end], min(end, len(self.data))
        return chunk


def _extract_verified(archive_path: Path, staging: Path, expected: dict[str, dict]) -> None:
    """Unpack regular files only, each checked against its manifest checksum; any difference is an error."""
    seen: set[str] = set()
    with tarfile.open(archive_path, "r:gz") as archive:
        for member in archive:
            relative = _safe_relative(member.name)
            if member.isdir():
                continue
            if not member.isfile():
                raise BackupError(f"Refusing the archive entry {member.name!r} (not a regular file).")
            want = expected.get(relative.as_posix())
            if want is None:
                raise BackupError(f"{archive_path.name} holds {member.name!r}, which the manifest does not list.")
            out_path = staging / relative
            out_path.parent.mkdir(parents=True, exist_ok=True)
            source = archive.extractfile(member)
            assert source is not None  # a regular file
            digest = hashlib.sha256()
            with source, out_path.open("wb") as out:
                for chunk in iter(lambda: source.read(CHUNK), b""):
                    digest.update(chunk)
                    out.write(chunk)
            if digest.hexdigest() != want["sha256"]:
                raise BackupError(f"{member.name} in {archive_path.name} does not match its checksum.")
            seen.add(relative.as_posix())
    missing = sorted(set(expected) - seen)
    if missing:
        raise BackupError(f"{archive_path.name} lacks {len(missing)} file(s) of the manifest, e.g. {missing[0]}.")


# --------------------------------------------------------------------------------------------------
# Backup
# --------------------------------------------------------------------------------------------------


def _active_pointer(ensemble: dict[str, Any]) -> bytes:
    from training.store import pointer_body

    return json.dumps(pointer_body(version=ensemble["version"], folder=ensemble["folder"],
                                   models=ensemble["models"])).encode()


def _store_files(store: Path, snapshot: Snapshot) -> tuple[list[tuple[Path, str]], list[str]]:
    files: list[tuple[Path, str]] = []
    missing: list[str] = []
    folders = [e["folder"] for e in snapshot.ensembles] + snapshot.dataset_paths
    for folder in sorted(set(folders)):
        relative = _safe_relative(folder)
        if not (store / relative).exists():
            missing.append(folder)
            continue
        files.extend(_files_under(store, relative))
    return files, missing


def default_backup_root() -> Path:
    return Path(settings.VAR_DIR) / "backups"


def backup_create(*, out_dir: Path | None = None, media: bool = True) -> Path:
    """Write a backup folder (see the module docstring) and return its path."""
    final = Path(out_dir) if out_dir else default_backup_root() / _stamp()
    final = final.resolve()
    if final.exists() and any(final.iterdir()):
        raise BackupError(f"{final} exists and is not empty.")
    work = final.with_name(final.name + ".partial")
    shutil.rmtree(work, ignore_errors=True)
    work.mkdir(parents=True)
    work.chmod(0o700)  # it holds the whole database, password hashes included
    try:
        snapshot = _snapshot(work)
        store = Path(settings.MODEL_STORE)
        files, missing = _store_files(store, snapshot)
        active = next((e for e in snapshot.ensembles if e["status"] == "active"), None)
        extra = {ACTIVE_POINTER: _active_pointer(active)} if active else {}
        store_files = _write_archive(work / STORE_ARCHIVE, files, extra)
        media_root = Path(settings.MEDIA_ROOT).resolve()
        media_files: dict[str, dict] | None = None
        if media:
            listed = _files_under(media_root, PurePosixPath("."), skip=work) if media_root.is_dir() else iter(())
            media_files = _write_archive(work / MEDIA_ARCHIVE, listed, {})
        manifest = {
            "format": FORMAT,
            "created_at": datetime.now(timezone.utc).isoformat(),
            "database": {"vendor": snapshot.vendor, "file": snapshot.file, "tables": snapshot.tables},
            "model_store": {"file": STORE_ARCHIVE, "source": str(store), "files": store_files,
                            "ensembles": [{k: e[k] for k in ("version", "folder", "status")}
                                          for e in snapshot.ensembles],
                            "active": active["version"] if active else None,
                            "missing_folders": missing},
            "media": ({"file": MEDIA_ARCHIVE, "source": str(media_root), "files": media_files}
                      if media_files is not None else None),
        }
        (work / MANIFEST).write_text(json.dumps(manifest, indent=1, sort_keys=True))
        names = sorted(p.name for p in work.iterdir() if p.is_file())
        (work / SUMS).write_text("".join(f"{sha256_file(work / n)}  {n}\n" for n in names))
        if final.exists():
            final.rmdir()
        os.replace(work, final)
    except BaseException:
        shutil.rmtree(work, ignore_errors=True)
        raise
    return final


# --------------------------------------------------------------------------------------------------
# Verify and restore
# --------------------------------------------------------------------------------------------------


def backup_verify(*, folder: Path) -> dict[str, Any]:
    """Check SHA256SUMS against the files and return the manifest; raises BackupError on any difference."""
    folder = Path(folder)
    sums = folder / SUMS
    if not sums.is_file():
        raise BackupError(f"{folder} has no {SUMS}: not a backup folder, or an unfinished one.")
    listed: dict[str, str] = {}
    for line in sums.read_text().splitlines():
        digest, _, name = line.partition("  ")
        if not name or "/" in name or name in (".", ".."):
            raise BackupError(f"{SUMS} has a malformed line: {line!r}")
        listed[name] = digest
    if MANIFEST not in listed:
        raise BackupError(f"{SUMS} does not cover {MANIFEST}.")
    for name, digest in listed.items():
        path = folder / name
        if not path.is_file():
            raise BackupError(f"{name} is missing from {folder}.")
        if sha256_file(path) != digest:
            raise BackupError(f"{name} does not match its checksum: the backup is damaged.")
    manifest = json.loads((folder / MANIFEST).read_text())
    if manifest.get("format") != FORMAT:
        raise BackupError(f"Unknown backup format {manifest.get('format')!r} (this version reads {FORMAT}).")
    needed = [manifest["database"]["file"], manifest["model_store"]["file"]]
    if manifest.get("media"):
        needed.append(manifest["media"]["file"])
    unlisted = [n for n in needed if n not in listed]
    if unlisted:
        raise BackupError(f"{SUMS} does not cover {', '.join(unlisted)}.")
    return manifest


@dataclass
class RestoreReport:
    folder: Path
    vendor: str
    tables: int
    rows: int
    model_store: Path
    media: Path | None
    kept: list[Path] = field(default_factory=list)  # what was there before, moved aside


def _restore_database(folder: Path, manifest: dict[str, Any], stamp: str) -> Path | None:
    vendor = manifest["database"]["vendor"]
    dump = folder / manifest["database"]["file"]
    connection.close()
    if vendor == "postgresql":
        _run(["pg_restore", "--clean", "--if-exists", "--no-owner", "--exit-on-error", "--single-transaction",
              f"--dbname={connection.settings_dict['NAME']}", str(dump)], _pg_env())
        return None
    target = Path(connection.settings_dict["NAME"])
    target.parent.mkdir(parents=True, exist_ok=True)
    kept = None
    if target.is_file() and target.stat().st_size:
        kept = target.with_name(f"{target.name}.old-{stamp}")
        _sqlite_copy(target, kept)
    _sqlite_copy(dump, target)  # page by page into the configured file, under SQLite's own locks
    return kept


def _count_rows(tables: Iterable[str]) -> dict[str, int]:
    with connection.cursor() as cursor:
        existing = set(connection.introspection.table_names(cursor))
        counts = {}
        for table in tables:
            if table in existing:
                cursor.execute(f"SELECT COUNT(*) FROM {connection.ops.quote_name(table)}")  # noqa: S608
                counts[table] = int(cursor.fetchone()[0])
    return counts


def _swap(staging: Path, target: Path, stamp: str) -> Path | None:
    """Put ``staging`` in the place of ``target``, keeping the old one as ``<target>.old-<stamp>``."""
    kept = target.with_name(f"{target.name}.old-{stamp}") if target.exists() else None
    if kept is not None and os.path.ismount(target):
        # A mounted volume cannot be renamed: move its content out and the restored content in (copies
        # across file systems), leaving the mount point where it is.
        kept.mkdir()
        for child in list(target.iterdir()):
            shutil.move(child, kept / child.name)
        for child in list(staging.iterdir()):
            shutil.move(child, target / child.name)
        staging.rmdir()
        return kept
    if kept is not None:
        os.replace(target, kept)
    os.replace(staging, target)
    return kept


def backup_restore(*, folder: Path) -> RestoreReport:
    """Restore a backup into the configured database, MODEL_STORE and MEDIA_ROOT.

    Checksums first, then both archives are unpacked and checked file by file next to their targets; only
    then the database is restored and the folders swapped in (what was there is kept as ``<name>.old-<stamp>``).
    Last, every table's row count is compared with the manifest."""
    folder = Path(folder).resolve()
    manifest = backup_verify(folder=folder)
    vendor = manifest["database"]["vendor"]
    if vendor != connection.vendor:
        raise BackupError(f"This backup holds a {vendor} database; the configured one is {connection.vendor}. "
                          f"Point DATABASE_URL at a {vendor} database to restore it.")
    stamp = _stamp()
    store, media_root = Path(settings.MODEL_STORE), Path(settings.MEDIA_ROOT)
    plan = [(folder / manifest["model_store"]["file"], store, manifest["model_store"]["files"])]
    if manifest.get("media"):
        plan.append((folder / manifest["media"]["file"], media_root, manifest["media"]["files"]))
    stagings: list[tuple[Path, Path]] = []
    try:
        for archive, target, files in plan:
            target.parent.mkdir(parents=True, exist_ok=True)
            staging = target.with_name(f".{target.name}.restore-{stamp}")
            shutil.rmtree(staging, ignore_errors=True)
            staging.mkdir()
            stagings.append((staging, target))
            _extract_verified(archive, staging, files)
        kept_db = _restore_database(folder, manifest, stamp)
        kept = [kept_db] if kept_db else []
        for staging, target in stagings:
            old = _swap(staging, target, stamp)
            if old:
                kept.append(old)
    except BaseException:
        for staging, _ in stagings:
            shutil.rmtree(staging, ignore_errors=True)
        raise
    expected = manifest["database"]["tables"]
    counted = _count_rows(expected)
    differing = {t: (n, counted.get(t)) for t, n in expected.items() if counted.get(t) != n}
    if differing:
        raise BackupError(f"Restored, but row counts differ from the backup (table: expected, found): {differing}")
    return RestoreReport(folder=folder, vendor=vendor, tables=len(expected), rows=sum(expected.values()),
                         model_store=store, media=media_root if manifest.get("media") else None, kept=kept)
