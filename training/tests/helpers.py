"""Helpers of the retraining tests: labelled galaxies with images, waiting on the database, killing a
worker's whole process tree."""
from __future__ import annotations

import os
import signal
import time
from collections.abc import Callable
from pathlib import Path

from labeling.models import Consensus, ConsensusStatus
from labeling.synthetic import synthetic_galaxy


def labelled_galaxies(n: int, *, rejects: int = 0, size: int = 32, prefix: str = "SYN-TRAIN") -> list[int]:
    """``n`` synthetic galaxies with colour images and an accepted consensus spread over 46–89°, plus
    ``rejects`` with a rejected (J) or face-on (F) consensus."""
    ids = []
    for k in range(n + rejects):
        reject = k >= n
        inclination = 46.0 + (43.0 * k / max(n - 1, 1)) if not reject else 30.0
        galaxy = synthetic_galaxy(name=f"{prefix}-{k:04d}", inclination=round(inclination, 2), seed=5000 + k,
                                  bands=("colour",), size=size)
        status = (ConsensusStatus.REJECTED if k % 2 else ConsensusStatus.FACE_ON) if reject else ConsensusStatus.ACCEPTED
        Consensus.objects.create(galaxy=galaxy, n_votes=3, inc=None if reject else inclination, inc_e=1.0,
                                 status=status, retired=True)
        ids.append(galaxy.id)
    return ids


def wait_for(predicate: Callable[[], object], *, timeout: float, what: str, log: Callable[[], str] | None = None,
             interval: float = 0.2) -> object:
    """Poll until ``predicate`` returns something truthy; fail with the worker log after ``timeout`` seconds."""
    deadline = time.monotonic() + timeout
    while time.monotonic() < deadline:
        value = predicate()
        if value:
            return value
        time.sleep(interval)
    raise AssertionError(f"Timed out after {timeout:.0f}s waiting for {what}.\n" + (log()[-6000:] if log else ""))


def descendants(pid: int) -> list[int]:
    """Every process below ``pid`` (from /proc; Linux)."""
    children: dict[int, list[int]] = {}
    for entry in Path("/proc").iterdir():
        if not entry.name.isdigit():
            continue
        try:
            stat = (entry / "stat").read_text()
        except OSError:
            continue
        ppid = int(stat.rsplit(")", 1)[1].split()[1])
        children.setdefault(ppid, []).append(int(entry.name))
    found, todo = [], [pid]
    while todo:
        for child in children.get(todo.pop(), []):
            found.append(child)
            todo.append(child)
    return found


def kill_tree(pid: int) -> list[int]:
    """SIGKILL a process and all its descendants at once, as a crash or the OOM killer would."""
    victims = [pid, *descendants(pid)]
    for victim in victims:
        try:
            os.kill(victim, signal.SIGKILL)
        except ProcessLookupError:
            pass
    return victims
