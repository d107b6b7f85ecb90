"""Fault tests on real PostgreSQL, Redis and Celery: every fault ends in a clear error or a retry, and no
batch item, upload or job is lost or duplicated.

Redis faults use a private ``redis-server`` (port 6390+, append-only file on, in the test's folder), so
the shared Redis is never disturbed. The Celery worker SIGKILL during *training* is issue 6's test
(``training/tests/test_resume_after_kill.py``); this module kills it during a *batch prediction*.
"""
from __future__ import annotations

import csv
import errno
import io
import json
import os
import shutil
import socket
import subprocess
import time
from collections.abc import Callable, Iterator
from pathlib import Path
from typing import Any

import numpy as np
import psutil
import psycopg
import pytest
from django.core.cache import cache
from django.core.files.uploadedfile import SimpleUploadedFile
from django.db import connection
from django.test import Client
from PIL import Image

from catalog.tests.factories import GalaxyFactory
from tests.workers import CeleryWorker, worker_env

pytestmark = pytest.mark.skipif(not os.environ.get("DATABASE_URL", "").startswith("postgres"),
                                reason="fault tests need PostgreSQL (DATABASE_URL)")


def png_bytes(seed: int = 0) -> bytes:
    buffer = io.BytesIO()
    Image.fromarray(np.random.default_rng(seed).integers(0, 255, (40, 60, 3), dtype=np.uint8)).save(buffer, "PNG")
    return buffer.getvalue()


def wait_for(predicate: Callable[[], Any], *, timeout: float, what: str, worker: CeleryWorker | None = None) -> Any:
    deadline = time.monotonic() + timeout
    while time.monotonic() < deadline:
        value = predicate()
        if value:
            return value
        time.sleep(0.1)
    raise AssertionError(f"timed out after {timeout:g} s waiting for {what}" +
                         (f"\n--- worker log ---\n{worker.log()[-4000:]}" if worker else ""))


# --- a private Redis --------------------------------------------------------------------------------------

def _free_port(start: int = 6390) -> int:
    for port in range(start, start + 50):
        with socket.socket() as sock:
            if sock.connect_ex(("127.0.0.1", port)) != 0:
                return port
    raise RuntimeError("no free port for a private redis-server")


class PrivateRedis:
    """A redis-server of our own with appendfsync always, so a restart keeps queued messages."""

    def __init__(self, folder: Path) -> None:
        self.folder, self.port = folder, _free_port()
        self.process: subprocess.Popen[bytes] | None = None
        self.url = f"redis://127.0.0.1:{self.port}/0"

    def start(self) -> None:
        self.folder.mkdir(parents=True, exist_ok=True)
        self.process = subprocess.Popen(
            ["redis-server", "--port", str(self.port), "--bind", "127.0.0.1", "--dir", str(self.folder),
             "--appendonly", "yes", "--appendfsync", "always", "--save", ""],
            stdout=(self.folder / "redis.log").open("ab"), stderr=subprocess.STDOUT)
        wait_for(self.ping, timeout=10, what="redis-server to answer")

    def ping(self) -> bool:
        import redis

        try:
            return bool(redis.Redis(port=self.port, socket_timeout=0.5).ping())
        except redis.exceptions.RedisError:
            return False

    def stop(self) -> None:
        if self.process and self.process.poll() is None:
            self.process.terminate()  # SIGTERM: redis flushes the append-only file and exits
            self.process.wait(timeout=10)

    def restart(self, down_s: float = 1.0) -> None:
        self.stop()
        time.sleep(down_s)
        self.start()


@pytest.fixture
def private_redis(tmp_path: Path) -> Iterator[PrivateRedis]:
    server = PrivateRedis(tmp_path / "redis")
    server.start()
    yield server
    server.stop()


# --- workers and batch jobs -------------------------------------------------------------------------------

def start_worker(settings: Any, tmp_path: Path, *, redis_url: str, name: str = "worker") -> CeleryWorker:
    env = {"MEDIA_ROOT": str(settings.MEDIA_ROOT), "MODEL_STORE": str(settings.MODEL_STORE), "REDIS_URL": redis_url,
           "DATABASE_URL": os.environ["DATABASE_URL"].rsplit("/", 1)[0] + "/" + connection.settings_dict["NAME"],
           "REMOTE_RESOLVERS_ENABLED": "false"}
    for key in ("SDSS_CUTOUT_URL", "LEGACY_SURVEY_CUTOUT_URL", "REMOTE_TIMEOUT_S", "REMOTE_RETRIES"):
        env[key] = str(getattr(settings, key))
    worker = CeleryWorker(env=worker_env(env), queues="predict", log_path=tmp_path / f"{name}.log")
    worker.start()
    return worker


