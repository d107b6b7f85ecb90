"""The README's `make run` path, end to end, as a new user meets it.

A clean copy of the tree runs ``scripts/run.sh`` on the embedded defaults (SQLite, the filesystem Celery
broker, no DATABASE_URL / REDIS_URL / DEBUG in the environment) on a free port. Then, over HTTP only:
``/healthz`` says "ok" with an active model, a volunteer signs up through the form, classifies a galaxy
that is not a gold standard through the calls ``zoo.js`` makes, ``/api/file`` answers a prediction,
``/api/docs/`` lists the operations in Chromium without any external request, and the script stops
cleanly on SIGTERM.

The copy shares this checkout's ``.venv`` (what ``make run`` would have installed) so the test measures
the platform, not the package mirror. It installs the ensemble shipped under ``models/``; with nothing
shipped it builds the ``tiny`` profile on the worker (``BUILD_PROFILE``), so it fits in CI's time either way.
"""
from __future__ import annotations

import io
import json
import os
import re
import shutil
import signal
import sqlite3
import subprocess
import time
from pathlib import Path
from urllib.parse import urlparse

import numpy as np
import pytest
import requests
from PIL import Image

from tests.ports import free_port

REPO_ROOT = Path(__file__).resolve().parent.parent
pytestmark = [pytest.mark.integration]

# Environment a new user's shell would not have: the test suite's own services and modes.
_SUITE_ONLY_ENV = ("DATABASE_URL", "REDIS_URL", "DEBUG", "DJANGO_SETTINGS_MODULE", "VAR_DIR", "MEDIA_ROOT",
                   "MODEL_STORE", "SECRET_KEY", "PYTEST_CURRENT_TEST", "PORT", "HOST", "WEBROOT")


def _clean_copy(destination: Path) -> None:
    """Tracked and untracked-but-not-ignored files: what a fresh clone of this working tree holds."""
    listed = subprocess.run(["git", "ls-files", "-z", "--cached", "--others", "--exclude-standard"],
                            cwd=REPO_ROOT, check=True, capture_output=True).stdout.decode().split("\0")
    for name in filter(None, listed):
        source = REPO_ROOT / name
        if source.is_file():
            (destination / name).parent.mkdir(parents=True, exist_ok=True)
            shutil.copy2(source, destination / name)
    (destination / ".venv").symlink_to(REPO_ROOT / ".venv")


def _wait_for(predicate, *, timeout: float, what: str, log: Path):  # noqa: ANN001, ANN202
    deadline = time.monotonic() + timeout
    last = None
    while time.monotonic() < deadline:
        try:
            last = predicate()
            if last:
                return last
        except requests.RequestException as exc:
            last = exc
        time.sleep(1.0)
    logs = "\n".join(f"--- {p.name}\n{p.read_text(errors='replace')[-4000:]}" for p in sorted(log.glob("*.log")))
    raise AssertionError(f"Timed out after {timeout:.0f}s waiting for {what} (last: {last!r}).\n{logs}")


def _galaxy_png() -> bytes:
    """An inclined exponential disk, major axis at 35° (not horizontal), on a noisy sky."""
    rng = np.random.default_rng(3)
    y, x = np.mgrid[-96:96, -96:96].astype(float)
    theta = np.radians(35.0)
    u, v = x * np.cos(theta) + y * np.sin(theta), -x * np.sin(theta) + y * np.cos(theta)
    disk = np.exp(-np.hypot(u / 28.0, v / 9.0))
    pixels = np.clip(20 + 220 * disk + rng.normal(0, 3, disk.shape), 0, 255).astype(np.uint8)
    buffer = io.BytesIO()
    Image.fromarray(np.stack([pixels] * 3, axis=-1)).save(buffer, format="PNG")
    return buffer.getvalue()


@pytest.fixture
def running_platform(tmp_path: Path, page):  # noqa: ANN001, ANN201
    tree = tmp_path / "inclinet"
    tree.mkdir()
    _clean_copy(tree)
    port = free_port()
    env = {key: value for key, value in os.environ.items() if key not in _SUITE_ONLY_ENV}
    env.update({"PORT": str(port), "HOST": "127.0.0.1", "BUILD_PROFILE": "tiny"})
    log_dir = tree / "var" / "log"
    started = time.monotonic()
    process = subprocess.Popen(["bash", "scripts/run.sh"], cwd=tree, env=env, stdout=(tmp_path / "run.out").open("w"),
                               stderr=subprocess.STDOUT, start_new_session=True)
    try:
        yield {"tree": tree, "url": f"http://127.0.0.1:{port}/", "process": process, "logs": log_dir,
               "started": started, "out": tmp_path / "run.out"}
    finally:
        if process.poll() is None:
            os.killpg(process.pid, signal.SIGKILL)
            process.wait()


def _healthy_with_both_workers(url: str, logs: Path, started: float) -> None:
    def health() -> dict | None:
        response = requests.get(url + "healthz", timeout=10)
        body = response.json()
        return body if body["status"] == "ok" and body["checks"]["active_model"]["ok"] else None

    body = _wait_for(health, timeout=420, what="/healthz to say ok with an active model", log=logs)
    print(f"healthz ok {time.monotonic() - started:.0f}s after run.sh started: {json.dumps(body)}")
    # Two workers (issue 16): training on its own queue, everything else on the other.
    for log_name, queue in (("worker.log", ".> default"), ("worker-train.log", ".> train")):
        worker_log = _wait_for(lambda name=log_name: "ready." in (logs / name).read_text(errors="replace")
                               and (logs / name).read_text(errors="replace"), timeout=60, what=log_name, log=logs)
        assert queue in worker_log and (".> train" in worker_log) == (queue == ".> train"), worker_log[-2000:]
    shipped = REPO_ROOT / "models" / "manifest.json"
    if shipped.is_file():
        assert json.dumps(body).count(json.loads(shipped.read_text())["version"]), "the shipped ensemble is not the active one"


