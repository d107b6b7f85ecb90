"""Expected failures of the Zoo's services; the API turns each into a 4xx ``{"status": "failed", ...}``."""
from __future__ import annotations


class ZooError(Exception):
    status = 400
    code = "bad_request"

    def __init__(self, message: str) -> None:
        super().__init__(message)
        self.message = message


class InvalidInput(ZooError):
    status, code = 400, "invalid"


class NotAssigned(ZooError):
    status, code = 404, "not_assigned"


class NoTaskAvailable(ZooError):
    status, code = 404, "no_task"


class AlreadySubmitted(ZooError):
    status, code = 409, "already_submitted"


class LeaseExpired(ZooError):
    status, code = 409, "lease_expired"


class GalaxyRetired(ZooError):
    status, code = 409, "retired"


class ForgedNeighbours(ZooError):
    status, code = 400, "forged_neighbours"


class NotFound(ZooError):
    status, code = 404, "not_found"
