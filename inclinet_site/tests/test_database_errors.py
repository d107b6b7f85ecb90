"""Which database errors are an outage (503 with Retry-After) and which are bugs (a logged 500).

The errors are the drivers' own, raised for real where that is cheap (a syntax error and a lock held by
another connection in SQLite, a refused PostgreSQL connection), then wrapped the way Django's
``DatabaseErrorWrapper`` wraps them: Django's class, with the driver's exception as ``__cause__``.
"""
from __future__ import annotations

import json
import logging
import sqlite3
from pathlib import Path

import psycopg
import psycopg.errors
import pytest
from django.db import DatabaseError, IntegrityError, InterfaceError, OperationalError, ProgrammingError
from django.http import HttpResponse
from django.test import RequestFactory

from inclinet_site.resilience import (
    RETRY_AFTER_CONTENTION_S, RETRY_AFTER_LOST_CONNECTION_S, DatabaseUnavailableMiddleware, database_error_retry_after,
)


def wrapped(django_class: type[DatabaseError], driver_error: BaseException) -> DatabaseError:
    """What Django raises for a driver error: its own class, the driver's error kept as the cause."""
    try:
        try:
            raise driver_error
        except Exception as exc:
            raise django_class(*exc.args) from exc
    except django_class as outer:
        return outer


def real_sqlite_error(sql: str) -> sqlite3.Error:
    with sqlite3.connect(":memory:") as db:
        try:
            db.execute(sql)
        except sqlite3.Error as exc:
            return exc
    raise AssertionError(f"{sql!r} did not fail")


def real_sqlite_lock(tmp_path: Path) -> sqlite3.Error:
    """Another connection holds the write lock; this one gives up at once (busy timeout 0)."""
    path = tmp_path / "locked.sqlite3"
    holder = sqlite3.connect(path, isolation_level=None)
    holder.execute("CREATE TABLE t (x)")
    holder.execute("BEGIN IMMEDIATE")
    try:
        waiter = sqlite3.connect(path, timeout=0, isolation_level=None)
        try:
            waiter.execute("BEGIN IMMEDIATE")
        except sqlite3.OperationalError as exc:
            return exc
        finally:
            waiter.close()
    finally:
        holder.execute("ROLLBACK")
        holder.close()
    raise AssertionError("the second writer was not refused")


def real_refused_connection() -> psycopg.Error:
    try:
        psycopg.connect("host=127.0.0.1 port=1 dbname=none connect_timeout=2").close()  # nothing listens on port 1
    except psycopg.OperationalError as exc:
        return exc
    raise AssertionError("a connection to port 1 succeeded")


def test_sqlite_syntax_errors_are_bugs_even_though_sqlite3_calls_them_operational() -> None:
    # The statement that broke the Zoo on SQLite: sqlite3 raises it as OperationalError.
    syntax = real_sqlite_error("SELECT 1 FROM sqlite_master c LIMIT 1 FOR UPDATE OF c SKIP LOCKED")
    assert isinstance(syntax, sqlite3.OperationalError) and "syntax error" in str(syntax)
    assert database_error_retry_after(wrapped(OperationalError, syntax)) is None
    missing = real_sqlite_error("SELECT * FROM no_such_table")
    assert database_error_retry_after(wrapped(OperationalError, missing)) is None


def test_sqlite_lock_contention_is_transient(tmp_path: Path) -> None:
    locked = real_sqlite_lock(tmp_path)
    assert "database is locked" in str(locked)
    assert database_error_retry_after(wrapped(OperationalError, locked)) == RETRY_AFTER_CONTENTION_S


def test_postgres_connection_loss_is_transient_and_sql_errors_are_bugs() -> None:
    refused = real_refused_connection()
    assert refused.sqlstate is None  # raised by the client library: there is no server to give a code
    assert database_error_retry_after(wrapped(OperationalError, refused)) == RETRY_AFTER_LOST_CONNECTION_S
    # Server-side errors carry their SQLSTATE (psycopg picks the class from it).
    assert database_error_retry_after(wrapped(OperationalError, psycopg.errors.AdminShutdown("terminating"))) \
        == RETRY_AFTER_LOST_CONNECTION_S
    assert database_error_retry_after(wrapped(OperationalError, psycopg.errors.DeadlockDetected("deadlock"))) \
        == RETRY_AFTER_CONTENTION_S
    assert database_error_retry_after(wrapped(OperationalError, psycopg.errors.LockNotAvailable("lock timeout"))) \
        == RETRY_AFTER_CONTENTION_S
    assert database_error_retry_after(wrapped(ProgrammingError, psycopg.errors.SyntaxError("near FOR"))) is None
    assert database_error_retry_after(wrapped(OperationalError, psycopg.errors.QueryCanceled("timeout"))) is None
    assert database_error_retry_after(wrapped(OperationalError, psycopg.errors.DiskFull("no space"))) is None
    assert database_error_retry_after(wrapped(IntegrityError, psycopg.errors.UniqueViolation("dup"))) is None
    assert database_error_retry_after(InterfaceError("connection already closed")) == RETRY_AFTER_LOST_CONNECTION_S


def _middleware() -> DatabaseUnavailableMiddleware:
    return DatabaseUnavailableMiddleware(lambda request: HttpResponse("unused"))


def test_middleware_answers_a_bug_with_a_logged_json_500(caplog: pytest.LogCaptureFixture) -> None:
    request = RequestFactory().post("/zoo/api/tasks/next")
    error = wrapped(OperationalError, real_sqlite_error("SELECT GREATEST(1, 2) FOR UPDATE SKIP LOCKED"))
    with caplog.at_level(logging.ERROR, logger="inclinet_site.resilience"):
        response = _middleware().process_exception(request, error)
    assert response is not None and response.status_code == 500
    assert json.loads(response.content) == {"status": "failed", "message": "Internal error; it has been logged."}
    assert not response.has_header("Retry-After")
    logged = [r for r in caplog.records if "a bug, not an outage" in r.getMessage()]
    assert logged and logged[0].exc_info and logged[0].exc_info[1] is error  # with the traceback


def test_middleware_leaves_a_page_bug_to_djangos_500_handling() -> None:
    request = RequestFactory().get("/zoo/")
    error = wrapped(ProgrammingError, psycopg.errors.UndefinedTable("no such table"))
    assert _middleware().process_exception(request, error) is None  # Django renders and logs its 500


@pytest.mark.parametrize(("path", "kind"), [("/zoo/api/tasks/next", "api"), ("/zoo/", "page")])
def test_middleware_answers_lost_connections_and_locks_with_503(path: str, kind: str, tmp_path: Path) -> None:
    for error, retry_after in ((wrapped(OperationalError, real_refused_connection()), RETRY_AFTER_LOST_CONNECTION_S),
                               (wrapped(OperationalError, real_sqlite_lock(tmp_path)), RETRY_AFTER_CONTENTION_S)):
        response = _middleware().process_exception(RequestFactory().post(path), error)
        assert response is not None and response.status_code == 503
        assert response["Retry-After"] == str(retry_after)
        if kind == "api":
            assert json.loads(response.content)["message"] == "The database is briefly unavailable; please retry."
        else:
            assert b"briefly unavailable" in response.content


def test_middleware_ignores_errors_that_are_not_the_databases() -> None:
    assert _middleware().process_exception(RequestFactory().get("/zoo/api/x"), ValueError("x")) is None
