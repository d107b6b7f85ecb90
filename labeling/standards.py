"""The standard set: staff create and edit standards, experts propose them, settled galaxies are promoted.

A standard is a reference galaxy of known inclination shown beside the target (and, unseen, served as a gold
task); making one takes the galaxy out of the volunteers' queue. Reads (coverage, candidates) are in
``selectors``.
"""
from __future__ import annotations

from collections.abc import Iterable
from typing import Any

from django.contrib.auth import get_user_model
from django.contrib.auth.models import AbstractBaseUser

from catalog.models import Galaxy
from core.errors import InvalidInput, NotFound

from .models import Consensus, ConsensusStatus, Standard, StandardMethod, StandardProposal
from .selectors import (
    PROMOTION_MAX_SCATTER, _expert_ids, promotion_candidates, promotion_votes, promotion_window, standard_coverage,
)
from .transactions import write_transaction


def standard_create(*, galaxy_id: int, inclination: float, chosen_by: Iterable[AbstractBaseUser],
                    morphology: str = "", display_scale: float = 1.0, display_angle: float = 0.0,
                    method: str = StandardMethod.STAFF) -> Standard:
    if not 0 <= inclination <= 90:
        raise InvalidInput("A standard's inclination must be between 0 and 90 degrees.")
    if not Galaxy.objects.filter(pk=galaxy_id).exists():
        raise NotFound(f"No galaxy with id {galaxy_id}.")
    with write_transaction():
        standard, _ = Standard.objects.update_or_create(
            galaxy_id=galaxy_id,
            defaults={"inclination": inclination, "morphology": morphology, "display_scale": display_scale,
                      "display_angle": display_angle, "method": method, "active": True},
        )
        standard.chosen_by.add(*chosen_by)
        # A standard is a reference, not a target: take it out of the volunteers' queue.
        Consensus.objects.filter(galaxy_id=galaxy_id, n_votes=0).delete()
    return standard


def standard_update(*, standard_id: int, **changes: Any) -> Standard:
    standard = Standard.objects.filter(pk=standard_id).first()
    if standard is None:
        raise NotFound(f"No standard with id {standard_id}.")
    allowed = {"inclination", "morphology", "display_scale", "display_angle", "active"}
    for key, value in changes.items():
        if key not in allowed:
            raise InvalidInput(f"Cannot change {key!r} of a standard.")
        setattr(standard, key, value)
    if not 0 <= standard.inclination <= 90:
        raise InvalidInput("A standard's inclination must be between 0 and 90 degrees.")
    standard.save()
    return standard


def standard_propose(*, expert: AbstractBaseUser, galaxy_id: int, inclination: float, morphology: str = "",
                     display_scale: float = 1.0, display_angle: float = 0.0) -> Standard | None:
    """An expert's measurement of a candidate. Three experts within 3° adopt the median (as the original did)."""
    if not 45 <= inclination < 90:
        raise InvalidInput("Expert standards must lie in 45-90 degrees (exclusive of 90, as in the original).")
    if not Galaxy.objects.filter(pk=galaxy_id).exists():
        raise NotFound(f"No galaxy with id {galaxy_id}.")
    with write_transaction():
        StandardProposal.objects.update_or_create(
            galaxy_id=galaxy_id, expert=expert,
            defaults={"inclination": inclination, "morphology": morphology, "display_scale": display_scale,
                      "display_angle": display_angle},
        )
        proposals = list(StandardProposal.objects.select_for_update().filter(galaxy_id=galaxy_id))
        if len(proposals) < 3:
            return None
        values = sorted(p.inclination for p in proposals)
        for start in range(len(values) - 2):
            window = values[start:start + 3]
            if window[-1] - window[0] <= 3.0:
                return standard_create(
                    galaxy_id=galaxy_id, inclination=window[1], method=StandardMethod.EXPERTS,
                    chosen_by=[p.expert for p in proposals if window[0] <= p.inclination <= window[-1]],
                    morphology=morphology, display_scale=display_scale, display_angle=display_angle,
                )
    return None


def standard_promote(*, galaxy_id: int, by: AbstractBaseUser) -> Standard:
    """Staff promote a settled galaxy to a standard, by the seed's rule: three measurements within 3° (experts'
    own first), the standard at their median. The galaxy must have retired accepted, with a small scatter."""
    if not 0 < galaxy_id < 2**63:  # beyond the id column: no such galaxy (and no database error)
        raise NotFound(f"Galaxy {galaxy_id} is not in the Zoo.")
    with write_transaction():
        consensus = Consensus.objects.select_for_update().filter(galaxy_id=galaxy_id).first()
        if consensus is None:
            raise NotFound(f"Galaxy {galaxy_id} is not in the Zoo.")
        if Standard.objects.filter(galaxy_id=galaxy_id).exists():
            raise InvalidInput(f"Galaxy {galaxy_id} is a standard already.")
        if not consensus.retired or consensus.status != ConsensusStatus.ACCEPTED:
            raise InvalidInput("Only a galaxy that has retired with an accepted inclination can become a standard.")
        if consensus.inc_e is None or consensus.inc_e > PROMOTION_MAX_SCATTER:
            raise InvalidInput(f"The volunteers' scatter on this galaxy ({consensus.inc_e}°) is above "
                               f"{PROMOTION_MAX_SCATTER:g}°: too uncertain for a standard.")
        votes = promotion_votes(galaxy_ids=[galaxy_id]).get(galaxy_id, [])
        window = promotion_window(votes, _expert_ids({u for u, _ in votes}))
        if window is None:
            raise InvalidInput("No three measurements of this galaxy agree within 3° at 45-90°.")
        voters = list(get_user_model().objects.filter(pk__in=window.user_ids))
        return standard_create(galaxy_id=galaxy_id, inclination=round(window.inclination, 2),
                               chosen_by=[by, *voters], method=StandardMethod.CROWD)


def standards_fill_gaps(*, by: AbstractBaseUser) -> list[Standard]:
    """Promote, for every degree of 45–90° with fewer than three standards, the best candidates that fall on it
    (tightest agreement first) until it has three or none is left. Returns the new standards."""
    missing = {row["degree"]: row["missing"] for row in standard_coverage()["gaps"]}
    made = []
    for candidate in promotion_candidates(limit=2000):
        if missing.get(candidate["degree"], 0) > 0:
            try:
                made.append(standard_promote(galaxy_id=candidate["galaxy_id"], by=by))
            except InvalidInput:
                continue  # changed since it was listed (e.g. promoted meanwhile)
            missing[candidate["degree"]] -= 1
    return made
