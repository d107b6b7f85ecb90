"""Orientation-free serving: the same galaxy turned by any angle gets the same answer, on every path.

Uses an ensemble that is sensitive to orientation (``orientation_probe``): the old path (angle 0, no
alignment) spreads its answers by degrees and tens of rejection points, so these tests can fail.
Galaxies come from the training generator (``core.synthetic.generate``).
"""
from __future__ import annotations

import io
import json
import math

import numpy as np
import pytest
from django.urls import reverse
from PIL import Image

from catalog.imaging import sky_level
from predictions.services import prediction_for_upload

from .orientation_probe import write_probe_ensemble

pytestmark = pytest.mark.django_db
ANGLES = tuple(range(0, 180, 15))


@pytest.fixture(scope="module")
def galaxies() -> list:
    from core.synthetic import GeneratorConfig, generate

    # Inclined galaxies (q well below the round limit), as the API is meant for.
    return list(generate(GeneratorConfig(inclination_range=(62.0, 88.0)), 2, seed=4242, workers=1))


@pytest.fixture
def probe_ensemble(settings):  # noqa: ANN001, ANN201
    from training.registry import ensemble_promote, ensemble_register

    folder = settings.MODEL_STORE / "ensembles" / "probe-1"
    write_probe_ensemble(folder)
    return ensemble_promote(ensemble=ensemble_register(folder=folder))


