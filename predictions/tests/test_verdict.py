"""Answers that explain themselves (issue 15): the verdict, the calibrated error bar, the catalogue's
inclination, members by name, one rounding, the permalink and the CSV download."""
from __future__ import annotations

import csv
import io
import json
from collections.abc import Iterator
from pathlib import Path
from typing import Any

import numpy as np
import pytest
from django.core.cache import cache
from django.urls import reverse

from predictions.renderers import prediction_csv
from predictions.services import response_body, with_verdict
from predictions.verdict import decide, error_model_for, whole_degrees
from tests.fake_services import FakeHyperLeda
from training.ml.ensemble import EnsembleManifest, EnsemblePrediction, MemberPrediction, MemberSpec
from training.ml.error_calibration import ErrorModel, choose_inflation, coverage, fit_error_model, save

NEW_KEYS = {"verdict", "verdict_code", "inclination_error", "catalog_inclination", "member_inclinations",
            "member_rejections", "permalink", "model_version"}


# --- the verdict, on constructed predictions ----------------------------------------------------

def test_inclined() -> None:
    v = decide(median=74.5, error=2.6, reject_percent=12.0, axial_inclination=71.0, alarm=False)
    assert (v.code, v.text) == ("inclined", "inclined spiral, i = 75 ± 3°")


def test_face_on_by_the_axis_ratio_near_the_floor() -> None:
    # IC 342 on the old page: 50° with 30 % rejection; its axis ratio says about 25°.
    v = decide(median=50.0, error=3.0, reject_percent=30.0, axial_inclination=25.0, alarm=False)
    assert v.code == "face_on" and v.text.startswith("likely face-on (< 45°)")
    rejected_and_round = decide(median=70.0, error=3.0, reject_percent=80.0, axial_inclination=30.0, alarm=False)
    assert rejected_and_round.code == "face_on"


def test_rejected_with_and_without_a_reason() -> None:
    # NGC 247 on the old page: 74.5° beside a 93 % rejection.
    v = decide(median=74.5, error=3.0, reject_percent=93.0, axial_inclination=70.0, alarm=False)
    assert v.code == "rejected" and v.text == "rejected: probably not a clean spiral (reject likelihood 93%)"
    by_reason = decide(median=74.5, error=3.0, reject_percent=93.0, axial_inclination=70.0, alarm=False,
                       member_rejections={"compact-bright_star": 91.0, "compact-companion": 55.0})
    assert by_reason.text == "rejected: probably not a clean spiral (star on the disk?)"


def test_uncertain() -> None:
    assert decide(median=62.0, error=3.0, reject_percent=5.0, axial_inclination=61.0, alarm=True).code == "uncertain"
    wide = decide(median=62.0, error=9.2, reject_percent=5.0, axial_inclination=61.0, alarm=False)
    assert wide.code == "uncertain" and wide.text == "uncertain: i = 62 ± 9° (wide error bar)"
    borderline = decide(median=62.0, error=3.0, reject_percent=35.0, axial_inclination=61.0, alarm=False)
    assert borderline.code == "uncertain" and "reject likelihood 35%" in borderline.text


def test_whole_degrees_round_half_up() -> None:
    assert [whole_degrees(x) for x in (74.5, 73.5, 74.49, 45.0)] == [75, 74, 74, 45]


# --- response_body on a constructed ensemble ----------------------------------------------------

class _Ensemble:
    """What response_body reads of a FusedEnsemble."""

    def __init__(self, folder: Path, alarm_stdev: float = 1.4) -> None:
        members = tuple(MemberSpec(name=n, architecture="compact", flavour=k, kind="regression", file=f"{n}.keras",
                                   group=0) for k, n in enumerate(("compact", "compact1", "compact2", "compact3")))
        reject = (MemberSpec(name="compact-binary", architecture="compact", flavour=0, kind="reject",
                             file="compact-binary.keras", group=0),)
        self.manifest = EnsembleManifest(version="unit-1", members=members + reject, preprocessing={},
                                         alarm_stdev_deg=alarm_stdev, tta="aligned")
        self.version = "unit-1"
        self.folder = folder


def _prediction(values: list[float], reject: float) -> EnsemblePrediction:
    names = ("compact", "compact1", "compact2", "compact3")
    members = {n: MemberPrediction(inclination=v) for n, v in zip(names, values)}
    members["compact-binary"] = MemberPrediction(reject_percent=reject)
    return EnsemblePrediction(members=members, inclination_mean=float(np.mean(values)),
                              inclination_median=float(np.median(values)), inclination_stdev=float(np.std(values)),
                              reject_mean=reject, reject_median=reject, reject_stdev=0.0, alarm=True,
                              alarm_reason=f"the inclination models disagree (stdev {np.std(values):.1f}° > 1.4°)")


