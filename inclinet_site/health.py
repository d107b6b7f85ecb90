"""``/healthz``: database, broker, worker and active-model state, as JSON for probes and people.

Each check runs on its own thread with its own time limit, so the answer comes within about a second even
when Redis, the broker or the database accept connections and never reply (issue 16: it took 21 s). A check
still hanging from an earlier request is reported, not started again, so a dead service cannot pile up
threads. Error texts and connection details are for staff; everyone else gets the status words.
"""
from __future__ import annotations

import threading
import time
from collections.abc import Callable
from typing import Any

from celery.exceptions import TimeoutError as CeleryTimeout
from django.db import connections
from django.http import HttpRequest, JsonResponse

from .celery import app as celery_app
from .celery import ping

# Each check's own limit (s); all run at once, so the answer takes the longest of them, within TOTAL_BUDGET_S.
WORKER_TIMEOUT_S = 0.8
CHECK_TIMEOUTS_S = {"database": 0.9, "broker": 0.9, "active_model": 0.9}
TOTAL_BUDGET_S = 0.95
# What anonymous callers and volunteers see of each check.
PUBLIC_FIELDS = ("ok", "state", "version", "models")

_hanging: dict[str, threading.Thread] = {}
_hanging_lock = threading.Lock()


def _check_database() -> dict[str, Any]:
    """``SELECT 1`` on a connection of its own (this thread's), closed afterwards."""
    started = time.perf_counter()
    connection = connections.create_connection("default")
    try:
        with connection.cursor() as cursor:
            cursor.execute("SELECT 1")
            cursor.fetchone()
        vendor = connection.vendor
    except Exception as exc:  # noqa: BLE001 - any failure is reported, not raised
        return {"ok": False, "state": "failing", "error": str(exc)}
    finally:
        connection.close()
    return {"ok": True, "state": "ok", "vendor": vendor, "ms": round(1000 * (time.perf_counter() - started), 1)}


def _check_broker() -> dict[str, Any]:
    try:
        with celery_app.connection_for_write() as conn:
            conn.ensure_connection(max_retries=1, interval_start=0, interval_step=0.1, interval_max=0.1,
                                   timeout=CHECK_TIMEOUTS_S["broker"] / 2)
            transport = conn.transport_cls
    except Exception as exc:  # noqa: BLE001
        return {"ok": False, "state": "failing", "error": str(exc)}
    return {"ok": True, "state": "ok", "transport": str(transport)}


def _check_worker() -> dict[str, Any]:
    """A real round trip through the broker and a worker, not just a registry lookup."""
    started = time.perf_counter()
    deadline = time.monotonic() + WORKER_TIMEOUT_S
    try:
        result = ping.apply_async(expires=5)
        try:
            # Polled: result.get() on the Redis backend waits in whole seconds, whatever its timeout.
            while not result.ready():
                if time.monotonic() > deadline:
                    raise CeleryTimeout
                time.sleep(0.02)
            answer = result.result
        finally:
            result.forget()
    except CeleryTimeout:
        return {"ok": False, "state": "failing", "error": f"no worker answered within {WORKER_TIMEOUT_S:g} s"}
    except Exception as exc:  # noqa: BLE001
        return {"ok": False, "state": "failing", "error": str(exc)}
    return {"ok": answer == "pong", "state": "ok" if answer == "pong" else "failing",
            "ms": round(1000 * (time.perf_counter() - started), 1)}


def _check_active_model() -> dict[str, Any]:
    from training.selectors import active_ensemble_summary

    try:
        summary = active_ensemble_summary()
    except Exception as exc:  # noqa: BLE001
        return {"ok": False, "state": "failing", "error": str(exc)}
    if summary is None:
        return {"ok": False, "state": "none", "message": "no active ensemble; train one with `make model`"}
    return {"ok": True, "state": "active", **summary}


def _run_checks(checks: dict[str, Callable[[], dict[str, Any]]]) -> dict[str, dict[str, Any]]:
    """Every check at once, each on a daemon thread, answered within its limit and ``TOTAL_BUDGET_S``."""
    start = time.monotonic()
    results: dict[str, dict[str, Any]] = {}
    running: dict[str, tuple[threading.Thread, dict[str, Any], float]] = {}
    for name, check in checks.items():
        limit = WORKER_TIMEOUT_S + 0.15 if name == "worker" else CHECK_TIMEOUTS_S[name]
        with _hanging_lock:
            stuck = _hanging.get(name)
            if stuck is not None and stuck.is_alive():
                results[name] = {"ok": False, "state": "timeout",
                                 "error": "an earlier check has not answered yet: the service hangs"}
                continue
            box: dict[str, Any] = {}
            thread = threading.Thread(target=lambda c=check, b=box: b.update(result=c()), daemon=True,
                                      name=f"healthz-{name}")
            thread.start()
        running[name] = (thread, box, limit)
    for name, (thread, box, limit) in running.items():
        thread.join(max(0.0, min(start + limit, start + TOTAL_BUDGET_S) - time.monotonic()))
        if "result" in box:
            results[name] = box["result"]
        else:
            with _hanging_lock:
                _hanging[name] = thread
            results[name] = {"ok": False, "state": "timeout", "error": f"no answer within {limit:g} s"}
    return {name: results[name] for name in checks}


def _shows_details(request: HttpRequest, database_ok: bool) -> bool:
    # Reading the session needs the database: with it down, nobody is known to be staff.
    return database_ok and bool(getattr(request, "user", None)) and request.user.is_staff


def healthz(request: HttpRequest) -> JsonResponse:
    checks = _run_checks({
        "database": _check_database,
        "broker": _check_broker,
        "worker": _check_worker,
        "active_model": _check_active_model,
    })
    # Serving needs the database, broker and a worker; a missing model degrades prediction only.
    essential_ok = all(checks[name]["ok"] for name in ("database", "broker", "worker"))
    status = "ok" if essential_ok and checks["active_model"]["ok"] else ("degraded" if essential_ok else "failing")
    if not _shows_details(request, checks["database"]["ok"]):
        checks = {name: {key: value for key, value in check.items() if key in PUBLIC_FIELDS}
                  for name, check in checks.items()}
    return JsonResponse({"status": status, "checks": checks}, status=200 if essential_ok else 503)
