"""The one lease rule of long training work: training runs and ensemble builds.

A row that is being worked on names its owner (``worker`` = host:pid) and when the owner last reported
(``heartbeat_at``). Another process may take the work over only when the owner is dead: a dead pid on this
host, or no report for ``TRAINING_STALE_S``. An owner that finds its row taken over stops at its next write
(``LeaseLost``), so two processes never write the same run or build. A phase that reports nothing for long
keeps its lease alive with a ``LeaseHeartbeat`` thread. The one ``worker_ready`` hook that sweeps dead owners
is ``training.tasks._resume_orphans_on_start``.
"""
from __future__ import annotations

import logging
import os
import socket
import threading
from datetime import datetime, timedelta
from pathlib import Path

from django.db import connection
from django.db.models import QuerySet
from django.utils import timezone

from .conf import training_setting

logger = logging.getLogger(__name__)


class LeaseLost(RuntimeError):
    """Another process took this work over (this one was presumed dead); stop without writing more."""


def worker_identity() -> str:
    """This process as a lease owner: ``host:pid``."""
    return f"{socket.gethostname()}:{os.getpid()}"


def pid_alive(pid: int) -> bool:
    """True if ``pid`` runs. A zombie counts as dead: in a container whose PID 1 does not reap orphans,
    a killed worker's pool child stays a zombie, and ``kill(pid, 0)`` still succeeds on it."""
    try:
        os.kill(pid, 0)
    except ProcessLookupError:
        return False
    except PermissionError:
        return True
    try:
        state = Path(f"/proc/{pid}/stat").read_text().rpartition(")")[2].split()[0]
    except (OSError, IndexError):
        return True  # no procfs (not Linux): trust kill()
    return state not in ("Z", "X")


def lease_owner_dead(*, worker: str, heartbeat_at: datetime | None, now: datetime | None = None) -> bool:
    """True if the process named ``worker`` (host:pid) is gone: a dead pid on this host, or no heartbeat
    for ``TRAINING_STALE_S``."""
    now = now or timezone.now()
    if not worker:
        return True
    host, _, pid = worker.rpartition(":")
    if host == socket.gethostname() and pid.isdigit():
        if int(pid) == os.getpid():
            return True  # this very process is asking, so it is not doing the work right now
        if not pid_alive(int(pid)):
            return True
    stale = timedelta(seconds=float(training_setting("STALE_S")))
    return heartbeat_at is None or now - heartbeat_at > stale


class LeaseHeartbeat:
    """Renews a lease every ``interval_s`` from a thread (``held``: the row while this process still holds it),
    so a long phase without progress reports (generating tens of thousands of galaxies, evaluation) does not
    look dead. ``lost`` turns true once the row is no longer held; the owner checks it at its next write."""

    def __init__(self, held: QuerySet, *, interval_s: float, name: str) -> None:
        self.held, self.interval_s = held, interval_s
        self.lost = False
        self._stop = threading.Event()
        self._thread = threading.Thread(target=self._run, name=name, daemon=True)

    def _run(self) -> None:
        try:
            while not self._stop.wait(self.interval_s):
                try:
                    updated = self.held.update(heartbeat_at=timezone.now())
                except Exception:  # noqa: BLE001 - a database hiccup: try again at the next beat
                    logger.warning("lease heartbeat failed", exc_info=True)
                    continue
                if not updated:
                    self.lost = True
                    return
        finally:
            connection.close()  # this thread's own connection

    def __enter__(self) -> LeaseHeartbeat:
        self._thread.start()
        return self

    def __exit__(self, *exc: object) -> None:
        self._stop.set()
        self._thread.join(timeout=10)