def kill_worker_tree(worker: CeleryWorker) -> None:
    """SIGKILL the main process and its pool children at once, as an OOM killer or a lost host would."""
    assert worker.process is not None
    parent = psutil.Process(worker.process.pid)
    for process in [*parent.children(recursive=True), parent]:
        process.kill()
    worker.process.wait(timeout=10)


def send_batch(job_id: str, broker_url: str) -> None:
    """Queue run_batch_job on the private broker (the test process's own broker is the shared Redis)."""
    from inclinet_site.celery import app
    from predictions.tasks import run_batch_job

    with app.connection_for_write(broker_url) as conn:
        run_batch_job.apply_async(args=[job_id], connection=conn)


def make_batch_job(n_items: int) -> Any:
    from predictions.batch import batch_job_create

    galaxies = [GalaxyFactory(ra=10.0 + i, dec=5.0) for i in range(n_items)]
    data = ("pgc\n" + "\n".join(str(g.pgc) for g in galaxies) + "\n").encode()
    return batch_job_create(kind="csv", filename="faults.csv", data=data)


def job_state(job_id: Any) -> Any:
    from predictions.models import BatchJob

    return BatchJob.objects.get(pk=job_id)


def assert_each_item_exactly_once(job: Any, n_items: int) -> None:
    from django.core.files.storage import default_storage

    from predictions.batch import _partial_path

    with default_storage.open(_partial_path(job), "r") as handle:
        lines = [json.loads(line) for line in handle if line.strip()]
    items = [row["item"] for row in lines]
    assert len(items) == n_items and len(set(items)) == n_items, f"partial results: {items}"
    with job.result_file.open("rb") as handle:
        rows = list(csv.DictReader(io.StringIO(handle.read().decode())))
    assert [r["item"] for r in rows] == items and all(r["status"] == "success" for r in rows), rows
    assert job.done == n_items and job.failed == 0


@pytest.fixture
def slow_images(fake_services: Any, settings: Any) -> Any:
    """Image services that answer in 0.4 s, so a batch job is long enough to be interrupted."""
    fake_services.behaviours["sdss"].delay_s = 0.4
    settings.REMOTE_RETRIES = 0
    settings.REMOTE_TIMEOUT_S = 5.0
    return fake_services


@pytest.mark.integration
@pytest.mark.django_db(transaction=True)
def test_worker_sigkill_during_a_batch_prediction_resumes_without_duplicates(
        settings: Any, tmp_path: Path, private_redis: PrivateRedis, active_tiny_ensemble: Any, slow_images: Any) -> None:
    n_items = 8
    job = make_batch_job(n_items)
    worker = start_worker(settings, tmp_path, redis_url=private_redis.url, name="first")
    send_batch(str(job.id), private_redis.url)
    try:
        wait_for(lambda: job_state(job.id).done >= 2, timeout=90, what="two items done", worker=worker)
        kill_worker_tree(worker)
        killed = job_state(job.id)
        assert killed.status == "running" and killed.done < n_items
        # The restarted worker finds the orphan (its advisory lock died with the killed connection) and resumes it.
        worker = start_worker(settings, tmp_path, redis_url=private_redis.url, name="second")
        wait_for(lambda: job_state(job.id).status == "succeeded", timeout=90, what="the job to finish", worker=worker)
    finally:
        worker.stop()
    assert_each_item_exactly_once(job_state(job.id), n_items)


@pytest.mark.integration
@pytest.mark.django_db(transaction=True)
def test_redis_restart_with_tasks_queued_loses_nothing(
        settings: Any, tmp_path: Path, private_redis: PrivateRedis, active_tiny_ensemble: Any, fake_services: Any) -> None:
    n_items = 3
    job = make_batch_job(n_items)
    send_batch(str(job.id), private_redis.url)  # queued; no worker yet
    private_redis.restart()
    worker = start_worker(settings, tmp_path, redis_url=private_redis.url)
    try:
        wait_for(lambda: job_state(job.id).status == "succeeded", timeout=90, what="the queued job", worker=worker)
    finally:
        worker.stop()
    assert_each_item_exactly_once(job_state(job.id), n_items)


