"""``/healthz``: database, broker, worker and active-model state, as JSON for probes and people."""
from __future__ import annotations

import time
from typing import Any

from celery.exceptions import TimeoutError as CeleryTimeout
from django.db import connection
from django.http import HttpRequest, JsonResponse

from .celery import app as celery_app
from .celery import ping

WORKER_TIMEOUT_S = 5.0


def _check_database() -> dict[str, Any]:
    started = time.perf_counter()
    try:
        with connection.cursor() as cursor:
            cursor.execute("SELECT 1")
            cursor.fetchone()
    except Exception as exc:  # noqa: BLE001 - any failure is reported, not raised
        return {"ok": False, "error": str(exc)}
    return {"ok": True, "vendor": connection.vendor, "ms": round(1000 * (time.perf_counter() - started), 1)}


def _check_broker() -> dict[str, Any]:
    try:
        with celery_app.connection_for_write() as conn:
            conn.ensure_connection(max_retries=1, timeout=2)
            transport = conn.transport_cls
    except Exception as exc:  # noqa: BLE001
        return {"ok": False, "error": str(exc)}
    return {"ok": True, "transport": str(transport)}


def _check_worker() -> dict[str, Any]:
    """A real round trip through the broker and a worker, not just a registry lookup."""
    started = time.perf_counter()
    try:
        result = ping.apply_async(expires=WORKER_TIMEOUT_S)
        answer = result.get(timeout=WORKER_TIMEOUT_S)
        result.forget()
    except CeleryTimeout:
        return {"ok": False, "error": f"no worker answered within {WORKER_TIMEOUT_S:g} s"}
    except Exception as exc:  # noqa: BLE001
        return {"ok": False, "error": str(exc)}
    return {"ok": answer == "pong", "ms": round(1000 * (time.perf_counter() - started), 1)}


def _check_active_model() -> dict[str, Any]:
    from training.selectors import active_ensemble_summary

    try:
        summary = active_ensemble_summary()
    except Exception as exc:  # noqa: BLE001
        return {"ok": False, "error": str(exc)}
    if summary is None:
        return {"ok": False, "state": "none", "message": "no active ensemble; train one with `make model`"}
    return {"ok": True, "state": "active", **summary}


def healthz(request: HttpRequest) -> JsonResponse:
    checks = {
        "database": _check_database(),
        "broker": _check_broker(),
        "worker": _check_worker(),
        "active_model": _check_active_model(),
    }
    # Serving needs the database, broker and a worker; a missing model degrades prediction only.
    essential_ok = all(checks[name]["ok"] for name in ("database", "broker", "worker"))
    status = "ok" if essential_ok and checks["active_model"]["ok"] else ("degraded" if essential_ok else "failing")
    return JsonResponse({"status": status, "checks": checks}, status=200 if essential_ok else 503)
