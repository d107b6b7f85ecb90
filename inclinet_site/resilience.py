"""Infrastructure that degrades instead of failing: a Redis cache that survives a Redis restart, uploads
that are never left half-written, and a clear 503 when the database drops away mid-request.

- ``ResilientRedisCache``: the cache is an optimisation (predictions, throttle counters), so while Redis
  restarts a read is a miss and a write is skipped, with a warning in the log, instead of a 500 on every
  request and a failed batch job in the worker. Throttles fail open for those seconds. It also keeps one
  ``redis.Redis`` client per connection pool instead of building one per cache call.
- ``AtomicFileSystemStorage``: writes to a temporary file in the same folder and renames it into place,
  so a full disk (ENOSPC) or a crash mid-write leaves no truncated file behind under the final name.
- ``DatabaseUnavailableMiddleware``: a connection that PostgreSQL closed under a request (restart,
  failover, ``pg_terminate_backend``) answers 503 with Retry-After; the next request reconnects
  (``CONN_HEALTH_CHECKS``).
"""
from __future__ import annotations

import logging
import os
import tempfile
from collections.abc import Callable
from typing import Any

from django.core.cache.backends.redis import RedisCache, RedisCacheClient
from django.core.files.storage import FileSystemStorage
from django.db import InterfaceError, OperationalError
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


class DatabaseUnavailableMiddleware:
    """A lost database connection is a 503 the client may retry, not an anonymous 500."""

    def __init__(self, get_response: Callable[[HttpRequest], HttpResponse]) -> None:
        self.get_response = get_response

    def __call__(self, request: HttpRequest) -> HttpResponse:
        return self.get_response(request)

    def process_exception(self, request: HttpRequest, exception: Exception) -> HttpResponse | None:
        if not isinstance(exception, (OperationalError, InterfaceError)):
            return None
        from django.db import connections

        logger.error("database connection lost during a request", extra={"path": request.path,
                                                                          "error": str(exception)})
        for conn in connections.all(initialized_only=True):
            conn.close_if_unusable_or_obsolete()
        from .security import failed_response

        return failed_response(request, "The database is briefly unavailable; please retry.", 503,
                               **{"Retry-After": "5"})
