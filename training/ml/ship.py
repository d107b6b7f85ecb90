"""Ship a built ensemble folder in the repository: ``models/<version>.tar.gz`` in the format of
``manage.py ensemble_archive export`` (one top folder named after the version: manifest, weights, plots),
plus ``models/manifest.json`` (what ``manage.py install_shipped_ensemble`` reads: ``archive``, ``sha256``,
``version``, and the provenance: profile, rebuild command, figures, date, machine) and ``models/SHA256SUMS``.

    .venv/bin/python -m training.ml.ship var/bench/robust --profile robust \\
        --rebuild ".venv/bin/python -m training.ml.pipeline robust --out var/bench/robust" \\
        --figures var/bench/robust-figures.json

Django-free. Refuses an archive over ``MAX_BYTES`` (5 MB). Older archives in ``models/`` are removed.
"""
from __future__ import annotations

import argparse
import gzip
import hashlib
import io
import json
import platform
import tarfile
from datetime import datetime, timezone
from pathlib import Path
from typing import Any

from .ensemble import MANIFEST_NAME, EnsembleManifest

MAX_BYTES = 5 * 1024 * 1024
SHIPPED_MANIFEST = "manifest.json"
SUMS = "SHA256SUMS"


def sha256_of(path: Path) -> str:
    digest = hashlib.sha256()
    with path.open("rb") as handle:
        for block in iter(lambda: handle.read(1 << 20), b""):
            digest.update(block)
    return digest.hexdigest()


def write_archive(folder: Path, path: Path, *, include_plots: bool = True) -> EnsembleManifest:
    """The ensemble in ``folder`` as a tar.gz with the top folder ``<version>/`` (byte-stable: fixed mtimes,
    owners and gzip header, entries sorted)."""
    manifest = EnsembleManifest.load(folder)
    files = [folder / MANIFEST_NAME] + [folder / m.file for m in manifest.members]
    if include_plots and (folder / "plots").is_dir():
        files += sorted(p for p in (folder / "plots").rglob("*") if p.is_file())
    stamp = int(datetime.fromisoformat(manifest.created).timestamp()) if manifest.created else 0
    buffer = io.BytesIO()
    with tarfile.open(fileobj=buffer, mode="w", format=tarfile.PAX_FORMAT) as archive:
        for file in files:
            info = archive.gettarinfo(str(file), arcname=f"{manifest.version}/{file.relative_to(folder).as_posix()}")
            info.mtime, info.uid, info.gid, info.uname, info.gname, info.mode = stamp, 0, 0, "", "", 0o644
            with file.open("rb") as handle:
                archive.addfile(info, handle)
    path.parent.mkdir(parents=True, exist_ok=True)
    with path.open("wb") as raw, gzip.GzipFile(filename="", mode="wb", fileobj=raw, mtime=stamp, compresslevel=9) as gz:
        gz.write(buffer.getvalue())
    return manifest


def ship(folder: Path, models: Path, *, profile: str, rebuild: str, figures: dict[str, Any], note: str = "",
         include_plots: bool = True) -> dict[str, Any]:
    manifest = EnsembleManifest.load(folder)
    name = f"{manifest.version}.tar.gz"
    archive = models / name
    write_archive(folder, archive, include_plots=include_plots)
    size = archive.stat().st_size
    if size > MAX_BYTES:
        archive.unlink()
        raise SystemExit(f"{name} is {size / 1e6:.2f} MB, over the {MAX_BYTES / 1e6:.2f} MB limit.")
    for old in models.glob("*.tar.gz"):
        if old.name != name:
            old.unlink()
    digest = sha256_of(archive)
    shipped = {
        "version": manifest.version,
        "archive": name,
        "sha256": digest,
        "size_bytes": size,
        "profile": profile,
        "rebuild": rebuild,
        "figures": figures,
        "created": datetime.now(timezone.utc).isoformat(timespec="seconds"),
        "ensemble_created": manifest.created,
        "machine": f"{platform.machine()} {platform.processor() or ''}".strip() + " — " + _cpu_name(),
        "members": [{"name": m.name, "kind": m.kind, "file": m.file} for m in manifest.members],
        "note": note,
    }
    (models / SHIPPED_MANIFEST).write_text(json.dumps(shipped, indent=2, ensure_ascii=False) + "\n")
    (models / SUMS).write_text(f"{digest}  {name}\n")
    return shipped


def _cpu_name() -> str:
    try:
        for line in Path("/proc/cpuinfo").read_text().splitlines():
            if line.startswith("model name"):
                cores = Path("/proc/cpuinfo").read_text().count("processor\t:")
                return f"{line.split(':', 1)[1].strip()}, {cores} cores, no GPU"
    except OSError:
        pass
    return "unknown CPU"


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("folder", type=Path)
    parser.add_argument("--models", type=Path, default=Path("models"))
    parser.add_argument("--profile", required=True)
    parser.add_argument("--rebuild", required=True, help="the one command that rebuilds this ensemble")
    parser.add_argument("--figures", type=Path, help="a JSON file of the figures to record (in-family, independent)")
    parser.add_argument("--note", default="")
    parser.add_argument("--no-plots", action="store_true")
    args = parser.parse_args()
    figures = json.loads(args.figures.read_text()) if args.figures else {}
    shipped = ship(args.folder, args.models, profile=args.profile, rebuild=args.rebuild, figures=figures,
                   note=args.note, include_plots=not args.no_plots)
    print(json.dumps({k: shipped[k] for k in ("version", "archive", "sha256", "size_bytes")}, indent=2))


if __name__ == "__main__":
    main()