def _volunteer_signs_up(url: str) -> tuple[requests.Session, dict[str, str]]:
    """Through the form, with the CSRF token from the page, as a browser posts it."""
    volunteer = requests.Session()
    form = volunteer.get(url + "zoo/signup/", timeout=10)
    assert form.status_code == 200
    token = re.search(r'name="csrfmiddlewaretoken" value="([^"]+)"', form.text).group(1)
    signed_up = volunteer.post(url + "zoo/signup/", timeout=10, headers={"Referer": url + "zoo/signup/"}, data={
        "csrfmiddlewaretoken": token, "username": "new-volunteer", "password1": "Andromeda-M31-spiral",
        "password2": "Andromeda-M31-spiral"})
    assert signed_up.status_code == 200 and "/zoo/tutorial" in signed_up.url, signed_up.text[:2000]
    return volunteer, {"X-CSRFToken": volunteer.cookies["csrftoken"], "Referer": url + "zoo/"}


def _classify_once(volunteer: requests.Session, url: str, headers: dict[str, str]) -> int:
    """One whole classification through zoo.js's calls; the assignment's id."""
    nxt = volunteer.post(url + "zoo/api/tasks/next", headers=headers, timeout=20)
    assert nxt.status_code == 200, nxt.text
    task = nxt.json()["task"]
    step1 = task["standards"]
    assert len(step1) == 9, step1
    position = 4  # between the 4th and 5th step-1 standards: 60-65 degrees
    low = 45 + 5 * (position - 1)
    drawn = volunteer.post(url + f"zoo/api/tasks/{task['id']}/standards", headers=headers, timeout=20,
                           json={"step": 2, "low": low})
    assert drawn.status_code == 200, drawn.text
    step2 = drawn.json()["standards"]
    middle = len(step2) // 2
    submitted = volunteer.post(url + f"zoo/api/tasks/{task['id']}/submit", headers=headers, timeout=20, json={
        "left_standard": step2[middle - 1]["id"], "right_standard": step2[middle]["id"], "step1_low": low,
        "display_mode": "colour", "inverted": False, "zoom": 1.0, "angle": 0,
        "started_at": "2026-12-02T12:00:00Z", "finished_at": "2026-12-02T12:00:20Z",
        "shown_other_votes": False, "shown_model": False})
    assert submitted.status_code == 200, submitted.text
    assert submitted.json()["measurement"]["inclination"] is not None
    return task["id"]


def _api_docs_served_locally(page, url: str) -> None:  # noqa: ANN001
    outside: list[str] = []
    page.on("request", lambda request: outside.append(request.url)
            if urlparse(request.url).hostname not in ("127.0.0.1", None) and not request.url.startswith("data:") else None)
    page.goto(url + "api/docs/", wait_until="networkidle")
    page.wait_for_selector(".opblock", timeout=30_000)
    assert page.locator(".opblock-summary-path", has_text="/api/file").count() >= 1
    assert outside == [], outside


def _stops_on_ctrl_c(process: subprocess.Popen, url: str) -> None:
    """SIGINT to the terminal's process group stops web, worker and beat; nothing is left running."""
    os.killpg(process.pid, signal.SIGINT)
    assert process.wait(timeout=90) in (0, 130)
    deadline = time.monotonic() + 30
    while time.monotonic() < deadline:
        try:
            os.killpg(process.pid, 0)
        except ProcessLookupError:
            break
        time.sleep(0.5)
    else:
        raise AssertionError("processes of run.sh are still running 30 s after it stopped")
    with pytest.raises(requests.ConnectionError):
        requests.get(url + "healthz", timeout=5)


def test_make_run_path_end_to_end(running_platform, page) -> None:  # noqa: ANN001
    url, logs = running_platform["url"], running_platform["logs"]
    _healthy_with_both_workers(url, logs, running_platform["started"])
    volunteer, headers = _volunteer_signs_up(url)

    # Classifications until one was of a galaxy that needs labels (not gold).
    database = running_platform["tree"] / "var" / "inclinet.sqlite3"
    classified_non_gold = False
    for _ in range(12):
        assignment_id = _classify_once(volunteer, url, headers)
        with sqlite3.connect(database) as db:
            (is_gold,) = db.execute("SELECT is_gold FROM labeling_assignment WHERE id = ?", (assignment_id,)).fetchone()
        if not is_gold:
            classified_non_gold = True
            break
    assert classified_non_gold, "only gold standards were served"

    # An astronomer's upload (answered by a prediction process: run.sh sets PREDICTION_PROCESSES).
    predicted = requests.post(url + "api/file", files={"file": ("galaxy.png", _galaxy_png(), "image/png")}, timeout=120)
    assert predicted.status_code == 200, predicted.text
    answer = predicted.json()
    assert 45 <= answer["inclinations"]["summary"]["median"] <= 90
    assert "rejection_likelihood" in answer

    _api_docs_served_locally(page, url)
    _stops_on_ctrl_c(running_platform["process"], url)
