"""Issue 16, finding 7: every Celery task has soft and hard time limits, training runs on the ``train`` queue
alone, and both ways to run the platform start a training worker apart from the one that serves exports,
batches, predictions and the health ping (``scripts/run.sh``, ``docker-compose.yml``)."""
from __future__ import annotations

import re
from pathlib import Path

import pytest
import yaml
from celery.exceptions import SoftTimeLimitExceeded
from django.conf import settings

from inclinet_site.celery import app

REPO_ROOT = Path(__file__).resolve().parent.parent
TRAINING_TASKS = {f"training.tasks.{name}" for name in (
    "build_ensemble", "build_snapshot", "train_ensemble", "train_model", "evaluate_model",
    "requeue_orphaned_runs", "requeue_orphaned_builds")}


def _our_tasks() -> dict:
    app.loader.import_default_modules()
    return {name: task for name, task in app.tasks.items() if not name.startswith("celery.")}


def _queue_of(name: str) -> str:
    return app.amqp.router.route({}, name, (), {})["queue"].name


def test_training_is_routed_to_train_and_nothing_else_is() -> None:
    routes = {name: _queue_of(name) for name in _our_tasks()}
    assert TRAINING_TASKS <= routes.keys()
    assert {name for name, queue in routes.items() if queue == "train"} == TRAINING_TASKS
    assert routes["inclinet_site.ping"] == "default"
    assert routes["labeling.export"] == "default"
    assert routes["predictions.tasks.run_batch_job"] == "predict"
    assert routes["predictions.tasks.predict_catalogue"] == "predict"


def test_scheduled_work_stays_off_the_training_queue_unless_it_is_training() -> None:
    from training import tasks  # noqa: F401 - registers its schedule

    for entry in app.conf.beat_schedule.values():
        queue = entry.get("options", {}).get("queue") or _queue_of(entry["task"])
        assert (queue == "train") == (entry["task"] in TRAINING_TASKS), entry


def test_every_task_has_soft_and_hard_time_limits() -> None:
    for name, task in _our_tasks().items():
        assert task.soft_time_limit and task.time_limit, name
        assert task.time_limit > task.soft_time_limit, name
    tasks = _our_tasks()
    assert tasks["predictions.tasks.run_batch_job"].soft_time_limit == settings.TASK_SOFT_TIME_LIMITS_S[
        "predictions.tasks.run_batch_job"]
    assert tasks["inclinet_site.ping"].soft_time_limit <= 60


def test_builds_keep_their_per_profile_limits(monkeypatch) -> None:
    from celery import Task

    from training.builds import build_time_limits
    from training.tasks import build_ensemble

    sent: dict = {}
    monkeypatch.setattr(Task, "apply_async", lambda self, args=None, kwargs=None, **options: sent.update(options))
    build_ensemble.apply_async(kwargs={"profile": "tiny"})
    soft, hard = build_time_limits("tiny")
    assert (sent["soft_time_limit"], sent["time_limit"]) == (soft, hard)
    assert soft == settings.TRAINING_BUILD_TIME_LIMITS_S["tiny"]


@pytest.mark.django_db
def test_a_batch_job_past_its_soft_time_limit_fails_with_the_reason(monkeypatch) -> None:
    from predictions import batch
    from predictions.models import BatchJob

    job = batch.batch_job_create(kind="csv", filename="x.csv", data=b"5818\n")

    def too_slow(job):  # noqa: ANN001, ANN202
        raise SoftTimeLimitExceeded()

    monkeypatch.setattr(batch, "_batch_job_run_locked", too_slow)
    batch.batch_job_run(job_id=str(job.id))
    job.refresh_from_db()
    assert job.status == BatchJob.Status.FAILED and "time limit" in job.error


def _worker_queues(command: str) -> set[str]:
    found = re.search(r"-Q\s+([\w,]+)", command)
    assert found, command
    return set(found.group(1).split(","))


def test_run_sh_starts_a_training_worker_apart() -> None:
    script = (REPO_ROOT / "scripts" / "run.sh").read_text().replace("\\\n", " ")
    workers = [_worker_queues(line) for line in script.splitlines() if "celery -A inclinet_site worker" in line]
    assert {"train"} in workers
    assert any({"default", "predict"} <= queues and "train" not in queues for queues in workers)
    assert len(workers) == 2


def test_compose_starts_a_training_worker_apart() -> None:
    services = yaml.safe_load((REPO_ROOT / "docker-compose.yml").read_text())["services"]
    queues = {name: _worker_queues(service["command"]) for name, service in services.items()
              if "celery -A inclinet_site worker" in str(service.get("command", ""))}
    assert queues["worker-train"] == {"train"}
    assert {"default", "predict"} <= queues["worker"] and "train" not in queues["worker"]
