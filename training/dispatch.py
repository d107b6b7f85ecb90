"""Sending training's and predictions' Celery tasks by name, so that no service module imports a tasks module
(the tasks import the services instead).

A task sent here goes through its registered task class, so routes, time limits and the build task's
per-profile limits apply exactly as with ``task.apply_async``.
"""
from __future__ import annotations

from typing import Any

from celery import Task
from django.db import transaction

from inclinet_site.celery import app

BUILD_ENSEMBLE = "training.tasks.build_ensemble"
BUILD_SNAPSHOT = "training.tasks.build_snapshot"
TRAIN_ENSEMBLE = "training.tasks.train_ensemble"
TRAIN_MODEL = "training.tasks.train_model"
EVALUATE_MODEL = "training.tasks.evaluate_model"
PREDICT_CATALOGUE = "predictions.tasks.predict_catalogue"


def _registered(task: str) -> Task:
    """The task class registered under ``task``. A web process has not imported the tasks modules yet: Celery's
    autodiscovery does on the first call (``celery.send_task`` alone would skip e.g. ``BuildTask``'s limits)."""
    if task not in app.tasks:
        app.loader.import_default_modules()
    return app.tasks[task]


def send(task: str, *, queue: str, args: list[Any] | None = None, kwargs: dict[str, Any] | None = None) -> None:
    """Publish ``task`` now."""
    _registered(task).apply_async(args=args, kwargs=kwargs, queue=queue)


def send_on_commit(task: str, *, queue: str, args: list[Any] | None = None,
                   kwargs: dict[str, Any] | None = None) -> None:
    """Publish ``task`` once the current transaction commits (at once in autocommit): a worker must never
    receive a job whose row it cannot read yet."""
    transaction.on_commit(lambda: send(task, queue=queue, args=args, kwargs=kwargs))


def catalogue_rescore_on_commit() -> None:
    """Queue the catalogue's re-scoring (labeling priorities) once the current transaction commits."""
    transaction.on_commit(catalogue_rescore)


def catalogue_rescore() -> None:
    send(PREDICT_CATALOGUE, queue="predict")
