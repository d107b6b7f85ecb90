"""Registry archives: export an ensemble to one tar.gz and import it into another model store; the imported
ensemble serves identical predictions. Archives with escaping paths are refused."""
from __future__ import annotations

import io
import tarfile

import pytest
from django.core.management import CommandError, call_command

from training.ml.ensemble import FusedEnsemble
from tests.ensembles import random_galaxy_images, write_tiny_ensemble
from training.models import Ensemble
from training.registry import ensemble_register

pytestmark = pytest.mark.django_db


def test_export_import_round_trip(settings, tmp_path) -> None:  # noqa: ANN001
    source = settings.MODEL_STORE / "ensembles" / "ship-1"
    write_tiny_ensemble(source, version="ship-1", families=1, flavours=2)
    (source / "plots").mkdir()
    (source / "plots" / "rms_per_bin.png").write_bytes(b"\x89PNG plot")
    ensemble_register(folder=source)
    archive = tmp_path / "ship-1.tar.gz"
    call_command("ensemble_archive", "export", "ship-1", str(archive))
    before = FusedEnsemble(source).predict(random_galaxy_images(3, seed=4))

    # The CPU server: another model store and database rows.
    Ensemble.objects.all().delete()
    settings.MODEL_STORE = tmp_path / "server_store"
    call_command("ensemble_archive", "import", str(archive), "--promote")
    imported = Ensemble.objects.get(version="ship-1")
    assert imported.status == Ensemble.Status.ACTIVE
    assert sorted(imported.members.values_list("name", flat=True)) == ["model4", "model4-binary", "model41"]
    folder = settings.MODEL_STORE / imported.folder
    assert (folder / "plots" / "rms_per_bin.png").read_bytes() == b"\x89PNG plot"
    after = FusedEnsemble(folder).predict(random_galaxy_images(3, seed=4))
    assert [p.inclination_median for p in after] == [p.inclination_median for p in before]
    with pytest.raises(CommandError, match="already registered"):
        call_command("ensemble_archive", "import", str(archive))


def test_import_refuses_escaping_paths_and_missing_files(settings, tmp_path) -> None:  # noqa: ANN001
    evil = tmp_path / "evil.tar.gz"
    with tarfile.open(evil, "w:gz") as archive:
        for name in ("x/manifest.json", "x/../../escape.txt"):
            info = tarfile.TarInfo(name)
            info.size = 2
            archive.addfile(info, io.BytesIO(b"{}"))
    with pytest.raises(CommandError, match="Refusing the archive entry"):
        call_command("ensemble_archive", "import", str(evil))
    assert not (tmp_path / "escape.txt").exists()
    with pytest.raises(CommandError, match="does not exist"):
        call_command("ensemble_archive", "import", str(tmp_path / "nope.tar.gz"))
    with pytest.raises(CommandError, match="No ensemble 'ghost'"):
        call_command("ensemble_archive", "export", "ghost", str(tmp_path / "g.tar.gz"))
