"""A galaxy's consensus from its counted votes: recompute (one galaxy, or all after a calibration), retire,
unretire, and rebuild every queued galaxy from the measurements (data safety).

The consensus is a weighted median of the calibrated votes; a galaxy retires when enough votes agree, when
most say face-on or reject, or at the maximum number of votes. Retirement decisions are history: recomputing
keeps them.
"""
from __future__ import annotations

import math
from collections import defaultdict
from dataclasses import dataclass, field
from datetime import datetime
from typing import Any

from django.contrib.auth.models import AbstractBaseUser
from django.db.models import Exists, OuterRef
from django.utils import timezone

from core.errors import InvalidInput, NotFound

from .conf import zoo_setting
from .models import Consensus, ConsensusStatus, Measurement, RetireReason, VolunteerCalibration
from .selectors import calibrations_for
from .stats import scatter, weighted_median
from .transactions import write_transaction

CONSENSUS_VALUE_FIELDS = ("n_votes", "n_face_on", "n_reject", "face_on_fraction", "reject_fraction", "inc", "inc_e",
                          "status")


@dataclass
class _Vote:
    user_id: int
    raw: float | None
    face_on: bool
    rejected: bool


def _consensus_values(*, consensus: Consensus, votes: list[_Vote],
                      calibration: dict[int, tuple[float, float, float]]) -> list[float]:
    """Fill the consensus fields from the votes and return the accepted calibrated values."""
    values, weights = [], []
    n = len(votes)
    n_face_on = sum(1 for v in votes if v.face_on)
    n_reject = sum(1 for v in votes if v.rejected and not v.face_on)
    for vote in votes:
        if vote.raw is None or vote.face_on or vote.rejected:
            continue
        a, b, w = calibration.get(vote.user_id, (1.0, 0.0, 1.0))
        values.append(min(max(a * vote.raw + b, 0.0), 90.0))
        weights.append(w)
    consensus.n_votes = n
    consensus.n_face_on = n_face_on
    consensus.n_reject = n_reject
    consensus.face_on_fraction = n_face_on / n if n else 0.0
    consensus.reject_fraction = n_reject / n if n else 0.0
    consensus.inc = weighted_median(values, weights)
    consensus.inc_e = scatter(values)
    if n == 0:
        consensus.status = ConsensusStatus.PENDING
    elif consensus.face_on_fraction > 0.5:
        consensus.status = ConsensusStatus.FACE_ON
    elif consensus.reject_fraction > 0.5 or consensus.inc is None:
        consensus.status = ConsensusStatus.REJECTED
    elif consensus.inc < 44.5:
        # The grid cannot sort galaxies below 45°: the original labelled such accepted galaxies J.
        consensus.status = ConsensusStatus.REJECTED
    else:
        consensus.status = ConsensusStatus.ACCEPTED
    return values


def _retire_reason(*, consensus: Consensus, values: list[float]) -> str:
    min_votes, spread = zoo_setting("MIN_VOTES"), zoo_setting("AGREE_SPREAD")
    if consensus.n_face_on >= min_votes and consensus.face_on_fraction > 0.5:
        return RetireReason.FACE_ON
    if consensus.n_reject >= min_votes and consensus.reject_fraction > 0.5:
        return RetireReason.REJECTED
    ordered = sorted(values)
    if any(ordered[i + min_votes - 1] - ordered[i] <= spread for i in range(len(ordered) - min_votes + 1)):
        return RetireReason.CONSENSUS
    if consensus.n_votes >= zoo_setting("MAX_VOTES"):
        return RetireReason.MAX_VOTES
    return ""


def _votes_for(*, galaxy_ids: list[int]) -> dict[int, list[_Vote]]:
    votes: dict[int, list[_Vote]] = defaultdict(list)
    rows = (Measurement.objects.filter(galaxy_id__in=galaxy_ids, counted=True, is_gold=False)
            .values_list("galaxy_id", "user_id", "inclination_raw", "face_on", "face_on_reason", "rejected"))
    for galaxy_id, user_id, raw, face_on, face_on_reason, rejected in rows:
        votes[galaxy_id].append(_Vote(user_id, raw, face_on or face_on_reason, rejected))
    return votes


def consensus_recompute(*, consensus: Consensus, now: datetime | None = None, retire: bool = True) -> Consensus:
    """Recompute one galaxy from its counted votes (the caller holds the row lock) and retire it if settled."""
    votes = _votes_for(galaxy_ids=[consensus.galaxy_id])[consensus.galaxy_id]
    calibration = calibrations_for(user_ids={v.user_id for v in votes})
    values = _consensus_values(consensus=consensus, votes=votes, calibration=calibration)
    if retire and not consensus.retired:
        reason = _retire_reason(consensus=consensus, values=values)
        if reason:
            consensus.retired, consensus.retire_reason, consensus.retired_at = True, reason, timezone.now()
    consensus.save()
    return consensus


