"""Infrastructure that degrades instead of failing: a Redis cache that survives a Redis restart, uploads
that are never left half-written, and a clear 503 when the database drops away mid-request.

- ``ResilientRedisCache``: the cache is an optimisation (predictions, throttle counters), so while Redis
  restarts a read is a miss and a write is skipped, with a warning in the log, instead of a 500 on every
  request and a failed batch job in the worker. Throttles fail open for those seconds. It also keeps one
  ``redis.Redis`` client per connection pool instead of building one per cache call.
- ``AtomicFileSystemStorage``: writes to a temporary file in the same folder and renames it into place,
  so a full disk (ENOSPC) or a crash mid-write leaves no truncated file behind under the final name.
- ``DatabaseUnavailableMiddleware``: a connection that PostgreSQL closed under a request (restart,
  failover, ``pg_terminate_backend``), or a lock the request lost to another (SQLite's "database is locked",
  a PostgreSQL deadlock), answers 503 with Retry-After; the next request reconnects (``CONN_HEALTH_CHECKS``).
  Every other database error (bad SQL, a missing table, a violated constraint) is a bug: logged with its
  traceback and answered 500, in the API's JSON error shape on API paths. ``sqlite3`` raises its syntax
  errors as ``OperationalError`` too, so the class alone does not tell an outage from a bug.
"""
from __future__ import annotations

import logging
import os
import sqlite3
import tempfile
from collections.abc import Callable
from typing import Any

from django.core.cache.backends.redis import RedisCache, RedisCacheClient
from django.core.files.storage import FileSystemStorage
from django.db import DatabaseError, InterfaceError, OperationalError
from django.http import HttpRequest, HttpResponse

logger = logging.getLogger(__name__)


def _redis_errors() -> tuple[type[BaseException], ...]:
    import redis

    return (redis.exceptions.ConnectionError, redis.exceptions.TimeoutError, redis.exceptions.BusyLoadingError)


def _guard(method: Callable[..., Any], default: Callable[[tuple, dict], Any]) -> Callable[..., Any]:
    def guarded(self: RedisCache, *args: Any, **kwargs: Any) -> Any:
        try:
            return method(self, *args, **kwargs)
        except _redis_errors() as exc:
            logger.warning("cache unavailable; carrying on without it", extra={"op": method.__name__,
                                                                              "error": str(exc)})
            return default(args, kwargs)
    guarded.__name__ = method.__name__
    return guarded


class SharedClientRedisCacheClient(RedisCacheClient):
    """Django builds a new ``redis.Redis`` for every cache call, and redis-py fills ~170 response callbacks
    in each constructor: about 0.2 ms of CPU per call, several calls per API request (throttle counters,
    prediction cache). A client is thread-safe and stateless beyond its pool, so one per pool is enough."""

    def __init__(self, *args: Any, **kwargs: Any) -> None:
        super().__init__(*args, **kwargs)
        self._clients: dict[int, Any] = {}

    def get_client(self, key: Any = None, *, write: bool = False) -> Any:
        pool = self._get_connection_pool(write)
        client = self._clients.get(id(pool))  # pools live as long as this object, so id() is stable
        if client is None:
            client = self._clients[id(pool)] = self._client(connection_pool=pool)
        return client


class ResilientRedisCache(RedisCache):
    """Django's Redis cache, with connection failures turned into misses and one shared client."""

    def __init__(self, server: Any, params: dict[str, Any]) -> None:
        super().__init__(server, params)
        self._class = SharedClientRedisCacheClient

    get = _guard(RedisCache.get, lambda a, k: k.get("default", a[1] if len(a) > 1 else None))
    get_many = _guard(RedisCache.get_many, lambda a, k: {})
    has_key = _guard(RedisCache.has_key, lambda a, k: False)
    set = _guard(RedisCache.set, lambda a, k: None)
    set_many = _guard(RedisCache.set_many, lambda a, k: list(a[0]) if a else [])
    add = _guard(RedisCache.add, lambda a, k: False)
    touch = _guard(RedisCache.touch, lambda a, k: False)
    delete = _guard(RedisCache.delete, lambda a, k: False)
    delete_many = _guard(RedisCache.delete_many, lambda a, k: None)
    incr = _guard(RedisCache.incr, lambda a, k: (k.get("delta", a[1] if len(a) > 1 else 1)))
    clear = _guard(RedisCache.clear, lambda a, k: False)