def turned_png(image: np.ndarray, angle: float) -> bytes:
    """``image`` on a sky canvas as wide as its diagonal (no corner is lost), turned counter-clockwise."""
    fill = sky_level(image)
    side = math.ceil(max(image.shape[:2]) * math.sqrt(2)) + 2
    canvas = Image.new("RGB", (side, side), fill)
    canvas.paste(Image.fromarray(image), ((side - image.shape[1]) // 2, (side - image.shape[0]) // 2))
    buffer = io.BytesIO()
    canvas.rotate(angle, resample=Image.Resampling.BICUBIC, fillcolor=fill).save(buffer, format="PNG")
    return buffer.getvalue()


def post_file(client, data: bytes, name: str = "g.png") -> dict:  # noqa: ANN001
    upload = io.BytesIO(data)
    upload.name = name
    response = client.post(reverse("api-file"), {"file": upload})
    assert response.status_code == 200, response.content
    return response.json()


def _pa_gap(a: float, b: float) -> float:
    d = abs(a - b) % 180.0
    return min(d, 180.0 - d)


def test_api_file_is_rotation_invariant(client, probe_ensemble, galaxies) -> None:
    for galaxy in galaxies:
        bodies = [post_file(client, turned_png(galaxy.colour, angle)) for angle in ANGLES]
        medians = [b["inclinations"]["summary"]["median"] for b in bodies]
        rejections = [b["rejection_likelihood"]["summary"]["median"] for b in bodies]
        assert max(medians) - min(medians) <= 1.0, medians
        assert max(rejections) - min(rejections) <= 5.0, rejections
        assert {b["pa_source"] for b in bodies} == {"measured"}
        # Turning the image counter-clockwise by a turns the measured (astronomical) PA by a.
        first = bodies[0]["pa_measured"]
        for angle, body in zip(ANGLES, bodies, strict=True):
            assert _pa_gap(body["pa_measured"], first + angle) <= 3.0, (angle, body["pa_measured"], first)
        axial = [b["axial_ratio_inclination"] for b in bodies]
        assert max(axial) - min(axial) <= 4.0, axial


def test_the_old_path_is_not_rotation_invariant(probe_ensemble, galaxies) -> None:
    """The control: angle 0 without alignment moves this ensemble's answers, so the test above can fail."""
    spreads = []
    for galaxy in galaxies:
        bodies = [prediction_for_upload(data=turned_png(galaxy.colour, angle), angle_deg=0.0) for angle in ANGLES]
        medians = [b["inclinations"]["summary"]["median"] for b in bodies]
        rejections = [b["rejection_likelihood"]["summary"]["median"] for b in bodies]
        spreads.append((max(medians) - min(medians), max(rejections) - min(rejections)))
        assert {b["pa_source"] for b in bodies} == {"manual"}
    assert max(s[0] for s in spreads) > 3.0 and max(s[1] for s in spreads) > 10.0, spreads


def test_page_evaluate_auto_is_rotation_invariant_and_manual_is_not(client, probe_ensemble, galaxies) -> None:
    galaxy = galaxies[0]
    auto, manual = [], []
    for angle in (0, 45, 90, 135):
        png = io.BytesIO(turned_png(galaxy.colour, angle))
        png.name = "g.png"
        uploaded = client.post(reverse("predict-upload"), {"file": png}).json()
        assert uploaded["status"] == "success" and 0 <= uploaded["pa_measured"] < 180
        assert uploaded["angle"] == pytest.approx((uploaded["pa_measured"] + 90) % 180, abs=0.11)
        for flag, out in ((True, auto), (False, manual)):
            body = client.post(reverse("predict-evaluate"), json.dumps(
                {"upload_id": uploaded["upload_id"], "angle": 0, "scale": 1, "auto": flag}),
                content_type="application/json").json()
            assert body["status"] == "success"
            out.append(body)
    medians = [b["inclinations"]["summary"]["median"] for b in auto]
    assert max(medians) - min(medians) <= 1.0 and {b["pa_source"] for b in auto} == {"measured"}
    manual_medians = [b["inclinations"]["summary"]["median"] for b in manual]
    assert max(manual_medians) - min(manual_medians) > 3.0 and {b["pa_source"] for b in manual} == {"manual"}


def test_page_evaluate_rejects_a_bad_auto_flag(client, probe_ensemble) -> None:
    body = client.post(reverse("predict-evaluate"), json.dumps({"ra": "10", "dec": "5", "fov": "2", "auto": "yes"}),
                       content_type="application/json")
    assert body.status_code == 400 and body.json()["status"] == "failed"
    body = client.post(reverse("predict-evaluate"), '{"ra": "10", "dec": "5", "fov": "2", "angle": 1e999}',
                       content_type="application/json")
    assert body.status_code == 400


def test_axial_ratio_cross_check_fields_and_alarm(client, probe_ensemble, galaxies, settings) -> None:
    galaxy = galaxies[1]
    settings.PREDICTION_AXIAL_MARGIN_DEG = 90.0  # nothing can disagree by more
    body = post_file(client, turned_png(galaxy.colour, 30))
    assert 0 < body["axial_ratio"] < 1 and 0 <= body["axial_ratio_inclination"] <= 90
    from core.geometry import inclination_from_axial_ratio

    assert body["axial_ratio_inclination"] == pytest.approx(inclination_from_axial_ratio(body["axial_ratio"]), abs=0.2)
    # The generator's truth: the cross-check is a real measurement, not a constant.
    assert abs(body["axial_ratio_inclination"] - galaxy.inclination) < 15
    assert "axial ratio" not in body["alarm_reason"]
    settings.PREDICTION_AXIAL_MARGIN_DEG = 0.0
    from django.core.cache import cache

    cache.clear()
    body = post_file(client, turned_png(galaxy.colour, 30))
    assert body["alarm"] is True and "the axial ratio (b/a = " in body["alarm_reason"]


def test_margin_from_the_manifest_wins_over_the_setting(client, settings, galaxies) -> None:
    from training.ml.ensemble import MANIFEST_NAME, EnsembleManifest
    from training.registry import ensemble_promote, ensemble_register

    folder = settings.MODEL_STORE / "ensembles" / "probe-2"
    manifest = write_probe_ensemble(folder, version="probe-2")
    calibrated = EnsembleManifest.from_dict({**json.loads(manifest.to_json()),
                                             "metrics": {"axial_check": {"margin_deg": 0.0, "p99": 0.0}}})
    (folder / MANIFEST_NAME).write_text(calibrated.to_json())
    ensemble_promote(ensemble=ensemble_register(folder=folder))
    settings.PREDICTION_AXIAL_MARGIN_DEG = 90.0
    body = post_file(client, turned_png(galaxies[0].colour, 0))
    assert body["alarm"] is True and "axial ratio" in body["alarm_reason"]


def _png(array: np.ndarray) -> bytes:
    buffer = io.BytesIO()
    Image.fromarray(array).save(buffer, format="PNG")
    return buffer.getvalue()


def _star() -> np.ndarray:
    y, x = np.mgrid[0:128, 0:128]
    grey = (250 * np.exp(-((x - 64) ** 2 + (y - 63) ** 2) / 8.0)).astype(np.uint8)
    return np.repeat(grey[:, :, None], 3, axis=2)


@pytest.mark.parametrize("image", [
    np.zeros((100, 120, 3), dtype=np.uint8),
    np.full((100, 120, 3), 255, dtype=np.uint8),
    np.random.default_rng(3).integers(0, 256, (150, 150, 3), dtype=np.uint8),
    _star(),
], ids=["blank", "white", "noise", "single-star"])
def test_images_without_a_galaxy_get_an_answer_without_an_angle(client, probe_ensemble, image: np.ndarray) -> None:
    body = post_file(client, _png(image))
    assert body["status"] == "success"
    assert body["pa_measured"] is None and body["pa_source"] == "none"
    assert body["axial_ratio_inclination"] is None or 0 <= body["axial_ratio_inclination"] <= 90


def test_catalogue_pa_is_used_and_coords_measure(client, catalogue, fake_services, probe_ensemble) -> None:
    body = client.get(reverse("api-pgc", args=["5818"])).json()
    assert body["status"] == "success" and body["pa_source"] == "catalogue"
    assert body["galaxy"]["pa"] == "23.0 deg"
    # The fake cut-out's disk lies at 30° clockwise of +x: astronomical PA 60, whatever the catalogue says.
    assert body["pa_measured"] == pytest.approx(60, abs=3)
    assert "catalogue position angle (23°)" in body["alarm_reason"]
    coords = client.get(reverse("api-coords"), {"ra": "194.1825", "dec": "21.682", "fov": "15.71"}).json()
    assert coords["status"] == "success" and coords["pa_source"] == "measured"
    assert coords["pa_measured"] == pytest.approx(60, abs=3)
