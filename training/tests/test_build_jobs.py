"""Ensemble builds as jobs (``training.builds``): a stable folder per build that a resumed build
reuses, the one-running-build lock, dead owners, time limits recorded as failures, and the staff page
showing a build and its failure."""
from __future__ import annotations

import json
import multiprocessing
import os
import signal
import socket
import subprocess
import time
from datetime import timedelta
from pathlib import Path
from types import SimpleNamespace

import pytest
from celery.exceptions import SoftTimeLimitExceeded
from django.db import IntegrityError, transaction
from django.test import Client
from django.urls import reverse
from django.utils import timezone

from labeling.tests.factories import UserFactory
from training import builds
from training.builds import (BuildBusy, build_folder, ensemble_build_claim, ensemble_build_create,
                                     ensemble_build_execute, ensemble_build_reopen, ensemble_builds_requeue_orphans)
from training.models import Ensemble, RetrainJob

pytestmark = pytest.mark.django_db(transaction=True)  # the heartbeat thread has its own connection


@pytest.fixture(autouse=True)
def _no_messages(monkeypatch: pytest.MonkeyPatch) -> list[int]:
    """Record the build messages the services would send instead of sending them."""
    sent: list[int] = []
    monkeypatch.setattr(builds, "_send", sent.append)
    return sent


def _dead_pid() -> int:
    child = multiprocessing.get_context("spawn").Process(target=int)
    child.start()
    child.join()
    return child.pid


def _hold(job: RetrainJob, *, pid: int, ago_s: float = 0.0, started_ago_s: float | None = None) -> None:
    """Make ``job`` a running build owned by ``pid`` on this host, last heard from ``ago_s`` seconds ago."""
    beat = timezone.now() - timedelta(seconds=ago_s)
    started = timezone.now() - timedelta(seconds=started_ago_s if started_ago_s is not None else ago_s + 1)
    RetrainJob.objects.filter(pk=job.pk).update(status="running", worker=f"{socket.gethostname()}:{pid}",
                                                heartbeat_at=beat, sessions=[{"started": started.isoformat()}])


def test_the_version_and_folder_follow_the_job_and_a_failure_leaves_no_empty_folder(monkeypatch, settings) -> None:  # noqa: ANN001
    job = ensemble_build_create(profile="tiny")
    assert job.status == "queued" and job.kind == "build"
    assert job.params["version"] == f"tiny-{job.pk}-{job.key.hex[:8]}"
    assert build_folder(job=job) == Path(settings.MODEL_STORE) / "ensembles" / job.params["version"]

    def fails_at_once(profile, out, **kwargs):  # noqa: ANN001, ANN003, ANN202 - as the daemonic-pool bug did
        out.mkdir(parents=True, exist_ok=True)
        raise AssertionError("daemonic processes are not allowed to have children")

    monkeypatch.setattr("training.ml.pipeline.build_ensemble", fails_at_once)
    with pytest.raises(AssertionError):
        ensemble_build_execute(job_id=job.pk, key=str(job.key))
    job.refresh_from_db()
    assert job.status == "failed"
    assert "daemonic processes are not allowed to have children" in job.error
    assert not build_folder(job=job).exists()  # nothing was written, so nothing is left behind
    # A redelivered message for the failed build does nothing.
    assert ensemble_build_execute(job_id=job.pk, key=str(job.key))["skipped"]


def test_the_soft_time_limit_becomes_a_recorded_failure(monkeypatch) -> None:  # noqa: ANN001
    job = ensemble_build_create(profile="tiny")

    def runs_too_long(profile, out, **kwargs):  # noqa: ANN001, ANN003, ANN202
        (out / "runs").mkdir(parents=True)
        (out / "runs" / "partial.txt").write_text("a checkpoint")
        raise SoftTimeLimitExceeded()

    monkeypatch.setattr("training.ml.pipeline.build_ensemble", runs_too_long)
    with pytest.raises(SoftTimeLimitExceeded):
        ensemble_build_execute(job_id=job.pk, key=str(job.key))
    job.refresh_from_db()
    assert job.status == "failed"
    assert "time limit" in job.error and "900 s" in job.error and f"--resume {job.pk}" in job.error
    assert (build_folder(job=job) / "runs" / "partial.txt").exists()  # kept for a resume


