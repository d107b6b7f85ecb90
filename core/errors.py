"""One error vocabulary for every service: exceptions that say *what* went wrong, never an HTTP status.

Services raise a subclass of :class:`ApplicationError`; ``inclinet_site.api`` maps each ``kind`` to its HTTP
status once, into the documented shape ``{"status": "failed", "message": ..., "code": ...}`` (plus ``extra``).
A subclass may refine ``code`` (a stable, machine-readable word clients can switch on) and keep its kind.
"""
from __future__ import annotations

from typing import Any, ClassVar, Literal

Kind = Literal["invalid", "forbidden", "not_found", "conflict", "too_large", "upstream", "unavailable"]


class ApplicationError(Exception):
    """An expected failure that the caller should see verbatim."""

    kind: ClassVar[Kind] = "invalid"
    code: str = "invalid"

    def __init__(self, message: str, *, code: str | None = None, **extra: Any) -> None:
        super().__init__(message)
        self.message = message
        if code is not None:
            self.code = code
        self.extra = extra

    def __reduce__(self) -> tuple[Any, ...]:
        # Errors raised in a prediction process come back pickled; keep the code and the extra fields.
        return _rebuild, (type(self), self.message, self.code, self.extra)


def _rebuild(cls: type[ApplicationError], message: str, code: str, extra: dict[str, Any]) -> ApplicationError:
    return cls(message, code=code, **extra)


class InvalidInput(ApplicationError):
    kind, code = "invalid", "invalid"


class PermissionDenied(ApplicationError):
    kind, code = "forbidden", "forbidden"


class NotFound(ApplicationError):
    kind, code = "not_found", "not_found"


class Conflict(ApplicationError):
    kind, code = "conflict", "conflict"


class TooLarge(ApplicationError):
    kind, code = "too_large", "too_large"


class UpstreamFailed(ApplicationError):
    """A service we depend on (an archive, a resolver) answered badly or not at all."""

    kind, code = "upstream", "upstream_failed"


class Unavailable(ApplicationError):
    """We cannot serve this now (no active model, broker down); retrying later may work."""

    kind, code = "unavailable", "unavailable"
