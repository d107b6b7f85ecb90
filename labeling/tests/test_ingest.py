"""Issue 14, point 1: real (fake-service) catalogue galaxies into the Zoo, labelled, settled, and in a snapshot.

The acceptance path: ``manage.py zoo_add_galaxies`` fetches FITS cut-outs from the local fake Legacy Survey,
stores colour and g, r, i images and queues the galaxies; volunteers measure them through the API; consensus
forms and retires them; ``training.snapshots.snapshot_build`` (issue 6's retrain snapshot) holds them. Then the
other selections, resuming, the rate limit, bad input and the staff page with its Celery task.
"""
from __future__ import annotations

import io
import random
import time

import pytest
from django.core.management import CommandError, call_command
from django.urls import reverse
from PIL import Image
from rest_framework.test import APIClient

from catalog.models import Galaxy, GalaxyImage
from catalog.tests.factories import GalaxyFactory
from labeling import ingest
from labeling.models import Consensus, ConsensusStatus, IngestJob, IngestStatus
from labeling.synthetic import place
from tests.fake_fits import FakeLegacyFitsService, FakeSkyGalaxy

from .factories import UserFactory

pytestmark = pytest.mark.django_db


@pytest.fixture
def fits_fake(settings, fake_services):  # noqa: ANN001, ANN201
    with FakeLegacyFitsService() as fake:
        fake.configure(settings)
        settings.LABELING_INGEST_IMAGE_SIZE = 256
        settings.LABELING_INGEST_REQUESTS_PER_S = 0  # no limit: fast tests (the limit has its own test)
        yield fake


def _catalogue(fits_fake, truths: list[float], *, pgc0: int = 700_000, ra0: float = 150.0) -> list[Galaxy]:  # noqa: ANN001
    galaxies = []
    for k, truth in enumerate(truths):
        ra, dec, pa = ra0 + 0.05 * k, 2.0 + 0.02 * k, (37.0 * k) % 180
        galaxies.append(GalaxyFactory(pgc=pgc0 + k, name=f"PGC{pgc0 + k}", ra=ra, dec=dec, pa=pa, d25_arcmin=1.0,
                                      labeling_priority=0.1 * k))
        fits_fake.sky.append(FakeSkyGalaxy(ra=ra, dec=dec, pa=pa, inclination=truth, d25_arcmin=1.0))
    return galaxies