def test_a_soft_time_limit_that_a_library_swallowed_still_stops_the_build(monkeypatch) -> None:  # noqa: ANN001
    """Celery's soft limit is a signal raising in whatever code runs; a library's ``except Exception`` can eat it.
    The next progress report after the limit raises it again, so the build does not run on to the hard limit."""
    job = ensemble_build_create(profile="tiny")
    reports: list[int] = []

    def swallows_the_signal(profile, out, *, progress, **kwargs):  # noqa: ANN001, ANN003, ANN202
        try:
            raise SoftTimeLimitExceeded()  # as the signal handler does, inside an optional import
        except Exception:  # noqa: BLE001, S110 - what the library does
            pass
        time.sleep(0.3)
        for epoch in range(1, 4):
            reports.append(epoch)
            progress("inclination-0-0", SimpleNamespace(epoch=epoch, steps=1, step=1, phase="epoch_end"))

    monkeypatch.setattr("training.ml.pipeline.build_ensemble", swallows_the_signal)
    with pytest.raises(SoftTimeLimitExceeded):
        ensemble_build_execute(job_id=job.pk, key=str(job.key), soft_time_limit=0.2)
    job.refresh_from_db()
    assert reports == [1]  # stopped at the first report after the limit
    assert job.status == "failed" and "Stopped at the time limit" in job.error


def test_a_second_build_waits_while_one_runs(_no_messages) -> None:  # noqa: ANN001
    first, second = ensemble_build_create(profile="tiny"), ensemble_build_create(profile="quick")
    _hold(first, pid=os.getppid())  # alive, and not this process
    with pytest.raises(BuildBusy) as busy:
        ensemble_build_claim(job_id=second.pk, key=str(second.key))
    assert busy.value.running_id == first.pk
    second.refresh_from_db()
    assert second.status == "queued" and second.stage == f"waiting for build #{first.pk} to finish"
    # The database itself refuses a second running build (partial unique index), whatever the code does.
    with pytest.raises(IntegrityError), transaction.atomic():
        RetrainJob.objects.filter(pk=second.pk).update(status="running")
    # A duplicate message for the running build is a no-op: its owner is alive.
    assert ensemble_build_claim(job_id=first.pk, key=str(first.key)) is None
    # A message with another key (a database that was reset) is ignored.
    assert ensemble_build_claim(job_id=second.pk, key="00000000-0000-0000-0000-000000000000") is None


def test_a_dead_owner_frees_the_lock_and_its_build_is_requeued(_no_messages) -> None:  # noqa: ANN001
    first, second = ensemble_build_create(profile="tiny"), ensemble_build_create(profile="tiny")
    _hold(first, pid=_dead_pid())
    claimed = ensemble_build_claim(job_id=second.pk, key=str(second.key))
    assert claimed is not None and claimed.status == "running"
    first.refresh_from_db()
    assert first.status == "queued" and "died" in first.stage
    assert _no_messages == [first.pk]  # sent again: it resumes once this one is done
    assert len(claimed.sessions) == 1 and claimed.worker.endswith(f":{os.getpid()}")


def test_a_killed_owner_left_as_a_zombie_counts_as_dead(_no_messages) -> None:  # noqa: ANN001
    """In a container whose PID 1 reaps no orphans, a SIGKILLed pool child stays a zombie; kill(pid, 0)
    still succeeds on it, and the next worker's sweep must not wait for TRAINING_STALE_S."""
    zombie = subprocess.Popen(["sleep", "60"])
    try:
        zombie.send_signal(signal.SIGKILL)
        deadline = time.monotonic() + 5
        while Path(f"/proc/{zombie.pid}/stat").read_text().rpartition(")")[2].split()[0] != "Z":
            assert time.monotonic() < deadline, "the child never became a zombie"
            time.sleep(0.01)
        job = ensemble_build_create(profile="tiny")
        _hold(job, pid=zombie.pid, ago_s=1)  # heartbeat fresh: only the pid tells it is dead
        assert ensemble_builds_requeue_orphans() == [job.pk]
    finally:
        zombie.wait()


