"""The one lease rule of long training work: training runs and ensemble builds.

A row that is being worked on names its owner (``worker`` = host:pid) and when the owner last reported
(``heartbeat_at``). Another process may take the work over only when the owner is dead: a dead pid on this
host, or no report for ``TRAINING_STALE_S``. An owner that finds its row taken over stops at its next write
(``LeaseLost``), so two processes never write the same run or build.
"""
from __future__ import annotations

import os
import socket
from datetime import datetime, timedelta
from pathlib import Path

from django.utils import timezone

from .conf import training_setting


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