def test_one_rounding_members_by_name_and_the_error_bar(tmp_path: Path) -> None:
    save(ErrorModel(a=2.0, b=1.0, c=0.5, gap_missing_deg=4.0, version="unit-1"), tmp_path / "error_calibration.json")
    ensemble = _Ensemble(tmp_path)
    # Unrounded stdev 2.80°, over the whole-degree members 2.92°: the old page showed both.
    body = with_verdict(response_body(_prediction([70.4, 74.6, 77.4, 76.6], 10.0), ensemble))  # type: ignore[arg-type]
    stdev = body["inclinations"]["summary"]["stdev"]
    assert body["member_inclinations"] == {"compact": 70.0, "compact1": 75.0, "compact2": 77.0, "compact3": 77.0}
    assert stdev == pytest.approx(float(np.std([70, 75, 77, 77])), abs=0.005)
    assert f"stdev {stdev:.2f}°" in body["alarm_reason"] and body["alarm"] is True
    assert body["member_rejections"] == {"compact-binary": 10.0}
    # No model input here, so no axial check: the gap term takes the calibration's gap_missing_deg.
    assert body["inclination_error"] == pytest.approx(round(float(np.sqrt(2.0**2 + stdev**2 + (0.5 * 4.0) ** 2)), 1))
    assert body["verdict_code"] == "uncertain" and body["verdict"].startswith("uncertain: i = 76 ± 4°")
    assert body["catalog_inclination"] is None and body["permalink"] is None


def test_no_alarm_when_the_reported_stdev_is_within_the_threshold(tmp_path: Path) -> None:
    body = with_verdict(response_body(_prediction([70.2, 70.4, 70.1, 69.9], 10.0), _Ensemble(tmp_path)))  # type: ignore[arg-type]
    assert body["alarm"] is False and body["alarm_reason"] == ""
    assert body["verdict_code"] == "inclined"


def test_error_model_is_read_from_the_shipped_folder_when_the_ensemble_has_none(tmp_path: Path, settings: Any) -> None:
    settings.BASE_DIR = tmp_path
    shipped = tmp_path / "models" / "error_calibration"
    save(ErrorModel(a=3.3, b=0.0, c=0.0, gap_missing_deg=4.0, version="unit-2"), shipped / "unit-2.json")
    ensemble = _Ensemble(tmp_path / "store")
    ensemble.version = "unit-2"
    assert error_model_for(ensemble).sigma(5.0, 5.0) == pytest.approx(3.3)
    ensemble.version = "unit-3"  # nothing calibrated: the wide default, marked as such
    assert error_model_for(ensemble).calibrated is False


# --- the fit ------------------------------------------------------------------------------------

def test_fit_reaches_68_percent_and_inflation_only_widens() -> None:
    rng = np.random.default_rng(1)
    stdev, gap = rng.uniform(0, 4, 2000), rng.uniform(0, 10, 2000)
    sigma_true = np.sqrt(2.0**2 + (0.8 * stdev) ** 2 + (0.3 * gap) ** 2)
    residual = rng.normal(0, sigma_true)
    model = fit_error_model(residual, stdev, gap, version="v")
    assert model.fit["coverage"] == pytest.approx(0.683, abs=0.01)
    assert model.a == pytest.approx(2.0, rel=0.15) and model.b == pytest.approx(0.8, rel=0.2)
    held_out = rng.normal(0, 1.5 * sigma_true)  # a harder slice
    inflated = choose_inflation(model, held_out, stdev, gap, what="harder")
    assert inflated.inflation > 1.3
    assert coverage(held_out, inflated.sigmas(stdev, gap)) == pytest.approx(0.683, abs=0.01)
    assert choose_inflation(model, residual / 3, stdev, gap).inflation == 1.0


# --- through the API ----------------------------------------------------------------------------

@pytest.fixture
def fake_leda(settings: Any) -> Iterator[FakeHyperLeda]:
    with FakeHyperLeda() as leda:
        settings.HYPERLEDA_URL = leda.url
        cache.clear()
        yield leda
        cache.clear()


@pytest.mark.django_db
def test_api_pgc_for_a_galaxy_only_hyperleda_knows(client, fake_services, fake_leda, active_tiny_ensemble) -> None:
    response = client.get(reverse("api-pgc", args=["3098765"]))
    assert response.status_code == 200, response.content
    body = response.json()
    assert body["galaxy"]["pgc"] == "3098765" and body["galaxy"]["pa"] == "42.0 deg"
    assert body["galaxy"]["objname"] == "SDSSJ123456.78+123456.7"
    assert body["catalog_inclination"] == 62.0
    assert NEW_KEYS <= set(body)
    assert body["verdict_code"] in ("inclined", "face_on", "rejected", "uncertain") and body["verdict"]
    assert body["permalink"] == "http://testserver/predict/?pgc=3098765"
    assert isinstance(body["inclination_error"], float) and body["inclination_error"] > 0
    assert set(body["member_inclinations"]) == {"model4", "model41", "model42", "model43", "model5", "model51",
                                                "model52", "model53", "model6", "model61", "model62", "model63"}
    assert body["member_inclinations"]["model5"] == body["inclinations"]["Group_1"]["model5"]


