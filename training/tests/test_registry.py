"""Model registry: register an ensemble folder, promote atomically, roll back; serving follows."""
import json

import pytest

from training.models import Ensemble, ModelVersion
from tests.ensembles import write_tiny_ensemble
from training.selectors import active_ensemble_summary
from training.registry import RegistryError, ensemble_promote, ensemble_register, ensemble_rollback

pytestmark = pytest.mark.django_db


@pytest.fixture
def two_ensembles(settings):
    store = settings.MODEL_STORE
    write_tiny_ensemble(store / "ensembles" / "v1", version="v1", families=1, flavours=1)
    write_tiny_ensemble(store / "ensembles" / "v2", version="v2", families=1, flavours=2)
    return ensemble_register(folder=store / "ensembles" / "v1"), ensemble_register(folder=store / "ensembles" / "v2")


def test_register_records_members(two_ensembles) -> None:
    v1, v2 = two_ensembles
    assert v1.status == Ensemble.Status.CANDIDATE
    assert sorted(v2.members.values_list("name", flat=True)) == ["model4", "model4-binary", "model41"]


def test_promote_and_rollback_switch_the_active_pointer(two_ensembles, settings) -> None:
    v1, v2 = two_ensembles
    ensemble_promote(ensemble=v1)
    assert active_ensemble_summary() == {"version": "v1", "models": 2}
    ensemble_promote(ensemble=v2)
    assert active_ensemble_summary()["version"] == "v2"
    assert Ensemble.objects.get(version="v1").status == Ensemble.Status.RETIRED
    assert Ensemble.objects.filter(status="active").count() == 1
    assert set(ModelVersion.objects.filter(ensemble=v2).values_list("status", flat=True)) == {"active"}
    ensemble_rollback()
    assert json.loads((settings.MODEL_STORE / "active.json").read_text())["version"] == "v1"
    with pytest.raises(RegistryError):
        ensemble_rollback()


def test_register_refuses_missing_weights(settings) -> None:
    folder = settings.MODEL_STORE / "ensembles" / "broken"
    write_tiny_ensemble(folder, version="broken", families=1, flavours=1)
    (folder / "model4.keras").unlink()
    with pytest.raises(RegistryError, match="lacks weight files: model4.keras"):
        ensemble_register(folder=folder)


def test_register_refuses_folders_outside_the_store(tmp_path) -> None:
    write_tiny_ensemble(tmp_path / "elsewhere", families=1, flavours=1)
    with pytest.raises(RegistryError, match="not inside the model store"):
        ensemble_register(folder=tmp_path / "elsewhere")
