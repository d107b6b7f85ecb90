"""Where CPU-heavy prediction work runs: ``run_heavy(func, *args)``, out of the web threads' way.

Two modes, chosen by ``PREDICTION_PROCESSES`` (predictions/conf.py):

- ``0`` (the default, and what tests and Celery workers use): one thread per process, ``PREDICTION_NICENESS``
  nice levels below the web threads. TensorFlow releases the GIL inside its kernels, but image decoding,
  alignment and photutils do not, so a prediction still slows the process's other threads.
- ``N > 0`` (``make run`` and compose set 1 for gunicorn): a pool of N spawned processes per web process, each
  niced and loading its own ensemble, so predictions never hold the web process's GIL (issue 16, finding 10).
  ``func`` and its arguments are pickled: module-level functions over plain data. The children start from the
  environment's Django settings with the parent's settings laid over them at the time the pool starts, so a
  process that changed a setting at run time (the tests) gives its children the same view.

Either way ``func``'s exceptions are raised in the caller, with their type and attributes; a pool whose child
died is replaced on the next call, and the call that saw it fails with ``Unavailable`` (503, retry).
"""
from __future__ import annotations

import logging
import multiprocessing
import os
import pickle
import sys
import threading
import traceback
from collections.abc import Callable
from concurrent.futures import Executor, ProcessPoolExecutor, ThreadPoolExecutor
from concurrent.futures.process import BrokenProcessPool
from dataclasses import dataclass
from typing import Any, TypeVar

from core.errors import Unavailable

from .conf import prediction_setting

logger = logging.getLogger(__name__)
T = TypeVar("T")

_lock = threading.Lock()
_thread: tuple[int, ThreadPoolExecutor] | None = None  # (pid, executor): a forked child builds its own
_pool: tuple[int, ProcessPoolExecutor] | None = None
_on_heavy_worker = threading.local()


def _lower_priority(niceness: int, *, whole_process: bool) -> None:
    if niceness <= 0 or not sys.platform.startswith("linux"):
        return
    try:
        # On Linux a thread id is a valid PRIO_PROCESS target and the value applies to that thread only.
        target = 0 if whole_process else threading.get_native_id()
        os.setpriority(os.PRIO_PROCESS, target, min(19, os.getpriority(os.PRIO_PROCESS, target) + niceness))
    except OSError as exc:  # e.g. a sandbox without setpriority: run at normal priority
        logger.warning("could not lower the inference priority", extra={"error": str(exc)})


def _thread_start(niceness: int) -> None:
    _on_heavy_worker.active = True
    _lower_priority(niceness, whole_process=False)


def heavy_executor() -> ThreadPoolExecutor:
    """This process's inference thread (created on first use, again after a fork)."""
    global _thread
    pid = os.getpid()
    if _thread is None or _thread[0] != pid:
        with _lock:
            if _thread is None or _thread[0] != pid:
                niceness = int(prediction_setting("NICENESS"))
                _thread = (pid, ThreadPoolExecutor(max_workers=1, thread_name_prefix="inference",
                                                   initializer=_thread_start, initargs=(niceness,)))
    return _thread[1]


def _settings_snapshot() -> dict[str, Any]:
    """The parent's upper-case settings that pickle (a child applies them over its own)."""
    from django.conf import settings

    snapshot: dict[str, Any] = {}
    for name in dir(settings):
        if not name.isupper():
            continue
        try:
            value = getattr(settings, name)
            pickle.dumps(value)
        except Exception:  # noqa: BLE001 - a setting that does not pickle keeps the child's own value
            continue
        snapshot[name] = value
    return snapshot


def _process_start(niceness: int, overrides: dict[str, Any]) -> None:
    """A prediction process: Django set up from the environment, the parent's settings over it, niced."""
    os.environ.setdefault("DJANGO_SETTINGS_MODULE", "inclinet_site.settings")
    import django
    from django.conf import settings

    django.setup()
    for name, value in overrides.items():
        setattr(settings, name, value)
    _lower_priority(niceness, whole_process=True)
    _on_heavy_worker.active = True  # run_heavy in a prediction process runs inline: no pool inside the pool


def process_pool() -> ProcessPoolExecutor | None:
    """This web process's prediction processes, or None when ``PREDICTION_PROCESSES`` is 0."""
    global _pool
    size = int(prediction_setting("PROCESSES"))
    if size <= 0:
        return None
    pid = os.getpid()
    if _pool is None or _pool[0] != pid:
        with _lock:
            if _pool is None or _pool[0] != pid:
                _pool = (pid, ProcessPoolExecutor(
                    max_workers=size, mp_context=multiprocessing.get_context("spawn"), initializer=_process_start,
                    initargs=(int(prediction_setting("NICENESS")), _settings_snapshot())))
    return _pool[1]


def shutdown_process_pool() -> None:
    """Stop this process's prediction processes (the next ``run_heavy`` starts new ones)."""
    global _pool
    with _lock:
        found, _pool = _pool, None
    if found is not None and found[0] == os.getpid():
        found[1].shutdown(wait=True, cancel_futures=True)


@dataclass
class _RaisedInChild:
    """An exception from a prediction process, rebuilt in the caller with its type and attributes."""

    cls: type[BaseException]
    args: tuple[Any, ...]
    state: dict[str, Any]
    child_traceback: str

    def rebuild(self) -> BaseException:
        exc = self.cls.__new__(self.cls)
        exc.args = self.args
        exc.__dict__.update(self.state)
        exc.add_note(f"raised in prediction process:\n{self.child_traceback}")
        return exc


def _call_in_child(func: Callable[..., T], args: tuple[Any, ...], kwargs: dict[str, Any]) -> tuple[bool, Any]:
    try:
        return True, func(*args, **kwargs)
    except Exception as exc:  # noqa: BLE001 - every failure goes back to the caller, rebuilt there
        raised = _RaisedInChild(type(exc), exc.args, dict(vars(exc)), traceback.format_exc())
        try:
            pickle.dumps(raised)
        except Exception:  # noqa: BLE001 - an exception that does not pickle comes back as its text
            raised = _RaisedInChild(RuntimeError, (f"{type(exc).__name__}: {exc}",), {}, raised.child_traceback)
        return False, raised


def _submit(executor: Executor, func: Callable[..., T], args: tuple[Any, ...], kwargs: dict[str, Any]) -> T:
    if not isinstance(executor, ProcessPoolExecutor):
        return executor.submit(func, *args, **kwargs).result()
    try:
        ok, value = executor.submit(_call_in_child, func, args, kwargs).result()
    except BrokenProcessPool:
        logger.error("a prediction process died; starting new ones on the next request")
        shutdown_process_pool()
        raise Unavailable("The prediction process stopped unexpectedly; please retry.",
                          code="prediction_process_failed") from None
    if not ok:
        raise value.rebuild()
    return value


def run_heavy(func: Callable[..., T], /, *args: Any, **kwargs: Any) -> T:
    """``func(*args, **kwargs)`` in a prediction process or on the inference thread; its exceptions are raised
    here. Re-entrant: called from heavy work it runs inline."""
    if getattr(_on_heavy_worker, "active", False):
        return func(*args, **kwargs)
    pool = process_pool()
    return _submit(pool if pool is not None else heavy_executor(), func, args, kwargs)
