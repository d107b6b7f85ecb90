"""The Celery application: Redis broker when REDIS_URL is set, otherwise kombu's filesystem transport.

Also what every enqueue shares (issue 16): tasks are sent after the transaction commits, a broker that is
down becomes a 503 in the API's failed shape (``QueueUnavailable``) instead of a 500 page, and every task
gets soft and hard time limits from ``settings.TASK_SOFT_TIME_LIMITS_S``.
"""
from __future__ import annotations

import logging
import os
from collections.abc import Callable
from pathlib import Path
from typing import Any

import kombu.exceptions
import redis.exceptions
from celery import Celery
from rest_framework.exceptions import APIException

os.environ.setdefault("DJANGO_SETTINGS_MODULE", "inclinet_site.settings")

logger = logging.getLogger(__name__)

# What sending a message raises when the broker is down, refuses or hangs.
BROKER_ERRORS: tuple[type[BaseException], ...] = (
    kombu.exceptions.OperationalError, redis.exceptions.ConnectionError, redis.exceptions.TimeoutError,
    ConnectionError, TimeoutError, OSError,
)
QUEUE_RETRY_AFTER_S = 30


class TaskTimeLimits:
    """Celery task annotation: each task's soft and hard time limits from the settings."""

    def annotate(self, task: Any) -> dict[str, float] | None:
        from django.conf import settings

        if task.name.startswith("celery."):
            return None
        limits: dict[str, float] = settings.TASK_SOFT_TIME_LIMITS_S
        if task.name == "training.tasks.build_ensemble":
            # Each build message carries its profile's limits; this is for one sent without them.
            soft = float(settings.TRAINING_BUILD_TIME_LIMITS_S.get("default", 12 * 3600))
            return {"soft_time_limit": soft, "time_limit": soft + max(300.0, 0.1 * soft)}
        soft = float(limits.get(task.name, settings.CELERY_DEFAULT_SOFT_TIME_LIMIT_S))
        grace = max(float(settings.CELERY_HARD_LIMIT_GRACE_S), 0.1 * soft)
        return {"soft_time_limit": soft, "time_limit": soft + grace}


app = Celery("inclinet_site")
app.config_from_object("django.conf:settings", namespace="CELERY")
app.conf.task_annotations = (TaskTimeLimits(),)
app.autodiscover_tasks()


@app.on_after_configure.connect
def _ensure_filesystem_broker_dirs(sender: Celery, **_: object) -> None:
    """The filesystem transport needs its folders before the first message is sent."""
    options = sender.conf.broker_transport_options or {}
    for key in ("data_folder_in", "data_folder_out", "control_folder"):
        if options.get(key):
            Path(options[key]).mkdir(parents=True, exist_ok=True)
    backend = str(sender.conf.result_backend or "")
    if backend.startswith("file://"):
        Path(backend.removeprefix("file://")).mkdir(parents=True, exist_ok=True)


def worker_consumes(sender: Any, queue: str) -> bool:
    """Whether the worker whose consumer sent ``worker_ready`` serves ``queue`` (all queues without -Q)."""
    try:
        return queue in sender.app.amqp.queues.consume_from
    except AttributeError:
        return True


@app.task(name="inclinet_site.ping")
def ping() -> str:
    """Round-trip used by /healthz to prove a worker is consuming the default queue."""
    return "pong"


class QueueUnavailable(APIException):
    """The broker did not take a job's message: 503 in the API's failed shape, with Retry-After."""

    status_code = 503
    default_detail = "The task queue is unavailable right now; nothing was started. Please retry in a minute."
    default_code = "queue_unavailable"
    wait = QUEUE_RETRY_AFTER_S  # DRF's exception handler sends it as Retry-After


def enqueue_on_commit(send: Callable[[], object], *, on_unavailable: Callable[[str], None], what: str) -> None:
    """Call ``send`` (which publishes a task) once the current transaction commits, at once in autocommit:
    a worker must never receive a job whose row it cannot read yet. When the broker cannot take the message,
    ``on_unavailable(reason)`` records that on the job and a 503 (``QueueUnavailable``) is raised."""
    from django.db import transaction

    def _send() -> None:
        try:
            send()
        except BROKER_ERRORS as exc:
            reason = f"the task queue was unavailable ({type(exc).__name__}: {exc})"
            logger.warning("could not queue %s: %s", what, reason)
            on_unavailable(reason)
            raise QueueUnavailable() from exc

    transaction.on_commit(_send)
