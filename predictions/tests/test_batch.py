"""Batch jobs through a real Celery worker on Redis: CSV of PGCs/names and a zip of images."""
import csv
import io
import json
import time
import zipfile

import pytest
from django.urls import reverse

from predictions.batch import BatchInputError, batch_job_create
from tests.fake_services import galaxy_jpeg


def wait_for(client, url: str, timeout: float = 120) -> dict:  # noqa: ANN001
    deadline = time.monotonic() + timeout
    while time.monotonic() < deadline:
        body = client.get(url).json()
        if body["state"] in ("succeeded", "failed"):
            return body
        time.sleep(0.5)
    raise AssertionError(f"batch job did not finish: {body}")


@pytest.mark.integration
@pytest.mark.django_db(transaction=True)
def test_csv_batch_runs_on_a_real_worker(client, catalogue, fake_services, active_tiny_ensemble, celery_worker_process) -> None:
    upload = io.BytesIO(b"pgc\n5818\nM33\n999999999\nNGC 4826\n3098765\n")  # the last: HyperLEDA alone knows it
    upload.name = "galaxies.csv"
    response = client.post(reverse("api-batch"), {"file": upload})
    assert response.status_code == 202
    job = response.json()
    assert job["total"] == 5 and job["state"] == "queued"
    done = wait_for(client, reverse("api-batch-detail", args=[job["id"]]))
    assert done["state"] == "succeeded", celery_worker_process.log()[-3000:]
    assert (done["done"], done["failed"], done["progress"]) == (5, 1, 1.0)
    rows = list(csv.DictReader(io.StringIO(b"".join(client.get(done["result_csv"]).streaming_content).decode())))
    assert [row["status"] for row in rows] == ["success", "success", "failed", "success", "success"]
    assert rows[4]["pgc"] == "3098765"
    assert rows[0]["pgc"] == "5818" and 45 <= float(rows[0]["inclination_median"]) <= 90
    assert rows[0]["pa_source"] == "catalogue" and 0 <= float(rows[0]["axial_ratio_inclination"]) <= 90
    assert "Could not find PGC999999999" in rows[2]["message"]
    results = json.loads(b"".join(client.get(done["result_json"]).streaming_content))
    assert results[0]["inclinations"]["summary"]["median"] == float(rows[0]["inclination_median"])


@pytest.mark.integration
@pytest.mark.django_db(transaction=True)
def test_zip_batch_runs_on_a_real_worker(client, active_tiny_ensemble, celery_worker_process) -> None:
    buffer = io.BytesIO()
    with zipfile.ZipFile(buffer, "w") as archive:
        archive.writestr("a.jpg", galaxy_jpeg(200, 150))
        archive.writestr("sub/b.jpg", galaxy_jpeg(120, 120, axis_ratio=0.2))
        archive.writestr("broken.png", b"not really a png")
        archive.writestr("readme.txt", b"ignored")
    buffer.seek(0)
    buffer.name = "images.zip"
    job = client.post(reverse("api-batch"), {"file": buffer}).json()
    assert job["total"] == 3
    done = wait_for(client, reverse("api-batch-detail", args=[job["id"]]))
    assert (done["state"], done["done"], done["failed"]) == ("succeeded", 3, 1), celery_worker_process.log()[-3000:]


@pytest.mark.django_db
@pytest.mark.parametrize(("kind", "data", "message"), [
    ("csv", b"", "holds no PGC numbers or names"),
    ("csv", b"\xff\xfe\x00bad", "UTF-8"),
    ("zip", b"not a zip", "not a valid zip"),
    ("pdf", b"x", "Unknown batch kind"),
])
def test_bad_batch_uploads_are_refused(kind: str, data: bytes, message: str) -> None:
    with pytest.raises(BatchInputError, match=message):
        batch_job_create(kind=kind, filename="x", data=data)


@pytest.mark.django_db
def test_zip_with_path_traversal_is_refused(client) -> None:
    buffer = io.BytesIO()
    with zipfile.ZipFile(buffer, "w") as archive:
        archive.writestr("../../etc/evil.jpg", galaxy_jpeg(32, 32))
    buffer.seek(0)
    buffer.name = "evil.zip"
    response = client.post(reverse("api-batch"), {"file": buffer})
    assert response.status_code == 400 and "may not leave the archive" in response.json()["message"]


@pytest.mark.django_db
def test_unknown_batch_is_404(client) -> None:
    response = client.get(reverse("api-batch-detail", args=["00000000-0000-0000-0000-000000000000"]))
    assert response.status_code == 404 and response.json()["status"] == "failed"


@pytest.mark.django_db
@pytest.mark.parametrize("kind", ["", "pdf"])
def test_batch_kind_outside_the_documented_choices_is_400(client, kind: str) -> None:
    buffer = io.BytesIO(b"pgc\n5818\n")
    buffer.name = "list.csv"
    response = client.post(reverse("api-batch"), {"file": buffer, "kind": kind})
    assert response.status_code == 400 and "kind must be 'csv' or 'zip'" in response.json()["message"]