class AtomicFileSystemStorage(FileSystemStorage):
    """FileSystemStorage whose files appear complete or not at all."""

    def _copy(self, content: Any, out: Any) -> None:
        for chunk in content.chunks():
            out.write(chunk if isinstance(chunk, bytes) else chunk.encode())

    def _save(self, name: str, content: Any) -> str:
        full_path = self.path(name)
        directory = os.path.dirname(full_path)
        os.makedirs(directory, exist_ok=True)
        handle, temp_path = tempfile.mkstemp(dir=directory, prefix=".partial-")
        try:
            with os.fdopen(handle, "wb") as out:
                self._copy(content, out)
                out.flush()
                os.fsync(out.fileno())
            os.chmod(temp_path, 0o644 if self.file_permissions_mode is None else self.file_permissions_mode)
            # get_available_name already chose a free name; link() refuses to overwrite if one appeared since.
            os.link(temp_path, full_path)
        except FileExistsError:
            name = self.get_available_name(name)
            os.link(temp_path, self.path(name))
        finally:
            try:
                os.unlink(temp_path)
            except FileNotFoundError:
                pass
        return str(name).replace("\\", "/")


# PostgreSQL SQLSTATEs worth a retry: the server is going away or starting (57P01-57P03), too many
# connections (53300), or this transaction lost a lock race (40001, 40P01, 55P03). Class 08 (connection
# exception) is matched by prefix. Anything else (syntax 42601, undefined table 42P01, disk full 53100, a
# statement timeout 57014) will not go away by asking again.
_PG_RETRYABLE_SQLSTATES = frozenset({"57P01", "57P02", "57P03", "53300", "40001", "40P01", "55P03"})
# SQLite's contention: another connection held the write lock for longer than the busy timeout.
_SQLITE_CONTENTION = ("database is locked", "database table is locked", "database is busy")
RETRY_AFTER_LOST_CONNECTION_S = 5
RETRY_AFTER_CONTENTION_S = 2


def database_error_retry_after(exc: BaseException) -> int | None:
    """Seconds a client should wait before retrying after this database error; None when retrying cannot help.

    Django wraps the driver's exception and keeps it as ``__cause__``; that carries what tells them apart.
    """
    if isinstance(exc, InterfaceError):  # the connection object is closed or broken
        return RETRY_AFTER_LOST_CONNECTION_S
    if not isinstance(exc, OperationalError):  # ProgrammingError, IntegrityError, DataError, ...
        return None
    driver = exc.__cause__ if exc.__cause__ is not None else exc
    contention = any(text in str(driver).lower() for text in _SQLITE_CONTENTION)
    if isinstance(driver, sqlite3.Error):  # sqlite3 raises syntax errors and missing tables as OperationalError
        return RETRY_AFTER_CONTENTION_S if contention else None
    sqlstate = getattr(driver, "sqlstate", None) or getattr(driver, "pgcode", None)  # psycopg 3 / psycopg2
    if sqlstate is None:
        # Raised by the client library itself (connection refused, server closed the connection), or by
        # Django with no driver error behind it.
        return RETRY_AFTER_CONTENTION_S if contention else RETRY_AFTER_LOST_CONNECTION_S
    if sqlstate.startswith("08") or sqlstate in _PG_RETRYABLE_SQLSTATES:
        return RETRY_AFTER_CONTENTION_S if sqlstate[:2] in ("40", "55") else RETRY_AFTER_LOST_CONNECTION_S
    return None


class DatabaseUnavailableMiddleware:
    """A lost database connection (or lost lock) is a 503 the client may retry; any other database error is
    a logged 500, never disguised as an outage."""

    def __init__(self, get_response: Callable[[HttpRequest], HttpResponse]) -> None:
        self.get_response = get_response

    def __call__(self, request: HttpRequest) -> HttpResponse:
        return self.get_response(request)

    def process_exception(self, request: HttpRequest, exception: Exception) -> HttpResponse | None:
        if not isinstance(exception, DatabaseError):
            return None
        from .security import _is_api, failed_response

        retry_after = database_error_retry_after(exception)
        if retry_after is None:
            if not _is_api(request):
                return None  # pages: Django's own logged 500 (the debug page while DEBUG is on, else 500.html)
            logger.error("database error during an API request (a bug, not an outage)", exc_info=exception,
                         extra={"path": request.path, "error": str(exception)})
            return failed_response(request, "Internal error; it has been logged.", 500)
        from django.db import connections

        logger.error("database unavailable during a request", extra={"path": request.path,
                                                                      "error": str(exception)})
        for conn in connections.all(initialized_only=True):
            conn.close_if_unusable_or_obsolete()
        return failed_response(request, "The database is briefly unavailable; please retry.", 503,
                               **{"Retry-After": str(retry_after)})
