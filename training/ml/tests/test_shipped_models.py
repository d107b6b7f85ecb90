"""The ensemble shipped in ``models/``: its checksum, size and manifest (issue 13)."""
from __future__ import annotations

import hashlib
import json
import tarfile
from pathlib import Path

import pytest

from training.ml.ship import MAX_BYTES, SUMS, write_archive

MODELS = Path(__file__).resolve().parents[3] / "models"
REQUIRED = ("version", "archive", "sha256", "size_bytes", "profile", "rebuild", "figures", "created", "machine")


@pytest.fixture(scope="module")
def shipped() -> dict:
    path = MODELS / "manifest.json"
    if not path.is_file():
        pytest.skip("no ensemble is shipped in models/")
    return json.loads(path.read_text())


def test_manifest_has_every_field(shipped: dict) -> None:
    missing = [key for key in REQUIRED if key not in shipped or shipped[key] in (None, "")]
    assert not missing, f"models/manifest.json lacks {missing}"
    assert "/" not in shipped["archive"] and shipped["archive"].endswith(".tar.gz")


def test_archive_checksum_and_size(shipped: dict) -> None:
    archive = MODELS / shipped["archive"]
    data = archive.read_bytes()
    assert hashlib.sha256(data).hexdigest() == shipped["sha256"]
    assert len(data) == shipped["size_bytes"] <= MAX_BYTES
    assert (MODELS / SUMS).read_text().split() == [shipped["sha256"], shipped["archive"]]


def test_archive_holds_the_manifest_version(shipped: dict) -> None:
    with tarfile.open(MODELS / shipped["archive"], "r:gz") as archive:
        names = archive.getnames()
        assert {Path(n).parts[0] for n in names} == {shipped["version"]}
        inner = json.load(archive.extractfile(f"{shipped['version']}/manifest.json"))  # type: ignore[arg-type]
        assert inner["version"] == shipped["version"]
        for member in inner["members"]:
            assert f"{shipped['version']}/{member['file']}" in names


def test_write_archive_is_byte_stable(tmp_path: Path) -> None:
    folder = tmp_path / "ens"
    folder.mkdir()
    (folder / "a.keras").write_bytes(b"weights")
    manifest = {"version": "v-test", "members": [{"name": "a", "architecture": "compact", "flavour": 0,
                                                  "kind": "regression", "file": "a.keras"}],
                "preprocessing": {}, "created": "2026-12-02T00:00:00+00:00"}
    (folder / "manifest.json").write_text(json.dumps(manifest))
    write_archive(folder, tmp_path / "one.tar.gz")
    write_archive(folder, tmp_path / "two.tar.gz")
    assert (tmp_path / "one.tar.gz").read_bytes() == (tmp_path / "two.tar.gz").read_bytes()
    with tarfile.open(tmp_path / "one.tar.gz") as archive:
        assert sorted(archive.getnames()) == ["v-test/a.keras", "v-test/manifest.json"]
