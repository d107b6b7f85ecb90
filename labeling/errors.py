"""The Zoo's own expected failures, in ``core.errors``' vocabulary: each is one of its kinds (not found,
conflict, invalid input) with a stable ``code`` clients can switch on. No HTTP here: ``inclinet_site.api``
maps the kind to the status. Plain invalid input and unknown objects raise ``core.errors`` directly.
"""
from __future__ import annotations

from core.errors import Conflict, InvalidInput, NotFound


class NotAssigned(NotFound):
    code = "not_assigned"


class NoTaskAvailable(NotFound):
    code = "no_task"


class AlreadySubmitted(Conflict):
    code = "already_submitted"


class LeaseExpired(Conflict):
    code = "lease_expired"


class GalaxyRetired(Conflict):
    code = "retired"


class ForgedNeighbours(InvalidInput):
    code = "forged_neighbours"


class TutorialConflict(Conflict):
    """An answer the tutorial cannot take (the question is answered already)."""

    code = "tutorial_conflict"