@pytest.mark.django_db
def test_permalinks_of_names_and_positions(client, catalogue, fake_services, active_tiny_ensemble) -> None:
    by_name = client.get(reverse("api-objname", args=["M33"])).json()
    assert by_name["permalink"] == "http://testserver/predict/?name=M33"
    by_position = client.get(reverse("api-coords"), {"ra": "23.462", "dec": "30.66", "fov": "5 arcmin"}).json()
    assert by_position["permalink"] == "http://testserver/predict/?ra=23.462&dec=30.66&fov=5+arcmin"


@pytest.mark.django_db
def test_csv_download_matches_the_json(client, catalogue, fake_services, fake_leda, active_tiny_ensemble) -> None:
    as_json = client.get(reverse("api-pgc", args=["5818"])).json()
    for response in (client.get(reverse("api-pgc", args=["5818"]), {"format": "csv"}),
                     client.get(reverse("api-pgc", args=["5818"]), HTTP_ACCEPT="text/csv")):
        assert response.status_code == 200
        assert response["Content-Type"].startswith("text/csv")
        assert "attachment" in response["Content-Disposition"]
        rows = list(csv.DictReader(io.StringIO(response.content.decode())))
        assert len(rows) == 1
        row = rows[0]
        assert row["galaxy.pgc"] == "5818" and row["verdict"] == as_json["verdict"]
        assert float(row["inclinations.summary.median"]) == as_json["inclinations"]["summary"]["median"]
        assert float(row["inclination_error"]) == as_json["inclination_error"]
        assert row["member_inclinations.model4"] == str(as_json["member_inclinations"]["model4"])
    failed = client.get(reverse("api-pgc", args=["999999999"]), {"format": "csv"})
    assert failed.status_code == 404 and failed.json()["status"] == "failed"  # failures stay JSON
    unknown = client.get(reverse("api-pgc", args=["5818"]), {"format": "xml"})
    assert unknown.status_code == 400 and "format must be json or csv" in unknown.json()["message"]


def test_csv_cells_never_start_a_formula() -> None:
    text = prediction_csv({"galaxy": {"objname": "=HYPERLINK(\"x\")", "dec": "-11.6230 deg"}, "alarm": False})
    row = next(csv.DictReader(io.StringIO(text)))
    assert row["galaxy.objname"].startswith("'=") and row["galaxy.dec"] == "-11.6230 deg" and row["alarm"] == "false"


@pytest.mark.django_db
def test_schema_documents_the_new_keys_and_the_csv_download(client) -> None:
    schema = client.get(reverse("schema"), {"format": "json"})
    assert schema.status_code == 200
    document = json.loads(schema.content)
    properties = document["components"]["schemas"]["PredictionResponse"]["properties"]
    assert NEW_KEYS <= set(properties)
    assert "68%" in properties["inclination_error"]["description"]
    reference = properties["verdict_code"].get("$ref") or properties["verdict_code"]["allOf"][0]["$ref"]
    codes = document["components"]["schemas"][reference.rsplit("/", 1)[1]]
    assert codes["enum"] == ["inclined", "face_on", "rejected", "uncertain"]
    pgc = document["paths"]["/api/pgc/{pgc_id}"]["get"]
    assert "text/csv" in pgc["responses"]["200"]["content"]
    assert any(p["name"] == "format" and sorted(p["schema"]["enum"]) == ["csv", "json"] for p in pgc["parameters"])
    assert "503" in document["paths"]["/api/catalog/pgc/{pgc}"]["get"]["responses"]


def test_the_shipped_ensemble_carries_its_calibration() -> None:
    """models/error_calibration/<version>.json exists for the ensemble shipped in models/, fitted to 68 %."""
    from training.ml.error_calibration import load

    models = Path(__file__).resolve().parents[2] / "models"
    version = json.loads((models / "manifest.json").read_text())["version"]
    model = load(models / "error_calibration" / f"{version}.json")
    assert model is not None and model.calibrated and model.version == version
    assert model.fit["coverage"] == pytest.approx(0.683, abs=0.02)
    assert model.fit["held_out"]["coverage_after"] == pytest.approx(0.683, abs=0.02) and model.inflation >= 1.0
