"""Integration: ensemble builds on real prefork Celery workers, whose pool children are daemonic.

- ``make run``'s path, end to end (≈ 1 min): SQLite, kombu's filesystem broker, a worker with
  ``--concurrency 2``, the ``tiny`` profile queued as ``run.sh`` does; the build completes and becomes
  active. Everything runs in subprocesses with their own ``VAR_DIR``, so it needs neither Redis nor
  PostgreSQL.
- The same worker SIGKILLed in the middle of a build: the next one resumes it in the same folder.
- The soft time limit on the PostgreSQL/Redis worker of the other integration tests becomes a recorded
  failure.
"""
from __future__ import annotations

import json
import os
import sqlite3
import subprocess
import sys
import time
from pathlib import Path

import pytest

from conftest import REPO_ROOT

from .helpers import kill_tree, wait_for

pytestmark = pytest.mark.integration


def _embedded_env(var: Path) -> dict[str, str]:
    env = {**os.environ, "VAR_DIR": str(var), "DATABASE_URL": f"sqlite:///{var / 'db.sqlite3'}",
           "MODEL_STORE": str(var / "model_store"), "MEDIA_ROOT": str(var / "media"), "TF_CPP_MIN_LOG_LEVEL": "2",
           "PYTHONUNBUFFERED": "1"}
    env.pop("REDIS_URL", None)  # the filesystem broker, as `make run` without environment
    return env


def _manage(env: dict[str, str], *args: str) -> str:
    done = subprocess.run([sys.executable, "manage.py", *args], cwd=REPO_ROOT, env=env, capture_output=True,
                          text=True, timeout=180)
    assert done.returncode == 0, done.stdout + done.stderr
    return done.stdout


def _start_worker(env: dict[str, str], log: Path) -> subprocess.Popen[bytes]:
    """A worker as `make run` starts it: prefork, two children, every queue."""
    with log.open("ab") as out:
        return subprocess.Popen(
            [sys.executable, "-m", "celery", "-A", "inclinet_site", "worker", "-Q", "default,train,predict",
             "--concurrency", "2", "--pool", "prefork", "-n", f"build-{time.time_ns()}@%h", "--loglevel", "INFO"],
            cwd=REPO_ROOT, env=env, stdout=out, stderr=subprocess.STDOUT)


def _stop(worker: subprocess.Popen[bytes]) -> None:
    worker.terminate()
    try:
        worker.wait(timeout=30)
    except subprocess.TimeoutExpired:
        kill_tree(worker.pid)
        worker.wait()


def _build_row(var: Path) -> dict | None:
    with sqlite3.connect(var / "db.sqlite3") as db:
        db.row_factory = sqlite3.Row
        row = db.execute("select * from training_retrainjob where kind = 'build'").fetchone()
    return dict(row) if row else None


def test_make_run_path_builds_tiny_on_a_prefork_filesystem_worker(tmp_path: Path) -> None:
    var = tmp_path / "var"
    env = _embedded_env(var)
    _manage(env, "migrate", "--noinput", "-v0")
    log = tmp_path / "worker.log"
    worker = _start_worker(env, log)
    try:
        queued = _manage(env, "build_ensemble", "--profile", "tiny", "--promote", "--if-none-active", "--on-worker")
        assert "is queued" in queued

        def finished() -> dict | None:
            row = _build_row(var)
            return row if row and row["status"] in ("done", "failed") else None

        row = wait_for(finished, timeout=240, what="the tiny build on the worker",
                       log=lambda: log.read_text(errors="replace"), interval=1.0)
        status, progress, stage, error, params = (row[k] for k in ("status", "progress", "stage", "error", "params"))
        assert status == "done", error + "\n" + log.read_text(errors="replace")[-4000:]
        assert progress == 1.0 and "promoted" in stage
        with sqlite3.connect(var / "db.sqlite3") as db:
            active = db.execute("select version, folder from training_ensemble where status = 'active'").fetchall()
        assert len(active) == 1 and active[0][0] in params
        assert (var / "model_store" / active[0][1] / "manifest.json").exists()
        assert "daemonic processes are not allowed" not in log.read_text(errors="replace")
        # judged on the independent family inside the prefork child before promotion (conftest: 6 + 5 images)
        with sqlite3.connect(var / "db.sqlite3") as db:
            (independent,) = db.execute("select independent_evaluation from training_ensemble "
                                        "where status = 'active'").fetchone()
        independent = json.loads(independent)
        assert independent["set"]["n_images"] == 11, independent
        assert independent["clean"]["ensemble"]["rms"] is not None and independent["clean"]["axial_ratio"]["n"] >= 0
        # Queued again (a restarted `make run`): an active ensemble, so nothing new is built.
        again = _manage(env, "build_ensemble", "--profile", "tiny", "--promote", "--if-none-active", "--on-worker")
        assert "already active" in again
        with sqlite3.connect(var / "db.sqlite3") as db:
            assert db.execute("select count(*) from training_retrainjob where kind = 'build'").fetchone()[0] == 1
    finally:
        _stop(worker)


