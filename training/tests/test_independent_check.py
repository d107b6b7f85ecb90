"""The independent check at promotion (training/independent_services.py): a registered ensemble judged on the
independent family through the serving path, stored on the Ensemble, shown by the staff pages and by
``build_ensemble --promote``; the axial-ratio method on the same images."""
from __future__ import annotations

import csv
import json
import math
from pathlib import Path

import pytest
from django.core.management import call_command
from django.test import Client
from django.urls import reverse

from labeling.tests.factories import UserFactory
from tests.ensembles import write_tiny_ensemble
from training.models import Ensemble
from training.registry import ensemble_register

pytestmark = pytest.mark.django_db

REASONS = {"face_on", "bright_star", "companion", "low_snr", "cut_off"}


def _candidate(settings, version: str = "cand-1") -> Ensemble:  # noqa: ANN001
    folder = settings.MODEL_STORE / "ensembles" / version
    write_tiny_ensemble(folder, version=version, families=1, flavours=2)
    manifest = json.loads((folder / "manifest.json").read_text())
    # an in-family figure as a finished build's manifest has it
    manifest["metrics"] = {"test": {"n_galaxies": 40, "ensemble_median": {"all": {"rms": 2.34, "mae": 1.8, "bias": 0.1}}}}
    (folder / "manifest.json").write_text(json.dumps(manifest))
    return ensemble_register(folder=folder)


def _rms(values: list[float]) -> float:
    return math.sqrt(sum(v * v for v in values) / len(values))


def test_service_stores_the_evaluation_and_the_axial_ratio_on_the_same_images(settings, active_tiny_ensemble,
                                                                             tmp_path: Path) -> None:  # noqa: ANN001
    from training.independent_services import ensemble_evaluate_independent

    settings.TRAINING_INDEPENDENT_N, settings.TRAINING_INDEPENDENT_REJECTS, settings.TRAINING_INDEPENDENT_SEED = 7, 5, 11
    pointer_before = (settings.MODEL_STORE / "active.json").read_text()
    candidate = _candidate(settings)

    summary = ensemble_evaluate_independent(ensemble=candidate)

    stored = Ensemble.objects.get(pk=candidate.pk).independent_evaluation
    assert stored == json.loads(json.dumps(summary))
    assert stored["version"] == "cand-1" and stored["evaluated_at"]
    assert stored["set"]["seed"] == 11 and stored["set"]["n_images"] == 12
    assert stored["set"]["n_clean"] == 7 and stored["set"]["n_rejects"] == 5
    assert stored["in_family"]["rms"] == 2.34
    clean = stored["clean"]
    assert clean["n"] == 7 and clean["ensemble"]["n"] == 7 and clean["ensemble"]["rms"] is not None
    assert clean["ensemble"]["mae"] is not None and clean["ensemble"]["bias"] is not None
    assert 0.0 <= clean["flagged_fraction"] <= 1.0
    assert stored["rejects"]["n"] == 5 and set(stored["rejects"]["by_reason"]) == REASONS
    assert 0.0 <= stored["rejects"]["recall"] <= 1.0
    assert stored["seconds"]["render"] > 0 and stored["seconds"]["evaluate"] > 0

    # Every image of the rendered set was scored, and the axial-ratio figures come from the same clean images
    # as the ensemble's: recomputed from the stored per-image results.
    folder = Path(stored["set"]["folder"])
    with (folder / "truth.csv").open(newline="") as handle:
        truth = {row["file"]: row for row in csv.DictReader(handle)}
    images = stored["images"]
    assert sorted(i["file"] for i in images) == sorted(truth)
    clean_images = [i for i in images if i["accepted"] and 45.0 <= i["truth"] <= 90.0]
    assert len(clean_images) == 7
    with_axial = [i for i in clean_images if i["axial"] is not None]
    assert with_axial, "the axial-ratio method measured none of the clean images"
    assert clean["axial_ratio"]["n"] == len(with_axial)
    assert clean["axial_ratio"]["failed"] == len(clean_images) - len(with_axial)
    assert clean["axial_ratio"]["rms"] == pytest.approx(_rms([i["axial"] - i["truth"] for i in with_axial]), abs=2e-3)
    same = clean["ensemble_where_axial_measured"]
    assert same["n"] == len(with_axial)
    assert same["rms"] == pytest.approx(_rms([i["median"] - i["truth"] for i in with_axial]), abs=2e-3)
    assert clean["axial_over_ensemble_rms"] == pytest.approx(clean["axial_ratio"]["rms"] / same["rms"])
    assert clean["ensemble"]["rms"] == pytest.approx(_rms([i["median"] - i["truth"] for i in clean_images]), abs=2e-3)

    # The candidate was judged without being made active; the set is rendered once and reused.
    assert (settings.MODEL_STORE / "active.json").read_text() == pointer_before
    again = ensemble_evaluate_independent(ensemble=candidate)
    assert again["seconds"]["render"] == 0.0 and again["set"]["folder"] == stored["set"]["folder"]
    assert again["clean"]["ensemble"]["rms"] == pytest.approx(clean["ensemble"]["rms"])