@pytest.mark.integration
@pytest.mark.django_db(transaction=True)
def test_redis_restart_while_a_batch_job_runs(
        settings: Any, tmp_path: Path, private_redis: PrivateRedis, active_tiny_ensemble: Any, slow_images: Any) -> None:
    n_items = 8
    job = make_batch_job(n_items)
    worker = start_worker(settings, tmp_path, redis_url=private_redis.url)
    send_batch(str(job.id), private_redis.url)
    try:
        wait_for(lambda: job_state(job.id).done >= 1, timeout=90, what="the job to start", worker=worker)
        private_redis.restart(down_s=1.5)  # broker, result backend and cache all gone for 1.5 s
        wait_for(lambda: job_state(job.id).status == "succeeded", timeout=90, what="the job to finish", worker=worker)
        # The worker reconnected: a new job on the restarted broker runs too.
        second = make_batch_job(1)
        send_batch(str(second.id), private_redis.url)
        wait_for(lambda: job_state(second.id).status == "succeeded", timeout=60, what="a job after the restart",
                 worker=worker)
    finally:
        worker.stop()
    assert_each_item_exactly_once(job_state(job.id), n_items)


@pytest.mark.django_db
def test_web_requests_survive_the_cache_going_away(settings: Any, private_redis: PrivateRedis) -> None:
    """Throttles and prediction caching read Redis on every API call; with Redis down they are misses, not 500s."""
    from django.core.cache import caches

    settings.CACHES = {"default": {**settings.CACHES["default"], "LOCATION": private_redis.url,
                                   "BACKEND": "inclinet_site.resilience.ResilientRedisCache"}}
    galaxy = GalaxyFactory()
    assert Client().get(f"/api/catalog/pgc/{galaxy.pgc}").status_code == 200
    private_redis.stop()
    try:
        answer = Client().get(f"/api/catalog/pgc/{galaxy.pgc}")
        assert answer.status_code == 200, answer.content
        assert caches["default"].get("anything", "miss") == "miss"
    finally:
        private_redis.start()


# --- PostgreSQL -------------------------------------------------------------------------------------------

def _admin_connection() -> psycopg.Connection:
    params = connection.get_connection_params()
    keep = ("host", "port", "user", "password", "dbname")
    return psycopg.connect(**{k: v for k, v in params.items() if k in keep}, autocommit=True)


def _backend_pid() -> int:
    with connection.cursor() as cursor:
        cursor.execute("SELECT pg_backend_pid()")
        return cursor.fetchone()[0]


def _terminate(pid: int) -> None:
    with _admin_connection() as admin:
        admin.execute("SELECT pg_terminate_backend(%s)", [pid])


def wsgi_get(path: str) -> tuple[int, dict[str, str], bytes]:
    """A GET through Django's real WSGIHandler in this thread: request_started/finished run
    close_old_connections exactly as under gunicorn (the test Client switches that off)."""
    from django.core.handlers.wsgi import WSGIHandler
    from django.test import RequestFactory

    environ = RequestFactory()._base_environ(PATH_INFO=path, REQUEST_METHOD="GET")
    answer: dict[str, Any] = {}

    def start_response(status: str, headers: list[tuple[str, str]]) -> None:
        answer["status"], answer["headers"] = int(status.split()[0]), dict(headers)

    result = WSGIHandler()(environ, start_response)
    try:
        body = b"".join(result)
    finally:
        result.close()  # sends request_finished
    return answer["status"], answer["headers"], body


@pytest.mark.django_db(transaction=True)
def test_postgres_connection_dropped_between_and_during_requests(settings: Any, monkeypatch: pytest.MonkeyPatch) -> None:
    assert settings.DATABASES["default"]["CONN_HEALTH_CHECKS"] is True
    assert settings.DATABASES["default"]["CONN_MAX_AGE"] > 0  # persistent connections: the case that can break
    galaxy = GalaxyFactory()
    path = f"/api/catalog/pgc/{galaxy.pgc}"
    assert wsgi_get(path)[0] == 200
    first = _backend_pid()
    _terminate(first)  # e.g. a PostgreSQL restart or failover between two requests
    assert wsgi_get(path)[0] == 200  # the health check found the connection dead and reconnected
    assert _backend_pid() != first

    import catalog.api

    real = catalog.api.galaxy_get_or_fetch_by_pgc

    def drop_then_query(**kwargs: Any) -> Any:
        _terminate(_backend_pid())  # dropped in the middle of this request, before its query
        return real(**kwargs)

    monkeypatch.setattr(catalog.api, "galaxy_get_or_fetch_by_pgc", drop_then_query)
    status, headers, body = wsgi_get(path)
    assert status == 503 and headers["Retry-After"], body
    assert json.loads(body)["status"] == "failed"
    monkeypatch.setattr(catalog.api, "galaxy_get_or_fetch_by_pgc", real)
    assert wsgi_get(path)[0] == 200


