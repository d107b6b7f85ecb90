"""Where heavy prediction work runs (``predictions.heavy``): a niced inference thread by default, or niced
prediction processes (``PREDICTION_PROCESSES``) that keep the networks out of the web process's GIL."""
from __future__ import annotations

import io
import os
import signal
import sys
import threading
from collections.abc import Iterator
from typing import Any

import numpy as np
import pytest
from django.urls import reverse
from PIL import Image

from catalog.imaging import ImageError
from core.errors import TooLarge, Unavailable
from predictions import heavy
from predictions.conf import prediction_setting

linux_only = pytest.mark.skipif(not sys.platform.startswith("linux"), reason="priorities are a Linux feature")


def _where() -> tuple[int, int, str]:
    return os.getpid(), threading.get_native_id(), threading.current_thread().name


def _priority() -> int:
    return os.getpriority(os.PRIO_PROCESS, threading.get_native_id())


def _fails_with_image_error() -> None:
    raise ImageError("The PNG file is damaged and cannot be read.", code="corrupt")


def _fails_with_application_error() -> None:
    raise TooLarge("far too big", code="pixels", limit=25_000_000)


def _dies() -> None:
    os.kill(os.getpid(), signal.SIGKILL)


# --- the default: one niced thread in this process ----------------------------------------------------


def test_heavy_work_runs_on_one_inference_thread_and_comes_back() -> None:
    first, second = heavy.run_heavy(_where), heavy.run_heavy(_where)
    assert first == second
    assert first[0] == os.getpid() and first[2].startswith("inference")
    assert first[1] != threading.get_native_id()
    assert heavy.run_heavy(heavy.run_heavy, _where) == first  # re-entrant: no deadlock on the single thread


def test_exceptions_come_back_to_the_caller() -> None:
    with pytest.raises(ImageError, match="damaged"):
        heavy.run_heavy(_fails_with_image_error)


@linux_only
def test_the_inference_thread_runs_below_the_web_threads() -> None:
    mine = _priority()
    theirs = heavy.run_heavy(_priority)
    assert theirs == min(19, mine + prediction_setting("NICENESS")) > mine
    assert _priority() == mine  # this thread is untouched


# --- PREDICTION_PROCESSES: niced processes ------------------------------------------------------------


@pytest.fixture
def prediction_processes(settings: Any) -> Iterator[None]:
    settings.PREDICTION_PROCESSES = 1
    heavy.shutdown_process_pool()
    yield
    heavy.shutdown_process_pool()


@pytest.mark.usefixtures("prediction_processes")
def test_heavy_work_runs_in_another_niced_process() -> None:
    pid, _, _ = heavy.run_heavy(_where)
    assert pid != os.getpid()
    assert heavy.run_heavy(_where)[0] == pid  # the same process serves the next call
    if sys.platform.startswith("linux"):
        assert heavy.run_heavy(_priority) == min(19, _priority() + prediction_setting("NICENESS"))


@pytest.mark.usefixtures("prediction_processes")
def test_exceptions_from_a_prediction_process_keep_their_type_and_fields() -> None:
    with pytest.raises(ImageError) as image_error:
        heavy.run_heavy(_fails_with_image_error)
    assert image_error.value.code == "corrupt" and "damaged" in image_error.value.message
    with pytest.raises(TooLarge) as too_large:
        heavy.run_heavy(_fails_with_application_error)
    assert (too_large.value.code, too_large.value.extra) == ("pixels", {"limit": 25_000_000})


@pytest.mark.usefixtures("prediction_processes")
def test_a_dead_prediction_process_is_a_503_and_the_next_call_gets_a_new_one() -> None:
    first = heavy.run_heavy(_where)[0]
    with pytest.raises(Unavailable) as died:
        heavy.run_heavy(_dies)
    assert died.value.code == "prediction_process_failed"
    assert heavy.run_heavy(_where)[0] not in (first, os.getpid())


def _galaxy_png() -> bytes:
    y, x = np.mgrid[0:160, 0:160]
    xr, yr = (x - 80) * 0.8 + (y - 80) * 0.6, -(x - 80) * 0.6 + (y - 80) * 0.8
    grey = 20 + 200 * np.exp(-np.hypot(xr / 40.0, yr / 12.0))
    buffer = io.BytesIO()
    Image.fromarray(np.repeat(grey.astype(np.uint8)[:, :, None], 3, axis=2)).save(buffer, format="PNG")
    return buffer.getvalue()


@pytest.mark.django_db
def test_api_file_answers_the_same_through_a_prediction_process(client: Any, settings: Any,
                                                               active_tiny_ensemble: Any) -> None:
    from django.core.cache import cache

    def ask() -> dict[str, Any]:
        cache.clear()  # each answer computed, not served from the other mode's cache entry
        upload = io.BytesIO(_galaxy_png())
        upload.name = "galaxy.png"
        response = client.post(reverse("api-file"), {"file": upload})
        assert response.status_code == 200, response.content
        return response.json()

    settings.PREDICTION_PROCESSES = 0
    on_thread = ask()
    settings.PREDICTION_PROCESSES = 1
    heavy.shutdown_process_pool()
    try:
        in_process = ask()
        assert heavy._pool is not None  # the answer really came from the pool
    finally:
        heavy.shutdown_process_pool()
    assert in_process == on_thread


def test_make_run_and_compose_serve_predictions_from_prediction_processes() -> None:
    import yaml
    from django.conf import settings

    root = settings.BASE_DIR
    script = (root / "scripts" / "run.sh").read_text().replace("\\\n", " ")
    gunicorn = [line for line in script.splitlines() if "bin/gunicorn" in line]
    assert len(gunicorn) == 1 and 'PREDICTION_PROCESSES="${PREDICTION_PROCESSES:-1}"' in gunicorn[0]
    services = yaml.safe_load((root / "docker-compose.yml").read_text())["services"]
    assert services["web"]["environment"]["PREDICTION_PROCESSES"] == "${PREDICTION_PROCESSES:-1}"
    assert services["web"]["environment"]["DATABASE_URL"]  # the shared environment is kept, not replaced
    # Celery workers are separate processes already: they predict on their own niced thread.
    assert all("PREDICTION_PROCESSES" not in (service.get("environment") or {})
               for name, service in services.items() if name != "web")