def _measure(client, truth: float, rng: random.Random) -> dict:  # noqa: ANN001
    """One volunteer's pass over the two steps, placing the galaxy near ``truth``."""
    task = client.post(reverse("labeling:api-next")).json()["task"]
    perceived = truth + rng.uniform(-1.0, 1.0)
    low = min(max(5 * int(perceived // 5), 45), 85)
    step2 = client.post(reverse("labeling:api-standards", args=[task["id"]]), {"step": 2, "low": low}, format="json")
    assert step2.status_code == 200, step2.content
    left, right = place(value=perceived, standards=step2.json()["standards"])
    submitted = client.post(reverse("labeling:api-submit", args=[task["id"]]),
                            {"left_standard": left, "right_standard": right, "step1_low": low}, format="json")
    assert submitted.status_code == 200, submitted.content
    return task


def test_added_galaxies_are_labelled_settle_and_reach_a_retrain_snapshot(grid, no_gold, fits_fake) -> None:  # noqa: ANN001
    truths = [58.0, 71.0, 83.0]
    galaxies = _catalogue(fits_fake, truths)
    out = io.StringIO()
    call_command("zoo_add_galaxies", "--pgc", "700000,700001,700002,799999", "--no-progress", stdout=out)
    assert "3 added, 0 already done, 0 without images" in out.getvalue()
    job = IngestJob.objects.get()
    assert (job.status, job.total, job.added, job.not_found) == (IngestStatus.DONE, 3, 3, 1)
    assert "PGC 799999: not in the catalogue" in job.errors
    for galaxy in galaxies:
        images = {i.kind: i for i in GalaxyImage.objects.filter(galaxy=galaxy)}
        assert set(images) == {"colour", "g", "r", "i"}
        with images["colour"].file.open("rb") as handle:
            assert Image.open(handle).size == (256, 256)
        assert Consensus.objects.filter(galaxy=galaxy, retired=False).exists()

    # A rerun does nothing new: every galaxy is skipped without asking the service.
    asked = len(fits_fake.request_times)
    out = io.StringIO()
    call_command("zoo_add_galaxies", "--pgc", "700000,700001,700002", "--no-progress", stdout=out)
    assert "0 added, 3 already done" in out.getvalue() and len(fits_fake.request_times) == asked

    # Three volunteers measure every galaxy through the API; the task shows the real images (one-off URLs).
    rng = random.Random(5)
    by_id = {g.id: t for g, t in zip(galaxies, truths, strict=True)}
    for _ in range(3):
        client = APIClient()
        client.force_login(UserFactory())
        for _ in galaxies:
            task = client.post(reverse("labeling:api-next")).json()["task"]
            assert client.get(task["images"]["r"]).status_code == 200
            truth = by_id[task["galaxy"]["id"]]
            assert task["galaxy"]["name"].startswith("PGC")
            # The task is held: measuring it goes through the same lease.
            assert _measure(client, truth, rng)["id"] == task["id"]
    for galaxy, truth in zip(galaxies, truths, strict=True):
        consensus = Consensus.objects.get(galaxy=galaxy)
        assert consensus.retired and consensus.status == ConsensusStatus.ACCEPTED and consensus.n_votes == 3
        assert abs(consensus.inc - truth) <= 2.0

    from training.ml.snapshot import load_snapshot
    from training.snapshots import snapshot_build, snapshot_folder

    snapshot = snapshot_build()
    rows = load_snapshot(snapshot_folder(snapshot=snapshot))
    held = {int(i): float(inc) for i, inc in zip(rows.id, rows.inclination, strict=True)}
    assert {g.id for g in galaxies} <= held.keys()
    for galaxy in galaxies:
        assert abs(held[galaxy.id] - Consensus.objects.get(galaxy=galaxy).inc) < 0.01


def test_region_and_top_priority_choose_the_right_galaxies(fits_fake) -> None:  # noqa: ANN001
    near = _catalogue(fits_fake, [60.0, 70.0], pgc0=710_000, ra0=200.0)
    far = GalaxyFactory(pgc=710_100, ra=210.0, dec=2.0, labeling_priority=0.9)
    job = ingest.ingest_job_create(region=(200.0, 2.0, 0.5))
    assert job.galaxy_ids == [g.id for g in near]  # nearest first, the far one left out
    # Through 0h, and near a pole (where the RA window would be the whole sky).
    east, west = GalaxyFactory(ra=359.9, dec=10.0), GalaxyFactory(ra=0.2, dec=10.1)
    assert set(ingest.ingest_job_create(region=(0.05, 10.0, 0.5)).galaxy_ids) == {east.id, west.id}
    polar = GalaxyFactory(ra=90.0, dec=89.8)
    assert ingest.ingest_job_create(region=(270.0, 89.9, 0.5)).galaxy_ids == [polar.id]
    top = ingest.ingest_job_create(top=2)
    assert top.galaxy_ids[0] == far.id  # highest priority first
    ingest.ingest_job_run(job_id=job.pk)
    # Galaxies with Zoo images are no longer "unlabelled candidates".
    assert not {g.id for g in near} & set(ingest.ingest_job_create(top=50).galaxy_ids)


def test_a_galaxy_without_images_is_counted_and_the_rest_go_on(fits_fake, fake_services) -> None:  # noqa: ANN001
    galaxies = _catalogue(fits_fake, [60.0, 70.0], pgc0=720_000)
    south = GalaxyFactory(pgc=720_100, ra=151.0, dec=-70.0)
    fits_fake.dec_footprint = (-30.0, 90.0)
    for service in ("sdss", "legacy"):
        fake_services.behaviours[service].dec_footprint = (-30.0, 90.0)
    job = ingest.ingest_job_create(pgcs=[720_000, 720_100, 720_001])
    seen: list[str] = []
    job = ingest.ingest_job_run(job_id=job.pk, progress=seen.append)
    assert seen == ["added", "failed", "added"] and (job.added, job.failed) == (2, 1)
    assert job.errors and job.errors[-1].startswith("PGC 720100:")
    assert not Consensus.objects.filter(galaxy=south).exists()
    assert Consensus.objects.filter(galaxy__in=galaxies).count() == 2


def test_interrupted_run_continues(fits_fake, monkeypatch) -> None:  # noqa: ANN001
    _catalogue(fits_fake, [60.0, 65.0, 70.0], pgc0=730_000)
    job = ingest.ingest_job_create(pgcs=[730_000, 730_001, 730_002])
    real = ingest._ingest_one
    calls = []

    def dies_on_the_second(**kwargs):  # noqa: ANN003, ANN202
        calls.append(kwargs["galaxy"].pgc)
        if len(calls) == 2:
            raise RuntimeError("worker killed")
        return real(**kwargs)

    monkeypatch.setattr(ingest, "_ingest_one", dies_on_the_second)
    with pytest.raises(RuntimeError):
        ingest.ingest_job_run(job_id=job.pk)
    assert IngestJob.objects.get(pk=job.pk).status == IngestStatus.FAILED
    monkeypatch.setattr(ingest, "_ingest_one", real)
    asked = len(fits_fake.request_times)
    out = io.StringIO()
    call_command("zoo_add_galaxies", "--job", str(job.pk), "--no-progress", stdout=out)
    job.refresh_from_db()
    assert (job.status, job.added, job.skipped) == (IngestStatus.DONE, 2, 1)
    assert len(fits_fake.request_times) - asked == 2  # only the two not done were fetched


def test_requests_are_rate_limited(fits_fake, settings) -> None:  # noqa: ANN001
    settings.LABELING_INGEST_REQUESTS_PER_S = 5.0
    _catalogue(fits_fake, [60.0, 65.0, 70.0, 75.0], pgc0=740_000)
    started = time.monotonic()
    call_command("zoo_add_galaxies", "--top-priority", "4", "--no-progress", stdout=io.StringIO())
    assert time.monotonic() - started >= 3 / 5.0 - 0.05
    gaps = [b - a for a, b in zip(fits_fake.request_times, fits_fake.request_times[1:])]
    assert len(gaps) == 3 and min(gaps) >= 1 / 5.0 - 0.03


@pytest.mark.parametrize("args", [["--pgc", "abc"], ["--region", "1 2"], ["--region", "400 0 1"], ["--pgc", "9" * 30],
                                  ["--top-priority", "0"], ["--pgc", "-5"], ["--job", "999999"]])
def test_bad_command_input_is_a_clear_error(args) -> None:  # noqa: ANN001
    with pytest.raises(CommandError):
        call_command("zoo_add_galaxies", *args, "--no-progress", stdout=io.StringIO())


def test_staff_page_queues_a_task_and_shows_progress(staff, fits_fake, monkeypatch, django_capture_on_commit_callbacks) -> None:  # noqa: ANN001
    from labeling import tasks

    _catalogue(fits_fake, [60.0, 65.0], pgc0=750_000)
    sent = []
    monkeypatch.setattr(tasks.ingest_galaxies, "delay", lambda job_id: sent.append(job_id))
    url = reverse("labeling:staff-ingest")
    with django_capture_on_commit_callbacks(execute=True):
        response = staff.post(url, {"mode": "pgc", "value": "750000, 750001"})
    assert response.status_code == 302
    job = IngestJob.objects.get()
    assert sent == [job.pk] and job.status == IngestStatus.PENDING
    page = staff.get(url)
    assert page.status_code == 200 and b'http-equiv="refresh"' in page.content  # refreshes while work is left
    tasks.ingest_galaxies(job.pk)  # what the worker runs
    page = staff.get(url).content.decode()
    assert "2 / 2" in page and "Done" in page and 'http-equiv="refresh"' not in page
    for bad in ({"mode": "pgc", "value": "x,y"}, {"mode": "region", "value": "1 2"}, {"mode": "top", "value": "²"},
                {"mode": "nope", "value": "1"}, {"mode": "pgc", "value": "9" * 30}, {"mode": "top", "value": "9" * 30},
                {"mode": "region", "value": "nan 0 1"}, {"mode": "region", "value": "1 2 inf"}):
        refused = staff.post(url, bad)
        assert refused.status_code == 400 and b'role="alert"' in refused.content
    assert IngestJob.objects.count() == 1


def test_staff_pages_are_staff_only(api) -> None:  # noqa: ANN001
    assert api.get(reverse("labeling:staff-ingest")).status_code == 403
    assert api.post(reverse("labeling:staff-ingest"), {"mode": "top", "value": "5"}).status_code == 403
    assert not IngestJob.objects.exists()