def consensus_recompute_all(*, batch_size: int = 2000) -> int:
    """Refresh every galaxy's values after a calibration (retirement decisions already taken are kept)."""
    calibration_all = {uid: (a, b, w) for uid, a, b, w in
                       VolunteerCalibration.objects.values_list("user_id", "a", "b", "weight")}
    voted = Measurement.objects.filter(galaxy_id=OuterRef("galaxy_id"), counted=True, is_gold=False)
    ids = list(Consensus.objects.filter(Exists(voted)).order_by("galaxy_id").values_list("galaxy_id", flat=True))
    for start in range(0, len(ids), batch_size):
        chunk = ids[start:start + batch_size]
        # Lock the rows, then read their votes, in one transaction: a vote committed between an earlier read
        # and this write would be overwritten with a stale count. A submit waits for the lock instead and
        # recomputes after us. Locked in galaxy order (as consensus_rebuild does): two runs cannot deadlock.
        with write_transaction():
            rows = list(Consensus.objects.select_for_update().filter(galaxy_id__in=chunk).order_by("galaxy_id"))
            votes = _votes_for(galaxy_ids=chunk)
            for row in rows:
                _consensus_values(consensus=row, votes=votes.get(row.galaxy_id, []), calibration=calibration_all)
            Consensus.objects.bulk_update(rows, list(CONSENSUS_VALUE_FIELDS))
    return len(ids)


def consensus_retire(*, galaxy_id: int, by: AbstractBaseUser) -> Consensus:
    """Staff force-retire: no more volunteers are given the galaxy; outstanding leases are refused on submit."""
    with write_transaction():
        consensus = Consensus.objects.select_for_update().filter(galaxy_id=galaxy_id).first()
        if consensus is None:
            raise NotFound(f"Galaxy {galaxy_id} is not in the Zoo's queue.")
        consensus.retired, consensus.retire_reason = True, RetireReason.STAFF
        consensus.retired_at, consensus.retired_by = timezone.now(), by
        consensus.save()
    return consensus


def consensus_unretire(*, galaxy_id: int, by: AbstractBaseUser) -> Consensus:
    """Staff unretire: the galaxy goes back in the queue (the next vote re-applies the retirement rules)."""
    with write_transaction():
        consensus = Consensus.objects.select_for_update().filter(galaxy_id=galaxy_id).first()
        if consensus is None:
            raise NotFound(f"Galaxy {galaxy_id} is not in the Zoo's queue.")
        if consensus.n_votes >= zoo_setting("MAX_VOTES"):
            raise InvalidInput("This galaxy already has the maximum number of votes; raise LABELING_MAX_VOTES first.")
        consensus.retired, consensus.retire_reason, consensus.retired_at = False, "", None
        consensus.retired_by = by
        consensus.save()
    return consensus


# --------------------------------------------------------------------------------------------------
# Rebuilding consensus from the measurements (data safety)
# --------------------------------------------------------------------------------------------------


@dataclass
class RebuildReport:
    checked: int = 0
    differing: list[int] = field(default_factory=list)  # galaxy ids whose stored values differed
    written: int = 0


def _same(a: Any, b: Any) -> bool:
    if isinstance(a, float) or isinstance(b, float):
        return a is not None and b is not None and math.isclose(a, b, rel_tol=1e-9, abs_tol=1e-9)
    return a == b


def consensus_rebuild(*, apply: bool = True, batch_size: int = 2000) -> RebuildReport:
    """Recompute every queued galaxy's consensus from its counted measurements (the source of truth) and
    compare with what is stored; with ``apply``, write the recomputed values. Retirement decisions are
    history (taken when the votes arrived, or by staff) and are kept."""
    calibration_all = {uid: (a, b, w) for uid, a, b, w in
                       VolunteerCalibration.objects.values_list("user_id", "a", "b", "weight")}
    ids = list(Consensus.objects.order_by("galaxy_id").values_list("galaxy_id", flat=True))
    report = RebuildReport()
    for start in range(0, len(ids), batch_size):
        chunk = ids[start:start + batch_size]
        with write_transaction():  # lock first, then read the votes (see consensus_recompute_all)
            rows = list(Consensus.objects.select_for_update().filter(galaxy_id__in=chunk).order_by("galaxy_id"))
            votes = _votes_for(galaxy_ids=chunk)
            changed = []
            for row in rows:
                stored = {name: getattr(row, name) for name in CONSENSUS_VALUE_FIELDS}
                _consensus_values(consensus=row, votes=votes.get(row.galaxy_id, []), calibration=calibration_all)
                report.checked += 1
                if any(not _same(stored[name], getattr(row, name)) for name in CONSENSUS_VALUE_FIELDS):
                    report.differing.append(row.galaxy_id)
                    changed.append(row)
            if apply and changed:
                Consensus.objects.bulk_update(changed, list(CONSENSUS_VALUE_FIELDS))
                report.written += len(changed)
    return report