def test_a_build_on_a_killed_worker_resumes_in_its_folder_on_the_next_worker(tmp_path: Path) -> None:
    """SIGKILL of the worker and its pool children while the second member trains (as closing `make run`
    hard would); the next worker's start-up sweep re-sends the build, which resumes in the same folder: the
    first member is not trained again."""
    var = tmp_path / "var"
    env = _embedded_env(var)
    _manage(env, "migrate", "--noinput", "-v0")
    log = tmp_path / "worker.log"
    worker = _start_worker(env, log)
    try:
        _manage(env, "build_ensemble", "--profile", "tiny", "--promote", "--on-worker")
        row = wait_for(lambda: (r := _build_row(var)) and r["stage"].startswith("training compact1") and r,
                       timeout=240, what="the second member's training", log=lambda: log.read_text(errors="replace"),
                       interval=0.2)
        kill_tree(worker.pid)
        worker.wait(timeout=10)
        folder = var / "model_store" / "ensembles" / json.loads(row["params"])["version"]
        first_state = folder / "runs" / "compact" / "state.json"
        stamp = first_state.stat().st_mtime_ns
        assert _build_row(var)["status"] == "running"  # nobody told the database
        worker = _start_worker(env, log)
        done = wait_for(lambda: (r := _build_row(var)) and r["status"] in ("done", "failed") and r, timeout=240,
                        what="the resumed build", log=lambda: log.read_text(errors="replace"), interval=1.0)
        assert done["status"] == "done", done["error"]
        sessions = json.loads(done["sessions"])
        assert len(sessions) == 2 and sessions[0]["worker"] != sessions[1]["worker"]
        assert first_state.stat().st_mtime_ns == stamp  # resumed from its checkpoint
        assert sorted(p.name for p in (var / "model_store" / "ensembles").iterdir()) == [folder.name]
        with sqlite3.connect(var / "db.sqlite3") as db:
            assert db.execute("select version from training_ensemble where status = 'active'").fetchall() == [
                (folder.name,)]
    finally:
        _stop(worker)


@pytest.mark.django_db(transaction=True)
def test_the_soft_time_limit_on_a_worker_is_a_recorded_failure(celery_worker_process, settings) -> None:  # noqa: ANN001
    from training.builds import build_folder, ensemble_build_queue
    from training.models import RetrainJob

    settings.TRAINING_BUILD_TIME_LIMITS_S = {"tiny": 2}  # the sender puts the limits into the message
    job = ensemble_build_queue(profile="tiny", promote=False, if_none_active=False)
    wait_for(lambda: RetrainJob.objects.filter(pk=job.pk, status__in=["done", "failed"]).exists(), timeout=120,
             what="the build to stop", log=celery_worker_process.log)
    job.refresh_from_db()
    assert job.status == "failed", job.stage
    assert "Stopped at the time limit" in job.error and "2 s" in job.error
    assert len(job.sessions) == 1
    folder = build_folder(job=job)
    assert not folder.exists() or any(p.is_file() for p in folder.rglob("*"))  # never an empty folder