def test_the_sweep_resumes_dead_builds_and_fails_those_past_their_limits(_no_messages, settings) -> None:  # noqa: ANN001
    settings.TRAINING_BUILD_TIME_LIMITS_S = {"tiny": 600}
    resumable, too_long, too_often, alive = (ensemble_build_create(profile="tiny") for _ in range(4))
    dead = _dead_pid()
    # Only one build may be running at a time in the database, so each is set up and swept in turn.
    _hold(resumable, pid=dead, ago_s=5)
    assert ensemble_builds_requeue_orphans() == [resumable.pk]
    assert _no_messages == [resumable.pk]
    resumable.refresh_from_db()
    assert resumable.status == "queued"
    RetrainJob.objects.filter(pk=resumable.pk).update(status="done")

    _hold(too_long, pid=dead, ago_s=1, started_ago_s=700)  # killed by the hard limit
    assert ensemble_builds_requeue_orphans() == []
    too_long.refresh_from_db()
    assert too_long.status == "failed" and "time limit" in too_long.error

    _hold(too_often, pid=dead, ago_s=5)
    RetrainJob.objects.filter(pk=too_often.pk).update(sessions=[{"started": timezone.now().isoformat()}] * 3)
    assert ensemble_builds_requeue_orphans() == []
    too_often.refresh_from_db()
    assert too_often.status == "failed" and "died 3 times" in too_often.error

    _hold(alive, pid=os.getppid(), ago_s=5)
    assert ensemble_builds_requeue_orphans() == []
    alive.refresh_from_db()
    assert alive.status == "running"


def test_messages_carry_the_profiles_time_limits(monkeypatch, settings) -> None:  # noqa: ANN001
    from celery import Task

    from training.tasks import build_ensemble

    settings.TRAINING_BUILD_TIME_LIMITS_S = {"tiny": 100, "default": 5000}
    sent = []
    monkeypatch.setattr(Task, "apply_async", lambda self, args=None, kwargs=None, **options: sent.append(options))
    build_ensemble.delay("tiny")
    build_ensemble.apply_async(kwargs={"profile": "full"})
    build_ensemble.apply_async(kwargs={"profile": "tiny"}, soft_time_limit=7, time_limit=9)
    assert [(o["soft_time_limit"], o["time_limit"]) for o in sent] == [(100, 400), (5000, 5500), (7, 9)]


def test_staff_page_shows_a_failed_build_with_its_error(monkeypatch) -> None:  # noqa: ANN001
    job = ensemble_build_create(profile="tiny")
    monkeypatch.setattr("training.ml.pipeline.build_ensemble",
                        lambda *a, **k: (_ for _ in ()).throw(RuntimeError("GalSim could not draw galaxy 17")))
    with pytest.raises(RuntimeError):
        ensemble_build_execute(job_id=job.pk, key=str(job.key))
    staff = Client()
    staff.force_login(UserFactory(is_staff=True))
    page = staff.get(reverse("training:dashboard"))
    assert page.status_code == 200
    html = page.content.decode()
    assert f'id="job-{job.pk}"' in html
    assert f"Build #{job.pk} · tiny · failed" in html
    assert "RuntimeError: GalSim could not draw galaxy 17" in html
    jobs = staff.get(reverse("training:api-jobs")).json()["jobs"]
    build = next(j for j in jobs if j["id"] == job.pk)
    assert build["kind"] == "build" and build["status"] == "failed" and build["version"] == job.params["version"]
    assert "GalSim could not draw galaxy 17" in build["error"]
    volunteer = Client()
    volunteer.force_login(UserFactory())
    assert volunteer.get(reverse("training:dashboard")).status_code == 403


