"""Serving combines the physical reject checks with the reject networks: the summary's median is the larger of
the two, the networks' own stays beside it, and every cause that fired is reported with its reason."""
from __future__ import annotations

import io

import numpy as np
import pytest
from PIL import Image

from predictions.services import image_check_fields, prediction_for_upload
from training.ml.image_checks import CALIBRATION
from training.ml.tests.test_image_checks import disk_image, pad_left

pytestmark = pytest.mark.django_db


def networks(median: float) -> dict:
    return {"model4-binary": median, "summary": {"mean": median, "median": median, "stdev": 0.0}}


def test_a_cut_off_galaxy_is_rejected_by_its_check_with_the_reason() -> None:
    rejection = networks(3.0)
    fields, alarms = image_check_fields(pad_left(disk_image(), 40), rejection)
    assert set(fields["reject_checks"]) == set(CALIBRATION)
    assert fields["reject_checks"]["cut_off"] >= 50.0
    assert [c["reason"] for c in fields["reject_reasons"]] == ["cut_off"]
    assert rejection["summary"]["median"] == pytest.approx(fields["reject_checks"]["cut_off"], abs=0.05)
    assert rejection["summary"]["networks_median"] == 3.0
    assert rejection["model4-binary"] == 3.0  # the members stay the networks'
    assert len(alarms) == 1 and "edge" in alarms[0]


def test_a_clean_galaxy_keeps_the_networks_figure() -> None:
    rejection = networks(72.0)
    fields, alarms = image_check_fields(disk_image(), rejection)
    assert max(fields["reject_checks"].values()) < 50.0
    assert rejection["summary"]["median"] == 72.0 and rejection["summary"]["networks_median"] == 72.0
    assert fields["reject_reasons"] == [{"reason": "networks", "likelihood": 72.0, "detail": "the reject networks"}]
    assert alarms == []


def test_the_upload_path_reports_the_checks(active_tiny_ensemble, settings, tmp_path) -> None:  # noqa: ANN001
    settings.MEDIA_ROOT = str(tmp_path)
    buffer = io.BytesIO()
    Image.fromarray(pad_left(disk_image(), 40)).save(buffer, format="PNG")
    body = prediction_for_upload(data=buffer.getvalue())
    summary = body["rejection_likelihood"]["summary"]
    assert set(body["reject_checks"]) == set(CALIBRATION)
    assert summary["median"] == pytest.approx(max([summary["networks_median"], *body["reject_checks"].values()]),
                                              abs=0.05)
    assert set(body["rejection_likelihood"]) == {"model4-binary", "model5-binary", "model6-binary", "summary"}
    fired = {c["reason"] for c in body["reject_reasons"]}
    assert fired == {r for r, v in body["reject_checks"].items() if v >= 50.0} | (
        {"networks"} if summary["networks_median"] >= 50.0 else set())
    assert np.isfinite(summary["median"])