# --- image sources, model store, disk --------------------------------------------------------------------

@pytest.mark.django_db
@pytest.mark.parametrize("fault", ["timeout", "garbage", "http500"])
def test_image_source_faults_are_502_and_not_cached(fault: str, settings: Any, fake_services: Any,
                                                    active_tiny_ensemble: Any) -> None:
    settings.REMOTE_TIMEOUT_S, settings.REMOTE_RETRIES = 0.5, 0
    galaxy = GalaxyFactory()
    for name in ("sdss", "legacy"):
        behaviour = fake_services.behaviours[name]
        if fault == "timeout":
            behaviour.delay_s = 3.0
        elif fault == "garbage":
            behaviour.garbage = True
        else:
            behaviour.failures_before_success = 100
    started = time.perf_counter()
    answer = Client().get(f"/api/pgc/{galaxy.pgc}")
    assert answer.status_code == 502, answer.content
    assert answer.json()["status"] == "failed" and answer.json()["message"]
    assert time.perf_counter() - started < 5.0  # bounded by the time-out, not hanging
    for name in ("sdss", "legacy"):
        fake_services.behaviours[name].delay_s, fake_services.behaviours[name].garbage = 0.0, False
        fake_services.behaviours[name].failures_before_success = 0
    time.sleep(3.0 if fault == "timeout" else 0)  # let the fake server finish its slow answers
    recovered = Client().get(f"/api/pgc/{galaxy.pgc}")
    assert recovered.status_code == 200, recovered.content  # the failure was not cached


@pytest.mark.django_db
def test_model_store_missing_a_weights_file_is_a_clear_503(settings: Any, active_tiny_ensemble: Any) -> None:
    import predictions.inference as inference

    folder = Path(settings.MODEL_STORE) / "ensembles" / "tiny-1"
    victim = sorted(folder.glob("*.keras"))[0]
    victim.unlink()
    inference._loaded, inference._loaded_key = None, None  # a fresh process (e.g. a gunicorn worker restart)
    cache.clear()
    answer = Client().post("/api/file", {"file": SimpleUploadedFile("g.png", png_bytes(), "image/png")})
    assert answer.status_code == 503, answer.content
    body = answer.json()
    assert body["status"] == "failed" and "could not be loaded" in body["message"]
    page = Client().post("/predict/evaluate", json.dumps({"ra": "10", "dec": "5", "fov": "2"}),
                         content_type="application/json")
    assert page.status_code in (502, 503)  # never a 500
    assert Client().get("/zoo/login/").status_code == 200  # the rest of the site is unaffected


@pytest.mark.django_db
def test_disk_full_while_an_upload_is_written(settings: Any, monkeypatch: pytest.MonkeyPatch) -> None:
    from inclinet_site.resilience import AtomicFileSystemStorage

    def half_then_enospc(self: Any, content: Any, out: Any) -> None:
        data = b"".join(content.chunks())
        out.write(data[: len(data) // 2])
        raise OSError(errno.ENOSPC, "No space left on device")

    monkeypatch.setattr(AtomicFileSystemStorage, "_copy", half_then_enospc)
    answer = Client().post("/predict/upload", {"file": SimpleUploadedFile("g.png", png_bytes(), "image/png")})
    assert answer.status_code == 507, answer.content
    assert answer.json()["status"] == "failed" and "storage" in answer.json()["message"]
    uploads = Path(settings.MEDIA_ROOT) / "uploads"
    left = [p.name for p in uploads.rglob("*")] if uploads.exists() else []
    assert left == [], f"half-written files left behind: {left}"
    monkeypatch.undo()
    again = Client().post("/predict/upload", {"file": SimpleUploadedFile("g.png", png_bytes(), "image/png")})
    assert again.status_code == 200  # space back: uploads work again
    assert len(list(uploads.glob("*.jpg"))) == 1


def test_redis_server_is_available() -> None:
    """The private-Redis tests above need the redis-server binary; fail loudly rather than skip."""
    assert shutil.which("redis-server"), "install redis-server (apt-get install redis-server)"