def test_a_build_reports_progress_resumes_from_its_checkpoints_and_promotes(monkeypatch, capsys) -> None:  # noqa: ANN001
    """A real tiny build: the first attempt dies while training the second member; resumed, it keeps the
    first member's checkpoint (not trained again), finishes in the same folder and is promoted."""
    from training.ml import pipeline

    job = ensemble_build_create(profile="tiny", promote=True)
    real_train = pipeline.train
    calls = {"n": 0}
    seen: list[tuple[str, float]] = []
    real_write = builds._Reporter.write

    def write(self, **kwargs):  # noqa: ANN001, ANN003, ANN202 - record what the staff page would have shown
        seen.append((self.stage, self.fraction))
        return real_write(self, **kwargs)

    def dies_on_second_member(*args, **kwargs):  # noqa: ANN002, ANN003, ANN202
        calls["n"] += 1
        if calls["n"] == 2:
            raise RuntimeError("worker lost")
        return real_train(*args, **kwargs)

    monkeypatch.setattr(builds._Reporter, "write", write)
    monkeypatch.setattr(pipeline, "train", dies_on_second_member)
    monkeypatch.setattr("training.dispatch.catalogue_rescore", lambda: None)  # no broker message
    with pytest.raises(RuntimeError):
        ensemble_build_execute(job_id=job.pk, key=str(job.key))
    job.refresh_from_db()
    assert job.status == "failed" and job.stage.startswith("training compact1")
    assert 0.08 < job.progress < 0.5
    first_state = build_folder(job=job) / "runs" / "compact" / "state.json"
    stamp = first_state.stat().st_mtime_ns
    assert json.loads(first_state.read_text())["epoch"] == 1

    monkeypatch.setattr(pipeline, "train", real_train)
    ensemble_build_reopen(job_id=job.pk)
    result = ensemble_build_execute(job_id=job.pk, key=str(job.key))
    job.refresh_from_db()
    assert job.status == "done", job.error
    assert job.progress == 1.0 and "promoted" in job.stage
    assert first_state.stat().st_mtime_ns == stamp  # resumed from its checkpoint, not trained again
    assert len(job.sessions) == 2
    assert result["version"] == job.params["version"] == job.ensemble.version
    assert Ensemble.objects.get(status="active").version == job.params["version"]
    fractions = [f for _, f in seen]
    assert any(stage.startswith("evaluating") for stage, _ in seen)
    assert any(stage.startswith("independent check") for stage, _ in seen)
    # judged on the independent family (conftest: 6 + 5 images) before it was promoted
    assert job.ensemble.independent_evaluation["set"]["n_images"] == 11
    assert job.ensemble.independent_evaluation["clean"]["ensemble"]["n"] == 6
    assert fractions[-1] == 1.0


def test_queueing_reuses_an_unfinished_build_and_skips_when_one_is_active(_no_messages, settings) -> None:  # noqa: ANN001
    from training.builds import ensemble_build_queue
    from tests.ensembles import write_tiny_ensemble
    from training.registry import ensemble_promote, ensemble_register

    job = ensemble_build_queue(profile="tiny")
    assert job is not None and _no_messages == [job.pk]
    assert ensemble_build_queue(profile="tiny").pk == job.pk  # queued again (a restarted `make run`): the same job
    _hold(job, pid=os.getppid())
    assert ensemble_build_queue(profile="tiny").pk == job.pk
    assert _no_messages == [job.pk, job.pk]  # a live owner runs it: not sent a third time
    _hold(job, pid=_dead_pid())
    assert ensemble_build_queue(profile="tiny").pk == job.pk and _no_messages[-1] == job.pk  # resumed
    RetrainJob.objects.filter(pk=job.pk).update(status="done")
    write_tiny_ensemble(settings.MODEL_STORE / "ensembles" / "v1", version="v1", families=1, flavours=2)
    ensemble_promote(ensemble=ensemble_register(folder=settings.MODEL_STORE / "ensembles" / "v1"))
    assert ensemble_build_queue(profile="tiny", if_none_active=True) is None
    assert RetrainJob.objects.filter(kind="build").count() == 1
