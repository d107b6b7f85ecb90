"""Shipping an ensemble between machines: one tar.gz with the manifest and the weights, and the ensemble
shipped in the repository (``models/``), installed on first run."""
from __future__ import annotations

import io
import json
import logging
import os
import shutil
import tarfile
from pathlib import Path
from typing import Any

from training.ml.ensemble import MANIFEST_NAME, EnsembleManifest
from training.ml.ship import SHIPPED_MANIFEST, sha256_of

from .models import Ensemble
from .registry import RegistryError, ensemble_activate, ensemble_register
from .store import ensemble_folder, store_root

logger = logging.getLogger(__name__)


def ensemble_export_archive(*, ensemble: Ensemble, path: Path) -> Path:
    """Write ``ensemble``'s folder (manifest, weights, plots) as a tar.gz whose top folder is its version."""
    folder = ensemble_folder(ensemble.folder)
    manifest = EnsembleManifest.load(folder)
    path.parent.mkdir(parents=True, exist_ok=True)
    with tarfile.open(path, "w:gz") as archive:
        archive.add(folder / MANIFEST_NAME, arcname=f"{manifest.version}/{MANIFEST_NAME}")
        for member in manifest.members:
            archive.add(folder / member.file, arcname=f"{manifest.version}/{member.file}")
        if (folder / "plots").is_dir():
            archive.add(folder / "plots", arcname=f"{manifest.version}/plots")
    return path


def _archive_top_folder(members: list[tarfile.TarInfo]) -> str:
    """The archive's one top folder; refuses more than one, links and paths that climb out."""
    tops = {Path(m.name).parts[0] for m in members if m.name}
    if len(tops) != 1:
        raise RegistryError("The archive must hold exactly one ensemble folder.")
    for member in members:
        parts = Path(member.name).parts
        if member.issym() or member.islnk() or ".." in parts or Path(member.name).is_absolute():
            raise RegistryError(f"Refusing the archive entry {member.name!r}.")
    return tops.pop()


def ensemble_import_archive(*, path: Path) -> Ensemble:
    """Unpack an archive from ``ensemble_export_archive`` into MODEL_STORE/ensembles and register it as a
    candidate. Refuses archives with paths outside one top folder, links, or missing weights."""
    with tarfile.open(path, "r:gz") as archive:
        members = archive.getmembers()
        top = _archive_top_folder(members)
        manifest_entry = archive.extractfile(f"{top}/{MANIFEST_NAME}") if f"{top}/{MANIFEST_NAME}" in archive.getnames() else None
        if manifest_entry is None:
            raise RegistryError("The archive has no manifest.json.")
        manifest = EnsembleManifest.from_dict(json.load(io.TextIOWrapper(manifest_entry, encoding="utf-8")))
        target = store_root() / "ensembles" / manifest.version
        if Ensemble.objects.filter(version=manifest.version).exists():
            raise RegistryError(f"An ensemble {manifest.version} is already registered.")
        staging = target.with_name(f".{manifest.version}.importing")
        shutil.rmtree(staging, ignore_errors=True)
        staging.mkdir(parents=True)
        for member in members:
            if member.isfile():
                relative = Path(*Path(member.name).parts[1:])
                (staging / relative).parent.mkdir(parents=True, exist_ok=True)
                with archive.extractfile(member) as source, (staging / relative).open("wb") as out:  # type: ignore[union-attr]
                    shutil.copyfileobj(source, out)
    shutil.rmtree(target, ignore_errors=True)
    os.replace(staging, target)
    return ensemble_register(folder=target)


def shipped_manifest(*, models_dir: Path) -> dict[str, Any] | None:
    """``models/manifest.json`` (keys ``archive``, ``sha256``, ``version``), or None when nothing is shipped."""
    path = models_dir / SHIPPED_MANIFEST
    if not path.is_file():
        return None
    manifest = json.loads(path.read_text(encoding="utf-8"))
    missing = [key for key in ("archive", "sha256", "version") if not manifest.get(key)]
    if missing:
        raise RegistryError(f"{path} lacks {', '.join(missing)}.")
    return manifest


def ensemble_install_shipped(*, models_dir: Path, activate_if_none: bool = True) -> Ensemble | None:
    """Import the archive shipped under ``models_dir`` (checksum verified) and make it active when no
    ensemble is. Idempotent: an already registered version is not imported twice. Returns None when
    nothing is shipped."""
    manifest = shipped_manifest(models_dir=models_dir)
    if manifest is None:
        return None
    archive = (models_dir / manifest["archive"]).resolve()
    if models_dir.resolve() not in archive.parents or not archive.is_file():
        raise RegistryError(f"The shipped archive {manifest['archive']!r} is not a file under {models_dir}.")
    ensemble = Ensemble.objects.filter(version=manifest["version"]).first()
    if ensemble is None:
        actual = sha256_of(archive)
        if actual != manifest["sha256"]:
            raise RegistryError(f"{archive.name}: sha256 {actual} does not match the manifest's {manifest['sha256']}.")
        ensemble = ensemble_import_archive(path=archive)
        if ensemble.version != manifest["version"]:
            raise RegistryError(f"{archive.name} holds {ensemble.version}, the manifest says {manifest['version']}.")
        logger.info("Installed the shipped ensemble %s", ensemble.version)
    if activate_if_none and not Ensemble.objects.filter(status=Ensemble.Status.ACTIVE).exists():
        ensemble = ensemble_activate(ensemble=ensemble)
    return ensemble