def test_a_failed_check_is_stored_and_does_not_raise(settings, monkeypatch) -> None:  # noqa: ANN001
    from training import independent_services

    candidate = _candidate(settings)

    def broken(**kwargs):  # noqa: ANN003, ANN202
        raise independent_services.IndependentCheckError("rendering the independent set failed: boom")

    monkeypatch.setattr(independent_services, "ensemble_evaluate_independent", broken)
    result = independent_services.independent_check(ensemble=candidate)
    assert "boom" in result["error"]
    assert "boom" in Ensemble.objects.get(pk=candidate.pk).independent_evaluation["error"]


FIGURES = {
    "version": "x", "evaluated_at": "2026-12-02T13:00:00+00:00",
    "set": {"seed": 2027, "n_clean": 240, "n_rejects": 80, "n_images": 320},
    "clean": {"n": 240, "ensemble": {"rms": 3.21, "mae": 2.47, "bias": -0.61, "n": 240, "failed": 0},
              "axial_ratio": {"rms": 7.65, "mae": 6.02, "bias": 3.3, "n": 236, "failed": 4},
              "ensemble_where_axial_measured": {"rms": 3.2, "n": 236},
              "axial_over_ensemble_rms": 2.39, "flagged_fraction": 0.042},
    "rejects": {"n": 80, "recall": 0.8125, "by_reason": {"face_on": {"n": 16, "recall": 0.9375},
                                                        "cut_off": {"n": 16, "recall": 0.5}}},
}


def test_staff_pages_show_the_comparison_before_promotion(settings, active_tiny_ensemble) -> None:  # noqa: ANN001
    candidate = _candidate(settings)
    Ensemble.objects.filter(pk=candidate.pk).update(independent_evaluation=FIGURES)
    active_figures = json.loads(json.dumps(FIGURES))
    active_figures["clean"]["ensemble"]["rms"] = 4.56
    Ensemble.objects.filter(pk=active_tiny_ensemble.pk).update(independent_evaluation=active_figures)
    staff = Client()
    staff.force_login(UserFactory(is_staff=True))

    html = staff.get(reverse("training:ensemble", args=[candidate.pk])).content.decode()
    area = html[html.index('id="promote-area"'):]
    area = area[:area.index("</section>")]
    assert 'id="promote"' in area  # the button sits with the figures
    for text in ("cand-1", "2.34", "3.21", "2.47", "7.65", "2.39×", "81%", "face_on 94%", "cut_off 50%", "4%",
                 "seed 2027, 320 images"):
        assert text in area, text
    assert "tiny-1" in area and "4.56" in area  # the active ensemble beside it

    listing = staff.get(reverse("training:ensembles")).content.decode()
    row = listing[listing.index(f'id="ensemble-{candidate.pk}"'):]
    row = row[:row.index("</tr>")]
    assert "3.21 / 2.47" in row and "7.65 (2.39×)" in row and "81% / 4%" in row and 'class="promote"' in row


