"""The fused ensemble: one call gives every member's output, equal to calling the members one by one."""
import numpy as np
import pytest

from training.ml.ensemble import TTA_VIEWS, FusedEnsemble, apply_bias_correction, tta_views
from tests.ensembles import random_galaxy_images, write_tiny_ensemble


@pytest.fixture(scope="module")
def ensemble_folder(tmp_path_factory):
    folder = tmp_path_factory.mktemp("ensemble")
    write_tiny_ensemble(folder)
    return folder


def test_tta_views_are_view_major() -> None:
    images = random_galaxy_images(2)
    views = tta_views(images, TTA_VIEWS["8"])
    assert views.shape == (16, 128, 128, 3)
    np.testing.assert_array_equal(views[2 + 0], np.rot90(images[0], k=1))  # view 1 of image 0
    np.testing.assert_array_equal(views[8 + 1], images[1][:, ::-1])  # view 4 (flip) of image 1


def test_fused_graph_matches_members_called_separately(ensemble_folder) -> None:
    import keras

    ensemble = FusedEnsemble(ensemble_folder, tta="2")
    images = random_galaxy_images(3)
    batch = tta_views(images, TTA_VIEWS["2"]).astype(np.float32)
    fused = ensemble.raw_outputs(batch)
    for spec, output in zip(ensemble.manifest.members, fused, strict=True):
        alone = keras.saving.load_model(ensemble_folder / spec.file)(batch, training=False)
        np.testing.assert_allclose(output, np.asarray(alone), rtol=1e-5, atol=1e-6)


def test_predictions_have_every_member_and_sane_ranges(ensemble_folder) -> None:
    ensemble = FusedEnsemble(ensemble_folder, tta="8")
    predictions = ensemble.predict(random_galaxy_images(4, seed=1))
    assert len(predictions) == 4
    for prediction in predictions:
        assert len(prediction.members) == 15
        incs = [m.inclination for m in prediction.members.values() if m.inclination is not None]
        rejects = [m.reject_percent for m in prediction.members.values() if m.reject_percent is not None]
        assert len(incs) == 12 and len(rejects) == 3
        assert all(45.0 <= value <= 90.0 for value in incs)
        assert all(0.0 <= value <= 100.0 for value in rejects)
        assert prediction.inclination_median == pytest.approx(np.median(incs))


def test_rotation_invariance_of_full_tta(ensemble_folder) -> None:
    """With all 8 views, a galaxy rotated by 90° or flipped gets the same answer."""
    ensemble = FusedEnsemble(ensemble_folder, tta="8")
    image = random_galaxy_images(1, seed=2)
    turned = np.rot90(image, k=1, axes=(1, 2))
    a, b = ensemble.predict(image)[0], ensemble.predict(np.ascontiguousarray(turned))[0]
    assert a.inclination_median == pytest.approx(b.inclination_median, abs=1e-3)


def test_bias_correction_formula() -> None:
    assert apply_bias_correction(np.array([60.0]), 0.02, -1.0)[0] == pytest.approx(59.0 / 0.98)
    assert apply_bias_correction(np.array([60.0]), None, None)[0] == 60.0


def test_a_single_member_ensemble_predicts(tmp_path) -> None:
    write_tiny_ensemble(tmp_path, families=1, flavours=1, rejects=False)
    ensemble = FusedEnsemble(tmp_path, tta="2")
    images = random_galaxy_images(3, seed=4)
    predictions = ensemble.predict(images)
    assert len(predictions) == 3
    assert all(45.0 <= p.inclination_median <= 90.0 and p.inclination_stdev == 0.0 for p in predictions)


def test_aligned_views_keep_the_major_axis_horizontal_and_cannot_be_overridden(tmp_path) -> None:
    import json

    from training.ml.ensemble import MANIFEST_NAME

    assert all(turns % 2 == 0 for turns, _ in TTA_VIEWS["aligned"]) and len(set(TTA_VIEWS["aligned"])) == 4
    write_tiny_ensemble(tmp_path, families=1, flavours=2)
    manifest = json.loads((tmp_path / MANIFEST_NAME).read_text())
    (tmp_path / MANIFEST_NAME).write_text(json.dumps({**manifest, "tta": "aligned"}))
    # Networks trained on near-horizontal major axes never get a quarter-turned view, whatever is asked.
    assert FusedEnsemble(tmp_path, tta="8").tta == "aligned"
    assert FusedEnsemble(tmp_path, tta="2").tta == "2"
    image = random_galaxy_images(1, seed=3)
    flipped = np.ascontiguousarray(image[:, ::-1, ::-1])  # 180° turn: still aligned, same answer
    ensemble = FusedEnsemble(tmp_path)
    assert ensemble.predict(image)[0].inclination_median == pytest.approx(
        ensemble.predict(flipped)[0].inclination_median, abs=1e-3)
