"""Installing the ensemble shipped under ``models/``: checksum verified, activated only when none is active,
idempotent on a second run, and refused when the archive does not match its manifest."""
from __future__ import annotations

import hashlib
import json

import pytest
from django.core.management import CommandError, call_command

from tests.ensembles import write_tiny_ensemble
from training.models import Ensemble
from training.archives import ensemble_export_archive
from training.registry import ensemble_register

pytestmark = pytest.mark.django_db


def _ship(settings, tmp_path, version: str = "shipped-1"):  # noqa: ANN001, ANN202
    """Export a tiny ensemble into a models/ folder with its manifest, then forget it (a fresh machine)."""
    source = settings.MODEL_STORE / "ensembles" / version
    write_tiny_ensemble(source, version=version, families=1, flavours=2)
    models = tmp_path / "models"
    archive = ensemble_export_archive(ensemble=ensemble_register(folder=source), path=models / f"{version}.tar.gz")
    manifest = {"version": version, "archive": archive.name,
                "sha256": hashlib.sha256(archive.read_bytes()).hexdigest()}
    (models / "manifest.json").write_text(json.dumps(manifest))
    Ensemble.objects.all().delete()
    settings.MODEL_STORE = tmp_path / "fresh_store"
    return models, manifest


def test_first_run_installs_and_activates_then_reuses(settings, tmp_path) -> None:  # noqa: ANN001
    models, manifest = _ship(settings, tmp_path)
    call_command("install_shipped_ensemble", "--models-dir", str(models))
    active = Ensemble.objects.get(status=Ensemble.Status.ACTIVE)
    assert active.version == manifest["version"]
    assert (settings.MODEL_STORE / active.folder / "manifest.json").is_file()
    # A second run (second `make run`) finds it registered: nothing imported twice, still active.
    call_command("install_shipped_ensemble", "--models-dir", str(models))
    assert Ensemble.objects.count() == 1
    assert Ensemble.objects.get().status == Ensemble.Status.ACTIVE


def test_does_not_replace_an_active_ensemble(settings, tmp_path, active_tiny_ensemble) -> None:  # noqa: ANN001
    models, manifest = _ship(settings, tmp_path)
    # _ship forgot every row; bring the operator's own ensemble back as the active one.
    from training.registry import ensemble_promote

    folder = tmp_path / "fresh_store" / "ensembles" / "own-1"
    write_tiny_ensemble(folder, version="own-1")
    ensemble_promote(ensemble=ensemble_register(folder=folder))
    call_command("install_shipped_ensemble", "--models-dir", str(models))
    assert Ensemble.objects.get(status=Ensemble.Status.ACTIVE).version == "own-1"
    assert Ensemble.objects.get(version=manifest["version"]).status == Ensemble.Status.CANDIDATE


def test_checksum_mismatch_is_refused(settings, tmp_path) -> None:  # noqa: ANN001
    models, manifest = _ship(settings, tmp_path)
    manifest["sha256"] = "0" * 64
    (models / "manifest.json").write_text(json.dumps(manifest))
    with pytest.raises(CommandError, match="does not match"):
        call_command("install_shipped_ensemble", "--models-dir", str(models))
    assert not Ensemble.objects.exists()


def test_archive_outside_models_dir_is_refused(settings, tmp_path) -> None:  # noqa: ANN001
    models, manifest = _ship(settings, tmp_path)
    manifest["archive"] = "../elsewhere.tar.gz"
    (tmp_path / "elsewhere.tar.gz").write_bytes(b"x")
    (models / "manifest.json").write_text(json.dumps(manifest))
    with pytest.raises(CommandError, match="not a file under"):
        call_command("install_shipped_ensemble", "--models-dir", str(models))


def test_nothing_shipped_is_not_an_error(tmp_path) -> None:  # noqa: ANN001
    call_command("install_shipped_ensemble", "--models-dir", str(tmp_path / "empty"))
    assert not Ensemble.objects.exists()
