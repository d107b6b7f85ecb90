"""The Celery application: Redis broker when REDIS_URL is set, otherwise kombu's filesystem transport."""
from __future__ import annotations

import os
from pathlib import Path

from celery import Celery
from kombu import Queue

os.environ.setdefault("DJANGO_SETTINGS_MODULE", "inclinet_site.settings")

app = Celery("inclinet_site")
app.config_from_object("django.conf:settings", namespace="CELERY")
app.conf.task_queues = [Queue(name) for name in ("default", "train", "predict")]
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


@app.task(name="inclinet_site.ping")
def ping() -> str:
    """Round-trip used by /healthz to prove a worker is consuming the default queue."""
    return "pong"