def test_staff_page_says_when_there_is_no_evaluation_or_it_failed(settings) -> None:  # noqa: ANN001
    candidate = _candidate(settings)
    staff = Client()
    staff.force_login(UserFactory(is_staff=True))
    html = staff.get(reverse("training:ensemble", args=[candidate.pk])).content.decode()
    assert "manage.py evaluate_independent cand-1" in html
    Ensemble.objects.filter(pk=candidate.pk).update(independent_evaluation={"error": "RuntimeError: no renderer"})
    html = staff.get(reverse("training:ensemble", args=[candidate.pk])).content.decode()
    assert "independent check failed: RuntimeError: no renderer" in html
    assert "independent check failed" in staff.get(reverse("training:ensembles")).content.decode()


def _fake_build(settings):  # noqa: ANN001, ANN202
    def build(profile, folder, *, version, **kwargs):  # noqa: ANN001, ANN003, ANN202
        write_tiny_ensemble(folder, version=version, families=1, flavours=2)
        manifest = json.loads((folder / "manifest.json").read_text())
        manifest["metrics"] = {"test": {"n_galaxies": 40, "ensemble_median": {"all": {"rms": 1.23, "mae": 1.0}}}}
        (folder / "manifest.json").write_text(json.dumps(manifest))

    return build


def test_build_ensemble_promote_evaluates_and_prints_the_comparison(settings, monkeypatch,
                                                                    active_tiny_ensemble, capsys) -> None:  # noqa: ANN001
    settings.TRAINING_INDEPENDENT_N, settings.TRAINING_INDEPENDENT_REJECTS = 4, 5
    monkeypatch.setattr("training.ml.pipeline.build_ensemble", _fake_build(settings))
    call_command("build_ensemble", "--profile", "tiny", "--promote")
    out = capsys.readouterr().out
    new = Ensemble.objects.get(status=Ensemble.Status.ACTIVE)
    assert new.pk != active_tiny_ensemble.pk
    evaluation = new.independent_evaluation
    assert evaluation["set"]["n_images"] == 9 and evaluation["clean"]["ensemble"]["rms"] is not None
    assert "independent family" in out
    candidate_line = next(line for line in out.splitlines() if line.strip().startswith("candidate"))
    assert new.version in candidate_line and "1.23°" in candidate_line
    assert f"{evaluation['clean']['ensemble']['rms']:.2f}°" in candidate_line
    assert any(line.strip().startswith("active") and "tiny-1" in line for line in out.splitlines())
    # printed before the promotion
    assert out.index("independent family") < out.index("registered and promoted")


def test_build_ensemble_skip_independent(settings, monkeypatch) -> None:  # noqa: ANN001
    monkeypatch.setattr("training.ml.pipeline.build_ensemble", _fake_build(settings))
    call_command("build_ensemble", "--profile", "tiny", "--promote", "--skip-independent")
    assert Ensemble.objects.get(status=Ensemble.Status.ACTIVE).independent_evaluation == {}


def test_evaluate_independent_command(settings, capsys) -> None:  # noqa: ANN001
    candidate = _candidate(settings)
    call_command("evaluate_independent", "cand-1", "--n", "3", "--rejects", "5", "--seed", "5")
    out = capsys.readouterr().out
    stored = Ensemble.objects.get(pk=candidate.pk).independent_evaluation
    assert stored["set"] == {**stored["set"], "seed": 5, "n_images": 8}
    assert "axial RMS" in out and "cand-1" in out
    from django.core.management.base import CommandError

    with pytest.raises(CommandError):
        call_command("evaluate_independent", "active")  # nothing is active here
